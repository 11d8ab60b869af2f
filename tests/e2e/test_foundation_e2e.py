"""/start, /help and /language end to end, in polling and webhook modes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiogram import BaseMiddleware
from aiogram.types import TelegramObject

from models import ProcessedUpdate
from tests.e2e.harness import Harness

pytestmark = pytest.mark.e2e


async def test_a_newcomer_is_told_how_to_join(h: Harness) -> None:
    visitor = await h.newcomer("小红")
    await visitor.start()
    reply = await visitor.next_message()
    assert "您还没有加入网格" in reply.text
    await h.settle()
    transcript = await visitor.transcript()
    assert [c["command"] for c in transcript.commands] == ["start", "help", "language"]


async def test_a_chinese_name_is_family_name_first(h: Harness) -> None:
    """Telegram's first name is the given name (名), its last name the family name (姓)."""
    li = await h.newcomer("四", last_name="李")
    await li.start()
    assert "李四，您好" in (await li.next_message()).text
    ada = await h.newcomer("Ada", last_name="Lovelace", language_code="en")
    await ada.start()
    assert "Hello, Ada Lovelace!" in (await ada.next_message()).text


async def test_a_worker_is_greeted_by_role_and_changes_language(h: Harness) -> None:
    worker = await h.persona("worker")
    await worker.start()
    greeting = await worker.next_message()
    assert "网格员" in greeting.text
    await worker.send("/language")
    menu = await worker.next_message()
    assert menu.buttons == ["简体中文", "繁體中文", "English"]
    await worker.press("English")
    await h.settle()
    transcript = await worker.transcript()
    assert transcript.toast is not None and "English" in transcript.toast["text"]
    assert transcript.messages[-1].text == "Language set to English."
    await worker.send("/help")
    help_text = await worker.next_message()
    assert help_text.text.startswith("Here is what I can do for you:")


async def test_restart_keeps_working(h: Harness) -> None:
    resident = await h.persona("resident")
    await h.restart_bot()
    await resident.send("/help")
    assert "/language" in (await resident.next_message()).text


async def test_webhook_mode_answers_too(h_webhook: Harness) -> None:
    resident = await h_webhook.persona("resident")
    await resident.start()
    reply = await resident.next_message()
    assert "您所在的网格" in reply.text


async def test_a_webhook_update_is_answered_only_once_it_is_handled(h_webhook: Harness) -> None:
    """The webhook's 200 comes after the update's transaction, not on arrival: a worker killed
    while handling leaves the update unanswered, so Telegram delivers it again (issue 24)."""
    h = h_webhook
    assert h.app is not None and h.webhook_url is not None
    resident = await h.persona("resident")
    entered, gate = asyncio.Event(), asyncio.Event()

    class Hold(BaseMiddleware):
        async def __call__(
            self,
            handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
            event: TelegramObject,
            data: dict[str, Any],
        ) -> Any:
            entered.set()
            await gate.wait()
            return await handler(event, data)

    h.app.dispatcher.update.outer_middleware.register(Hold())
    who = {"id": resident.id, "is_bot": False, "first_name": resident.first_name}
    update = {
        "update_id": 900_000_001,
        "message": {
            "message_id": 1,
            "date": 1_773_277_200,
            "chat": {"id": resident.id, "type": "private", "first_name": resident.first_name},
            "from": who,
            "text": "/help",
        },
    }
    async with aiohttp.ClientSession() as http:
        post = asyncio.ensure_future(
            http.post(
                h.webhook_url,
                json=update,
                headers={"X-Telegram-Bot-Api-Secret-Token": "e2e-secret-token"},
            )
        )
        try:
            await entered.wait()
            answered, _ = await asyncio.wait({post}, timeout=1.0)
            assert not answered, "the webhook answered before the update was handled"
        finally:
            gate.set()
        async with await post as response:
            assert response.status == 200
    async with h.session() as session:
        handled = await session.get(ProcessedUpdate, (h.app.bot.id, 900_000_001))
    assert handled is not None
    assert "/language" in (await resident.next_message()).text


async def test_a_press_answered_already_or_too_late_does_not_fail_the_update(h: Harness) -> None:
    """Telegram refuses a second (or a late) answer to a button press with 400 "query is too
    old…". A worker that answered the press and died before committing makes Telegram deliver
    the press again: the answer's refusal must not fail it, or it fails on every delivery
    (issue 24, found by tests/e2e/test_multiprocess_e2e.py)."""
    worker = await h.persona("worker")
    await worker.send("/language")
    await worker.next_message()
    await worker.press("English")
    await h.settle()
    assert h.app is not None
    (query_id,) = h.server.callbacks
    assert await h.app.bot.answer_callback_query(query_id) is True  # answered already
