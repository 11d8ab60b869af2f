"""A broadcast (宣传通知) to 12,000 residents through the outbox, against the sandbox with
Telegram's limits on.

The same method as :mod:`bench.outbox_delivery`: the sandbox enforces 30 messages a second for
the bot and one a second per chat (429 with ``retry_after`` beyond them), records when each
message arrived and in which chat. In one run this times

(a) the baseline: aiogram alone, no database, paced evenly as the sender paces, ``--baseline``
    messages to chats of their own;
(b) a broadcast confirmed the way ``/broadcast`` confirms one
    (:func:`bot.services.broadcast_delivery.start_and_run`: recipients written in rounds of
    ``ROUND``, each round one transaction, while :class:`~bot.telegram.sender.OutboxSender`
    delivers and the progress message is edited every couple of seconds);

and prints the sustained rate (the middle 90 % of deliveries as the sandbox saw them), its
ratio to 30 msg/s (target ≥ 0.95) and to the baseline, how many residents got none (lost) or
more than one (duplicated), counted on the sandbox side, and the broadcast's own final figures.

    .venv/bin/python -m bench.broadcast_delivery                    # 12,000 residents, SQLite
    .venv/bin/python -m bench.broadcast_delivery --residents 1500   # quick
    .venv/bin/python -m bench.broadcast_delivery --emergency        # the urgent lane instead
    .venv/bin/python -m bench.broadcast_delivery \\
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/gridbot_bench
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from pydantic import SecretStr
from sqlalchemy import insert
from sqlmodel import select

import models
from bench.outbox_delivery import TARGET, TELEGRAM_RATE, Deliveries, baseline, prepare_database
from bot.clock import FrozenClock
from bot.db import SessionFactory, create_engine, create_session_factory
from bot.sandbox import RateLimits, SandboxServer, run_sandbox
from bot.services import broadcast_delivery
from bot.services.people import roles_of
from bot.settings import Settings
from bot.telegram.broadcast_views import receipt_markup
from bot.telegram.sender import OutboxSender
from models import Broadcast, Grid, Person, Role, RoleAssignment

NOW = datetime(2026, 3, 12, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai: no quiet hours
TOKEN = "300000002:GridBotBroadcastBenchmarkToken_abcdefgh"
FIRST_CHAT = 7_100_000_001
HEAD_CHAT = 7_099_999_999
PERSON = models.metadata.tables["person"]
ROLE = models.metadata.tables["role_assignment"]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--residents", type=int, default=12_000)
    parser.add_argument("--baseline", type=int, default=600, help="messages in (a)")
    parser.add_argument("--emergency", action="store_true", help="an emergency broadcast")
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


def register(server: SandboxServer, ids: list[int]) -> None:
    """People who have pressed Start, so the bot may write to them."""
    bot = server.get_bot(TOKEN.split(":")[0])
    for chat_id in ids:
        server.create_user(f"居民{chat_id % 100_000}", user_id=chat_id)
        bot.relation(chat_id).started = True


async def community(sessions: SessionFactory, residents: int) -> tuple[int, int]:
    """A street with one community grid, its head, and ``residents`` residents in it; the
    draft broadcast. Returns (head's person id, broadcast id)."""
    async with sessions() as session:
        street = Grid(code="1", name="滨江街道", tier=0, created_at=NOW)
        session.add(street)
        await session.flush()
        street.path = f"/{street.id}/"
        grid = Grid(code="101", name="滨江社区", tier=1, parent_id=street.id, created_at=NOW)
        session.add(grid)
        await session.flush()
        grid.path = f"{street.path}{grid.id}/"
        head = Person(telegram_id=HEAD_CHAT, name="王网格长", created_at=NOW, updated_at=NOW)
        session.add(head)
        await session.flush()
        session.add(
            RoleAssignment(
                person_id=head.id or 0, role=Role.HEAD, grid_id=grid.id or 0, created_at=NOW
            )
        )
        connection = await session.connection()
        first = (head.id or 0) + 1
        await connection.execute(
            insert(PERSON),
            [
                {
                    "id": first + n,
                    "telegram_id": FIRST_CHAT + n,
                    "name": f"居民{n}",
                    "reachable": True,
                    "active": True,
                    "created_at": NOW,
                    "updated_at": NOW,
                }
                for n in range(residents)
            ],
        )
        await connection.execute(
            insert(ROLE),
            [
                {
                    "person_id": first + n,
                    "role": Role.RESIDENT,
                    "grid_id": grid.id,
                    "active": True,
                    "created_at": NOW,
                }
                for n in range(residents)
            ],
        )
        draft = Broadcast(
            sender_id=head.id or 0,
            grid_id=grid.id or 0,
            audience="residents",
            text="明天上午9点至12点小区停水检修，请提前储水。" * 3,
            created_at=NOW,
        )
        session.add(draft)
        await session.commit()
        return head.id or 0, draft.id or 0


async def main() -> int:
    args = parse_args()
    limits = RateLimits.named(args.rate_limits)
    server = SandboxServer(clock=lambda: NOW, rate_limits=limits)
    server.register_bot(TOKEN, username="gridbot_broadcast_bench_bot", first_name="网格通")
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
        clock = FrozenClock(NOW)
        async with run_sandbox(server) as sandbox:
            bot = Bot(TOKEN, session=AiohttpSession(api=sandbox.telegram_api_server()))
            try:
                kind = "emergency" if args.emergency else "normal (bulk lane)"
                print(
                    f"broadcast delivery: {args.residents:,} residents, {kind}, sandbox rate "
                    f"limits on ({TELEGRAM_RATE:g}/s as a "
                    f"{'sliding window' if args.rate_limits == 'sliding' else 'token bucket'}, "
                    f"1/s per chat); {url.split(':')[0]}; load average "
                    f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}",
                    flush=True,
                )
                # (a) the baseline
                targets = list(
                    range(FIRST_CHAT + 10_000_000, FIRST_CHAT + 10_000_000 + args.baseline)
                )
                register(server, targets)
                base_elapsed = await baseline(bot, targets, settings.limits.messages_per_second)
                base_rate = deliveries.sustained()
                print(
                    f"  (a) aiogram alone:  {args.baseline:>7,} in {base_elapsed:7.1f} s, "
                    f"{base_rate:5.1f} msg/s sustained, {server.stats.statuses[429]} × 429",
                    flush=True,
                )
                # (b) the broadcast
                server.set_rate_limits(limits)
                server.stats.reset()
                deliveries.reset()
                recipients = list(range(FIRST_CHAT, FIRST_CHAT + args.residents))
                register(server, [HEAD_CHAT, *recipients])
                head_id, broadcast_id = await community(sessions, args.residents)
                async with sessions() as session:
                    if args.emergency:
                        draft = await session.get(Broadcast, broadcast_id)
                        assert draft is not None
                        draft.emergency = True
                        session.add(draft)
                        await session.commit()
                    roles = tuple(await roles_of(session, head_id))
                sender = OutboxSender(bot, sessions, clock, settings)
                loop = asyncio.get_running_loop()
                started = loop.time()
                runner = asyncio.create_task(sender.run())
                deliveries.expect(args.residents)
                start = broadcast_delivery.Start(head_id, roles, broadcast_id)
                await broadcast_delivery.start_and_run(
                    sessions, clock, settings, start, receipt_markup, sender.wake
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(deliveries.all_in.wait(), 30)
                elapsed = max(deliveries.times, default=started) - started
                runner.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await runner
                async with sessions() as session:
                    final = (
                        await session.exec(select(Broadcast).where(Broadcast.id == broadcast_id))
                    ).one()
            finally:
                await bot.session.close()
                await engine.dispose()

    per_chat = deliveries.per_chat
    sustained = deliveries.sustained()
    lost = sum(1 for chat_id in recipients if per_chat[chat_id] == 0)
    duplicated = sum(per_chat[chat_id] - 1 for chat_id in recipients if per_chat[chat_id] > 1)
    edits = per_chat[HEAD_CHAT]
    print(
        f"  (b) broadcast:      {args.residents:>7,} in {elapsed:7.1f} s, "
        f"{args.residents / elapsed:5.1f} msg/s overall, {sustained:5.1f} msg/s sustained, "
        f"{server.stats.statuses[429]} × 429 (round of {broadcast_delivery.ROUND}, "
        f"{edits} progress message(s) to the head)",
        flush=True,
    )
    print(
        f"  broadcast #{broadcast_id}: {final.status}, sent {final.sent_count:,}, "
        f"not delivered {final.failed_count:,}"
    )
    print(f"  lost: {lost}, duplicated: {duplicated}  (counted on the sandbox side)")
    print(f"  ratio to {TELEGRAM_RATE:g} msg/s (sustained): {sustained / TELEGRAM_RATE:.3f}")
    print(f"  ratio to the baseline (a) (sustained):   {sustained / base_rate:.3f}")
    print(f"  load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    met = sustained >= TARGET * TELEGRAM_RATE and lost == 0 and duplicated == 0
    print(
        f"  target ≥ {TARGET} × {TELEGRAM_RATE:g} msg/s sustained, 0 lost, 0 duplicated: "
        f"{'met' if met else 'NOT met'}"
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
