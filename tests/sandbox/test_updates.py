"""Updates: long polling with offsets and redelivery, 409 conflicts, webhooks with retries."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiogram import Bot, Dispatcher, Router
from aiogram.exceptions import TelegramConflictError
from aiogram.filters import CommandStart
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiohttp import web

from bot.sandbox.app import RunningSandbox
from bot.sandbox.client import SandboxClient
from bot.sandbox.server import SandboxServer
from bot.sandbox.state import SandboxUser
from tests.sandbox.conftest import BOT_ID


async def test_long_poll_returns_as_soon_as_an_update_arrives(
    bot: Bot, server: SandboxServer, bob: SandboxUser
) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    poll = asyncio.create_task(bot.get_updates(timeout=10))
    await asyncio.sleep(0.05)
    server.send_text(BOT_ID, bob.id, "你好")
    updates = await poll
    assert loop.time() - started < 2
    assert [u.message.text for u in updates if u.message] == ["你好"]


async def test_long_poll_times_out_empty(bot: Bot) -> None:
    assert await bot.get_updates(timeout=1) == []


async def test_unconfirmed_updates_are_redelivered_until_offset_confirms(
    bot: Bot, server: SandboxServer, bob: SandboxUser
) -> None:
    for text in ("一", "二", "三"):
        server.send_text(BOT_ID, bob.id, text)
    first = await bot.get_updates()
    again = await bot.get_updates()
    assert [u.update_id for u in first] == [u.update_id for u in again]
    assert len(first) == 3
    limited = await bot.get_updates(offset=first[0].update_id + 1, limit=1)
    assert [u.message.text for u in limited if u.message] == ["二"]
    rest = await bot.get_updates(offset=first[1].update_id + 1)
    assert [u.message.text for u in rest if u.message] == ["三"]
    assert await bot.get_updates(offset=first[2].update_id + 1) == []
    info = await bot.get_webhook_info()
    assert info.pending_update_count == 0


async def test_negative_offset_keeps_the_last_updates(
    bot: Bot, server: SandboxServer, bob: SandboxUser
) -> None:
    for text in ("一", "二", "三"):
        server.send_text(BOT_ID, bob.id, text)
    updates = await bot.get_updates(offset=-1)
    assert [u.message.text for u in updates if u.message] == ["三"]


async def test_allowed_updates_filter_what_is_queued(
    bot: Bot, server: SandboxServer, alice: SandboxUser
) -> None:
    await bot.get_updates(allowed_updates=["callback_query"])
    await bot.get_updates(offset=-1)
    confirmed = await bot.get_updates()
    await bot.get_updates(offset=confirmed[-1].update_id + 1 if confirmed else 0)
    server.send_text(BOT_ID, alice.id, "不会排队")
    await bot.send_message(
        alice.id,
        "?",
        reply_markup=InlineKeyboardMarkup(
            inline_keyboard=[[InlineKeyboardButton(text="好", callback_data="ok")]]
        ),
    )
    server.press_button(BOT_ID, alice.id, text="好")
    updates = await bot.get_updates()
    assert [u.event_type for u in updates] == ["callback_query"]


async def until(condition: Callable[[], bool]) -> None:
    """Wait (5 s at most) for the server to reach a state it does not announce."""
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise TimeoutError("the condition never held")


async def test_second_poller_terminates_the_first(bot: Bot, server: SandboxServer) -> None:
    queue = server.get_bot(BOT_ID).updates
    first = asyncio.create_task(bot.get_updates(timeout=10))
    await until(lambda: queue.poll_generation == 1)
    second = asyncio.create_task(bot.get_updates(timeout=0))
    with pytest.raises(TelegramConflictError) as conflict:
        await first
    assert conflict.value.message == (
        "Conflict: terminated by other getUpdates request; make sure that only one bot instance "
        "is running"
    )
    assert await second == []


@dataclass
class WebhookReceiver:
    """A bot's webhook endpoint that answers with the given statuses in turn."""

    statuses: list[int] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    secrets: list[str | None] = field(default_factory=list)
    reply: dict[str, Any] | None = None
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append(await request.json())
        self.secrets.append(request.headers.get("X-Telegram-Bot-Api-Secret-Token"))
        self.arrived.set()
        status = self.statuses.pop(0) if self.statuses else 200
        if status == 200 and self.reply is not None:
            return web.json_response(self.reply)
        return web.Response(status=status)

    async def wait_for(self, count: int) -> None:
        async with asyncio.timeout(5):
            while len(self.received) < count:
                self.arrived.clear()
                await self.arrived.wait()


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    hook = WebhookReceiver()
    app = web.Application()
    app.router.add_post("/hook", hook.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    address = runner.addresses[0]
    hook.url = f"http://127.0.0.1:{address[1]}/hook"
    yield hook
    await runner.cleanup()


async def test_webhook_delivery_with_secret_and_retry(
    bot: Bot, server: SandboxServer, bob: SandboxUser, receiver: WebhookReceiver
) -> None:
    receiver.statuses = [500]
    assert await bot.set_webhook(receiver.url, secret_token="s3cret_TOKEN-1")
    server.send_text(BOT_ID, bob.id, "路灯坏了")
    await receiver.wait_for(2)
    first, retried = receiver.received
    assert first == retried  # the same update, delivered again after the 500
    assert first["message"]["text"] == "路灯坏了"
    assert receiver.secrets == ["s3cret_TOKEN-1", "s3cret_TOKEN-1"]
    info = await bot.get_webhook_info()
    assert info.url == receiver.url
    assert info.last_error_message == "Wrong response from the webhook: 500 Internal Server Error"
    assert info.pending_update_count == 0
    assert server.stats.webhook_deliveries == 1

    with pytest.raises(TelegramConflictError) as conflict:
        await bot.get_updates()
    assert "can't use getUpdates method while webhook is active" in conflict.value.message


async def test_webhook_connection_errors_are_retried(
    bot: Bot, server: SandboxServer, bob: SandboxUser, receiver: WebhookReceiver
) -> None:
    assert await bot.set_webhook("http://127.0.0.1:9/nothing-listens-here")
    server.send_text(BOT_ID, bob.id, "稍后送达")
    webhook = server.get_bot(BOT_ID).webhook
    assert webhook is not None
    await until(lambda: webhook.last_error_message is not None)
    info = await bot.get_webhook_info()
    assert info.pending_update_count == 1
    assert info.last_error_message
    assert await bot.set_webhook(receiver.url)
    await receiver.wait_for(1)
    assert receiver.received[0]["message"]["text"] == "稍后送达"


async def test_webhook_reply_may_carry_a_method_call(
    bot: Bot, server: SandboxServer, alice: SandboxUser, receiver: WebhookReceiver
) -> None:
    receiver.reply = {"method": "sendMessage", "chat_id": alice.id, "text": "收到"}
    assert await bot.set_webhook(receiver.url)
    server.send_text(BOT_ID, alice.id, "你好")
    await receiver.wait_for(1)
    async with asyncio.timeout(5):
        message = await server.wait_bot_message(BOT_ID, alice.id, 0, 5)
    assert message is not None and message["text"] == "收到"


async def test_delete_webhook_can_drop_pending_updates(
    bot: Bot, server: SandboxServer, bob: SandboxUser
) -> None:
    assert await bot.set_webhook("http://127.0.0.1:9/unreachable")
    server.send_text(BOT_ID, bob.id, "丢弃")
    assert await bot.delete_webhook(drop_pending_updates=True)
    assert await bot.get_updates() == []
    assert (await bot.get_webhook_info()).url == ""


async def test_webhook_settings_are_checked(bot: Bot) -> None:
    from aiogram.exceptions import TelegramBadRequest

    with pytest.raises(TelegramBadRequest, match="secret token contains unallowed characters"):
        await bot.set_webhook("https://example.com/hook", secret_token="bad token!")
    with pytest.raises(TelegramBadRequest, match="invalid webhook URL specified"):
        await bot.set_webhook("ftp://example.com/hook")


async def test_an_unmodified_aiogram_dispatcher_talks_to_personas(
    bot: Bot, sandbox: RunningSandbox, client: SandboxClient
) -> None:
    router = Router()

    @router.message(CommandStart())
    async def start(message: Message) -> None:
        await message.answer(
            "欢迎！请选择：",
            reply_markup=InlineKeyboardMarkup(
                inline_keyboard=[[InlineKeyboardButton(text="报告问题", callback_data="report")]]
            ),
        )

    @router.callback_query()
    async def pressed(query: CallbackQuery) -> None:
        await query.answer("好的")
        assert isinstance(query.message, Message)
        await query.message.edit_text("请描述问题")

    @router.message()
    async def echo(message: Message) -> None:
        await message.answer(f"已收到：{message.text}")

    dispatcher = Dispatcher()
    dispatcher.include_router(router)
    polling = asyncio.create_task(
        dispatcher.start_polling(
            bot, handle_signals=False, close_bot_session=False, polling_timeout=1
        )
    )
    try:
        alice = await client.persona("Alice", bot=BOT_ID)
        await alice.start()
        welcome = await alice.next_message()
        assert welcome.text == "欢迎！请选择：" and welcome.buttons == ["报告问题"]
        await alice.press("报告问题")
        transcript = await alice.wait_until(
            lambda t: t.toast is not None and t.bot_messages[-1].text == "请描述问题"
        )
        assert transcript.toast is not None and transcript.toast["text"] == "好的"
        await alice.send("路灯不亮")
        assert (await alice.next_message()).text == "已收到：路灯不亮"
    finally:
        await dispatcher.stop_polling()
        with contextlib.suppress(asyncio.CancelledError):
            await polling


def test_update_bodies_are_snapshots(server: SandboxServer) -> None:
    server.register_bot("42:" + "a" * 35)
    user = server.create_user("Carol")
    sent = server.send_text(42, user.id, "原文")
    server.edit_text(42, user.id, sent["message_id"], "改过")
    queued = server.get_bot(42).updates.pending
    assert [u.kind for u in queued] == ["message", "edited_message"]
    assert json.dumps(queued[0].body, ensure_ascii=False).count("原文") == 1
    assert queued[1].body["text"] == "改过" and "edit_date" in queued[1].body
