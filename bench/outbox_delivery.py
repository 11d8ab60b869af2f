"""Outbox delivery under Telegram's limits: 3,000 messages to 3,000 chats through the sandbox.

The sandbox enforces Telegram's flood limits (30 messages a second for the bot, one a second
per chat; 429 with ``retry_after`` beyond them). In one run this times

(a) the baseline: aiogram alone, no database — a loop that paces itself evenly, as the
    sender does, and sends ``--baseline`` messages to chats of their own;
(b) :class:`bot.telegram.sender.OutboxSender` (``run()``) delivering ``--messages`` outbox
    rows, one per chat, committed beforehand;

and prints each rate (overall, and sustained: the middle 90 % of deliveries as the sandbox
saw them), the sender's ratio to 30 msg/s (target ≥ 0.95) and to the baseline, and — counted
on the sandbox side — how many messages were lost (a chat got none) or duplicated (a chat
got more than one), with the outbox rows' statuses beside them.

    .venv/bin/python -m bench.outbox_delivery                   # 3,000 messages, SQLite
    .venv/bin/python -m bench.outbox_delivery --messages 600    # quick
    .venv/bin/python -m bench.outbox_delivery --rate-limits sliding  # a strict 1 s window
    .venv/bin/python -m bench.outbox_delivery \\
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/gridbot_bench

A PostgreSQL database is dropped and created afresh through the server's ``postgres``
database; it must not be ``test`` (the test suite resets that one).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.exceptions import TelegramRetryAfter
from pydantic import SecretStr
from sqlalchemy import func, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool
from sqlmodel import select

from bot import migrate
from bot.clock import FrozenClock
from bot.db import create_engine, create_session_factory
from bot.sandbox import RateLimits, SandboxServer, run_sandbox
from bot.services import outbox
from bot.settings import Settings
from bot.telegram.sender import PACE_SPREAD, OutboxSender
from models import OutboxMessage

NOW = datetime(2026, 3, 12, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai: no quiet hours
TOKEN = "300000001:GridBotOutboxBenchmarkToken_abcdefghij"
FIRST_CHAT = 7_000_000_001
TELEGRAM_RATE = 30.0
TARGET = 0.95


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--baseline", type=int, default=600, help="messages in (a)")
    parser.add_argument(
        "--rate-limits",
        choices=["bucket", "sliding"],
        default="bucket",
        help="the sandbox's 30 msg/s as a token bucket (default) or a strict sliding window",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("GRIDBOT_BENCH_DATABASE_URL"),
        help="postgresql+asyncpg://…/gridbot_bench (default: SQLite in a temporary directory)",
    )
    return parser.parse_args()


async def prepare_database(url: str | None, folder: Path) -> str:
    if url is None:
        url = f"sqlite+aiosqlite:///{folder / 'bench.db'}"
    else:
        name = make_url(url).database
        if name in (None, "test", "postgres"):
            raise SystemExit("use a database of its own, e.g. …/gridbot_bench")
        admin = create_engine(
            make_url(url).set(database="postgres").render_as_string(hide_password=False),
            poolclass=NullPool,
            isolation_level="AUTOCOMMIT",
        )
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        await admin.dispose()
    await asyncio.to_thread(migrate.upgrade, url)
    return url


class Deliveries:
    """When the sandbox stored each bot message (its own monotonic clock), chat by chat."""

    def __init__(self, server: SandboxServer) -> None:
        self.times: list[float] = []
        self.per_chat: Counter[int] = Counter()
        self.all_in = asyncio.Event()
        self._expected = 0
        post = server.post_bot_message

        def recording(bot, conv, content, **kwargs):  # type: ignore[no-untyped-def]
            message = post(bot, conv, content, **kwargs)
            self.times.append(server.monotonic())
            self.per_chat[conv.chat_id] += 1
            if self._expected and len(self.times) >= self._expected:
                self.all_in.set()
            return message

        server.post_bot_message = recording  # type: ignore[method-assign]

    def reset(self) -> None:
        self.times.clear()
        self.per_chat.clear()

    def expect(self, count: int) -> None:
        self._expected = count
        self.all_in.clear()

    def sustained(self) -> float:
        """Messages a second over the middle 90 % of deliveries."""
        times = sorted(self.times)
        low, high = len(times) // 20, len(times) - 1 - len(times) // 20
        if high <= low or times[high] == times[low]:
            return float("nan")
        return (high - low) / (times[high] - times[low])


def chats(server: SandboxServer, first: int, count: int) -> list[int]:
    """``count`` people who have pressed Start, so the bot may write to them."""
    ids = list(range(first, first + count))
    bot = server.get_bot(TOKEN.split(":")[0])
    for chat_id in ids:
        server.create_user(f"居民{chat_id % 100_000}", user_id=chat_id)
        bot.relation(chat_id).started = True
    return ids


async def baseline(bot: Bot, targets: list[int], rate: float) -> float:
    """aiogram alone, paced evenly as the sender paces (``rate`` in ``PACE_SPREAD``, one send
    started every interval): the best a sender could do here."""
    interval = PACE_SPREAD / rate
    loop = asyncio.get_running_loop()
    started = loop.time()

    async def send(chat_id: int) -> None:
        with contextlib.suppress(TelegramRetryAfter):  # counted by the sandbox, not sent again
            await bot.send_message(chat_id, "基准消息")

    tasks = []
    for n, chat_id in enumerate(targets):
        delay = started + n * interval - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send(chat_id)))
    await asyncio.gather(*tasks)
    return loop.time() - started


async def main() -> int:
    args = parse_args()
    limits = RateLimits.named(args.rate_limits)
    server = SandboxServer(clock=lambda: NOW, rate_limits=limits)
    server.register_bot(TOKEN, username="gridbot_bench_bot", first_name="网格通")
    deliveries = Deliveries(server)
    with tempfile.TemporaryDirectory() as folder:
        url = await prepare_database(args.database_url, Path(folder))
        engine = create_engine(url)
        sessions = create_session_factory(engine)
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            bot_token=SecretStr(TOKEN),
            database_url=url,
        )
        async with run_sandbox(server) as sandbox:
            bot = Bot(TOKEN, session=AiohttpSession(api=sandbox.telegram_api_server()))
            try:
                print(
                    f"outbox delivery: {args.messages:,} messages to {args.messages:,} chats, "
                    f"sandbox rate limits on ({TELEGRAM_RATE:g}/s as a "
                    f"{'sliding window' if args.rate_limits == 'sliding' else 'token bucket'}, "
                    f"1/s per chat); "
                    f"{url.split(':')[0]}",
                    flush=True,
                )
                # (a) the baseline
                targets = chats(server, FIRST_CHAT + 10_000_000, args.baseline)
                base_elapsed = await baseline(bot, targets, settings.limits.messages_per_second)
                base_rate = deliveries.sustained()
                base_refused = server.stats.statuses[429]
                print(
                    f"  (a) aiogram alone:  {args.baseline:>6,} in {base_elapsed:7.1f} s, "
                    f"{args.baseline / base_elapsed:5.1f} msg/s overall, "
                    f"{base_rate:5.1f} msg/s sustained, {base_refused} × 429",
                    flush=True,
                )
                # (b) the sender
                server.set_rate_limits(limits)  # buckets full again, windows empty
                server.stats.reset()
                deliveries.reset()
                recipients = chats(server, FIRST_CHAT, args.messages)
                async with sessions() as session:
                    for n, chat_id in enumerate(recipients):
                        outbox.send_text(session, chat_id=chat_id, text=f"通知 {n}", now=NOW)
                    await session.commit()
                sender = OutboxSender(bot, sessions, FrozenClock(NOW), settings)
                loop = asyncio.get_running_loop()
                started = loop.time()
                runner = asyncio.create_task(sender.run())
                deliveries.expect(args.messages)
                while await sender.due_count():  # until all arrived, or all rows ended
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(deliveries.all_in.wait(), 0.5)
                        break
                elapsed = max(deliveries.times, default=started) - started
                runner.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await runner
                async with sessions() as session:
                    statuses = Counter(
                        dict(
                            (
                                await session.exec(
                                    select(OutboxMessage.status, func.count()).group_by(
                                        OutboxMessage.status
                                    )
                                )
                            ).all()
                        )
                    )
            finally:
                await bot.session.close()
                await engine.dispose()

    sustained = deliveries.sustained()
    lost = sum(1 for chat_id in recipients if deliveries.per_chat[chat_id] == 0)
    duplicated = sum(n - 1 for n in deliveries.per_chat.values() if n > 1)
    print(
        f"  (b) OutboxSender:   {args.messages:>6,} in {elapsed:7.1f} s, "
        f"{args.messages / elapsed:5.1f} msg/s overall, {sustained:5.1f} msg/s sustained, "
        f"{server.stats.statuses[429]} × 429",
        flush=True,
    )
    print(f"  outbox rows: {dict(sorted((str(k), v) for k, v in statuses.items()))}")
    print(f"  lost: {lost}, duplicated: {duplicated}  (counted on the sandbox side)")
    print(f"  ratio to {TELEGRAM_RATE:g} msg/s (sustained): {sustained / TELEGRAM_RATE:.3f}")
    print(f"  ratio to the baseline (a) (sustained):   {sustained / base_rate:.3f}")
    met = sustained >= TARGET * TELEGRAM_RATE and lost == 0 and duplicated == 0
    print(
        f"  target ≥ {TARGET} × {TELEGRAM_RATE:g} msg/s sustained, 0 lost, 0 duplicated: "
        f"{'met' if met else 'NOT met'}"
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
