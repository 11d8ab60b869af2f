"""The send pace shared in Redis by every process of a bot (bot/telegram/pacing.py).

Two outbox senders — two processes' worth, each configured for the full 30 messages a second —
deliver to the sandbox Bot API server with Telegram's limits on. Sharing the pace, they draw no
429 and the requests they send, timed as they leave, hold to the strict reading of the limit:
at most 30 in any one second. Each pacing itself alone, they send twice that and draw 429s.

The sandbox counts with its default token bucket: it runs in this test's process, and on a
loaded machine it reads a second's requests late and at once, which its strict sliding window
would count against the senders (it did, once in five runs at a load of 10 on two cores).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.methods import TelegramMethod
from aiogram.methods.base import TelegramType
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.clock import FrozenClock
from bot.db import SessionFactory, create_session_factory
from bot.sandbox.app import RunningSandbox, run_sandbox
from bot.sandbox.ratelimit import RateLimits
from bot.sandbox.server import SandboxServer
from bot.services import outbox
from bot.settings import LimitSettings, Settings
from bot.telegram.pacing import KEY_PREFIX, SharedPacer, shared_pacer
from bot.telegram.sender import EVEN_PACE, OutboxSender, Pacer
from models import OutboxLane

RATE = 30.0  # Telegram's messages a second per bot, and what each sender is configured for
CHATS = 120  # one bulk message each: each sender leases half (two seconds' worth)
USERNAME = "pacing_test_bot"


class TimedSession(AiohttpSession):
    """aiogram's HTTP session, noting when each request went out (loop time)."""

    def __init__(self, answered: list[float], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.answered = answered

    async def make_request(
        self, bot: Bot, method: TelegramMethod[TelegramType], timeout: int | None = None
    ) -> TelegramType:
        self.answered.append(asyncio.get_running_loop().time())
        return await super().make_request(bot, method, timeout)


@pytest.fixture
def sessions(engine: AsyncEngine) -> SessionFactory:
    return create_session_factory(engine)


@pytest.fixture
async def sandbox() -> AsyncIterator[tuple[RunningSandbox, str]]:
    bot_id = 500_000_000 + secrets.randbelow(100_000_000)
    token = f"{bot_id}:SharedPaceTest_{secrets.token_hex(12)}"
    server = SandboxServer(rate_limits=RateLimits())
    server.register_bot(token, username=USERNAME, first_name="网格通")
    for n in range(CHATS):
        server.create_user(f"居民{n}", user_id=8_100_000 + n, language_code="zh-hans")
        server.get_bot(USERNAME).relation(8_100_000 + n).started = True
    async with run_sandbox(server) as running:
        yield running, token


def settings_for(database_url: str, token: str) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        bot_token=token,
        database_url=database_url,
        limits=LimitSettings(messages_per_second=RATE, per_chat_interval=0.0),
    )


async def deliver_with_two_senders(
    running: RunningSandbox,
    token: str,
    sessions: SessionFactory,
    clock: FrozenClock,
    settings: Settings,
    pacers: list[Any],
) -> list[float]:
    """Queue a message to each chat, deliver them with two senders at once (``pacers``: each
    one's pace, or None for its own), and return when each request went out."""
    async with sessions() as session:
        for n in range(CHATS):
            outbox.send_text(
                session,
                chat_id=8_100_000 + n,
                text=f"通知 {n}",
                now=clock.now(),
                lane=OutboxLane.BULK,
            )
        await session.commit()
    answered: list[float] = []
    bots = [
        Bot(token, session=TimedSession(answered, api=running.telegram_api_server()))
        for _ in pacers
    ]
    senders = [
        OutboxSender(bot, sessions, clock, settings, pacer=pacer)
        for bot, pacer in zip(bots, pacers, strict=True)
    ]
    tasks = [asyncio.create_task(sender.run(poll_seconds=0.1)) for sender in senders]
    try:
        async with asyncio.timeout(60):
            while True:
                if len(answered) >= CHATS and not await senders[0].due_count():
                    break
                await asyncio.sleep(0.05)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for bot in bots:
            await bot.session.close()
    return answered


def busiest_second(times: list[float]) -> int:
    """The most requests that went out within any one second."""
    times = sorted(times)
    return max(sum(1 for t in times[i:] if t < start + 1.0) for i, start in enumerate(times))


async def test_two_senders_sharing_the_pace_draw_no_429_and_stay_within_30_a_second(
    sandbox: tuple[RunningSandbox, str],
    sessions: SessionFactory,
    clock: FrozenClock,
    database_url: str,
    redis_url: str,
) -> None:
    running, token = sandbox
    settings = settings_for(database_url, token)
    bot_id = int(token.split(":")[0])
    rate = RATE * EVEN_PACE
    pacers = [shared_pacer(redis_url, bot_id, rate, alone=Pacer(rate)) for _ in range(2)]
    try:
        answered = await deliver_with_two_senders(
            running, token, sessions, clock, settings, pacers
        )
    finally:
        await pacers[0].redis.delete(f"{KEY_PREFIX}{bot_id}")
        for pacer in pacers:
            await pacer.close()

    stats = running.server.stats
    assert stats.statuses[429] == 0
    assert stats.requests["sendMessage"] == CHATS
    assert busiest_second(answered) <= RATE
    # and the pace was shared, not halved: 120 messages at ~29 a second take about 4 s, at
    # half the pace 8 s (a loaded machine wakes the senders late: some slots go unused)
    assert max(answered) - min(answered) < 1.6 * CHATS / rate


async def test_two_senders_each_pacing_alone_send_twice_the_limit_and_draw_429s(
    sandbox: tuple[RunningSandbox, str],
    sessions: SessionFactory,
    clock: FrozenClock,
    database_url: str,
) -> None:
    running, token = sandbox
    settings = settings_for(database_url, token)

    await deliver_with_two_senders(running, token, sessions, clock, settings, [None, None])

    assert running.server.stats.statuses[429] > 0
    assert running.server.stats.requests["sendMessage"] > CHATS  # the refused ones again


async def test_a_429_one_process_saw_holds_back_the_other(redis_url: str) -> None:
    bot_id = 600_000_000 + secrets.randbelow(100_000_000)
    one, other = (shared_pacer(redis_url, bot_id, 30.0, alone=Pacer(30.0)) for _ in range(2))
    loop = asyncio.get_running_loop()
    try:
        await one.pause(0.5)
        began = loop.time()
        await other.acquire(lane=0)
        assert loop.time() - began >= 0.45
    finally:
        await one.redis.delete(f"{KEY_PREFIX}{bot_id}")
        await one.close()
        await other.close()


async def test_with_redis_out_of_reach_a_process_paces_itself_alone() -> None:
    calls: list[str] = []

    class Alone(Pacer):
        async def acquire(self, lane: int) -> None:
            calls.append(f"acquire {lane}")
            await super().acquire(lane)

        async def pause(self, seconds: float) -> None:
            calls.append(f"pause {seconds}")

    unreachable = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    pacer = SharedPacer(unreachable, 1, 30.0, alone=Alone(30.0))
    try:
        await pacer.acquire(lane=2)
        await pacer.acquire(lane=0)
        await pacer.pause(1.0)
    finally:
        await pacer.close()
    assert calls == ["acquire 2", "acquire 0", "pause 1.0"]


async def test_within_a_process_the_best_lane_asks_for_the_next_slot_first(
    redis_url: str,
) -> None:
    bot_id = 700_000_000 + secrets.randbelow(100_000_000)
    pacer = shared_pacer(redis_url, bot_id, 20.0, alone=Pacer(20.0))
    order: list[int] = []

    async def send(lane: int) -> None:
        await pacer.acquire(lane)
        order.append(lane)

    try:
        first = asyncio.create_task(send(2))
        await asyncio.sleep(0)  # it holds the turn
        rest = [asyncio.create_task(send(lane)) for lane in (2, 2, 0)]
        await asyncio.gather(first, *rest)
    finally:
        await pacer.redis.delete(f"{KEY_PREFIX}{bot_id}")
        await pacer.close()
    assert order == [2, 0, 2, 2]
