"""Several webhook workers on PostgreSQL and Redis, one of them killed halfway (issue 24).

The deployment of ``docs/deploy.md``, in small: the sandbox Bot API server delivers webhooks
(retrying a non-2xx answer, one update of a chat at a time, as Telegram does) to a round-robin
reverse proxy in this process (nginx's part: a worker that does not answer is a 502), which
forwards to ``WORKERS`` real ``gridbot run --webhook --no-scheduler`` processes on one
PostgreSQL database, with the conversation state in Redis. ``RESIDENTS`` residents file a
report at once (the whole /report conversation without photos, typed address: 7 or 8 updates
each); when about half of the updates are handled, one worker is killed with SIGKILL while
it handles one.

Then: every update was handled exactly once (a ``processed_update`` row each, and one ticket
per resident); every resident read each step's answer once and the transcript holds nothing
more; the conversations that were on the killed worker went on elsewhere. A message whose send
was on the wire when the worker died is sent again once its lease runs out (delivery is at
least once: Telegram has no idempotency key); the test counts such doubles and allows them only
in chats with rows leased at the moment of the kill.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import func, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool
from sqlmodel import col, select

from bench.fleet import (
    WEBHOOK_SECRET,
    StartFailed,
    Worker,
    forget_fsm_keys,
    gridbot_command,
    gridbot_env,
    gridbots,
    proxy,
)
from bot import labels
from bot.db import create_engine, create_session_factory
from bot.i18n import gettext_for
from bot.sandbox.app import run_sandbox
from bot.sandbox.client import ChatMessage, Persona, SandboxClient
from bot.sandbox.ratelimit import RateLimits
from bot.sandbox.server import SandboxServer
from bot.sandbox.updates import WebhookSettings
from bot.telegram import report_views as views
from models import (
    Grid,
    Household,
    OutboxMessage,
    OutboxStatus,
    Person,
    Role,
    RoleAssignment,
    Ticket,
    TicketCategory,
)
from tests.conftest import _on_server, run_database_name

pytestmark = pytest.mark.e2e
log = logging.getLogger(__name__)

RESIDENTS = 200  # residents who report at once; raise it to load the workers harder
WORKERS = 3
KILL_AT = 0.5  # the share of the expected updates handled when one worker is killed
LEASE_SECONDS = 5.0  # the outbox lease (limits.lease_seconds): a dead worker's rows wait this
STEP_WAIT = 60.0  # seconds a resident waits for an answer before the test fails
ROOT = Path(__file__).resolve().parents[2]
RESIDENT_IDS = 7_200_000_000  # residents' Telegram ids from here (demo people: 7_000_000_xxx)
BOT_USERNAME = "gridbot_multi_bot"
MESSAGE_METHODS = ("sendMessage", "sendPhoto", "sendDocument", "sendLocation", "sendMediaGroup")
UPDATES_PER_REPORT = 7  # /report, category, description, no photos, address, danger, send
ZH = "zh_Hans"


def zh(msgid: str, **params: object) -> str:
    return gettext_for(ZH, msgid, **params)


# --- the run's own database and bot ----------------------------------------------------------


@dataclass(frozen=True)
class Run:
    database_url: str
    redis_url: str
    token: str
    folder: Path
    first_resident: int  # the Telegram id of this run's first resident

    @property
    def resident_ids(self) -> list[int]:
        return [self.first_resident + n for n in range(RESIDENTS)]

    @property
    def bot_id(self) -> int:
        return int(self.token.split(":")[0])

    def env(self, **more: str) -> dict[str, str]:
        """A worker's environment: the test's own (the suite removed every setting from it),
        this run's settings, and the worktree first on the path."""
        return gridbot_env(self.database_url, **more)

    def gridbot(self, *args: str) -> None:
        """A ``gridbot`` command, run to its end (from a folder with no ``.env``)."""
        gridbot_command(self.folder, self.env(), *args)


@pytest.fixture
def run(pg_url: str, redis_url: str, tmp_path: Path) -> Iterator[Run]:
    """A database of this test's own on the suite's PostgreSQL server, migrated and filled with
    the demo community through the command line; a bot and residents of its own, so its
    conversation state in Redis (``fsm:<chat>:<user>:…``) touches no other run's keys. The
    database and the keys go at the end."""
    server = make_url(pg_url)
    name = run_database_name(server.database, os.getpid(), "mp" + secrets.token_hex(3))
    asyncio.run(_on_server(server, f'CREATE DATABASE "{name}"'))
    bot_id = 300_000_000 + secrets.randbelow(100_000_000)
    token = f"{bot_id}:MultiProcessEndToEnd_{secrets.token_hex(12)}"
    first_resident = RESIDENT_IDS + secrets.randbelow(10_000_000) * 1000
    url = server.set(database=name).render_as_string(hide_password=False)
    this = Run(url, redis_url, token, tmp_path, first_resident)
    try:
        this.gridbot("db", "upgrade")
        this.gridbot("demo-data")
        yield this
    finally:
        asyncio.run(_on_server(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        asyncio.run(forget_fsm_keys(redis_url, this.resident_ids))


async def add_residents(run: Run) -> list[int]:
    """The run's residents, in the demo community's tier-3 grids, a household each in turn;
    returns their Telegram ids."""
    engine = create_engine(run.database_url, poolclass=NullPool)
    try:
        async with create_session_factory(engine)() as session:
            grids = (
                await session.exec(select(Grid).where(Grid.tier == 3).order_by(col(Grid.id)))
            ).all()
            homes: dict[int, list[int]] = defaultdict(list)
            for household in (
                await session.exec(
                    select(Household)
                    .where(col(Household.is_business).is_(False))
                    .order_by(col(Household.id))
                )
            ).all():
                assert household.id is not None
                homes[household.grid_id].append(household.id)
            grids = [grid for grid in grids if homes[grid.id or 0]]
            now = (await session.exec(select(func.now()))).one()
            people = []
            for n, telegram_id in enumerate(run.resident_ids):
                grid = grids[n % len(grids)]
                choices = homes[grid.id or 0]
                person = Person(
                    telegram_id=telegram_id,
                    name=f"居民{n + 1:03d}",
                    household_id=choices[(n // len(grids)) % len(choices)],
                    created_at=now,
                    updated_at=now,
                )
                people.append((person, grid.id or 0))
            session.add_all([person for person, _ in people])
            await session.flush()
            session.add_all(
                RoleAssignment(
                    person_id=person.id or 0, role=Role.RESIDENT, grid_id=grid_id, created_at=now
                )
                for person, grid_id in people
            )
            await session.commit()
    finally:
        await engine.dispose()
    return run.resident_ids


# --- the workers (behind bench/fleet.py's round-robin proxy, nginx's part) ---------------------


@contextlib.asynccontextmanager
async def workers(run: Run, sandbox_url: str, proxy_url: str) -> AsyncIterator[list[Worker]]:
    """``WORKERS`` ``gridbot run --webhook --no-scheduler`` processes, each on its own port,
    each set to the bot's 30 messages a second: they share one pace in Redis (docs/deploy.md)."""
    env = run.env(
        BOT_TOKEN=run.token,
        TELEGRAM_API_URL=sandbox_url,
        REDIS_URL=run.redis_url,
        WEBHOOK__URL=proxy_url,
        WEBHOOK__SECRET=WEBHOOK_SECRET,
        WATCH__ENABLED="false",
        LIMITS__MESSAGES_PER_SECOND="30",
        LIMITS__PER_CHAT_INTERVAL="0",
        LIMITS__RETRY_BASE_SECONDS="0.2",
        LIMITS__LEASE_SECONDS=str(LEASE_SECONDS),
    )
    try:
        async with gridbots(WORKERS, run.folder, env, webhook=True) as started:
            yield started
    except StartFailed as problem:
        pytest.fail(str(problem))


# --- the residents -----------------------------------------------------------------------------


@dataclass
class Conversation:
    """One resident filing a report; each step's answers are read exactly as many as the bot
    sends, so a doubled message would be read in place of the next step's."""

    persona: Persona
    number: int
    read: list[ChatMessage] = field(default_factory=list)
    steps_done: int = 0
    doubled: int = 0  # a message read twice in a row (sent twice)
    done: ChatMessage | None = None

    async def _answers(self, count: int, ready: str | None = None) -> list[ChatMessage]:
        got: list[ChatMessage] = []
        while len(got) < count:
            message = await self.persona.next_message(STEP_WAIT)
            if self.read and _same(message, self.read[-1]):
                self.doubled += 1
                self.read.append(message)
                continue
            self.read.append(message)
            got.append(message)
        if ready is not None:
            assert ready in got[-1].buttons, (self.number, [m.text for m in got])
        self.steps_done += 1
        return got

    async def report(self) -> None:
        p = self.persona
        category = zh(labels.TICKET_CATEGORY[TicketCategory.FACILITY])
        await p.send("/report")
        await self._answers(1, category)
        await p.press(category)
        (step2,) = await self._answers(1)
        assert "2" in step2.text
        await p.send(f"{self.number + 1}号楼门口的路灯坏了一个星期，晚上很黑")
        await self._answers(1, zh(views.NO_PHOTOS))
        await p.press(zh(views.NO_PHOTOS))
        await self._answers(1)
        await p.send(f"幸福路{self.number + 1}号")
        await self._answers(2, zh(views.DANGER_NO))
        await p.press(zh(views.DANGER_NO))
        (summary,) = await self._answers(1, zh(views.SEND))
        assert zh("Please check your report:") in summary.text
        await p.press(zh(views.SEND))
        (answer,) = await self._answers(1)
        if zh(views.NEW) in answer.buttons:  # "is it one of these?" — no, a new one
            await p.press(zh(views.NEW))
            (answer,) = await self._answers(1)
        self.done = answer


def _same(a: ChatMessage, b: ChatMessage) -> bool:
    return a.text == b.text and a.buttons == b.buttons


# --- the test ----------------------------------------------------------------------------------


async def count_handled(run: Run) -> int:
    engine = create_engine(run.database_url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            return int(
                (
                    await connection.execute(
                        text("SELECT count(*) FROM processed_update WHERE bot_id = :bot"),
                        {"bot": run.bot_id},
                    )
                ).scalar_one()
            )
    finally:
        await engine.dispose()


async def test_three_workers_one_killed_halfway_every_update_once_every_reply_once(
    run: Run,
) -> None:
    resident_ids = await add_residents(run)
    server = SandboxServer(
        rate_limits=RateLimits.off(),
        webhook=WebhookSettings(timeout=30.0, retry_base=0.05, retry_max=0.5),
    )
    server.register_bot(run.token, username=BOT_USERNAME, first_name="网格通")
    for n, user_id in enumerate(resident_ids):
        server.create_user(f"居民{n + 1:03d}", user_id=user_id, language_code="zh-hans")
        server.get_bot(BOT_USERNAME).relation(user_id).started = True

    async with (
        run_sandbox(server) as sandbox,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http,
        SandboxClient(sandbox.url, session=http) as client,
    ):
        # the workers' addresses are known before they start: the proxy comes first
        ports_known: list[str] = []
        async with (
            proxy(ports_known) as (front, proxy_url),
            workers(run, sandbox.url, proxy_url) as started,
        ):
            ports_known.extend(worker.webhook for worker in started)
            victim = started[0]
            conversations = [
                Conversation(
                    client.persona_for(server.users[user_id].to_api(), bot=BOT_USERNAME), n
                )
                for n, user_id in enumerate(resident_ids)
            ]
            began = time.monotonic()
            talking = [asyncio.create_task(c.report()) for c in conversations]

            # kill one worker when about half of the updates are handled
            expected = RESIDENTS * UPDATES_PER_REPORT
            while await count_handled(run) < expected * KILL_AT:
                if all(t.done() for t in talking):
                    await asyncio.gather(*talking, return_exceptions=True)
                    logs = "\n".join(worker.tail() for worker in started)
                    pytest.fail(f"every conversation ended before the kill:\n{logs}")
                await asyncio.sleep(0.1)
            # ... at a moment when it is handling an update (there is nearly always one)
            for _ in range(2000):
                if front.in_flight[victim.number]:
                    break
                await asyncio.sleep(0.005)
            in_flight = {front.chat_of[u] for u in front.in_flight[victim.number]}
            victim.process.kill()  # SIGKILL
            killed_at = time.monotonic()
            killed_wall = time.strftime("%H:%M:%S", time.gmtime())
            latest: dict[int, int] = {}  # chat → the worker that answered its latest update
            for update_id, worker in sorted(front.answered_by.items()):
                latest[front.chat_of[update_id]] = worker
            on_victim = {chat for chat, worker in latest.items() if worker == victim.number}
            leased_at_kill = await leased_chats(run)  # the victim's leases have not run out
            await victim.process.wait()
            unfinished_on_victim = {
                c.persona.id for c in conversations if c.done is None
            } & on_victim

            results = await asyncio.gather(*talking, return_exceptions=True)
            failures = [
                f"resident {c.number} after step {c.steps_done}: {r!r}; "
                f"{front.history(c.persona.id)}"
                for c, r in zip(conversations, results, strict=True)
                if isinstance(r, BaseException)
            ]
            if failures:
                failed = [
                    c.persona.id
                    for c, r in zip(conversations, results, strict=True)
                    if isinstance(r, BaseException)
                ]
                pytest.fail(
                    f"{len(failures)} conversations failed; {server.stats.updates_created} "
                    f"updates, {await count_handled(run)} handled; victim {victim.number} "
                    f"killed at {killed_wall}; in flight at the kill {in_flight}; leased "
                    f"at the kill {leased_at_kill & set(failed)}\n"
                    + "\n".join(failures[:20])
                    + "\n"
                    + await outbox_of(run, failed[:5])
                )
            finished = time.monotonic()
            await outbox_drained(run, resident_ids)
            transcripts = {
                c.persona.id: await client.transcript(BOT_USERNAME, c.persona.id)
                for c in conversations
            }

        stats = server.stats
        bot = server.get_bot(BOT_USERNAME)
        pending = bot.updates.pending_count()

    handled = await count_handled(run)
    tickets, sent_rows = await tickets_and_sent_rows(run, resident_ids)

    log.warning(
        f"{RESIDENTS} residents, {WORKERS} workers: {stats.updates_created} updates, "
        f"{handled} handled; killed worker {victim.number} after "
        f"{killed_at - began:.1f}s with {len(in_flight)} updates in flight on it and "
        f"{len(unfinished_on_victim)} unfinished conversations last handled by it; all done "
        f"{finished - began:.1f}s after the start; proxy 502s: {dict(front.failed)}"
    )

    # every update handled exactly once
    assert pending == 0
    assert stats.webhook_deliveries == stats.updates_created
    assert handled == stats.updates_created
    assert sorted(tickets) == sorted(resident_ids), "one ticket per resident, no more"

    # the conversations that were on the killed worker went on (each finished, read above):
    # those it was handling an update of when it died, and those it had answered last
    assert in_flight, "the kill came when the victim was handling no update"
    assert unfinished_on_victim, "the kill came when no conversation was on the victim"

    # every reply delivered exactly once, but for sends on the wire at the kill
    doubled: dict[int, int] = {}
    for c in conversations:
        shown = transcripts[c.persona.id].bot_messages
        assert c.done is not None
        assert [m.message_id for m in shown] == [m.message_id for m in c.read], c.number
        extra = len(shown) - sent_rows[c.persona.id]
        assert extra == c.doubled, (c.number, extra, c.doubled)
        if extra:
            doubled[c.persona.id] = extra
    log.warning(
        "messages sent twice (on the wire when the worker died): %d", sum(doubled.values())
    )
    assert set(doubled) <= leased_at_kill, "a message was doubled that no dead lease explains"


async def outbox_of(run: Run, chats: list[int]) -> str:
    """The outbox rows of ``chats``, one a line (for a failure's message)."""
    engine = create_engine(run.database_url, poolclass=NullPool)
    try:
        async with create_session_factory(engine)() as session:
            rows = (
                await session.exec(
                    select(OutboxMessage)
                    .where(col(OutboxMessage.chat_id).in_(chats))
                    .order_by(col(OutboxMessage.id))
                )
            ).all()
    finally:
        await engine.dispose()
    return "\n".join(
        f"{r.chat_id} #{r.id} {r.method} {r.status} lease {r.lease_until} attempts {r.attempts} "
        f"sent {r.sent_at} created {r.created_at} error {r.last_error}"
        for r in rows
    )


async def leased_chats(run: Run) -> set[int]:
    """Chats with an outbox row leased (not yet settled) right now."""
    engine = create_engine(run.database_url, poolclass=NullPool)
    try:
        async with create_session_factory(engine)() as session:
            rows = (
                await session.exec(
                    select(OutboxMessage.chat_id).where(
                        OutboxMessage.status == OutboxStatus.PENDING,
                        col(OutboxMessage.lease_until).is_not(None),
                        col(OutboxMessage.lease_until) > func.now(),
                    )
                )
            ).all()
    finally:
        await engine.dispose()
    return set(rows)


async def outbox_drained(run: Run, chats: list[int]) -> None:
    """Wait until no reply to the residents is pending (the dead worker's leases run out)."""
    engine = create_engine(run.database_url, poolclass=NullPool)
    deadline = time.monotonic() + LEASE_SECONDS * 4 + 30
    try:
        while True:
            async with create_session_factory(engine)() as session:
                left = (
                    await session.exec(
                        select(func.count()).where(
                            col(OutboxMessage.chat_id).in_(chats),
                            OutboxMessage.status == OutboxStatus.PENDING,
                        )
                    )
                ).one()
            if not left:
                return
            assert time.monotonic() < deadline, f"{left} replies never went out"
            await asyncio.sleep(0.2)
    finally:
        await engine.dispose()


async def tickets_and_sent_rows(run: Run, chats: list[int]) -> tuple[list[int], Counter[int]]:
    """The reporters' Telegram ids, one per ticket; the sent message rows per chat."""
    engine = create_engine(run.database_url, poolclass=NullPool)
    try:
        async with create_session_factory(engine)() as session:
            reporters = (
                await session.exec(
                    select(Person.telegram_id).join(Ticket, col(Ticket.reporter_id) == Person.id)
                )
            ).all()
            sent = (
                await session.exec(
                    select(OutboxMessage.chat_id, func.count())
                    .where(
                        col(OutboxMessage.chat_id).in_(chats),
                        OutboxMessage.status == OutboxStatus.SENT,
                        col(OutboxMessage.method).in_(MESSAGE_METHODS),
                    )
                    .group_by(col(OutboxMessage.chat_id))
                )
            ).all()
    finally:
        await engine.dispose()
    return [int(r) for r in reporters if r is not None], Counter(dict(sent))
