"""The sender's own request path (:func:`bot.telegram.sender.post_stored`): an outbox row's
stored parameters as the JSON body, the answer read as JSON — and every answer that is not a
plain success raised exactly as aiogram raises it. Against a scripted HTTP server that answers
like Telegram, or not at all."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.telegram.sender import StoredCall, _message_id, post_stored

TOKEN = "42:TEST_token_for_the_stored_call_path"
KEYBOARD = {"inline_keyboard": [[{"text": "取消", "callback_data": "rp:cancel"}]]}


@dataclass
class Scripted:
    """The next answers, in order (status, body); what each request carried."""

    answers: list[tuple[int, str]] = field(default_factory=list)
    seen: list[tuple[str, str, Any]] = field(default_factory=list)  # method, type, body
    hang_up: bool = False

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body: Any = await request.read()
        if request.content_type == "application/json":
            body = json.loads(body)  # else aiogram's own way: a form, kept as it came
        self.seen.append((request.match_info["method"], request.content_type, body))
        if self.hang_up:
            assert request.transport is not None
            request.transport.close()
            return web.Response()
        status, text = self.answers.pop(0)
        return web.Response(status=status, text=text, content_type="application/json")


@pytest.fixture
async def api() -> AsyncIterator[tuple[Scripted, Bot, AiohttpSession]]:
    scripted = Scripted()
    app = web.Application()
    app.router.add_post("/bot{token}/{method}", scripted.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    session = AiohttpSession(api=TelegramAPIServer.from_base(f"http://127.0.0.1:{port}"))
    bot = Bot(TOKEN, session=session)
    try:
        yield scripted, bot, session
    finally:
        await session.close()
        await runner.cleanup()


def ok(result: Any) -> tuple[int, str]:
    return 200, json.dumps({"ok": True, "result": result})


def refused(status: int, description: str, **parameters: Any) -> tuple[int, str]:
    answer: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        answer["parameters"] = parameters
    return status, json.dumps(answer)


MESSAGE = {"message_id": 77, "date": 0, "chat": {"id": 5, "type": "private"}, "text": "好"}


async def test_the_stored_parameters_go_as_they_are_and_the_answer_comes_back_as_json(
    api: tuple[Scripted, Bot, AiohttpSession],
) -> None:
    scripted, bot, session = api
    scripted.answers.append(ok(MESSAGE))
    payload = {"chat_id": 5, "text": "第 3 步：<b>照片</b>", "parse_mode": "HTML"}
    payload["reply_markup"] = KEYBOARD
    result = await post_stored(bot, session, StoredCall("sendMessage", payload))
    assert result == MESSAGE
    assert _message_id(result) == 77
    assert scripted.seen == [("sendMessage", "application/json", payload)]


@pytest.mark.parametrize(
    ("answer", "raised"),
    [
        (refused(429, "Too Many Requests: retry after 7", retry_after=7), TelegramRetryAfter),
        (refused(403, "Forbidden: bot was blocked by the user"), TelegramForbiddenError),
        (refused(400, "Bad Request: chat not found"), TelegramBadRequest),
        (refused(500, "Internal Server Error"), TelegramServerError),
        ((502, "<html><body>Bad Gateway</body></html>"), ClientDecodeError),
        ((200, "not json at all"), ClientDecodeError),
        ((200, "[1, 2, 3]"), ClientDecodeError),
        ((200, json.dumps({"ok": False, "description": "?"})), TelegramAPIError),
    ],
)
async def test_every_answer_but_a_plain_success_is_raised_as_aiogram_raises_it(
    api: tuple[Scripted, Bot, AiohttpSession], answer: tuple[int, str], raised: type[Exception]
) -> None:
    scripted, bot, session = api
    call = StoredCall("sendMessage", {"chat_id": 5, "text": "x"})
    scripted.answers += [answer, answer]
    with pytest.raises(raised) as ours:
        await post_stored(bot, session, call)
    with pytest.raises(raised) as aiograms:
        await bot(call.build())
    assert type(ours.value) is type(aiograms.value)
    assert str(ours.value) == str(aiograms.value)


async def test_a_connection_cut_is_a_network_error(
    api: tuple[Scripted, Bot, AiohttpSession],
) -> None:
    scripted, bot, session = api
    scripted.hang_up = True
    with pytest.raises(TelegramNetworkError):
        await post_stored(bot, session, StoredCall("sendMessage", {"chat_id": 5, "text": "x"}))


async def test_an_unknown_method_is_refused_before_any_request() -> None:
    with pytest.raises(ValueError, match="unknown Bot API method"):
        StoredCall("sendNothing", {"chat_id": 5})
    with pytest.raises(ValueError, match="unknown Bot API method"):
        StoredCall("", {})


async def test_an_upload_is_left_to_aiogram() -> None:
    upload = {"field": "document", "path": "/tmp/x.xlsx", "filename": "x.xlsx"}
    assert StoredCall("sendDocument", {"chat_id": 5, "_upload": upload}).uploads
    assert not StoredCall("sendMessage", {"chat_id": 5, "text": "x"}).uploads


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(), st.lists, max_leaves=8))
def test_a_message_id_is_read_only_from_an_answer_that_has_one(result: Any) -> None:
    """Any JSON a server might answer with: an id only from a dict with an integer id."""
    assert _message_id(result) is None
    assert _message_id({"message_id": result}) == (
        result if isinstance(result, int) and not isinstance(result, bool) else None
    )
