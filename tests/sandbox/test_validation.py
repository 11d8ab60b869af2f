"""Parameters are checked against the derived Bot API specification, with Telegram's wording."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.sandbox.errors import ApiError
from bot.sandbox.markup import ReplyMarkup
from bot.sandbox.spec import UploadedFile, load_spec, validate_params

ROOT = Path(__file__).resolve().parents[2]
SHARED_SPEC = ROOT.parent / "shared" / "telegram-bot-api" / "api.min.json"
SPEC = load_spec()


def check(method: str, raw: dict[str, Any]) -> dict[str, Any]:
    spec = SPEC.method(method)
    assert spec is not None
    params, _ = validate_params(SPEC, spec, raw)
    return params


def refused(method: str, raw: dict[str, Any]) -> str:
    with pytest.raises(ApiError) as error:
        check(method, raw)
    assert error.value.error_code == 400
    return error.value.description


def keyboard(rows: Any) -> str:
    return json.dumps({"inline_keyboard": rows}, ensure_ascii=False)


def test_spec_facts_and_origin() -> None:
    assert SPEC.version.startswith("Bot API")
    assert "PaulSonOfLars/telegram-bot-api-spec" in SPEC.origin
    send = SPEC.method("SENDMESSAGE")
    assert send is not None
    assert send.fields["chat_id"].types == ("Integer", "String")
    assert send.fields["text"].required
    assert SPEC.types["BotCommandScopeChat"].discriminator == ("type", "chat")


@pytest.mark.skipif(not SHARED_SPEC.exists(), reason="the shared specification is not here")
def test_committed_spec_is_derived_from_the_shared_one() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("derive", ROOT / "scripts/derive_botapi_spec.py")
    assert spec is not None and spec.loader is not None
    derive = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(derive)
    api = json.loads(SHARED_SPEC.read_text(encoding="utf-8"))
    committed = (ROOT / "bot/sandbox/botapi_spec.json").read_text(encoding="utf-8")
    assert derive.render(derive.derive(api)) == committed
    derived = json.loads(committed)
    for section in ("methods", "types"):
        for entry in derived[section].values():
            assert "description" not in entry
            for field in entry.get("fields", []):
                assert set(field) == {"name", "types", "required"}


def test_values_are_converted() -> None:
    params = check(
        "sendMessage",
        {"chat_id": "42", "text": "hi", "disable_notification": "true", "message_thread_id": 7},
    )
    assert params == {
        "chat_id": 42,
        "text": "hi",
        "disable_notification": True,
        "message_thread_id": 7,
    }
    assert check("sendMessage", {"chat_id": "@channel", "text": "x"})["chat_id"] == "@channel"
    markup = check("sendMessage", {"chat_id": 1, "text": "x", "reply_markup": keyboard([])})
    assert markup.get("reply_markup") is None


def test_unknown_parameter() -> None:
    assert (
        refused("sendMessage", {"chat_id": 1, "text": "x", "colour": "red"})
        == 'Bad Request: unknown parameter "colour"'
    )


def test_legacy_parameters_still_accepted() -> None:
    params = check("sendMessage", {"chat_id": 1, "text": "x", "reply_to_message_id": "3"})
    assert params["reply_to_message_id"] == 3


def test_file_parts_are_attachments_not_parameters() -> None:
    upload = UploadedFile("a.png", "image/png", b"data")
    spec = SPEC.method("sendPhoto")
    assert spec is not None
    params, files = validate_params(
        SPEC, spec, {"chat_id": 1, "photo": "attach://x1", "x1": upload}
    )
    assert params["photo"] == "attach://x1"
    assert files == {"x1": upload}


@pytest.mark.parametrize(
    ("method", "raw", "description"),
    [
        ("sendMessage", {"text": "x"}, "Bad Request: chat_id is empty"),
        ("sendMessage", {"chat_id": 1}, "Bad Request: message text is empty"),
        ("sendMessage", {"chat_id": 1, "text": ""}, "Bad Request: message text is empty"),
        ("sendPhoto", {"chat_id": 1}, 'Bad Request: parameter "photo" is required'),
        ("getFile", {}, 'Bad Request: parameter "file_id" is required'),
        ("sendLocation", {"chat_id": 1, "latitude": "1"}, "Bad Request: longitude is empty"),
    ],
)
def test_missing_required(method: str, raw: dict[str, Any], description: str) -> None:
    assert refused(method, raw) == description


@pytest.mark.parametrize(
    ("raw", "description"),
    [
        (
            {"message_thread_id": "abc"},
            'Bad Request: parameter "message_thread_id" must be of type Integer',
        ),
        (
            {"disable_notification": "maybe"},
            'Bad Request: parameter "disable_notification" must be of type Boolean',
        ),
        (
            {"reply_markup": "{not json"},
            "Bad Request: can't parse reply keyboard markup JSON object",
        ),
        ({"reply_markup": "[]"}, "Bad Request: object expected as reply markup"),
        ({"entities": "{}"}, "Bad Request: expected an Array of MessageEntity"),
        (
            {"entities": '[{"type": "bold", "offset": 0, "length": "long"}]'},
            'Bad Request: can\'t parse MessageEntity: Field "length" must be a valid Number',
        ),
        (
            {"entities": '[{"type": "bold", "offset": 0}]'},
            "Bad Request: can't parse MessageEntity: Can't find field \"length\"",
        ),
        (
            {"reply_parameters": '{"message_id": true}'},
            'Bad Request: can\'t parse ReplyParameters: Field "message_id" must be a Number',
        ),
    ],
)
def test_wrong_types(raw: dict[str, Any], description: str) -> None:
    assert refused("sendMessage", {"chat_id": 1, "text": "x", **raw}) == description


@pytest.mark.parametrize(
    ("rows", "description"),
    [
        (
            [{"text": "a", "callback_data": "a"}],
            'Bad Request: field "inline_keyboard" of the InlineKeyboardMarkup must be an Array '
            "of Arrays",
        ),
        (
            [["a"]],
            "Bad Request: can't parse inline keyboard button: InlineKeyboardButton must be an "
            "Object",
        ),
        (
            [[{"callback_data": "a"}]],
            "Bad Request: can't parse inline keyboard button: Can't find field \"text\"",
        ),
        (
            [[{"text": 5.5, "callback_data": "a"}, {"text": ["x"], "callback_data": "b"}]],
            "Bad Request: can't parse inline keyboard button: "
            'Field "text" must be of type String',
        ),
        (
            [[{"text": "a"}]],
            "Bad Request: can't parse inline keyboard button: Text buttons are unallowed in the "
            "inline keyboard",
        ),
        (
            [[{"text": "", "callback_data": "a"}]],
            "Bad Request: inline keyboard button text must be non-empty",
        ),
        ([[{"text": "a", "callback_data": "x" * 65}]], "Bad Request: BUTTON_DATA_INVALID"),
        ([[{"text": "a", "callback_data": "网" * 22}]], "Bad Request: BUTTON_DATA_INVALID"),
        (
            [[{"text": str(i), "callback_data": str(i)} for i in range(9)]],
            "Bad Request: reply markup is too long",
        ),
        (
            [[{"text": str(i), "callback_data": str(i)}] for i in range(101)],
            "Bad Request: reply markup is too long",
        ),
        ([[{"text": "a", "url": "not a url"}]], "Bad Request: BUTTON_URL_INVALID"),
    ],
)
def test_inline_keyboard_structure_and_limits(rows: Any, description: str) -> None:
    raw = {"chat_id": 1, "text": "x", "reply_markup": keyboard(rows)}
    assert refused("sendMessage", raw) == description


def test_keyboard_limits_accept_the_maximum() -> None:
    rows = [
        [{"text": f"{r}-{c}", "callback_data": "网" * 21} for c in range(8)] for r in range(12)
    ]
    rows = [row for row in rows][:12]
    flat = [button for row in rows for button in row][:100]
    maximum = [flat[i : i + 8] for i in range(0, 100, 8)]
    params = check("sendMessage", {"chat_id": 1, "text": "x", "reply_markup": keyboard(maximum)})
    markup = params["reply_markup"]
    assert isinstance(markup, ReplyMarkup) and markup.is_inline


def test_reply_keyboard_markup() -> None:
    markup = check(
        "sendMessage",
        {
            "chat_id": 1,
            "text": "x",
            "reply_markup": json.dumps(
                {
                    "keyboard": [["文字"], [{"text": "分享手机号", "request_contact": True}]],
                    "one_time_keyboard": True,
                }
            ),
        },
    )["reply_markup"]
    assert markup.kind == "keyboard"
    assert markup.data["keyboard"][1][0] == {"text": "分享手机号", "request_contact": True}
    description = refused(
        "sendMessage",
        {"chat_id": 1, "text": "x", "reply_markup": json.dumps({"keyboard": [[7]]})},
    )
    assert description == (
        "Bad Request: can't parse keyboard button: KeyboardButton must be a String or an Object"
    )


def test_nested_union_types() -> None:
    assert check("setMyCommands", {"commands": "[]", "scope": '{"type": "chat", "chat_id": 5}'})[
        "scope"
    ] == {"type": "chat", "chat_id": 5}
    assert refused("setMyCommands", {"commands": "[]", "scope": '{"type": "nope"}'}) == (
        'Bad Request: can\'t parse BotCommandScope: Unsupported type "nope" specified'
    )
    assert refused("setMyCommands", {"commands": '[{"command": "a"}]'}) == (
        "Bad Request: can't parse BotCommand: Can't find field \"description\""
    )


_values = st.one_of(
    st.text(max_size=40),
    st.integers(),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=True),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
)


@given(
    st.sampled_from(["sendMessage", "sendPhoto", "setMyCommands", "sendMediaGroup", "getUpdates"]),
    st.dictionaries(
        st.sampled_from(
            [
                "chat_id",
                "text",
                "reply_markup",
                "entities",
                "commands",
                "scope",
                "media",
                "photo",
                "offset",
                "allowed_updates",
                "parse_mode",
                "x",
            ]
        ),
        _values,
        max_size=6,
    ),
)
def test_validation_only_ever_answers_400(method: str, raw: dict[str, Any]) -> None:
    try:
        check(method, raw)
    except ApiError as error:
        assert error.error_code == 400
        assert error.description.startswith("Bad Request: ")
