"""Message formatting as the Telegram server does it.

* :func:`parse_entities` turns ``text`` + ``parse_mode`` (``HTML``, ``MarkdownV2``, legacy
  ``Markdown``) into plain text and ``MessageEntity`` objects, failing with Telegram's own
  wording (``Unsupported start tag "p" at byte offset 0``...).  The parsers follow the
  behaviour of TDLib's ``parse_html``, ``parse_markdown_v2`` and ``parse_markdown`` — byte
  offsets in errors are UTF-8 byte offsets of the input, entity offsets and lengths are UTF-16
  code units.
* :func:`finalize_text` cleans and trims the result the way Telegram does (control characters
  become spaces, ``\\r`` is dropped, leading/trailing spaces and newlines are cut) and adds the
  entities Telegram detects by itself (bot commands, mentions, hashtags, URLs, e-mails).
* :func:`utf16_len` counts what Telegram counts for the 4096/1024 limits.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

JsonObject = dict[str, Any]
UserResolver = Callable[[int], JsonObject | None]

MAX_TEXT_BYTES = 1 << 15


class EntityParseError(Exception):
    """The text could not be parsed; ``str(error)`` is TDLib's message."""


@dataclass
class FormattedText:
    """Plain text and its entities (Bot API ``MessageEntity`` dicts)."""

    text: str
    entities: list[JsonObject] = field(default_factory=list)


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, as Telegram counts message length and entity offsets."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


# Sort order of entities sharing offset and length (TDLib's type priorities).
_PRIORITY = {
    "blockquote": 0,
    "expandable_blockquote": 0,
    "pre": 11,
    "code": 20,
    "text_link": 49,
    "text_mention": 49,
    "bold": 90,
    "italic": 91,
    "underline": 92,
    "strikethrough": 93,
    "spoiler": 94,
    "custom_emoji": 99,
}


def _sort_key(entity: JsonObject) -> tuple[int, int, int]:
    return (entity["offset"], -entity["length"], _PRIORITY.get(entity["type"], 50))


def sort_entities(entities: list[JsonObject]) -> list[JsonObject]:
    return sorted(entities, key=_sort_key)


# ---------------------------------------------------------------------------------------------
# byte-level helpers (the parsers work on UTF-8 bytes, like TDLib, so byte offsets are exact)


class _Bytes:
    """UTF-8 text with C-string semantics: reading past the end yields 0."""

    __slots__ = ("data", "size")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.size = len(data)

    def __getitem__(self, index: int) -> int:
        return self.data[index] if 0 <= index < self.size else 0


def _is_space(c: int) -> bool:
    return c in (0x20, 0x09, 0x0D, 0x0A, 0x00, 0x0B)


def _is_alpha(c: int) -> bool:
    c |= 0x20
    return 0x61 <= c <= 0x7A


def _is_digit(c: int) -> bool:
    return 0x30 <= c <= 0x39


def _is_alnum(c: int) -> bool:
    return _is_alpha(c) or _is_digit(c)


def _is_hex(c: int) -> bool:
    return _is_digit(c) or 0x61 <= (c | 0x20) <= 0x66


def _first_code_unit(c: int) -> bool:
    return (c & 0xC0) != 0x80


def _utf16_units_of_lead_byte(c: int) -> int:
    return 1 + (c >= 0xF0)


def _lower(raw: bytes) -> str:
    return raw.decode("utf-8", "replace").lower()


def _decode(raw: bytes | bytearray) -> str:
    return bytes(raw).decode("utf-8", "surrogatepass")


def _to_int_prefix(raw: bytes) -> int:
    """TDLib's ``to_integer``: an optional minus and leading digits; anything else is 0."""
    match = re.match(rb"-?\d+", raw)
    return int(match.group()) if match else 0


def _decode_html_entity(text: _Bytes, pos: int) -> tuple[int, int]:
    """Decode ``&...;`` at ``pos``; return (code point or 0, position after it)."""
    end = pos + 1
    result = 0
    if text[pos + 1] == 0x23:  # '#'
        end += 1
        if text[pos + 2] == 0x78:  # 'x'
            end += 1
            while _is_hex(text[end]):
                result = result * 16 + int(chr(text[end]), 16)
                end += 1
        else:
            while _is_digit(text[end]):
                result = result * 10 + text[end] - 0x30
                end += 1
        if result == 0 or result >= 0x10FFFF or end - pos >= 10:
            return 0, pos
    else:
        while _is_alpha(text[end]):
            end += 1
        name = text.data[pos + 1 : end]
        named = {b"lt": 0x3C, b"gt": 0x3E, b"amp": 0x26, b"quot": 0x22}
        if name not in named:
            return 0, pos
        result = named[name]
    if text[end] == 0x3B:  # ';'
        end += 1
    return result, end


def _encode_code_point(code: int) -> bytes:
    return chr(code).encode("utf-8", "surrogatepass")


# ---------------------------------------------------------------------------------------------
# links


def _link_user_id(url: str) -> int | None:
    match = re.fullmatch(r"tg:(?://)?user\?id=(\d{1,19})", url.strip(), flags=re.IGNORECASE)
    if not match:
        return None
    user_id = int(match.group(1))
    return user_id if user_id > 0 else None


def checked_link(url: str) -> str:
    """TDLib's ``get_checked_link``: a normalised http(s)/tg URL, or ``""`` if invalid."""
    url = url.strip()
    if not url:
        return ""
    lowered = url.lower()
    for scheme in ("tg:", "ton:", "tonsite:"):
        if lowered.startswith(scheme):
            rest = url[len(scheme) :].removeprefix("//")
            host, _, query = rest.partition("?")
            host, _, path = host.partition("/")
            allowed = re.fullmatch(r"[A-Za-z0-9_\-.]+", host) if scheme == "tonsite:" else None
            if not host or not (allowed or re.fullmatch(r"[A-Za-z0-9_\-]+", host)):
                return ""
            tail = ("/" + path if path else "") + ("?" + query if query else "")
            return f"{scheme[:-1]}://{host}{tail}"
    if "://" not in url:
        url = "http://" + url
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        return ""
    if parts.scheme.lower() not in ("http", "https"):
        return ""
    host = parts.hostname or ""
    if not host or ("." not in host and ":" not in host):
        return ""
    if any(c.isspace() for c in url):
        return ""
    netloc = host
    if parts.username is not None:
        userinfo = parts.username + (f":{parts.password}" if parts.password is not None else "")
        netloc = f"{userinfo}@{host}"
    if port is not None:
        netloc += f":{port}"
    path = parts.path or "/"
    result = f"{parts.scheme.lower()}://{netloc}{path}"
    if parts.query:
        result += "?" + parts.query
    if parts.fragment:
        result += "#" + parts.fragment
    return result


def _link_entity(
    offset: int, length: int, url: str, resolve_user: UserResolver | None
) -> JsonObject | None:
    user_id = _link_user_id(url)
    if user_id is not None:
        user = resolve_user(user_id) if resolve_user else None
        if user is None:
            return None
        return {"type": "text_mention", "offset": offset, "length": length, "user": user}
    checked = checked_link(url)
    if not checked:
        return None
    return {"type": "text_link", "offset": offset, "length": length, "url": checked}


# ---------------------------------------------------------------------------------------------
# HTML

_HTML_TAGS = frozenset(
    {
        "a",
        "b",
        "strong",
        "i",
        "em",
        "s",
        "strike",
        "del",
        "u",
        "ins",
        "tg-spoiler",
        "tg-emoji",
        "tg-time",
        "span",
        "pre",
        "code",
        "blockquote",
    }
)
_SIMPLE_HTML = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "u": "underline",
    "ins": "underline",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
}


@dataclass
class _OpenTag:
    name: str
    argument: str
    date: int
    offset: int
    begin: int


def parse_html(source: str, resolve_user: UserResolver | None = None) -> FormattedText:
    """Parse Telegram's HTML subset; raise :class:`EntityParseError` like Telegram does."""
    text = _Bytes(source.encode("utf-8", "surrogatepass"))
    out = bytearray()
    entities: list[JsonObject] = []
    utf16 = 0
    surrogate = False
    nested: list[_OpenTag] = []
    i = 0
    while i < text.size:
        c = text[i]
        if c == 0x26:  # '&'
            code, after = _decode_html_entity(text, i)
            if code:
                utf16 += 1 + (code > 0xFFFF)
                surrogate = surrogate or 0xD800 <= code <= 0xDFFF
                out += _encode_code_point(code)
                i = after
                continue
        if c != 0x3C:  # '<'
            if _first_code_unit(c):
                utf16 += _utf16_units_of_lead_byte(c)
            out.append(c)
            i += 1
            continue

        begin = i
        i += 1
        if text[i] != 0x2F:  # start tag
            while not _is_space(text[i]) and text[i] != 0x3E:
                i += 1
            if text[i] == 0:
                raise EntityParseError(f"Unclosed start tag at byte offset {begin}")
            tag = _lower(text.data[begin + 1 : i])
            if tag not in _HTML_TAGS:
                raise EntityParseError(f'Unsupported start tag "{tag}" at byte offset {begin}')
            argument = ""
            date = 0
            while text[i] != 0x3E:
                while text[i] != 0 and _is_space(text[i]):
                    i += 1
                if text[i] == 0x3E:
                    break
                name_begin = i
                while not _is_space(text[i]) and text[i] not in (0x3D, 0x3E, 0x2F, 0x22, 0x27):
                    i += 1
                attribute = text.data[name_begin:i].decode("utf-8", "replace")
                if not attribute:
                    raise EntityParseError(
                        f'Empty attribute name in the tag "{tag}" at byte offset {begin}'
                    )
                while text[i] != 0 and _is_space(text[i]):
                    i += 1
                if text[i] != 0x3D:  # attribute without a value
                    if text[i] == 0:
                        raise EntityParseError(
                            f'Unclosed start tag "{tag}" at byte offset {begin}'
                        )
                    if tag == "blockquote" and attribute == "expandable":
                        argument = "1"
                    continue
                i += 1
                while text[i] != 0 and _is_space(text[i]):
                    i += 1
                if text[i] == 0:
                    raise EntityParseError(f'Unclosed start tag "{tag}" at byte offset {begin}')
                if text[i] not in (0x22, 0x27):
                    token_begin = i
                    while _is_alnum(text[i]) or text[i] in (0x2E, 0x2D):
                        i += 1
                    value = _lower(text.data[token_begin:i])
                    if not _is_space(text[i]) and text[i] != 0x3E:
                        raise EntityParseError(
                            f"Unexpected end of name token at byte offset {token_begin}"
                        )
                else:
                    quote = text[i]
                    i += 1
                    raw = bytearray()
                    while text[i] != quote and text[i] != 0:
                        if text[i] == 0x26:
                            code, after = _decode_html_entity(text, i)
                            if code:
                                raw += _encode_code_point(code)
                                i = after
                                continue
                        raw.append(text[i])
                        i += 1
                    if text[i] == quote:
                        i += 1
                    value = raw.decode("utf-8", "replace")
                if text[i] == 0:
                    raise EntityParseError(f"Unclosed start tag at byte offset {begin}")
                if tag == "a" and attribute == "href":
                    argument = value
                elif tag == "code" and attribute == "class" and value.startswith("language-"):
                    argument = value[9:]
                elif tag == "span" and attribute == "class" and value.startswith("tg-"):
                    argument = value[3:]
                elif tag == "tg-emoji" and attribute == "emoji-id":
                    argument = value
                elif tag == "blockquote" and attribute == "expandable":
                    argument = "1"
                elif tag == "tg-time" and attribute == "unix":
                    date = _to_int_prefix(value.encode())
                elif tag == "tg-time" and attribute == "format":
                    argument = value
            if tag == "span" and argument != "spoiler":
                raise EntityParseError(
                    f'Tag "span" must have class "tg-spoiler" at byte offset {begin}'
                )
            nested.append(_OpenTag(tag, argument, date, utf16, len(out)))
            i += 1
            continue

        # end tag
        if not nested:
            raise EntityParseError(f"Unexpected end tag at byte offset {begin}")
        while not _is_space(text[i]) and text[i] != 0x3E:
            i += 1
        end_tag = _lower(text.data[begin + 2 : i])
        while _is_space(text[i]) and text[i] != 0:
            i += 1
        if text[i] != 0x3E:
            raise EntityParseError(f"Unclosed end tag at byte offset {begin}")
        open_tag = nested[-1]
        if end_tag and end_tag != open_tag.name:
            raise EntityParseError(
                f'Unmatched end tag at byte offset {begin}, expected "</{open_tag.name}>", '
                f'found "</{end_tag}>"'
            )
        if utf16 > open_tag.offset:
            _close_html_entity(open_tag, utf16, out, entities, resolve_user)
        nested.pop()
        i += 1

    if nested:
        raise EntityParseError(
            f'Can\'t find end tag corresponding to start tag "{nested[-1].name}"'
        )
    if surrogate:
        raise EntityParseError(
            "Text contains invalid Unicode characters after decoding HTML entities, check for "
            "unmatched surrogate code units"
        )
    for entity in entities:
        if entity["type"] == "code":
            entity.pop("language", None)
    return FormattedText(_decode(out), sort_entities(entities))


def _close_html_entity(
    tag: _OpenTag,
    utf16: int,
    out: bytearray,
    entities: list[JsonObject],
    resolve_user: UserResolver | None,
) -> None:
    offset = tag.offset
    length = utf16 - offset
    name = tag.name
    if name in _SIMPLE_HTML:
        entities.append({"type": _SIMPLE_HTML[name], "offset": offset, "length": length})
    elif name == "tg-emoji":
        valid = re.fullmatch(r"[0-9]{1,19}", tag.argument)
        emoji_id = int(tag.argument) if valid else 0
        if emoji_id == 0 or emoji_id >= 1 << 63:
            raise EntityParseError("Invalid custom emoji identifier specified")
        entities.append(
            {
                "type": "custom_emoji",
                "offset": offset,
                "length": length,
                "custom_emoji_id": str(emoji_id),
            }
        )
    elif name == "tg-time":
        if tag.date > 0:
            entity: JsonObject = {
                "type": "date_time",
                "offset": offset,
                "length": length,
                "unix_time": tag.date,
            }
            if tag.argument:
                entity["date_time_format"] = tag.argument
            entities.append(entity)
    elif name == "a":
        url = tag.argument or _decode(out[tag.begin :])
        link = _link_entity(offset, length, url, resolve_user)
        if link is not None:
            entities.append(link)
    elif name == "pre":
        last = entities[-1] if entities else None
        if (
            last is not None
            and last["type"] == "code"
            and last["offset"] == offset
            and last["length"] == length
            and last.get("language")
        ):
            last["type"] = "pre"
        else:
            entities.append({"type": "pre", "offset": offset, "length": length})
    elif name == "code":
        last = entities[-1] if entities else None
        if (
            last is not None
            and last["type"] == "pre"
            and last["offset"] == offset
            and last["length"] == length
            and "language" not in last
            and tag.argument
        ):
            last["language"] = tag.argument
        else:
            code: JsonObject = {"type": "code", "offset": offset, "length": length}
            if tag.argument:
                code["language"] = tag.argument
            entities.append(code)
    elif name == "blockquote":
        kind = "expandable_blockquote" if tag.argument else "blockquote"
        entities.append({"type": kind, "offset": offset, "length": length})


# ---------------------------------------------------------------------------------------------
# MarkdownV2

_TD_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "text_link": "TextUrl",
    "code": "Code",
    "pre": "Pre",
    "pre_code": "PreCode",
    "custom_emoji": "CustomEmoji",
    "blockquote": "BlockQuote",
}


@dataclass
class _OpenMd:
    kind: str
    argument: str
    offset: int
    byte_offset: int
    begin: int


def _reserved(char: int) -> EntityParseError:
    return EntityParseError(
        f"Character '{chr(char)}' is reserved and must be escaped with the preceding '\\'"
    )


def _no_end(entity: _OpenMd) -> EntityParseError:
    return EntityParseError(
        f"Can't find end of {_TD_NAMES[entity.kind]} entity at byte offset {entity.byte_offset}"
    )


def _read_md_url(text: _Bytes, i: int) -> tuple[str, int]:
    """Read ``(...)`` starting at the byte after ``(``; return the URL and the index of ``)``."""
    url = bytearray()
    begin = i
    while i < text.size and text[i] != 0x29:
        if text[i] == 0x5C and 0 < text[i + 1] <= 126:
            url.append(text[i + 1])
            i += 2
            continue
        url.append(text[i])
        i += 1
    if text[i] != 0x29:
        raise EntityParseError(f"Can't find end of a URL at byte offset {begin}")
    return url.decode("utf-8", "replace"), i


def parse_markdown_v2(source: str, resolve_user: UserResolver | None = None) -> FormattedText:
    """Parse Telegram's MarkdownV2; raise :class:`EntityParseError` like Telegram does."""
    text = _Bytes(source.encode("utf-8", "surrogatepass"))
    out = bytearray()
    entities: list[JsonObject] = []
    utf16 = 0
    nested: list[_OpenMd] = []
    have_blockquote = False
    can_start_blockquote = True
    i = 0
    while i < text.size:
        c = text[i]
        if c == 0x5C and 0 < text[i + 1] <= 126:
            i += 1
            utf16 += 1
            out.append(text[i])
            if text[i] != 0x0D:
                can_start_blockquote = text[i] == 0x0A
            i += 1
            continue

        reserved = b"_*[]()~`>#+-=|{}.!\n"
        if nested and nested[-1].kind in ("code", "pre", "pre_code"):
            reserved = b"`"
        if c not in reserved:
            if _first_code_unit(c):
                utf16 += _utf16_units_of_lead_byte(c)
                if c != 0x0D:
                    can_start_blockquote = False
            out.append(c)
            i += 1
            continue

        is_end = False
        if nested:
            if have_blockquote and c == 0x0A and (i + 1 == text.size or text[i + 1] != 0x3E):
                is_end = True
            else:
                kind = nested[-1].kind
                is_end = (
                    (kind == "bold" and c == 0x2A)
                    or (kind == "italic" and c == 0x5F and text[i + 1] != 0x5F)
                    or (kind == "code" and c == 0x60)
                    or (
                        kind in ("pre", "pre_code")
                        and c == 0x60
                        and text[i + 1] == 0x60
                        and text[i + 2] == 0x60
                    )
                    or (kind in ("text_link", "custom_emoji") and c == 0x5D)
                    or (kind == "underline" and c == 0x5F and text[i + 1] == 0x5F)
                    or (kind == "strikethrough" and c == 0x7E)
                    or (kind == "spoiler" and c == 0x7C and text[i + 1] == 0x7C)
                )

        if not is_end:
            kind = ""
            argument = ""
            byte_offset = i
            if c == 0x5F:
                if text[i + 1] == 0x5F:
                    kind = "underline"
                    i += 1
                else:
                    kind = "italic"
            elif c == 0x2A:
                kind = "bold"
            elif c == 0x7E:
                kind = "strikethrough"
            elif c == 0x7C:
                if text[i + 1] != 0x7C:
                    raise _reserved(c)
                i += 1
                kind = "spoiler"
            elif c == 0x5B:
                kind = "text_link"
            elif c == 0x60:
                if text[i + 1] == 0x60 and text[i + 2] == 0x60:
                    i += 3
                    kind = "pre"
                    language_end = i
                    while not _is_space(text[language_end]) and text[language_end] != 0x60:
                        language_end += 1
                    if (
                        i != language_end
                        and language_end < text.size
                        and text[language_end] != 0x60
                    ):
                        kind = "pre_code"
                        argument = text.data[i:language_end].decode("utf-8", "replace")
                        i = language_end
                    if text[i] in (0x0A, 0x0D):
                        if text[i + 1] in (0x0A, 0x0D) and text[i] != text[i + 1]:
                            i += 2
                        else:
                            i += 1
                    i -= 1
                else:
                    kind = "code"
            elif c == 0x21:
                if text[i + 1] != 0x5B:
                    raise _reserved(c)
                i += 1
                kind = "custom_emoji"
            elif c == 0x0A:
                utf16 += 1
                out.append(0x0A)
                can_start_blockquote = True
                i += 1
                continue
            elif c == 0x3E:
                if not can_start_blockquote:
                    raise _reserved(c)
                if have_blockquote:
                    i += 1
                    continue
                kind = "blockquote"
                have_blockquote = True
            else:
                raise _reserved(c)
            nested.append(_OpenMd(kind, argument, utf16, byte_offset, len(out)))
            i += 1
            continue

        # end of an entity
        kind = nested[-1].kind
        if c == 0x0A and kind != "blockquote":
            top = nested[-1]
            after_cr = top.byte_offset == i - 3 and len(out) != 0 and out[-1] == 0x0D
            if kind != "spoiler" or not (top.byte_offset == i - 2 or after_cr):
                raise _no_end(top)
            nested.pop()
            kind = nested[-1].kind
            if kind != "blockquote":
                raise _no_end(nested[-1])
            kind = "expandable_blockquote"
        top = nested[-1]
        argument = top.argument
        skip = utf16 == top.offset
        link: JsonObject | None = None
        if kind in ("underline", "spoiler"):
            i += 1
        elif kind in ("pre", "pre_code"):
            i += 2
        elif kind == "text_link":
            if text[i + 1] != 0x28:
                url = _decode(out[top.begin :])
            else:
                url, i = _read_md_url(text, i + 2)
            link = _link_entity(top.offset, utf16 - top.offset, url, resolve_user)
            skip = skip or link is None
        elif kind == "custom_emoji":
            if text[i + 1] != 0x28:
                raise EntityParseError("The entity must contain a tg://emoji or tg://time URL")
            url, i = _read_md_url(text, i + 2)
            link = _custom_emoji_or_time(top.offset, utf16 - top.offset, url)
        elif kind in ("blockquote", "expandable_blockquote"):
            have_blockquote = False
            out.append(c)
            can_start_blockquote = True
            utf16 += 1
            skip = False
        if not skip:
            offset = top.offset
            length = utf16 - offset
            if link is not None:
                entities.append(link)
            elif kind == "pre_code":
                entities.append(
                    {"type": "pre", "offset": offset, "length": length, "language": argument}
                )
            else:
                entities.append({"type": kind, "offset": offset, "length": length})
        nested.pop()
        i += 1

    if have_blockquote:
        kind = "blockquote"
        if nested and nested[-1].kind == "spoiler" and nested[-1].byte_offset == text.size - 2:
            nested.pop()
            kind = "expandable_blockquote"
        if nested and nested[-1].kind == "blockquote":
            offset = nested[-1].offset
            if utf16 != offset:
                entities.append({"type": kind, "offset": offset, "length": utf16 - offset})
            nested.pop()
    if nested:
        raise _no_end(nested[-1])
    return FormattedText(_decode(out), sort_entities(entities))


def _custom_emoji_or_time(offset: int, length: int, url: str) -> JsonObject:
    emoji = re.fullmatch(r"tg://emoji\?id=(\d{1,19})", url)
    if emoji and int(emoji.group(1)) > 0:
        return {
            "type": "custom_emoji",
            "offset": offset,
            "length": length,
            "custom_emoji_id": emoji.group(1),
        }
    time_link = re.fullmatch(r"tg://time\?unix=(\d{1,10})(?:&format=([A-Za-z]*))?", url)
    if time_link and int(time_link.group(1)) > 0:
        entity: JsonObject = {
            "type": "date_time",
            "offset": offset,
            "length": length,
            "unix_time": int(time_link.group(1)),
        }
        if time_link.group(2):
            entity["date_time_format"] = time_link.group(2)
        return entity
    raise EntityParseError("Invalid tg://emoji or tg://time URL specified")


# ---------------------------------------------------------------------------------------------
# legacy Markdown


def parse_markdown(source: str, resolve_user: UserResolver | None = None) -> FormattedText:
    """Parse legacy ``Markdown`` (``*bold*``, ``_italic_``, ```code```, ``[text](url)``)."""
    text = _Bytes(source.encode("utf-8", "surrogatepass"))
    size = text.size
    out = bytearray()
    entities: list[JsonObject] = []
    utf16 = 0
    i = 0
    while i < size:
        c = text[i]
        if c == 0x5C and text[i + 1] in (0x5F, 0x2A, 0x60, 0x5B):
            i += 1
            out.append(text[i])
            utf16 += 1
            i += 1
            continue
        if c not in (0x5F, 0x2A, 0x60, 0x5B):
            if _first_code_unit(c):
                utf16 += _utf16_units_of_lead_byte(c)
            out.append(c)
            i += 1
            continue

        begin = i
        end_char = 0x5D if c == 0x5B else c
        is_pre = False
        i += 1
        language = ""
        if c == 0x60 and text[i] == 0x60 and text[i + 1] == 0x60:
            i += 2
            is_pre = True
            language_end = i
            while not _is_space(text[language_end]) and text[language_end] != 0x60:
                language_end += 1
            if i != language_end and language_end < size and text[language_end] != 0x60:
                language = text.data[i:language_end].decode("utf-8", "replace")
                i = language_end
            if text[i] in (0x0A, 0x0D):
                if text[i + 1] in (0x0A, 0x0D) and text[i] != text[i + 1]:
                    i += 2
                else:
                    i += 1
        offset = utf16
        while i < size and (
            text[i] != end_char or (is_pre and not (text[i + 1] == 0x60 and text[i + 2] == 0x60))
        ):
            if _first_code_unit(text[i]):
                utf16 += _utf16_units_of_lead_byte(text[i])
            out.append(text[i])
            i += 1
        if i == size:
            raise EntityParseError(f"Can't find end of the entity starting at byte offset {begin}")
        if offset != utf16:
            length = utf16 - offset
            if c == 0x5F:
                entities.append({"type": "italic", "offset": offset, "length": length})
            elif c == 0x2A:
                entities.append({"type": "bold", "offset": offset, "length": length})
            elif c == 0x5B:
                if text[i + 1] != 0x28:
                    url = text.data[begin + 1 : i].decode("utf-8", "replace")
                else:
                    i += 2
                    raw = bytearray()
                    while i < size and text[i] != 0x29:
                        raw.append(text[i])
                        i += 1
                    url = raw.decode("utf-8", "replace")
                link = _link_entity(offset, length, url, resolve_user)
                if link is not None:
                    entities.append(link)
            elif is_pre:
                pre: JsonObject = {"type": "pre", "offset": offset, "length": length}
                if language:
                    pre["language"] = language
                entities.append(pre)
            else:
                entities.append({"type": "code", "offset": offset, "length": length})
        if is_pre:
            i += 2
        i += 1
    return FormattedText(_decode(out), sort_entities(entities))


# ---------------------------------------------------------------------------------------------
# detection of entities Telegram adds by itself

_BOT_COMMAND = re.compile(r"(?<![\w/<>])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?![\w/<>])")
_MENTION = re.compile(r"(?<!\w)@[A-Za-z0-9_]{3,32}(?!\w)")
_HASHTAG = re.compile(r"(?<!\w)#(?=\w*[^\W\d_])\w{1,256}(?![\w#])")
_CASHTAG = re.compile(r"(?<![\w$])\$[A-Z]{1,8}(?![\w$])")
_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
)
_URL = re.compile(
    r"(?<![\w@/.])(?:https?://[^\s<>\"]+|www\.[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+[^\s<>\"]*)",
    re.IGNORECASE,
)
_TRAILING_PUNCTUATION = ".,:;!?)]}'\"。，：；！？、）"


def find_entities(text: str, *, bot_commands: bool = True) -> list[JsonObject]:
    """Entities Telegram detects in plain text (bot commands, mentions, hashtags, URLs...)."""
    found: list[tuple[int, int, str]] = []
    if bot_commands:
        found += [(m.start(), m.end(), "bot_command") for m in _BOT_COMMAND.finditer(text)]
    found += [(m.start(), m.end(), "mention") for m in _MENTION.finditer(text)]
    found += [(m.start(), m.end(), "hashtag") for m in _HASHTAG.finditer(text)]
    found += [(m.start(), m.end(), "cashtag") for m in _CASHTAG.finditer(text)]
    emails = [(m.start(), m.end(), "email") for m in _EMAIL.finditer(text)]
    found += emails
    for match in _URL.finditer(text):
        end = match.end()
        while end > match.start() and text[end - 1] in _TRAILING_PUNCTUATION:
            end -= 1
        if end - match.start() > 4:
            found.append((match.start(), end, "url"))
    # the first match wins where two overlap (an e-mail contains something like a mention)
    found.sort(key=lambda item: (item[0], -(item[1] - item[0])))
    result: list[JsonObject] = []
    taken_until = -1
    for start, end, kind in found:
        if start < taken_until:
            continue
        taken_until = end
        offset = utf16_len(text[:start])
        result.append({"type": kind, "offset": offset, "length": utf16_len(text[start:end])})
    return result


# ---------------------------------------------------------------------------------------------
# cleaning, trimming, merging

_NOT_SPLITTABLE = frozenset(
    {"code", "pre", "text_link", "text_mention", "custom_emoji", "url", "email", "mention"}
)


def _clean(text: str, entities: list[JsonObject]) -> tuple[str, list[JsonObject]]:
    """Telegram's ``clean_input_string``: control characters become spaces, ``\\r``, U+2028..U+202E
    and a few combining vertical lines disappear.  Entity offsets follow the removals."""
    removed_at: list[int] = []  # UTF-16 offsets (in the input) of removed code units
    pieces: list[str] = []
    position = 0
    for char in text:
        code = ord(char)
        width = 2 if code > 0xFFFF else 1
        if char == "\r" or 0x2028 <= code <= 0x202E or code in (0x0333, 0x033F, 0x030A):
            removed_at.extend(range(position, position + width))
        elif code < 0x20 and char != "\n":
            pieces.append(" ")
        else:
            pieces.append(char)
        position += width
    if not removed_at:
        return "".join(pieces), entities

    def shift(offset: int) -> int:
        return offset - sum(1 for r in removed_at if r < offset)

    moved = []
    for entity in entities:
        start = shift(entity["offset"])
        end = shift(entity["offset"] + entity["length"])
        if end > start:
            moved.append({**entity, "offset": start, "length": end - start})
    return "".join(pieces), moved


def _clip_entities(text: str, entities: list[JsonObject]) -> list[JsonObject]:
    total = utf16_len(text)
    result = []
    for entity in entities:
        start = max(0, entity["offset"])
        end = min(total, entity["offset"] + entity["length"])
        if end > start:
            result.append({**entity, "offset": start, "length": end - start})
    return result


def _drop_nested_in_code(entities: list[JsonObject]) -> list[JsonObject]:
    """Code and pre hold no other entities; a blockquote cannot start inside another one."""

    def inside(entity: JsonObject, block: JsonObject) -> bool:
        start: int = entity["offset"]
        end: int = start + entity["length"]
        return bool(block["offset"] <= start and end <= block["offset"] + block["length"])

    result: list[JsonObject] = []
    for entity in entities:  # sorted: an enclosing entity comes before what it encloses
        kept_blocks = [e for e in result if e["type"] in ("code", "pre")]
        if any(inside(entity, block) for block in kept_blocks):
            continue
        if entity["type"] in ("blockquote", "expandable_blockquote") and any(
            e["type"] in ("blockquote", "expandable_blockquote")
            and e["offset"] <= entity["offset"] < e["offset"] + e["length"]
            for e in result
        ):
            continue
        result.append(entity)
    return result


def finalize_text(
    formatted: FormattedText, *, detect: bool = True, bot_commands: bool = True
) -> FormattedText:
    """Clean, trim and complete ``formatted`` as Telegram stores a message text or caption."""
    text, entities = _clean(formatted.text, formatted.entities)
    entities = _drop_nested_in_code(sort_entities(_clip_entities(text, entities)))

    # rtrim spaces and newlines
    stripped = text.rstrip(" \n")
    entities = _clip_entities(stripped, entities)
    # ltrim spaces and newlines that precede the first entity
    first_entity = min((e["offset"] for e in entities), default=utf16_len(stripped))
    lead = len(stripped) - len(stripped.lstrip(" \n"))
    lead_units = min(utf16_len(stripped[:lead]), first_entity)
    if lead_units:
        stripped = stripped[lead_units:]  # spaces and newlines are one code unit each
        entities = [{**e, "offset": e["offset"] - lead_units} for e in entities]

    if detect and stripped:
        taken = [e for e in entities if e["type"] in _NOT_SPLITTABLE]
        for found in find_entities(stripped, bot_commands=bot_commands):
            start, end = found["offset"], found["offset"] + found["length"]
            if all(end <= e["offset"] or start >= e["offset"] + e["length"] for e in taken):
                entities.append(found)
    return FormattedText(stripped, sort_entities(entities))


def parse_entities(
    text: str,
    parse_mode: str | None,
    explicit_entities: list[JsonObject] | None = None,
    *,
    resolve_user: UserResolver | None = None,
) -> FormattedText:
    """Apply ``parse_mode`` (or take ``explicit_entities``) the way the Bot API does.

    Raises :class:`EntityParseError` for malformed markup and :class:`ValueError` with
    Telegram's message for an unsupported ``parse_mode`` or an entity out of range.
    """
    mode = (parse_mode or "").lower()
    if text and mode and mode != "none":
        if mode == "html":
            return parse_html(text, resolve_user)
        if mode == "markdownv2":
            return parse_markdown_v2(text, resolve_user)
        if mode == "markdown":
            return parse_markdown(text, resolve_user)
        raise ValueError("Unsupported parse_mode")
    return FormattedText(text, _explicit_entities(explicit_entities or [], resolve_user))


ENTITY_TYPES = frozenset(
    {
        "mention",
        "hashtag",
        "cashtag",
        "bot_command",
        "url",
        "email",
        "phone_number",
        "bold",
        "italic",
        "underline",
        "strikethrough",
        "spoiler",
        "blockquote",
        "expandable_blockquote",
        "code",
        "pre",
        "text_link",
        "text_mention",
        "custom_emoji",
        "date_time",
    }
)
_MAX_OFFSET = 1_000_000


def _explicit_entities(
    entities: list[JsonObject], resolve_user: UserResolver | None
) -> list[JsonObject]:
    """``entities`` given instead of a ``parse_mode``: offsets checked, unknown types and
    entities missing their argument dropped (as Telegram does)."""
    result: list[JsonObject] = []
    for entity in entities:
        offset, length = entity.get("offset"), entity.get("length")
        if not isinstance(offset, int) or not 0 <= offset <= _MAX_OFFSET:
            raise ValueError(f"Receive an entity with incorrect offset {offset}")
        if not isinstance(length, int) or not 0 <= length <= _MAX_OFFSET:
            raise ValueError(f"Receive an entity with incorrect length {length}")
        kind = entity.get("type")
        if kind not in ENTITY_TYPES or length == 0:
            continue
        clean: JsonObject = {"type": kind, "offset": offset, "length": length}
        if kind == "text_link":
            url = checked_link(str(entity.get("url") or ""))
            if not url:
                continue
            clean["url"] = url
        elif kind == "text_mention":
            user = entity.get("user") or {}
            user_id = user.get("id") if isinstance(user, dict) else None
            known = resolve_user(user_id) if resolve_user and isinstance(user_id, int) else None
            if known is None:
                continue
            clean["user"] = known
        elif kind == "custom_emoji":
            emoji_id = str(entity.get("custom_emoji_id") or "")
            if not emoji_id.isdigit():
                continue
            clean["custom_emoji_id"] = emoji_id
        elif kind == "pre" and entity.get("language"):
            clean["language"] = str(entity["language"])
        elif kind == "date_time":
            unix_time = entity.get("unix_time")
            if not isinstance(unix_time, int) or unix_time <= 0:
                continue
            clean["unix_time"] = unix_time
            if entity.get("date_time_format"):
                clean["date_time_format"] = str(entity["date_time_format"])
        result.append(clean)
    return sort_entities(result)
