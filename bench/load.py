"""GridBot under load, measured as people feel it: the real bot, the sandbox, simulated residents.

The unmodified bot runs in **a process of its own** (``build_app`` and polling, as the e2e
harness starts it: :func:`tests.e2e.harness.start_polling`), against the sandbox Bot API server
in this process. Simulated residents talk to it through the sandbox's user side — each one
running the /report conversation (category, description, no photos, a typed address, nobody in
danger, then send or cancel) — and the sandbox notes when each reply reached it, so a reply's
latency is "the person acted" → "Telegram holds the answer". A small probe inside the bot
process reports how late a 10 ms ticker wakes (event-loop lag), its CPU time, peak RSS, the
database connections it opened and the errors it logged. Scheduler jobs (the 08:00 push, the
monthly digest, the deadline sweep) run inside the bot process too, as ``gridbot run`` runs them.

Scenarios (``--scenario a,b,…``; each on a fresh copy of the database, a fresh sandbox and a
fresh bot process; each against a baseline measured in the same run):

a. replies before bulk — Telegram's limits on (sandbox token bucket, the bot's own pacing):
   the 08:00 push to every worker drains at 30 msg/s while residents converse; their reply
   p50/p99 against their idle p99, and the push's msg/s against 30.
b. no frozen chats — limits off: event-loop lag (max, p99) and residents' p99 and failures
   during (i) the 08:00 push plan, (ii) an admin's ``/export households`` of everything,
   (iii) the monthly digest over a month of tickets; against the same residents idle.
c. capacity — limits off: residents arriving open-loop (Poisson) at ``--rate`` updates/s for
   ``--duration`` s; p50/p99, failures, CPU per update; the same load on an aiogram echo bot in
   a process of its own. ``--knee`` steps the rate up to where p99 passes 1 s, for both.
d. PostgreSQL hygiene — connections the bot opened during a (c) run against its pool size
   (a SQLAlchemy ``connect`` listener in the bot process; ``pg_stat_database.sessions`` too),
   and deadlocks logged.
e. sweep wait — a worker's 签收 (the toast) while the deadline sweep settles a batch of overdue
   tickets that holds the worker's ticket, against the same 签收 with no sweep running.
f. fan-out — 1,500 outbox messages to 1,500 chats with the sandbox's limits in its bucket and in
   its strict sliding-window model: sustained msg/s, ratio to 30, 429 answers; against an
   aiogram loop pacing evenly at 29.5/s on the same server.
g. memory — the bot process's peak RSS through (b)(i) and (b)(ii), against its RSS at rest.

    .venv/bin/python -m bench.load --quick                      # every scenario, small sizes
    .venv/bin/python -m bench.load --scenario a,b,g             # full sizes (12,000 workers)
    .venv/bin/python -m bench.load --scenario c --knee
    .venv/bin/python -m bench.load --quick \\
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/gridbot_bench

On PostgreSQL the named database and two templates beside it (``<name>_base``,
``<name>_city``) are dropped and created afresh through the server's ``postgres`` database
(``test`` and ``postgres`` themselves are refused); the templates are dropped at the end.
Everything listens on 127.0.0.1 only, and every wait is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import math
import os
import random
import shutil
import sys
import tempfile
import time
import unicodedata
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import aiohttp
from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import NullPool
from sqlmodel import col
from sqlmodel import select as orm_select

import models
from bench import quota_engine
from bench.load_bot import (
    ECHO_TOKEN,
    NOW,
    BotHandle,
    BotProcess,
    InlineBot,
    RunningClock,
    percentile,
)
from bot import migrate
from bot.db import create_engine, create_session_factory
from bot.i18n import gettext_for
from bot.labels import TICKET_CATEGORY
from bot.sandbox.app import RunningSandbox, run_sandbox
from bot.sandbox.client import ChatMessage, Persona, SandboxClient, SandboxClientError
from bot.sandbox.ratelimit import RateLimits
from bot.sandbox.server import SandboxServer
from bot.services import outbox, quotas, ticket_numbers
from bot.services.demo import DEMO_PERSONAS, load_demo_data
from bot.services.grid_codes import child_code
from bot.settings import LimitSettings
from bot.telegram import report_views as views
from models import Grid, Household, Person, Role, RoleAssignment, Ticket, TicketCategory
from tests.e2e.harness import BOT_USERNAME, TOKEN

TZ = quota_engine.TZ
ECHO_USERNAME = "echo_load_bot"
RESIDENT_IDS = 7_100_000_000  # bench residents' Telegram ids (demo people are 7_000_000_xxx)
WORKER_IDS = quota_engine.TELEGRAM_IDS  # the city's workers (8_000_000_000 + n)
FANOUT_IDS = 7_500_000_000  # chats of the fan-out scenario
FIRST_CITY_ID = 100_001  # ids of the city's grids, people and households
TELEGRAM_RATE = 30.0
ZH = "zh_Hans"
FAST = LimitSettings(messages_per_second=10_000, per_chat_interval=0.0, retry_base_seconds=0.02)
TELEGRAM = LimitSettings()  # the bot's own pacing: 30 msg/s, a second between a chat's messages
SCENARIOS = "abcdefg"
Level = Literal["base", "city"]


def zh(msgid: str) -> str:
    return gettext_for(ZH, msgid)


# --- sizes and arguments ------------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    residents: int  # bench residents in the database (c talks with all of them)
    conversing: int  # residents in conversation during (a) and (b)
    think: float  # their think time between steps, seconds (±50 %)
    workers: int
    households: int
    month_tickets: int  # tickets filed last month, for the monthly digest
    idle_seconds: float  # the residents' idle baseline in (a) and (b)
    bulk_seconds: float  # (a): how long the push is watched draining
    rate: float  # (c): updates a second
    duration: float  # (c): seconds
    knee_rates: tuple[float, ...]
    echo_knee_rates: tuple[float, ...]
    knee_seconds: float
    fanout: int
    fanout_baseline: int
    sweep_batch: int
    sweep_rounds: int
    press_after: float  # (e): the 签收 this long after the sweep starts
    step_timeout: float  # a resident gives up on a reply after this long


FULL = Sizes(
    residents=300,
    conversing=20,
    think=1.0,
    workers=12_000,
    households=300_000,
    month_tickets=30_000,
    idle_seconds=30,
    bulk_seconds=60,
    rate=100,
    duration=60,
    knee_rates=(25, 50, 75, 100, 150, 200, 300),
    echo_knee_rates=(100, 200, 300, 400, 600),
    knee_seconds=20,
    fanout=1_500,
    fanout_baseline=300,
    sweep_batch=500,
    sweep_rounds=3,
    press_after=0.2,
    step_timeout=60,
)
QUICK = replace(
    FULL,
    residents=60,
    conversing=10,
    workers=600,
    households=15_000,
    month_tickets=2_000,
    idle_seconds=8,
    bulk_seconds=15,
    rate=30,
    duration=15,
    knee_rates=(10, 20, 40, 80),
    echo_knee_rates=(40, 80, 160),
    knee_seconds=6,
    fanout=300,
    fanout_baseline=90,
    sweep_batch=200,
    sweep_rounds=2,
)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.load",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--scenario", default=",".join(SCENARIOS), help="comma-separated, of a b c d e f g"
    )
    parser.add_argument("--quick", action="store_true", help="small sizes (about a minute each)")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("GRIDBOT_BENCH_DATABASE_URL"),
        help="postgresql+asyncpg://…/gridbot_bench (default: SQLite in a temporary directory)",
    )
    parser.add_argument("--knee", action="store_true", help="(c): find the knee, GridBot and echo")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--bot-in-process",
        action="store_true",
        help="run the bot in this process (quick to start, for the smoke test; its figures "
        "then include the sandbox's and the residents' work)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    for name in Sizes.__dataclass_fields__:
        kind = Sizes.__dataclass_fields__[name].type
        flag = "--" + name.replace("_", "-")
        if "tuple" in str(kind):
            parser.add_argument(flag, type=_rates, default=None, metavar="R,R,…")
        else:
            parser.add_argument(flag, type=float if "float" in str(kind) else int, default=None)
    args = parser.parse_args(argv)
    chosen = [s.strip() for s in args.scenario.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SCENARIOS or len(s) != 1]
    if unknown or not chosen:
        parser.error(f"unknown scenario(s) {unknown}: choose among {', '.join(SCENARIOS)}")
    args.scenarios = sorted(set(chosen))
    sizes = QUICK if args.quick else FULL
    given = {
        name: getattr(args, name)
        for name in Sizes.__dataclass_fields__
        if getattr(args, name) is not None
    }
    args.sizes = replace(sizes, **given)
    if args.sizes.workers < 1 or args.sizes.households < args.sizes.workers:
        parser.error("need 1 ≤ workers ≤ households")
    if args.sizes.residents < max(1, args.sizes.conversing):
        parser.error("need at least as many residents as conversing residents")
    return args


def _rates(text_: str) -> tuple[float, ...]:
    rates = tuple(float(part) for part in text_.split(",") if part.strip())
    if not rates or any(not 0 < r <= 5_000 for r in rates):
        raise argparse.ArgumentTypeError("rates between 0 and 5,000 a second")
    return rates


# --- time and figures ---------------------------------------------------------------------------


def ms(seconds: float) -> str:
    if math.isnan(seconds):
        return "—"
    return f"{seconds * 1000:,.0f} ms" if seconds < 10 else f"{seconds:,.1f} s"


def ratio(value: float, baseline: float) -> str:
    if math.isnan(value) or math.isnan(baseline) or baseline <= 0:
        return "—"
    return f"{value / baseline:.2f}×"


@dataclass
class Row:
    """One line of the final table."""

    scenario: str
    figure: str
    value: str
    baseline: str = ""
    ratio: str = ""
    target: str = ""
    verdict: str = ""


def verdict(ok: bool | None) -> str:
    return "" if ok is None else ("met" if ok else "NOT met")


def say(text_: str) -> None:
    print(text_, flush=True)  # noqa: T201


# ================================================================================================
# The sandbox side
# ================================================================================================


class TimedSandbox(SandboxServer):
    """The sandbox, noting when each bot message reached it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.arrivals: dict[tuple[int, int], float] = {}
        self.sent: list[tuple[float, int]] = []

    def post_bot_message(self, bot: Any, conv: Any, content: Any, **kwargs: Any) -> Any:
        message = super().post_bot_message(bot, conv, content, **kwargs)
        now = time.monotonic()
        self.arrivals[(conv.chat_id, int(message["message_id"]))] = now
        self.sent.append((now, conv.chat_id))
        return message

    def arrived(self, chat_id: int, message_id: int) -> float:
        return self.arrivals.get((chat_id, message_id), time.monotonic())

    def sent_to(self, chats: Callable[[int], bool], start: float, end: float) -> list[float]:
        return [at for at, chat in self.sent if start <= at <= end and chats(chat)]


async def first_answer(
    client: SandboxClient,
    persona: Persona,
    after: int,
    timeout: float,  # noqa: ASYNC109
) -> float:
    """When the bot first answered in ``persona``'s chat after event ``after``: a toast, an
    edit or a message (the chat's events, long-polled)."""
    deadline = time.monotonic() + timeout
    while (remaining := deadline - time.monotonic()) > 0:
        events = await client.events(BOT_USERNAME, persona.chat_id, after=after, wait=remaining)
        for happened in events:
            if happened["type"] in ("toast", "edited", "message"):
                return time.monotonic()
            after = int(happened["seq"])
    raise TimeoutError("no answer to the button")


def sustained(times: Sequence[float]) -> float:
    """Messages a second over the middle 90 % of ``times``."""
    ordered = sorted(times)
    low, high = len(ordered) // 20, len(ordered) - 1 - len(ordered) // 20
    if high <= low or ordered[high] == ordered[low]:
        return math.nan
    return (high - low) / (ordered[high] - ordered[low])


# --- residents ----------------------------------------------------------------------------------

GENERIC_ERROR = zh("Sorry, something went wrong on our side. Please try again in a moment.")
CATEGORIES = (
    TicketCategory.FACILITY,
    TicketCategory.SANITATION,
    TicketCategory.PROPERTY,
    TicketCategory.OTHER,
)
DESCRIPTIONS = (
    "3号楼门口的路灯坏了一个星期，晚上很黑，老人出门不方便",
    "小区垃圾桶满了两天没人清理，味道很大",
    "电梯经常卡在五楼，物业说修了还是不行",
    "楼道里有人堆放杂物，挡住了消防通道",
)
REPORTS_PER_RESIDENT = 3  # tickets a resident files before only cancelling (limit: 5 an hour)


@dataclass
class Sample:
    """One step: when the person acted, how long until the first reply (None: none came),
    when it ended (the prompt for the next step, or the failure seen)."""

    at: float
    latency: float | None
    failed: bool
    ended: float
    why: str = ""
    stage: str = ""


Ready = Callable[[ChatMessage], bool]


def any_message(_message: ChatMessage) -> bool:
    return True


def has_button(label: str) -> Ready:
    return lambda message: label in message.buttons


class Resident:
    """A person running /report again and again, one step at a time (or chatting to the echo)."""

    def __init__(
        self,
        persona: Persona,
        sandbox: TimedSandbox,
        number: int,
        timeout: float,
        *,
        echo: bool = False,
    ) -> None:
        self.persona = persona
        self.sandbox = sandbox
        self.number = number
        self.timeout = timeout
        self.echo = echo
        self.stage = "open"
        self.reports_left = REPORTS_PER_RESIDENT
        self.said = 0
        self.category = zh(TICKET_CATEGORY[CATEGORIES[number % len(CATEGORIES)]])
        self.description = DESCRIPTIONS[number % len(DESCRIPTIONS)]

    def _plan(self) -> tuple[Callable[[], Awaitable[Any]], Ready]:
        p = self.persona
        if self.echo:
            self.said += 1
            return (lambda: p.send(f"你好 {self.said}")), any_message
        stage = self.stage
        if stage == "open":
            return (lambda: p.send("/report")), has_button(self.category)
        if stage == "category":
            return (lambda: p.press(self.category)), any_message
        if stage == "description":
            return (lambda: p.send(self.description)), has_button(zh(views.NO_PHOTOS))
        if stage == "photos":
            return (lambda: p.press(zh(views.NO_PHOTOS))), any_message
        if stage == "place":
            address = f"幸福路{self.number % 90 + 1}号{self.number % 6 + 1}单元"
            return (lambda: p.send(address)), has_button(zh(views.DANGER_NO))
        if stage == "danger":
            return (lambda: p.press(zh(views.DANGER_NO))), has_button(zh(views.SEND))
        if stage == "confirm" and self.reports_left > 0:
            return (lambda: p.press(zh(views.SEND))), any_message
        if stage == "duplicate":
            return (lambda: p.press(zh(views.NEW))), any_message
        return (lambda: p.send("/cancel")), any_message

    def _advance(self, last: ChatMessage) -> None:
        if self.echo:
            return
        following = {
            "open": "category",
            "category": "description",
            "description": "photos",
            "photos": "place",
            "place": "danger",
            "danger": "confirm",
        }
        if self.stage in following:
            self.stage = following[self.stage]
        elif self.stage == "confirm" and self.reports_left > 0 and zh(views.NEW) in last.buttons:
            self.stage = "duplicate"
        else:
            if self.stage in ("confirm", "duplicate") and self.reports_left > 0:
                self.reports_left -= 1
            self.stage = "open"

    async def step(self) -> Sample:
        """Act once, wait for the bot's reply (and for the next prompt, if it comes apart)."""
        action, ready = self._plan()
        started = time.monotonic()
        latency: float | None = None
        try:
            await action()
            first = await self.persona.next_message(self.timeout)
            latency = self.sandbox.arrived(self.persona.chat_id, first.message_id) - started
            last = first
            for _ in range(4):
                if GENERIC_ERROR in last.text or ready(last):
                    break
                last = await self.persona.next_message(self.timeout)
            stage = self.stage
            if GENERIC_ERROR in last.text:
                why = "error reply"
            elif not ready(last):
                why = f"unexpected reply at {stage}"
            else:
                self._advance(last)
                return Sample(started, latency, False, time.monotonic(), stage=stage)
        except (TimeoutError, SandboxClientError, aiohttp.ClientError) as error:
            why = "no reply" if isinstance(error, TimeoutError) else f"{error}"[:80]
        failed = Sample(started, latency, True, time.monotonic(), why, self.stage)
        await self.recover()
        return failed

    async def recover(self) -> None:
        """After a failure: cancel the conversation and read the chat up to its end."""
        self.stage = "open"
        with contextlib.suppress(TimeoutError, SandboxClientError, aiohttp.ClientError):
            if not self.echo:
                await self.persona.send("/cancel")
            for _ in range(8):
                await self.persona.next_message(1.5)

    async def file_a_report(self) -> list[Sample]:
        """The whole conversation, ending with the report sent."""
        await catch_up(self.persona)
        self.stage, self.reports_left = "open", max(self.reports_left, 1)
        samples = []
        left = self.reports_left
        while self.reports_left == left:
            sample = await self.step()
            samples.append(sample)
            if sample.failed:
                raise RuntimeError(f"filing a report failed: {sample.why}")
        return samples


async def catch_up(persona: Persona) -> None:
    """Skip what the bot said meanwhile (notices about one's tickets)."""
    transcript = await persona.transcript()
    if transcript.messages:
        persona.cursor = max(persona.cursor, transcript.messages[-1].message_id)


@dataclass
class Latencies:
    steps: int
    failed: int
    p50: float
    p99: float
    max: float
    reasons: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, samples: Iterable[Sample]) -> Latencies:
        chosen = list(samples)
        times = [s.latency for s in chosen if s.latency is not None and not s.failed]
        return cls(
            steps=len(chosen),
            failed=sum(s.failed for s in chosen),
            p50=percentile(times, 50),
            p99=percentile(times, 99),
            max=max(times, default=math.nan),
            reasons=dict(Counter(s.why for s in chosen if s.failed)),
        )

    def line(self) -> str:
        why = f" ({self.reasons})" if self.reasons else ""
        return (
            f"{self.steps} steps, p50 {ms(self.p50)}, p99 {ms(self.p99)}, max {ms(self.max)}, "
            f"{self.failed} failed{why}"
        )


def within(samples: Iterable[Sample], start: float, end: float) -> list[Sample]:
    """The steps taken from ``start`` until ``end``."""
    return [s for s in samples if start <= s.at < end]


def overlapping(samples: Iterable[Sample], start: float, end: float) -> list[Sample]:
    """The steps a person was waiting on at some moment from ``start`` until ``end``: those
    answered then or later, and those that failed, if taken then."""

    def waiting(sample: Sample) -> bool:
        if sample.failed:
            return start <= sample.at < end
        return sample.at < end and sample.ended > start

    return [sample for sample in samples if waiting(sample)]


def settled(samples: Iterable[Sample], start: float, end: float) -> list[Sample]:
    """The steps taken from ``start`` and over before ``end`` (a baseline: nothing that
    started at rest and was answered once the load began)."""
    return [s for s in samples if start <= s.at and s.ended < end]


class Conversations:
    """Residents in a closed loop — think, act, read the reply — until stopped."""

    def __init__(self, residents: Sequence[Resident], think: float, seed: int) -> None:
        self.residents = residents
        self.think = think
        self.rng = random.Random(seed)
        self.samples: list[Sample] = []
        self.acting: dict[int, float] = {}  # resident → when their latest step began
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._talk(r)) for r in self.residents]

    async def _talk(self, resident: Resident) -> None:
        while not self._stop.is_set():
            pause = self.think * self.rng.uniform(0.5, 1.5)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), pause)
            if self._stop.is_set():
                return
            self.acting[resident.number] = time.monotonic()
            self.samples.append(await resident.step())

    async def back(self, since: float, timeout: float) -> None:  # noqa: ASYNC109
        """Wait until every resident has begun a step after ``since`` (none is still stuck
        waiting on a reply from before), for ``timeout`` s at most."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self.acting.get(r.number, 0) > since for r in self.residents):
                return
            await asyncio.sleep(0.2)

    async def stop(self) -> None:
        self._stop.set()
        timeout = max(r.timeout for r in self.residents) * 2 + 20 if self.residents else 1
        _, late = await asyncio.wait(self._tasks, timeout=timeout)
        for task in late:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def open_loop(
    residents: Sequence[Resident], rate: float, duration: float, seed: int
) -> tuple[list[Sample], int, int]:
    """Poisson arrivals at ``rate`` a second for ``duration`` s, each the next step of a
    resident who is not waiting for a reply. Returns the samples, the arrivals and those that
    found every resident busy (the load generator's own limit)."""
    rng = random.Random(seed)
    idle = list(residents)
    samples: list[Sample] = []
    tasks: set[asyncio.Task[None]] = set()
    busy_arrivals = arrivals = 0

    async def run(resident: Resident) -> None:
        try:
            samples.append(await resident.step())
        finally:
            idle.append(resident)

    start = time.monotonic()
    at = start
    while True:
        at += rng.expovariate(rate)
        if at >= start + duration:
            break
        delay = at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        arrivals += 1
        if not idle:
            busy_arrivals += 1
            continue
        resident = idle.pop(rng.randrange(len(idle)))
        task = asyncio.create_task(run(resident))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        timeout = max(r.timeout for r in residents) + 20
        _, late = await asyncio.wait(set(tasks), timeout=timeout)
        for task in late:
            task.cancel()
    return samples, arrivals, busy_arrivals


# ================================================================================================
# The databases
# ================================================================================================


class Databases:
    """The loaded templates (the demo community and the residents; that plus the city) and a
    fresh copy of one for each scenario."""

    def __init__(self, url: str | None, folder: Path, sizes: Sizes, seed: int) -> None:
        self.url = url
        self.folder = folder
        self.sizes = sizes
        self.seed = seed
        self.built: dict[Level, str] = {}
        self.copies = 0
        if url is not None:
            name = make_url(url).database
            if name in (None, "", "test", "postgres") or not url.startswith("postgresql"):
                raise SystemExit("use a PostgreSQL database of its own, e.g. …/gridbot_bench")

    @property
    def backend(self) -> str:
        return "postgresql" if self.url else "sqlite"

    def _pg(self, name: str) -> str:
        assert self.url is not None
        return make_url(self.url).set(database=name).render_as_string(hide_password=False)

    async def _admin(self, *statements: str) -> None:
        admin = create_engine(
            self._pg("postgres"), poolclass=NullPool, isolation_level="AUTOCOMMIT"
        )
        try:
            async with admin.connect() as connection:
                for statement in statements:
                    for attempt in range(10):  # a template must have no other session
                        try:
                            await connection.execute(text(statement))
                            break
                        except Exception:
                            if attempt == 9 or "TEMPLATE" not in statement:
                                raise
                            await asyncio.sleep(1)
        finally:
            await admin.dispose()

    def _template_url(self, level: Level) -> str:
        if self.url is None:
            return f"sqlite+aiosqlite:///{self.folder / f'{level}.db'}"
        return self._pg(f"{make_url(self.url).database}_{level}")

    async def template(self, level: Level) -> str:
        if level in self.built:
            return self.built[level]
        url = self._template_url(level)
        began = time.monotonic()
        if level == "base":
            if self.url is not None:
                name = make_url(url).database
                await self._admin(f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"')
            await asyncio.to_thread(migrate.upgrade, url)
            await load_base(url, self.sizes.residents)
            say(
                f"  loaded the demo community and {self.sizes.residents} residents "
                f"in {time.monotonic() - began:.1f} s"
            )
        else:
            base = await self.template("base")
            began = time.monotonic()
            await self._clone(base, url)
            loaded = await load_city(url, self.sizes, self.seed)
            say(f"  loaded the city: {loaded} in {time.monotonic() - began:.1f} s")
        self.built[level] = url
        return url

    async def _clone(self, source: str, target: str) -> None:
        if self.url is None:
            source_path = Path(make_url(source).database or "")
            target_path = Path(make_url(target).database or "")
            await asyncio.to_thread(shutil.copyfile, source_path, target_path)
            return
        name, template = make_url(target).database, make_url(source).database
        await self._admin(
            f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}" TEMPLATE "{template}"'
        )

    async def copy(self, level: Level) -> str:
        """A fresh database holding ``level``'s data."""
        template = await self.template(level)
        self.copies += 1
        if self.url is None:
            target = f"sqlite+aiosqlite:///{self.folder / f'run{self.copies}.db'}"
        else:
            target = self.url
        await self._clone(template, target)
        return target

    async def discard(self, url: str) -> None:
        if self.url is None:
            for suffix in ("", "-wal", "-shm"):
                path = Path((make_url(url).database or "") + suffix)
                await asyncio.to_thread(path.unlink, missing_ok=True)

    async def close(self) -> None:
        if self.url is not None:
            await self._admin(
                *(f'DROP DATABASE IF EXISTS "{make_url(u).database}"' for u in self.built.values())
            )


def resident_id(number: int) -> int:
    return RESIDENT_IDS + number


async def load_base(url: str, residents: int) -> None:
    """The demo community, and ``residents`` more residents spread over its tier-3 grids."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        sessions = create_session_factory(engine)
        async with sessions() as session:
            await load_demo_data(session, NOW)
            await session.commit()
        async with sessions() as session:
            grids = (
                await session.exec(orm_select(Grid).where(Grid.tier == 3).order_by(col(Grid.id)))
            ).all()
            homes: dict[int, list[int]] = defaultdict(list)
            for household_id, grid_id in (
                await session.exec(
                    select(Household.id, Household.grid_id)
                    .where(col(Household.is_business).is_(False))
                    .order_by(col(Household.id))
                )
            ).all():
                homes[grid_id].append(household_id)
            people = []
            for n in range(residents):
                grid = grids[n % len(grids)]
                assert grid.id is not None
                choices = homes[grid.id]
                people.append(
                    (
                        Person(
                            telegram_id=resident_id(n),
                            name=f"居民{n + 1:03d}",
                            household_id=choices[(n // len(grids)) % len(choices)],
                            created_at=NOW,
                            updated_at=NOW,
                        ),
                        grid.id,
                    )
                )
            session.add_all([person for person, _ in people])
            await session.flush()
            session.add_all(
                RoleAssignment(
                    person_id=person.id or 0, role=Role.RESIDENT, grid_id=grid_id, created_at=NOW
                )
                for person, grid_id in people
            )
            await session.commit()
    finally:
        await engine.dispose()


async def load_city(url: str, sizes: Sizes, seed: int) -> str:
    """Under the demo street: communities, tier-2 grids, one tier-3 grid per worker, the
    workers, the households with a quarter of visits (as ``bench/quota_engine.py`` makes
    them), and a month of tickets filed last month for the digest."""
    engine = create_engine(url, poolclass=NullPool)
    tables = models.metadata.tables
    sqlite = engine.dialect.name == "sqlite"
    try:
        async with engine.connect() as connection:
            root = (
                await connection.execute(
                    select(Grid.id, Grid.code, Grid.path).where(Grid.tier == 0)
                )
            ).one()
            top = {
                table: int(
                    (await connection.execute(text(f"SELECT max(id) FROM {table}"))).scalar() or 0
                )
                for table in ("grid", "person", "household", "ticket")
            }
            last_short = int(
                (
                    await connection.execute(
                        select(func.max(Ticket.short_number)).where(Ticket.street_id == root.id)
                    )
                ).scalar()
                or 0
            )
        first = max(FIRST_CITY_ID, *top.values()) + 1
        grids, leaves = city_grids(sizes.workers, first, root)
        people = [
            {
                "id": first + n,
                "name": f"网格员{n + 1}",
                "telegram_id": WORKER_IDS + n,
                "reachable": True,
                "active": True,
                "created_at": NOW,
                "updated_at": NOW,
            }
            for n in range(sizes.workers)
        ]
        roles = [
            {"person_id": first + n, "role": Role.WORKER.value, "grid_id": leaf, "created_at": NOW}
            for n, leaf in enumerate(leaves)
        ]
        data = quota_engine.generate(
            quota_engine.Size(sizes.households, sizes.workers),
            leaves,
            first,
            quota_engine.RULES_FROM,
            seed,
            sqlite,
            first_household=first,
            until=NOW,
        )
        tickets, events = month_of_tickets(
            sizes.month_tickets, leaves, top["ticket"] + 1, seed, street=root.id, after=last_short
        )
        async with engine.begin() as connection:
            for table, rows in (
                ("grid", grids),
                ("person", people),
                ("role_assignment", roles),
            ):
                for chunk in quota_engine.chunks(rows):
                    await connection.execute(insert(tables[table]), chunk)
            await quota_engine.bulk_insert(
                connection, "household", quota_engine.HOUSEHOLD_COLUMNS, data.households
            )
            await quota_engine.bulk_insert(
                connection, "visit", quota_engine.VISIT_COLUMNS, data.visits
            )
            await quota_engine.bulk_insert(
                connection, "visit_tally", quota_engine.TALLY_COLUMNS, data.tallies
            )
            for table, rows in (("ticket", tickets), ("ticket_event", events)):
                for chunk in quota_engine.chunks(rows, 2_000):
                    await connection.execute(insert(tables[table]), chunk)
            # the street's short-number counter goes on from the month's last ticket
            counter = tables["counter"]
            name = ticket_numbers.counter_name(root.id)
            await connection.execute(delete(counter).where(counter.c.name == name))
            await connection.execute(
                insert(counter), {"name": name, "value": last_short + len(tickets)}
            )
            if not sqlite:  # ids were given: move the sequences on
                for table in ("grid", "person", "household", "ticket", "ticket_event"):
                    await connection.execute(
                        text(
                            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                            f"(SELECT max(id) FROM {table}))"
                        )
                    )
        async with create_session_factory(engine)() as session:
            await quotas.ensure_default_rules(session, quota_engine.RULES_FROM, tz=TZ)
            await session.commit()
        await quota_engine.analyze(engine)
    finally:
        await engine.dispose()
    return (
        f"{len(grids):,} grids, {sizes.workers:,} workers, {sizes.households:,} households, "
        f"{len(data.visits):,} visits, {len(tickets):,} tickets last month"
    )


def city_grids(workers: int, first: int, root: Any) -> tuple[list[dict[str, Any]], list[int]]:
    """Communities (numbered from 101, beside the demo's), tier-2 grids of 30 tier-3 grids, one
    tier-3 grid per worker; ids from ``first``."""
    tier2_count = max(1, -(-workers // 30))
    community_count = max(1, -(-tier2_count // 20))
    rows: list[dict[str, Any]] = []
    next_id = first

    def add(tier: int, parent: dict[str, Any], index: int) -> dict[str, Any]:
        nonlocal next_id
        grid_id, next_id = next_id, next_id + 1
        row = {
            "id": grid_id,
            "code": child_code(parent["code"], parent["tier"], index),
            "name": f"网格{grid_id}",
            "tier": tier,
            "parent_id": parent["id"],
            "path": f"{parent['path']}{grid_id}/",
            "created_at": NOW,
        }
        rows.append(row)
        return row

    street = {"id": root.id, "code": root.code, "path": root.path, "tier": 0}
    communities = [add(1, street, 101 + n) for n in range(community_count)]
    tier2 = [add(2, communities[n // 20], n % 20 + 1) for n in range(tier2_count)]
    leaves = [add(3, tier2[n // 30], n % 30 + 1)["id"] for n in range(workers)]
    return rows, leaves


def month_of_tickets(
    count: int,
    leaves: Sequence[int],
    first_id: int,
    seed: int,
    *,
    street: int,
    after: int = 0,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Tickets filed in February 2026 over the city's grids (all in ``street``, numbered on
    from its short number ``after``), in the shares a month ends with (most closed, some
    resolved, the rest in hand), 5 % escalated once. Nothing is due, so the deadline sweep
    leaves them alone."""
    rng = random.Random(seed + 1)
    start = datetime(2026, 2, 1, tzinfo=TZ).astimezone(UTC)
    tickets: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for n in range(count):
        ticket_id = first_id + n
        grid = leaves[n % len(leaves)]
        created = start + timedelta(seconds=rng.uniform(0, 27 * 86_400))
        accepted = created + timedelta(minutes=rng.uniform(5, 600))
        resolved = accepted + timedelta(hours=rng.uniform(2, 120))
        roll = rng.random()
        state = (
            "closed"
            if roll < 0.65
            else "resolved"
            if roll < 0.75
            else "in_progress"
            if roll < 0.85
            else "accepted"
            if roll < 0.93
            else "dispatched"
        )
        done = state in ("closed", "resolved")
        tickets.append(
            {
                "id": ticket_id,
                "number": f"BM{ticket_id:08d}",
                "street_id": street,
                "short_number": after + n + 1,
                "grid_id": grid,
                "state": state,
                "owner_grid_id": grid,
                "owner_role": Role.WORKER.value,
                "routing_rule": "default",
                "sla": {},
                "dispatched_at": created,
                "accept_deadline": created + timedelta(hours=4),
                "resolve_deadline": created + timedelta(days=5),
                "next_deadline_at": None,
                "warn_at": None,
                "accepted_at": None if state == "dispatched" else accepted,
                "resolved_at": resolved if done else None,
                "closed_at": resolved + timedelta(hours=20) if state == "closed" else None,
                "solved": (rng.random() < 0.9) if state == "closed" else None,
                "rating": rng.choice(["satisfied", "basically_satisfied", "unsatisfied"])
                if state == "closed"
                else None,
                "reopen_count": 1 if rng.random() < 0.03 else 0,
                "escalation_count": 0,
                "category": rng.choice([c.value for c in CATEGORIES]),
                "kind": "general",
                "description": f"第{n + 1}件：{DESCRIPTIONS[n % len(DESCRIPTIONS)]}",
                "created_at": created,
                "updated_at": resolved if done else accepted,
                "version": 1,
            }
        )
        if rng.random() < 0.05:
            tickets[-1]["escalation_count"] = 1
            events.append(
                {
                    "ticket_id": ticket_id,
                    "at": created + timedelta(hours=4, minutes=1),
                    "action": "escalated",
                    "from_state": "dispatched",
                    "to_state": "dispatched",
                    "data": {"to_tier": 2},
                }
            )
    return tickets, events


# ================================================================================================
# A scenario's world
# ================================================================================================


@dataclass
class World:
    url: str
    server: TimedSandbox
    sandbox: RunningSandbox
    client: SandboxClient
    bot: BotHandle
    residents: list[Resident]
    config: dict[str, Any]
    log_path: Path
    host: type[BotProcess] | type[InlineBot] = BotProcess
    echo_process: BotHandle | None = None

    def engine(self) -> AsyncEngine:
        return create_engine(self.url, poolclass=NullPool)

    async def persona(self, name: str) -> Persona:
        user = self.server.users[DEMO_PERSONAS[name]].to_api()
        return self.client.persona_for(user, bot=BOT_USERNAME)

    @contextlib.asynccontextmanager
    async def echo(self) -> AsyncIterator[list[Resident]]:
        """An aiogram echo bot in a process of its own, and the residents talking to it."""
        self.server.register_bot(ECHO_TOKEN, username=ECHO_USERNAME, first_name="回声")
        echo_bot = self.server.get_bot(ECHO_USERNAME)
        for resident in self.residents:
            echo_bot.relation(resident.persona.id).started = True
        config = {**self.config, "kind": "echo"}
        async with self.host(config, self.log_path) as process:
            self.echo_process = process
            yield [
                Resident(
                    self.client.persona_for(r.persona.user, bot=ECHO_USERNAME),
                    self.server,
                    r.number,
                    r.timeout,
                    echo=True,
                )
                for r in self.residents
            ]


class Run:
    """One invocation: the databases, the temporary folder, the figures."""

    def __init__(self, args: argparse.Namespace, folder: Path) -> None:
        self.args = args
        self.sizes: Sizes = args.sizes
        self.folder = folder
        self.databases = Databases(args.database_url, folder, self.sizes, args.seed)
        self.rows: list[Row] = []
        self.figures: dict[str, Any] = {}

    @property
    def backend(self) -> str:
        return self.databases.backend

    def row(self, *cells: str) -> None:
        self.rows.append(Row(*cells))

    @contextlib.asynccontextmanager
    async def world(
        self, level: Level, rate_limits: RateLimits, limits: LimitSettings
    ) -> AsyncIterator[World]:
        url = await self.databases.copy(level)
        server = TimedSandbox(clock=RunningClock().now, rate_limits=rate_limits)
        server.register_bot(TOKEN, username=BOT_USERNAME, first_name="网格通")
        gridbot = server.get_bot(BOT_USERNAME)
        engine = create_engine(url, poolclass=NullPool)
        try:
            async with engine.connect() as connection:
                people = (
                    await connection.execute(
                        select(Person.telegram_id, Person.name).where(
                            col(Person.telegram_id).is_not(None)
                        )
                    )
                ).all()
        finally:
            await engine.dispose()
        for telegram_id, name in people:
            server.create_user(name, user_id=telegram_id, language_code="zh-hans")
            gridbot.relation(telegram_id).started = True  # they have talked to the bot before
        connector = aiohttp.TCPConnector(limit=0)
        log_path = self.folder / "bot.log"
        try:
            async with (
                aiohttp.ClientSession(connector=connector) as http,
                run_sandbox(server, host="127.0.0.1", port=0) as sandbox,
                SandboxClient(sandbox.url, session=http) as client,
            ):
                config = {
                    "kind": "gridbot",
                    "sandbox_url": sandbox.url,
                    "database_url": url,
                    "limits": limits.model_dump(),
                    "data_dir": str(self.folder),
                }
                host = InlineBot if self.args.bot_in_process else BotProcess
                async with host(config, log_path) as bot:
                    residents = [
                        Resident(
                            client.persona_for(
                                server.users[resident_id(n)].to_api(), bot=BOT_USERNAME
                            ),
                            server,
                            n,
                            self.sizes.step_timeout,
                        )
                        for n in range(self.sizes.residents)
                    ]
                    yield World(
                        url, server, sandbox, client, bot, residents, config, log_path, host
                    )
        finally:
            await self.databases.discard(url)


# ================================================================================================
# The scenarios
# ================================================================================================


async def scenario_a(run: Run) -> None:
    """Replies before bulk: the 08:00 push draining at 30 msg/s while residents converse."""
    s = run.sizes
    say(
        f"(a) replies before bulk — limits on; {s.workers:,} workers get the 08:00 push, "
        f"{s.conversing} residents converse (think {s.think:g} s)"
    )
    async with run.world("city", RateLimits(), TELEGRAM) as w:
        talk = Conversations(w.residents[: s.conversing], s.think, run.args.seed)
        talk.start()
        await asyncio.sleep(s.idle_seconds)
        pushed = time.monotonic()
        job = await w.bot.call("job", name="daily_task_push")
        engine = w.engine()
        try:
            async with engine.connect() as connection:
                bulk = int(
                    (
                        await connection.execute(
                            text("SELECT count(*) FROM outbox WHERE ref LIKE 'dp:%'")
                        )
                    ).scalar()
                    or 0
                )
        finally:
            await engine.dispose()
        await asyncio.sleep(s.bulk_seconds)
        end = time.monotonic()
        await talk.stop()
        worker = lambda chat: WORKER_IDS <= chat < WORKER_IDS + 10_000_000  # noqa: E731
        pushes = w.server.sent_to(worker, pushed, end)
        everything = w.server.sent_to(lambda _chat: True, pushed, end)
    first = min(pushes, default=end)
    idle = Latencies.of(settled(talk.samples, 0, pushed))
    during = Latencies.of(within(talk.samples, first, end))
    window = max(end - first, 1e-9)
    rate = sustained(pushes)  # the middle 90 %: not the first burst, nor a drained tail
    say(f"  idle:             {idle.line()}")
    say(
        f"  push queued:      {bulk:,} messages in {job['seconds']:.1f} s"
        + (f" — job failed: {job['error']}" if job["error"] else "")
    )
    say(f"  while it drains:  {during.line()}")
    say(
        f"  push delivered:   {len(pushes):,} in {window:.1f} s, {rate:.1f} msg/s sustained; "
        f"all messages {len(everything) / window:.1f} msg/s"
    )
    run.row(
        "a",
        "replies while the push drains, p50",
        ms(during.p50),
        ms(idle.p50),
        ratio(during.p50, idle.p50),
    )
    run.row(
        "a",
        "replies while the push drains, p99",
        ms(during.p99),
        ms(idle.p99),
        ratio(during.p99, idle.p99),
        "≤ 1.5 s",
        verdict(during.p99 <= 1.5),
    )
    run.row(
        "a",
        "failed steps while it drains",
        f"{during.failed}/{during.steps}",
        f"{idle.failed}/{idle.steps}",
        "",
        "0",
        verdict(during.failed == 0),
    )
    run.row(
        "a",
        "push delivered, msg/s sustained",
        f"{rate:.1f}",
        "30",
        f"{rate / TELEGRAM_RATE:.2f}×",
        "≥ 0.90×",
        verdict(rate >= 0.9 * TELEGRAM_RATE),
    )
    run.row("a", "push queued (job)", f"{job['seconds']:.1f} s", f"{bulk:,} msgs")
    run.figures["a"] = {
        "idle": asdict(idle),
        "during": asdict(during),
        "bulk": bulk,
        "queued_seconds": job["seconds"],
        "bulk_rate": rate,
    }


async def scenario_b(
    run: Run, *, show: str = "bg", jobs: Sequence[str] = ("i", "ii", "iii")
) -> None:
    """No frozen chats (and the memory of (g)): lag and replies while long work runs."""
    s = run.sizes
    say(
        f"(b) no frozen chats — limits off; {s.conversing} residents converse while the bot "
        f"plans the push for {s.workers:,} workers, exports {s.households:,} households and "
        f"sends the monthly digest of {s.month_tickets:,} tickets"
    )
    async with run.world("city", RateLimits.off(), FAST) as w:
        admin = await w.persona("admin")
        talk = Conversations(w.residents[: s.conversing], s.think, run.args.seed)
        await w.bot.probe()
        started = time.monotonic()
        talk.start()
        await asyncio.sleep(s.idle_seconds)
        idle_end = time.monotonic()
        idle_probe = await w.bot.probe(reset_memory=True)
        windows: dict[str, tuple[float, float, dict[str, Any], str]] = {}
        if "i" in jobs:
            begin = time.monotonic()
            job = await w.bot.call("job", name="daily_task_push")
            windows["i"] = (
                begin,
                time.monotonic(),
                await w.bot.probe(),
                f"{job['seconds']:.1f} s" + (f" FAILED {job['error']}" if job["error"] else ""),
            )
            await w.bot.drained()
            await w.bot.probe()
        if "ii" in jobs:
            await talk.back(time.monotonic(), s.step_timeout + 15)
            await w.bot.probe()
            begin = time.monotonic()
            await admin.send("/export households")
            ledger = None
            deadline = begin + 1_800
            while ledger is None and time.monotonic() < deadline:
                try:  # the sandbox answers a wait within a minute at most: wait again
                    message = await admin.next_message(deadline - time.monotonic())
                except TimeoutError:
                    continue
                if message.document is not None:
                    ledger = message
            end = (
                w.server.arrived(admin.chat_id, ledger.message_id) if ledger else time.monotonic()
            )
            size = (ledger.document or {}).get("file_size", 0) if ledger else 0
            windows["ii"] = (
                begin,
                end,
                await w.bot.probe(),
                f"{end - begin:.1f} s, {size / 1e6:.1f} MB" if ledger else "no ledger came",
            )
            await w.bot.drained()
        memory_probe = await w.bot.probe()
        if "iii" in jobs:
            await talk.back(time.monotonic(), s.step_timeout + 15)
            await w.bot.probe()
            begin = time.monotonic()
            job = await w.bot.call("job", name="monthly_indicators")
            windows["iii"] = (
                begin,
                time.monotonic(),
                await w.bot.probe(),
                f"{job['seconds']:.1f} s" + (f" FAILED {job['error']}" if job["error"] else ""),
            )
        await talk.stop()
    idle = Latencies.of(settled(talk.samples, started, idle_end))
    names = {
        "i": "(i) 08:00 push plan",
        "ii": "(ii) /export households",
        "iii": "(iii) monthly digest",
    }
    if "b" in show:
        say(
            f"  idle:                 {idle.line()}; lag max {ms(idle_probe['lag_max'])}, "
            f"p99 {ms(idle_probe['lag_p99'])}; {idle_probe['errors']} errors logged"
        )
    run.figures["b"] = {"idle": asdict(idle), "idle_probe": idle_probe}
    for key, (begin, end, probe, took) in windows.items():
        during = Latencies.of(overlapping(talk.samples, begin, end))
        run.figures["b"][key] = {"residents": asdict(during), "probe": probe, "took": took}
        if "b" not in show:
            continue
        say(
            f"  {names[key]:<21} {took}; lag max {ms(probe['lag_max'])}, p99 "
            f"{ms(probe['lag_p99'])}; residents {during.line()}; {probe['errors']} errors "
            f"logged{': ' + '; '.join(probe['first_errors']) if probe['first_errors'] else ''}"
        )
        label = names[key]
        run.row("b", f"{label}: took", took)
        run.row(
            "b",
            f"{label}: loop lag max",
            ms(probe["lag_max"]),
            ms(idle_probe["lag_max"]),
            "",
            "≤ 100 ms",
            verdict(probe["lag_max"] <= 0.100),
        )
        run.row(
            "b",
            f"{label}: residents p99",
            ms(during.p99),
            ms(idle.p99),
            ratio(during.p99, idle.p99),
            "≤ 2× idle",
            verdict(during.p99 <= 2 * idle.p99 if during.steps else None),
        )
        failures = during.failed + probe["errors"]
        run.row(
            "b",
            f"{label}: failed steps / errors logged",
            f"{during.failed}/{during.steps} · {probe['errors']}",
            "",
            "",
            "0",
            verdict(failures == 0),
        )
    if "g" in show:
        peak, rest = memory_probe.get("rss_peak", math.nan), idle_probe.get("rss", math.nan)
        say(
            f"(g) memory — bot process RSS at rest {rest:.0f} MB; peak through the push and "
            f"the export {peak:.0f} MB (+{peak - rest:.0f} MB)"
        )
        run.row("g", "peak RSS, (b)(i)+(ii)", f"{peak:.0f} MB", f"{rest:.0f} MB at rest",
                ratio(peak, rest), "≤ 200 MB", verdict(peak <= 200))  # fmt: skip
        run.row("g", "growth above rest", f"{peak - rest:.0f} MB")
        run.figures["g"] = {"rest_mb": rest, "peak_mb": peak}


async def load_run(
    run: Run,
    w: World,
    residents: Sequence[Resident],
    rate: float,
    duration: float,
    process: BotHandle,
) -> dict[str, Any]:
    """One open-loop run against ``process``: latencies, failures and the process's figures.
    CPU a step is the process's CPU time less what it spends idle (its polling and the probe's
    ticker), measured for two seconds before."""
    quiet = min(2.0, duration / 2)
    idle = await process.probe()
    await asyncio.sleep(quiet)
    before = await process.probe()
    background = (before["cpu"] - idle["cpu"]) / quiet
    parent_cpu, began = time.process_time(), time.monotonic()
    samples, arrivals, busy = await open_loop(residents, rate, duration, run.args.seed + int(rate))
    elapsed = time.monotonic() - began
    after = await process.probe()
    figures = Latencies.of(samples)
    steps = max(1, figures.steps - figures.failed)
    return {
        "latencies": figures,
        "arrivals": arrivals,
        "busy": busy,
        "rate": arrivals / duration,
        "cpu_ms": (after["cpu"] - before["cpu"] - background * elapsed) * 1000 / steps,
        "parent_cpu": (time.process_time() - parent_cpu) / max(elapsed, 1e-9),
        "connects": after["connects"] - before["connects"],
        "errors": after["errors"],
        "deadlocks": after["deadlocks"],
        "first_errors": after["first_errors"],
        "lag_max": after["lag_max"],
    }


def load_line(figures: dict[str, Any]) -> str:
    lat: Latencies = figures["latencies"]
    busy = f", {figures['busy']} arrivals found everyone busy" if figures["busy"] else ""
    return (
        f"{figures['rate']:.0f}/s offered: {lat.line()}; {figures['cpu_ms']:.2f} ms CPU a step, "
        f"{figures['errors']} errors logged; load generator {figures['parent_cpu']:.0%} of a "
        f"core{busy}"
    )


async def pg_sessions(url: str) -> int | None:
    if not url.startswith("postgresql"):
        return None
    engine = create_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            value = (
                await connection.execute(
                    text(
                        "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
                    )
                )
            ).scalar()
        return int(value or 0)
    except Exception:  # PostgreSQL before 14 has no such column
        return None
    finally:
        await engine.dispose()


async def scenario_c(run: Run, *, show_c: bool = True, show_d: bool = False) -> None:
    s = run.sizes
    if show_c:
        say(
            f"(c) capacity — limits off; residents arrive open-loop at {s.rate:g}/s for "
            f"{s.duration:g} s ({s.residents} residents)"
        )
    if show_d and not show_c:
        say(f"(d) PostgreSQL hygiene — a {s.duration:g} s run at {s.rate:g}/s")
    async with run.world("base", RateLimits.off(), FAST) as w:
        # warm up: every resident once through the first steps, unmeasured
        warm_up = min(3.0, s.duration / 2)
        await open_loop(w.residents, min(s.rate, 50), warm_up, run.args.seed - 1)
        sessions_before = await pg_sessions(w.url)
        main = await load_run(run, w, w.residents, s.rate, s.duration, w.bot)
        sessions_after = await pg_sessions(w.url)
        knee: list[tuple[float, dict[str, Any]]] = []
        if run.args.knee and show_c:
            for rate in s.knee_rates:
                figures = await load_run(run, w, w.residents, rate, s.knee_seconds, w.bot)
                knee.append((rate, figures))
                say(f"  knee, GridBot: {load_line(figures)}")
                if past_knee(figures):
                    break
        echo_main: dict[str, Any] | None = None
        echo_knee: list[tuple[float, dict[str, Any]]] = []
        if show_c:
            async with w.echo() as echoes:
                await open_loop(echoes, min(s.rate, 50), warm_up, run.args.seed - 2)
                assert w.echo_process is not None
                echo_main = await load_run(run, w, echoes, s.rate, s.duration, w.echo_process)
                if run.args.knee:
                    for rate in s.echo_knee_rates:
                        figures = await load_run(
                            run, w, echoes, rate, s.knee_seconds, w.echo_process
                        )
                        echo_knee.append((rate, figures))
                        say(f"  knee, echo:    {load_line(figures)}")
                        if past_knee(figures):
                            break
    lat: Latencies = main["latencies"]
    if show_c:
        assert echo_main is not None
        echo_lat: Latencies = echo_main["latencies"]
        say(f"  GridBot: {load_line(main)}")
        say(f"  echo:    {load_line(echo_main)}")
        run.row(
            "c",
            f"{s.rate:g}/s for {s.duration:g} s, p50",
            ms(lat.p50),
            ms(echo_lat.p50),
            ratio(lat.p50, echo_lat.p50),
        )
        run.row(
            "c",
            f"{s.rate:g}/s for {s.duration:g} s, p99",
            ms(lat.p99),
            ms(echo_lat.p99),
            ratio(lat.p99, echo_lat.p99),
            "≤ 250 ms",
            verdict(lat.p99 <= 0.250),
        )
        run.row(
            "c",
            "failed steps / errors logged",
            f"{lat.failed}/{lat.steps} · {main['errors']}",
            f"{echo_lat.failed}/{echo_lat.steps}",
            "",
            "0",
            verdict(lat.failed + main["errors"] == 0),
        )
        run.row(
            "c",
            "CPU a step (bot process)",
            f"{main['cpu_ms']:.2f} ms",
            f"{echo_main['cpu_ms']:.2f} ms",
            ratio(main["cpu_ms"], echo_main["cpu_ms"]),
        )
        if run.args.knee:
            run.row(
                "c",
                "knee (p99 > 1 s)",
                knee_text(knee, s.knee_rates),
                knee_text(echo_knee, s.echo_knee_rates),
            )
        run.figures["c"] = {
            "gridbot": _plain(main),
            "echo": _plain(echo_main),
            "knee": [(r, _plain(f)) for r, f in knee],
            "echo_knee": [(r, _plain(f)) for r, f in echo_knee],
        }
    if show_d:
        pool = w.bot.pool_size
        opened = main["connects"]
        sessions = (
            None
            if sessions_before is None or sessions_after is None
            else sessions_after - sessions_before - 1  # less this bench's own look
        )
        say(
            f"(d) connections the bot opened during the {s.duration:g} s run: {opened} "
            f"(pool size {pool}); PostgreSQL sessions started: "
            f"{'—' if sessions is None else sessions}; deadlocks logged: {main['deadlocks']}"
        )
        run.row(
            "d",
            f"connections opened in {s.duration:g} s",
            str(opened),
            f"pool {pool}",
            "",
            "≤ pool size",
            verdict(pool is not None and opened <= pool),
        )
        run.row(
            "d",
            "deadlocks logged",
            str(main["deadlocks"]),
            "",
            "",
            "0",
            verdict(main["deadlocks"] == 0),
        )
        run.figures["d"] = {
            "connects": opened,
            "pool_size": pool,
            "pg_sessions": sessions,
            "deadlocks": main["deadlocks"],
            "backend": run.backend,
            "steps": lat.steps,
            "failed": lat.failed,
        }


def past_knee(figures: dict[str, Any]) -> bool:
    lat: Latencies = figures["latencies"]
    return lat.p99 > 1.0 or lat.failed > 0.01 * max(lat.steps, 1) or figures["busy"] > 0


def knee_text(steps: list[tuple[float, dict[str, Any]]], ladder: Sequence[float]) -> str:
    for rate, figures in steps:
        if past_knee(figures):
            below = [r for r, f in steps if not past_knee(f)]
            return f"{rate:g}/s" + (f" (ok at {below[-1]:g}/s)" if below else "")
    return f"> {max(ladder):g}/s"


def _plain(figures: dict[str, Any]) -> dict[str, Any]:
    return {k: (asdict(v) if isinstance(v, Latencies) else v) for k, v in figures.items()}


# --- (e) the sweep ------------------------------------------------------------------------------


async def scenario_e(run: Run) -> None:
    from bench.deadline_sweep import template

    s = run.sizes
    say(
        f"(e) sweep wait — a worker's 签收 while the deadline sweep settles {s.sweep_batch} "
        f"overdue tickets, {s.sweep_rounds} rounds"
    )
    accept = zh("✅ Accept")
    idle_waits: list[float] = []
    sweep_waits: list[float] = []
    sweeps: list[float] = []
    async with run.world("base", RateLimits.off(), FAST) as w:
        worker = await w.persona("worker")
        engine = w.engine()
        try:
            async with engine.connect() as connection:
                grid_of_worker = (
                    await connection.execute(
                        select(RoleAssignment.grid_id)
                        .join(Person, col(Person.id) == RoleAssignment.person_id)
                        .where(
                            Person.telegram_id == DEMO_PERSONAS["worker"],
                            RoleAssignment.role == Role.WORKER,
                        )
                    )
                ).scalar_one()
                reporters = {
                    grid_id: person_id
                    for grid_id, person_id in (
                        await connection.execute(
                            select(RoleAssignment.grid_id, RoleAssignment.person_id)
                            .join(Person, col(Person.id) == RoleAssignment.person_id)
                            .where(
                                RoleAssignment.role == Role.RESIDENT,
                                col(Person.telegram_id) < RESIDENT_IDS,
                            )
                        )
                    ).all()
                }
                street_id = (
                    await connection.execute(select(Grid.id).where(Grid.tier == 0))
                ).scalar_one()
                residents_here = set(
                    (
                        await connection.execute(
                            select(Person.telegram_id)
                            .join(RoleAssignment, col(Person.id) == RoleAssignment.person_id)
                            .where(
                                RoleAssignment.grid_id == grid_of_worker,
                                RoleAssignment.role == Role.RESIDENT,
                            )
                        )
                    ).scalars()
                )
            here = [r for r in w.residents if r.persona.id in residents_here]
            if not here:
                raise SystemExit(
                    "(e) needs a resident in the worker's grid: --residents 27 or more"
                )
            filers = itertools.cycle(here)

            async def card_for_new_ticket() -> tuple[ChatMessage, int]:
                filer = next(filers)
                await catch_up(worker)
                await filer.file_a_report()
                for _ in range(6):
                    card = await worker.next_message(s.step_timeout)
                    if accept in card.buttons:
                        break
                else:
                    raise RuntimeError("the worker got no card to accept")
                async with engine.connect() as connection:
                    ticket_id = (
                        await connection.execute(
                            select(func.max(Ticket.id))
                            .join(Person, col(Person.id) == Ticket.reporter_id)
                            .where(Person.telegram_id == filer.persona.id)
                        )
                    ).scalar_one()
                return card, int(ticket_id)

            async def press(card: ChatMessage) -> float:
                """Seconds from the press to the first thing the worker sees: the toast, the
                card edited, or a message (a toast the bot gives later than 15 s never shows,
                as on Telegram)."""
                seq = int((await worker.transcript()).raw["seq"])
                pressed = time.monotonic()
                await worker.press(accept, message_id=card.message_id)
                return await first_answer(w.client, worker, seq, s.step_timeout) - pressed

            number = 0
            for _round in range(s.sweep_rounds):
                card, _ = await card_for_new_ticket()
                idle_waits.append(await press(card))
                await w.bot.drained()
                card, ticket_id = await card_for_new_ticket()
                due = NOW - timedelta(days=2)
                elsewhere = [grid for grid in reporters if grid != grid_of_worker]
                batch = []
                for n in range(s.sweep_batch - 1):
                    number += 1
                    clock = template(due - timedelta(seconds=n))
                    grid_id = elsewhere[n % len(elsewhere)]
                    batch.append(
                        {
                            "number": f"SW{number:08d}",
                            # far above what the street's counter hands out meanwhile
                            "street_id": street_id,
                            "short_number": 1_000_000 + number,
                            "grid_id": grid_id,
                            "reporter_id": reporters[grid_id],
                            "state": "dispatched",
                            "owner_grid_id": grid_id,
                            "owner_role": Role.WORKER.value,
                            "routing_rule": "default",
                            "sla": json.loads(clock.sla),
                            "dispatched_at": clock.dispatched_at,
                            "accept_deadline": clock.accept_deadline,
                            "resolve_deadline": clock.resolve_deadline,
                            "next_deadline_at": clock.next_deadline_at,
                            "warn_at": clock.warn_at,
                            "category": TicketCategory.FACILITY.value,
                            "kind": "general",
                            "description": f"第{number}号路灯不亮了",
                            "created_at": clock.dispatched_at,
                            "updated_at": clock.dispatched_at,
                            "version": 1,
                        }
                    )
                middle = template(due - timedelta(seconds=(s.sweep_batch - 1) // 2))
                async with engine.begin() as connection:
                    await connection.execute(insert(models.metadata.tables["ticket"]), batch)
                    await connection.execute(
                        update(Ticket)
                        .where(col(Ticket.id) == ticket_id)
                        .values(
                            dispatched_at=middle.dispatched_at,
                            accept_deadline=middle.accept_deadline,
                            next_deadline_at=middle.next_deadline_at,
                            warn_at=middle.warn_at,
                        )
                    )
                job = asyncio.create_task(w.bot.call("job", name="escalate_overdue"))
                await asyncio.sleep(s.press_after)
                sweep_waits.append(await press(card))
                result = await job
                if result["error"]:
                    say(f"  the sweep failed: {result['error']}")
                sweeps.append(result["seconds"])
                await w.bot.drained()
                say(
                    f"  round {_round + 1}: 签收 idle {ms(idle_waits[-1])}, during the sweep "
                    f"{ms(sweep_waits[-1])}; the sweep took {result['seconds']:.1f} s"
                )
        finally:
            await engine.dispose()
    worst = max(sweep_waits, default=math.nan)
    idle = percentile(idle_waits, 50)
    run.row(
        "e",
        "签收 during the sweep, max",
        ms(worst),
        ms(max(idle_waits, default=math.nan)),
        ratio(worst, idle),
        "≤ 100 ms",
        verdict(worst <= 0.100),
    )
    run.row("e", "the sweep itself", f"{percentile(sweeps, 50):.1f} s", f"{s.sweep_batch} tickets")
    run.figures["e"] = {"idle": idle_waits, "during": sweep_waits, "sweeps": sweeps}


# --- (f) fan-out --------------------------------------------------------------------------------


async def paced_baseline(w: World, chats: Sequence[int], rate: float) -> tuple[float, int]:
    """aiogram alone in this process, each send starting 1/``rate`` s after the one before
    (never sooner, whatever was late): msg/s and the 429s it drew."""
    from aiogram import Bot
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.exceptions import TelegramRetryAfter

    bot = Bot(TOKEN, session=AiohttpSession(api=w.sandbox.telegram_api_server()))
    refused = 0
    times: list[float] = []
    previous = -math.inf
    try:
        for chat_id in chats:
            for _ in range(20):
                wait = previous + 1 / rate - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                previous = time.monotonic()
                try:
                    await bot.send_message(chat_id, "基准消息")
                except TelegramRetryAfter as error:
                    refused += 1
                    await asyncio.sleep(error.retry_after)
                    continue
                times.append(time.monotonic())
                break
    finally:
        await bot.session.close()
    return sustained(times), refused


async def scenario_f(run: Run) -> None:
    s = run.sizes
    say(
        f"(f) fan-out — {s.fanout:,} outbox messages to {s.fanout:,} chats, sandbox limits "
        f"as a token bucket and as a strict sliding window"
    )
    for mode in ("bucket", "sliding"):
        limits = RateLimits(model=mode)
        async with run.world("base", limits, TELEGRAM) as w:
            offset = FANOUT_IDS + (0 if mode == "bucket" else 1_000_000)
            gridbot = w.server.get_bot(BOT_USERNAME)
            chats = list(range(offset, offset + s.fanout + s.fanout_baseline))
            for chat_id in chats:
                w.server.create_user(f"居民{chat_id % 100_000}", user_id=chat_id)
                gridbot.relation(chat_id).started = True
            base_rate, base_refused = await paced_baseline(w, chats[s.fanout :], 29.5)
            await asyncio.sleep(1.1)  # the window forgets the baseline
            refused_before = w.server.stats.statuses[429]
            engine = w.engine()
            try:
                async with create_session_factory(engine)() as session:
                    now = RunningClock().now()
                    for n, chat_id in enumerate(chats[: s.fanout]):
                        outbox.send_text(session, chat_id=chat_id, text=f"通知 {n}", now=now)
                    await session.commit()
            finally:
                await engine.dispose()
            began = time.monotonic()
            await w.bot.call("wake")
            targets = set(chats[: s.fanout])
            deadline = began + s.fanout / 10 + 60
            while time.monotonic() < deadline:
                got = w.server.sent_to(targets.__contains__, began, math.inf)
                if len(got) >= s.fanout:
                    break
                await asyncio.sleep(0.25)
            times = w.server.sent_to(targets.__contains__, began, math.inf)
            per_chat = Counter(chat for _, chat in w.server.sent if chat in targets)
            refused = w.server.stats.statuses[429] - refused_before
        rate = sustained(times)
        lost = sum(1 for chat in targets if per_chat[chat] == 0)
        duplicated = sum(n - 1 for n in per_chat.values() if n > 1)
        say(
            f"  {mode:<8} outbox: {len(times):,} delivered, {rate:.1f} msg/s sustained "
            f"({rate / TELEGRAM_RATE:.3f} × 30), {refused} × 429, {lost} lost, {duplicated} "
            f"duplicated; aiogram paced at 29.5/s: {base_rate:.1f} msg/s, {base_refused} × 429"
        )
        run.row(
            "f",
            f"{mode}: outbox msg/s",
            f"{rate:.1f}",
            f"{base_rate:.1f} paced",
            f"{rate / TELEGRAM_RATE:.2f}× 30",
            "≥ 0.95× 30",
            verdict(rate >= 0.95 * TELEGRAM_RATE),
        )
        run.row(
            "f",
            f"{mode}: 429 answers / lost / duplicated",
            f"{refused} / {lost} / {duplicated}",
            f"{base_refused} paced",
            "",
            "— / 0 / 0",
            verdict(lost == 0 and duplicated == 0),
        )
        run.figures.setdefault("f", {})[mode] = {
            "rate": rate,
            "refused": refused,
            "lost": lost,
            "duplicated": duplicated,
            "baseline_rate": base_rate,
            "baseline_refused": base_refused,
        }


# ================================================================================================
# The run
# ================================================================================================


def width(text_: str) -> int:
    """Columns ``text_`` takes in a terminal (a Chinese character takes two)."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text_)


def table(rows: Sequence[Row]) -> str:
    header = Row("", "figure", "value", "baseline", "ratio", "target", "")
    cells = [[getattr(r, f) for f in Row.__dataclass_fields__] for r in [header, *rows]]
    widths = [max(width(row[n]) for row in cells) for n in range(len(cells[0]))]
    lines = []
    for n, values in enumerate(cells):
        padded = (v + " " * (w - width(v)) for v, w in zip(values, widths, strict=True))
        lines.append("  ".join(padded).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> Run:
    """Every chosen scenario, in order; prints the figures and returns them."""
    with tempfile.TemporaryDirectory(prefix="gridbot-load-") as directory:
        current = Run(args, Path(directory))
        s = current.sizes
        say(
            f"bench.load on {current.backend}{' (quick)' if args.quick else ''}; "
            f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; "
            f"scenarios {','.join(args.scenarios)}"
        )
        chosen = set(args.scenarios)
        try:
            if "a" in chosen:
                await scenario_a(current)
            if chosen & {"b", "g"}:
                show = "".join(k for k in "bg" if k in chosen)
                await scenario_b(
                    current, show=show, jobs=("i", "ii", "iii") if "b" in chosen else ("i", "ii")
                )
            if chosen & {"c", "d"}:
                await scenario_c(current, show_c="c" in chosen, show_d="d" in chosen)
            if "e" in chosen:
                await scenario_e(current)
            if "f" in chosen:
                await scenario_f(current)
        finally:
            await current.databases.close()
        say(f"\nload average at the end {os.getloadavg()[0]:.1f}")
        say(table(current.rows))
        if args.json:
            args.json.write_text(
                json.dumps(
                    {
                        "backend": current.backend,
                        "sizes": asdict(s),
                        "rows": [asdict(r) for r in current.rows],
                        "figures": current.figures,
                    },
                    ensure_ascii=False,
                    indent=1,
                    default=str,
                )
            )
        return current


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
