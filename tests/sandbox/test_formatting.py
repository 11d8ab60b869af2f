"""Telegram's entity parsers (HTML, MarkdownV2, Markdown) and text clean-up."""

from __future__ import annotations

import html

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.sandbox.formatting import (
    EntityParseError,
    FormattedText,
    finalize_text,
    find_entities,
    parse_entities,
    parse_html,
    parse_markdown,
    parse_markdown_v2,
    utf16_len,
)


def test_utf16_length_counts_astral_characters_twice() -> None:
    assert utf16_len("网格") == 2
    assert utf16_len("😀") == 2
    assert utf16_len("a😀b") == 4


def test_html_tags_become_entities_with_utf16_offsets() -> None:
    parsed = parse_html("😀 <b>你好</b> <i>it<u>al</u></i> &lt;&amp;&gt; &#x4e2d;")
    assert parsed.text == "😀 你好 ital <&> 中"
    assert parsed.entities == [
        {"type": "bold", "offset": 3, "length": 2},
        {"type": "italic", "offset": 6, "length": 4},
        {"type": "underline", "offset": 8, "length": 2},
    ]


@pytest.mark.parametrize(
    ("source", "entity"),
    [
        ("<strong>x</strong>", {"type": "bold"}),
        ("<em>x</em>", {"type": "italic"}),
        ("<ins>x</ins>", {"type": "underline"}),
        ("<s>x</s>", {"type": "strikethrough"}),
        ("<strike>x</strike>", {"type": "strikethrough"}),
        ("<del>x</del>", {"type": "strikethrough"}),
        ('<span class="tg-spoiler">x</span>', {"type": "spoiler"}),
        ("<tg-spoiler>x</tg-spoiler>", {"type": "spoiler"}),
        ("<code>x</code>", {"type": "code"}),
        ("<pre>x</pre>", {"type": "pre"}),
        ("<blockquote>x</blockquote>", {"type": "blockquote"}),
        ("<blockquote expandable>x</blockquote>", {"type": "expandable_blockquote"}),
        ('<a href="https://example.com/a?b=1">x</a>', {"url": "https://example.com/a?b=1"}),
        ('<tg-emoji emoji-id="5368324170671202286">x</tg-emoji>', {"type": "custom_emoji"}),
    ],
)
def test_every_allowed_html_tag(source: str, entity: dict[str, str]) -> None:
    parsed = parse_html(source)
    assert parsed.text == "x"
    assert len(parsed.entities) == 1
    assert entity.items() <= parsed.entities[0].items()


def test_pre_with_code_language() -> None:
    parsed = parse_html('<pre><code class="language-python">print(1)</code></pre>')
    assert parsed.entities == [{"type": "pre", "offset": 0, "length": 8, "language": "python"}]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("a < b", 'Unsupported start tag "" at byte offset 2'),
        ("<p>段落</p>", 'Unsupported start tag "p" at byte offset 0'),
        ("<b>粗体</i>", 'Unmatched end tag at byte offset 9, expected "</b>", found "</i>"'),
        ("<b>粗体", 'Can\'t find end tag corresponding to start tag "b"'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ("<b", "Unclosed start tag at byte offset 0"),
        ("<span>x</span>", 'Tag "span" must have class "tg-spoiler" at byte offset 0'),
        ('<a href="x">y</a', "Unclosed end tag at byte offset 13"),
        ("<tg-emoji emoji-id=abc>x</tg-emoji>", "Invalid custom emoji identifier specified"),
    ],
)
def test_html_errors_use_telegram_wording(source: str, message: str) -> None:
    with pytest.raises(EntityParseError) as error:
        parse_html(source)
    assert str(error.value) == message


def test_unknown_named_entities_stay_literal() -> None:
    assert parse_html("a &nbsp; b &amp c").text == "a &nbsp; b & c"


def test_invalid_link_gives_no_entity() -> None:
    assert parse_html('<a href="not a link">x</a>').entities == []


def test_markdown_v2() -> None:
    parsed = parse_markdown_v2(
        "*粗* _斜_ __下__ ~删~ ||藏|| [链接](http://example.com) `代码` ```py\nx = 1```"
    )
    assert parsed.text == "粗 斜 下 删 藏 链接 代码 x = 1"
    assert [e["type"] for e in parsed.entities] == [
        "bold",
        "italic",
        "underline",
        "strikethrough",
        "spoiler",
        "text_link",
        "code",
        "pre",
    ]
    assert parsed.entities[-1]["language"] == "py"


def test_markdown_v2_escapes_and_blockquotes() -> None:
    assert parse_markdown_v2(r"1\.5 \* 2").text == "1.5 * 2"
    quote = parse_markdown_v2(">第一行\n>第二行\n之后")
    assert quote.text == "第一行\n第二行\n之后"
    assert quote.entities == [{"type": "blockquote", "offset": 0, "length": 8}]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("完成.", "Character '.' is reserved and must be escaped with the preceding '\\'"),
        ("a-b", "Character '-' is reserved and must be escaped with the preceding '\\'"),
        ("*粗体", "Can't find end of Bold entity at byte offset 0"),
        ("x _y", "Can't find end of Italic entity at byte offset 2"),
        ("[a](http://x.com", "Can't find end of a URL at byte offset 4"),
    ],
)
def test_markdown_v2_errors(source: str, message: str) -> None:
    with pytest.raises(EntityParseError) as error:
        parse_markdown_v2(source)
    assert str(error.value) == message


def test_legacy_markdown() -> None:
    parsed = parse_markdown("*b* _i_ `c` [t](http://x.org)")
    assert parsed.text == "b i c t"
    assert [e["type"] for e in parsed.entities] == ["bold", "italic", "code", "text_link"]
    with pytest.raises(EntityParseError, match="Can't find end of the entity starting at byte"):
        parse_markdown("*b")


def test_unsupported_parse_mode() -> None:
    with pytest.raises(ValueError, match="Unsupported parse_mode"):
        parse_entities("x", "bbcode")
    assert parse_entities("<b>x</b>", None).text == "<b>x</b>"


def test_finalize_trims_cleans_and_detects_entities() -> None:
    result = finalize_text(
        FormattedText("\n  /start abc @someone #网格 https://example.com/a. \t\r\n ")
    )
    assert result.text == "/start abc @someone #网格 https://example.com/a."
    assert [e["type"] for e in result.entities] == ["bot_command", "mention", "hashtag", "url"]
    assert result.entities[-1]["length"] == len("https://example.com/a")
    assert finalize_text(FormattedText("a\tb\rc")).text == "a bc"
    assert finalize_text(FormattedText(" \n ")).text == ""


def test_detection_does_not_touch_code() -> None:
    parsed = finalize_text(parse_html("<code>/start</code> /help"))
    assert [e["type"] for e in parsed.entities] == ["code", "bot_command"]


def test_find_entities_in_chinese_text() -> None:
    found = find_entities("请发送 /report 或联系 @grid_worker，网址 www.example.cn")
    assert [e["type"] for e in found] == ["bot_command", "mention", "url"]


@given(st.text(max_size=300))
def test_parsers_never_crash(text: str) -> None:
    for parser in (parse_html, parse_markdown_v2, parse_markdown):
        try:
            parsed = parser(text)
        except EntityParseError:
            continue
        length = utf16_len(parsed.text)
        for entity in parsed.entities:
            assert entity["offset"] >= 0 and entity["length"] > 0
            assert entity["offset"] + entity["length"] <= length
        finalized = finalize_text(parsed)
        for entity in finalized.entities:
            assert entity["offset"] + entity["length"] <= utf16_len(finalized.text)


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200))
def test_escaped_text_round_trips_through_html(text: str) -> None:
    assert parse_html(html.escape(text, quote=False)).text == text


@given(st.text(max_size=100), st.sampled_from(["b", "i", "u", "s", "code", "tg-spoiler"]))
def test_wrapped_text_gets_one_entity(text: str, tag: str) -> None:
    parsed = parse_html(f"<{tag}>{html.escape(text, quote=False)}</{tag}>")
    assert parsed.text == text
    if text:
        assert len(parsed.entities) == 1
        assert parsed.entities[0]["length"] == utf16_len(text)
