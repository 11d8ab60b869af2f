"""Whatever a client sends, the sandbox answers 200 or a Telegram-shaped 400 — never a 500."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.sandbox.app import RunningSandbox
from bot.sandbox.server import SandboxServer
from tests.sandbox.conftest import BOT_ID, TOKEN

NO_SURROGATES = st.characters(blacklist_categories=("Cs",))
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(NO_SURROGATES, max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                ["inline_keyboard", "keyboard", "text", "callback_data", "url", "type"]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)
FUZZ = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def started_user(server: SandboxServer) -> int:
    server.register_bot(TOKEN)
    if not server.users:
        user = server.create_user("Fuzz")
        server.start(BOT_ID, user.id)
    return next(iter(server.users))


async def post(sandbox: RunningSandbox, method: str, **kwargs: Any) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{sandbox.url}/bot{TOKEN}/{method}", **kwargs) as response,
    ):
        text = await response.text()
        return response.status, text


def assert_envelope(status: int, text: str) -> None:
    assert status in (200, 400), (status, text)
    body = json.loads(text)
    if status == 200:
        assert body["ok"] is True and "result" in body
    else:
        assert body["ok"] is False and body["error_code"] == 400
        assert body["description"].startswith("Bad Request: ")


@FUZZ
@given(
    text=st.text(NO_SURROGATES, max_size=120),
    parse_mode=st.sampled_from([None, "HTML", "MarkdownV2", "Markdown", "html", "bbcode"]),
    markup=st.none() | st.text(NO_SURROGATES, max_size=30) | JSON_VALUES.map(json.dumps),
    entities=st.none() | JSON_VALUES.map(json.dumps),
)
async def test_send_message_with_any_text_and_markup(
    sandbox: RunningSandbox,
    server: SandboxServer,
    text: str,
    parse_mode: str | None,
    markup: str | None,
    entities: str | None,
) -> None:
    form: dict[str, str] = {"chat_id": str(started_user(server)), "text": text}
    if parse_mode is not None:
        form["parse_mode"] = parse_mode
    if markup is not None:
        form["reply_markup"] = markup
    if entities is not None:
        form["entities"] = entities
    assert_envelope(*await post(sandbox, "sendMessage", data=form))


@FUZZ
@given(
    body=st.binary(max_size=200),
    content_type=st.sampled_from(
        [
            "application/json",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=xyz",
            "text/plain",
        ]
    ),
    method=st.sampled_from(["sendMessage", "editMessageText", "setMyCommands", "getUpdates"]),
)
async def test_any_request_body(
    sandbox: RunningSandbox, server: SandboxServer, body: bytes, content_type: str, method: str
) -> None:
    started_user(server)
    status, text = await post(sandbox, method, data=body, headers={"Content-Type": content_type})
    assert_envelope(status, text)


@FUZZ
@given(
    params=st.dictionaries(
        st.text(NO_SURROGATES, min_size=1, max_size=12), JSON_VALUES, max_size=5
    )
)
async def test_any_json_parameters(
    sandbox: RunningSandbox, server: SandboxServer, params: dict[str, Any]
) -> None:
    params.setdefault("chat_id", started_user(server))
    for method in ("sendMessage", "sendMediaGroup", "answerCallbackQuery", "sendPhoto"):
        assert_envelope(*await post(sandbox, method, json=params))
