"""Duplicates under faults: where every message that arrived twice came from.

:class:`bot.telegram.sender.OutboxSender` delivers ``--chats`` × 5 outbox rows (four
``sendMessage`` and an ``editMessageText`` of the first, each text of its own) through the
sandbox while it answers 20 % of sends with a 5xx, drops 10 % of the requests unanswered before
doing anything, loses 10 % of the answers after doing the work, and — once a third of the rows
are through — refuses every send with 429 for a while (a storm). The sandbox's fault log says
of every request whether it acted and whether its answer came back; from it this prints each
duplicate (a request that took effect again) by what the sender had seen before it sent it
again. A duplicate after a lost answer cannot be avoided — Telegram has no idempotency key —
but every other one can: the sender had been told the message arrived, or had not waited for
its answer.

    .venv/bin/python -m bench.duplicates                 # 148 chats: 740 rows, SQLite
    .venv/bin/python -m bench.duplicates --seed 7 --chats 40
    .venv/bin/python -m bench.duplicates \\
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
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from pydantic import SecretStr
from sqlmodel import select

from bench.outbox_delivery import prepare_database
from bot.clock import FrozenClock
from bot.db import SessionFactory, create_engine, create_session_factory
from bot.sandbox import Faults, RateLimits, SandboxServer, run_sandbox
from bot.sandbox.faults import Duplicate, duplicates
from bot.services import outbox
from bot.settings import LimitSettings, Settings
from bot.telegram.sender import LEASE, OutboxSender
from models import OutboxMessage, OutboxStatus

NOW = datetime(2026, 3, 12, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai: no quiet hours
TOKEN = "300000002:GridBotDuplicatesBenchToken_abcdefghij"
FIRST_CHAT = 7_600_000_001
PER_CHAT = 5  # four messages and an edit of the first
SENDS = frozenset({"sendMessage", "editMessageText"})
MIX = Faults(error_rate=0.20, drop_rate=0.10, lost_response_rate=0.10, methods=SENDS)
STORM_SECONDS = 1.0
# fast, so a run takes seconds; attempts enough that no row gives up (0.4 ** 16 per row)
FAST = LimitSettings(
    messages_per_second=10_000, per_chat_interval=0.0, retry_base_seconds=0.01, max_attempts=16
)
TELEGRAM = LimitSettings(max_attempts=16)  # Telegram's pace, a second's backoff to start


@dataclass
class Figures:
    """What a run found: rows, requests and faults as the sandbox logged them, duplicates."""

    rows: int
    statuses: Counter[str]
    requests: int
    outcomes: Counter[str]
    storm_refusals: int
    dups: list[Duplicate] = field(default_factory=list)
    missing: int = 0  # sendMessage rows whose message no chat shows

    @property
    def lost_answers(self) -> int:
        return self.outcomes["lost_response"]

    @property
    def only_after_lost_answers(self) -> bool:
        """Every duplicate followed a lost answer, and there are no more than lost answers."""
        causes = {d.cause for d in self.dups}
        return causes <= {"lost_response"} and len(self.dups) <= self.lost_answers

    @property
    def avoidable(self) -> list[Duplicate]:
        return [d for d in self.dups if d.avoidable]

    @property
    def unavoidable(self) -> list[Duplicate]:
        return [d for d in self.dups if not d.avoidable]

    def lines(self) -> list[str]:
        messages = [d for d in self.dups if d.again.method.lower() == "sendmessage"]
        doubled = len({d.again.key for d in messages})
        by_cause = Counter(d.cause for d in self.dups)
        details = Counter((d.cause, d.after) for d in self.dups)
        return [
            f"  rows: {self.rows} ({dict(sorted(self.statuses.items()))}); "
            f"{self.requests} requests: {dict(sorted(self.outcomes.items()))}",
            f"  duplicates: {len(self.dups)} ({doubled} of {self.rows * 4 // PER_CHAT} messages "
            f"arrived more than once; edits: {len(self.dups) - len(messages)})",
            f"    after a lost answer (unavoidable): {by_cause['lost_response']} "
            f"(of {self.lost_answers} lost answers)",
            f"    after the sender stopped waiting (avoidable when it was stopping): "
            f"{by_cause['abandoned']}",
            f"    after an answer that said it had arrived (avoidable): {by_cause['answered']}",
            *(
                f"      {count:4}: the earlier copy {CAUSES.get(cause, cause)}; the re-send "
                f"followed {after}"
                for (cause, after), count in sorted(details.items())
            ),
            f"  sent rows missing from the chats: {self.missing}",
        ]


CAUSES = {
    "answered": "was answered ok",
    "lost_response": "lost its answer",
    "abandoned": "was carried out after the sender had stopped waiting",
}


def people(server: SandboxServer, count: int) -> list[int]:
    """``count`` people who have pressed Start, so the bot may write to them."""
    ids = list(range(FIRST_CHAT, FIRST_CHAT + count))
    bot = server.get_bot(TOKEN.split(":")[0])
    for chat_id in ids:
        server.create_user(f"居民{chat_id % 100_000}", user_id=chat_id)
        bot.relation(chat_id).started = True
    return ids


async def enqueue(sessions: SessionFactory, chats: list[int]) -> int:
    """Per chat four messages and an edit of the first; every text differs."""
    async with sessions() as session:
        for chat_id in chats:
            for n in range(1, PER_CHAT):
                ref = f"first:{chat_id}" if n == 1 else None
                text = f"通知 {chat_id} 第{n}条"
                outbox.send_text(session, chat_id=chat_id, text=text, now=NOW, ref=ref)
            outbox.enqueue(
                session,
                chat_id=chat_id,
                method="editMessageText",
                payload={"chat_id": chat_id, "text": f"通知 {chat_id} 第1条（已更新）"},
                now=NOW,
                edit_ref=f"first:{chat_id}",
            )
        await session.commit()
    return len(chats) * PER_CHAT


async def measure(
    database_url: str,
    *,
    chats: int,
    seed: int,
    storm_after: float = 1 / 3,
    restart_after: float | None = None,
    latency: float = 0.0,
    telegram_pace: bool = False,
) -> Figures:
    """One run on a migrated, empty database at ``database_url``; with ``telegram_pace`` the
    sandbox keeps Telegram's flood limits and the sender its own pace and backoff. With
    ``restart_after``, the sender is stopped once that share of the rows has ended (a deploy)
    and a new one starts after the leases it left have run out; ``latency`` (seconds between
    a request's arrival and its work) keeps requests on the wire when it stops."""
    limits = TELEGRAM if telegram_pace else FAST
    server = SandboxServer(
        clock=lambda: NOW, rate_limits=RateLimits() if telegram_pace else RateLimits.off()
    )
    server.register_bot(TOKEN, username="gridbot_dupes_bot", first_name="网格通")
    engine = create_engine(database_url)
    sessions = create_session_factory(engine)
    settings = Settings(
        _env_file=None,
        bot_token=SecretStr(TOKEN),
        database_url=database_url,
        limits=limits,
    )
    recipients = people(server, chats)
    total = await enqueue(sessions, recipients)
    try:
        async with run_sandbox(server) as sandbox:
            bot = Bot(TOKEN, session=AiohttpSession(api=sandbox.telegram_api_server()))
            server.set_faults(replace(MIX, latency=latency), seed=seed)
            clock = FrozenClock(NOW)
            runner = _start(OutboxSender(bot, sessions, clock, settings))
            try:
                stormed = restarted = False
                while await _unsettled(sessions):
                    settled = await _settled(sessions)
                    if not stormed and settled >= total * storm_after:
                        server.start_429_storm(duration=STORM_SECONDS, retry_after=1)
                        stormed = True
                    elif stormed and not _bit(server):
                        # it blew over before a send came (a busy CPU): once more
                        server.start_429_storm(duration=STORM_SECONDS, retry_after=1)
                    halfway = restart_after is not None and settled >= total * restart_after
                    if halfway and not restarted:
                        await _stop(runner)
                        clock.advance(LEASE + timedelta(seconds=1))
                        runner = _start(OutboxSender(bot, sessions, clock, settings))
                        restarted = True
                    await asyncio.sleep(0.05)
            finally:
                await _stop(runner)
                await bot.session.close()
        async with sessions() as session:
            rows = (await session.exec(select(OutboxMessage))).all()
    finally:
        await engine.dispose()
    log = list(server.faults.log)
    shown_ids = {
        (conv.chat_id, m.message_id)
        for conv in server.conversations.values()
        for m in conv.messages.values()
        if m.from_bot and not m.deleted
    }
    return Figures(
        rows=len(rows),
        statuses=Counter(str(r.status) for r in rows),
        requests=len(log),
        outcomes=Counter(r.outcome for r in log),
        storm_refusals=server.stats.faults["storm"],
        dups=duplicates(log),
        missing=sum(
            1
            for r in rows
            if r.method == "sendMessage" and (r.chat_id, r.message_id) not in shown_ids
        ),
    )


def _bit(server: SandboxServer) -> bool:
    """The storm refused a send, or is still raging."""
    return bool(server.stats.faults["storm"]) or server.faults.storm_retry_after() is not None


def _start(sender: OutboxSender) -> asyncio.Task[None]:
    return asyncio.create_task(sender.run(poll_seconds=0.05))


async def _stop(runner: asyncio.Task[None]) -> None:
    runner.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await runner


async def _unsettled(sessions: SessionFactory) -> int:
    async with sessions() as session:
        return len(
            (
                await session.exec(
                    select(OutboxMessage.id).where(OutboxMessage.status == OutboxStatus.PENDING)
                )
            ).all()
        )


async def _settled(sessions: SessionFactory) -> int:
    async with sessions() as session:
        return len(
            (
                await session.exec(
                    select(OutboxMessage.id).where(OutboxMessage.status != OutboxStatus.PENDING)
                )
            ).all()
        )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chats", type=int, default=148, help="five rows each (default 740)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--restart",
        action="store_true",
        help="stop the sender two-thirds through and start another (200 ms latency: requests "
        "are on the wire when it stops)",
    )
    parser.add_argument(
        "--telegram-pace",
        action="store_true",
        help="Telegram's flood limits in the sandbox and the sender's own pace (minutes)",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("GRIDBOT_BENCH_DATABASE_URL"),
        help="postgresql+asyncpg://…/gridbot_bench (default: SQLite in a temporary directory)",
    )
    return parser.parse_args()


async def main() -> int:
    args = parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = await prepare_database(args.database_url, Path(folder))
        print(
            f"duplicates under faults: {args.chats * PER_CHAT} rows to {args.chats} chats; "
            f"20 % 5xx, 10 % dropped, 10 % lost answers, a {STORM_SECONDS:g} s 429 storm; "
            f"{'a restart two-thirds through; ' if args.restart else ''}"
            f"seed {args.seed}; {url.split(':')[0]}",
            flush=True,
        )
        figures = await measure(
            url,
            chats=args.chats,
            seed=args.seed,
            restart_after=2 / 3 if args.restart else None,
            latency=0.2 if args.restart else 0.0,
            telegram_pace=args.telegram_pace,
        )
    for line in figures.lines():
        print(line)
    met = figures.only_after_lost_answers and figures.missing == 0
    print(
        "  target: duplicates only after lost answers, nothing missing: "
        f"{'met' if met else 'NOT met'}"
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
