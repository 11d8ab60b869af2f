"""The quota engine at city scale: who is still due, for every worker at once.

Builds a migrated database (SQLite in a temporary directory by default; PostgreSQL with
``--database-url`` or ``GRIDBOT_BENCH_DATABASE_URL``), bulk-loads a grid tree, the workers,
the households with three persons each (``bench/people.py``; ``--persons`` changes it) and a
quarter's worth of visits with their tallies, then times

(a) a plain scan reading ``(id, worker_id)`` of every household — the baseline;
(b) :func:`bot.services.quotas.due_pairs` for all workers;
(c) :func:`bot.services.quotas.plan_daily_push` for all workers;

and prints the row counts and the ratios (b)/(a) and (c)/(a), medians of a few runs measured
in the same process against the same data. The target is ≤ 3× the scan.

    .venv/bin/python -m bench.quota_engine                    # 300,000 households, SQLite
    .venv/bin/python -m bench.quota_engine --quick            # 20,000 households
    .venv/bin/python -m bench.quota_engine --sqlite-file /tmp/quota.db  # load once, reuse
    .venv/bin/python -m bench.quota_engine \\
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/gridbot_bench

The PostgreSQL database is dropped and created afresh through a connection to the ``test``
database of the same server; it must not be ``test`` itself (the test suite resets that one).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from pydantic import SecretStr
from sqlalchemy import func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import NullPool
from sqlmodel.ext.asyncio.session import AsyncSession

import models
from bench import people
from bot import migrate
from bot.db import create_engine
from bot.services import daily_push, quotas
from bot.services.addresses import address_key
from bot.services.periods import PeriodKind, period_start
from bot.settings import Settings
from bot.telegram.visit_views import render_push

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 3, 20, 10, 0, tzinfo=TZ).astimezone(UTC)  # a Friday, late in Q1
RULES_FROM = datetime(2026, 1, 1, 9, 0, tzinfo=TZ).astimezone(UTC)
CHUNK = 5_000
TELEGRAM_IDS = 8_000_000_000  # the workers' chats, far from the demo accounts'
KEY_SHARE = 0.25  # households in one of the six categories (六类户)
T = TypeVar("T")
PUSH_SETTINGS = Settings(
    _env_file=None,  # type: ignore[call-arg]
    bot_token=SecretStr("200000001:GridBotBenchmarkToken_abcdefghijklmn"),
)


@dataclass(frozen=True)
class Size:
    households: int
    workers: int


FULL = Size(households=300_000, workers=12_000)
QUICK = Size(households=20_000, workers=800)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.quota_engine", description=__doc__)
    parser.add_argument("--households", type=int, default=None)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="20,000 households, 800 workers")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("GRIDBOT_BENCH_DATABASE_URL"),
        help="postgresql+asyncpg://…/gridbot_bench (default: SQLite in a temporary directory)",
    )
    parser.add_argument(
        "--sqlite-file",
        type=Path,
        default=None,
        help="keep the SQLite database in this file and reuse it when it already holds the "
        "same number of households (same --households/--workers/--seed): no second load",
    )
    parser.add_argument(
        "--persons",
        type=int,
        default=None,
        help=f"persons per household in household_member (default {people.PER_HOUSEHOLD}, "
        "0 with --quick): 900,000 beside the 300,000 households",
    )
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each step")
    parser.add_argument("--seed", type=int, default=2026)
    return parser.parse_args(argv)


# --- the data -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Loaded:
    grids: int
    workers: int
    households: int
    persons: int
    visits: int
    tallies: int
    seconds: float


def grid_rows(workers: int, now: datetime) -> tuple[list[dict[str, Any]], list[int]]:
    """Street centre → communities → tier-2 grids → one tier-3 grid per worker (ids given)."""
    tier2_count = max(1, -(-workers // 30))
    community_count = max(1, -(-tier2_count // 20))
    rows: list[dict[str, Any]] = []
    next_id = 1

    def add(tier: int, parent: dict[str, Any] | None, number: int) -> dict[str, Any]:
        nonlocal next_id
        grid_id, next_id = next_id, next_id + 1
        code = ("350211001" if parent is None else parent["code"]) + (
            "" if parent is None else f"{number:03d}" if tier < 3 else f"{number:04d}"
        )
        row = {
            "id": grid_id,
            "code": code,
            "name": f"网格{grid_id}",
            "tier": tier,
            "parent_id": None if parent is None else parent["id"],
            "path": ("/" if parent is None else parent["path"]) + f"{grid_id}/",
            "created_at": now,
        }
        rows.append(row)
        return row

    root = add(0, None, 0)
    communities = [add(1, root, n + 1) for n in range(community_count)]
    tier2 = [add(2, communities[n // 20], n % 20 + 1) for n in range(tier2_count)]
    leaves = [add(3, tier2[n // 30], n % 30 + 1)["id"] for n in range(workers)]
    return rows, leaves


def visit_time(rng: random.Random, month: int, last_day: int) -> tuple[datetime, date]:
    """A visit during working hours on a day of ``month`` 2026: (UTC instant, local day)."""
    day = date(2026, month, rng.randint(1, last_day))
    local = datetime(2026, month, day.day, rng.randint(8, 17), rng.randint(0, 59), tzinfo=TZ)
    return local.astimezone(UTC), day


Stamp = Callable[[datetime], Any]
Day = Callable[[date], Any]


@dataclass
class Data:
    """Rows as the database driver takes them, for ``executemany``."""

    households: list[tuple[Any, ...]]
    visits: list[tuple[Any, ...]]
    tallies: list[tuple[Any, ...]]


HOUSEHOLD_COLUMNS = [
    "id",
    "code",
    "grid_id",
    "worker_id",
    "address",
    "address_key",
    "head_name",
    "members",
    "categories",
    "is_key",
    "is_business",
    "created_at",
    "updated_at",
]
VISIT_COLUMNS = [
    "household_id",
    "worker_id",
    "kind",
    "visited_at",
    "note",
    "created_at",
    "updated_at",
]
TALLY_COLUMNS = [
    "household_id",
    "period",
    "period_start",
    "contacts",
    "in_person",
    "lectures",
    "last_visit_at",
]


def generate(
    size: Size,
    leaves: list[int],
    first_person: int,
    now: datetime,
    seed: int,
    sqlite: bool,
    *,
    first_household: int = 1,
    until: datetime = NOW,
) -> Data:
    """Households spread evenly over the workers; Q1 2026 visits up to ``until``; their tallies.

    Households take the ids ``first_household`` on (``bench/load.py`` loads them beside the
    demo community's).

    Each month most households get a contact (key ones a home visit), most a micro-lecture
    in the quarter, most ordinary ones a home visit in the quarter — with gaps, so that the
    engine has something to find. The tallies are what :func:`visits.log_visit` would have
    kept: per household, the month, quarter and year of each visit's local day.
    """
    stamp: Stamp = _sqlite_stamp if sqlite else _same
    flag: Callable[[bool], Any] = int if sqlite else bool
    day_value: Day = date.isoformat if sqlite else _same
    rng = random.Random(seed)
    households: list[tuple[Any, ...]] = []
    visits: list[tuple[Any, ...]] = []
    tallies: list[tuple[Any, ...]] = []
    months = ((1, 31, 0.92), (2, 28, 0.88), (3, until.astimezone(TZ).day - 1, 0.62))
    created = stamp(now)
    for n in range(size.households):
        household_id = first_household + n
        worker_id = first_person + n % size.workers
        categories = 1 << rng.randrange(6) if rng.random() < KEY_SHARE else 0
        households.append(
            (
                household_id,
                f"H{household_id:07d}",
                leaves[n % size.workers],
                worker_id,
                f"幸福路{household_id}号",
                address_key(f"幸福路{household_id}号"),
                f"住户{household_id}",
                rng.randint(1, 6),
                categories,
                flag(categories != 0),
                flag(False),
                created,
                created,
            )
        )
        made: list[tuple[str, datetime, date]] = []
        for month, last_day, share in months:
            if rng.random() < share:
                kind = (
                    "in_person"
                    if categories and rng.random() < 0.95
                    else rng.choice(("phone", "other", "in_person"))
                )
                made.append((kind, *visit_time(rng, month, last_day)))
        if rng.random() < 0.75:
            month, last_day, _share = rng.choice(months)
            made.append(("lecture", *visit_time(rng, month, last_day)))
        if not categories and rng.random() < 0.7:
            month, last_day, _share = rng.choice(months)
            made.append(("in_person", *visit_time(rng, month, last_day)))
        counts: dict[tuple[str, date], list[Any]] = {}
        for kind, at, day in sorted(made, key=lambda v: v[1]):
            at_value = stamp(at)
            visits.append(
                (household_id, worker_id, kind, at_value, "走访记录", at_value, at_value)
            )
            for period in PeriodKind:
                row = counts.setdefault((period.value, period_start(period, day)), [0, 0, 0, None])
                row[0] += 1
                row[1] += kind == "in_person"
                row[2] += kind == "lecture"
                row[3] = at_value
        tallies.extend(
            (household_id, period, day_value(start), *row)
            for (period, start), row in counts.items()
        )
    return Data(households, visits, tallies)


def _same(value: T) -> T:
    return value


def _sqlite_stamp(instant: datetime) -> str:
    """How :class:`models.types.UTCDateTime` stores an instant on SQLite."""
    return instant.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def chunks(rows: Iterable[T], size: int = CHUNK) -> Iterator[list[T]]:
    """Lists of ``size`` rows (a generator's rows are made one chunk at a time)."""
    rows = iter(rows)
    while chunk := list(islice(rows, size)):
        yield chunk


async def bulk_insert(
    connection: AsyncConnection, table: str, columns: list[str], rows: Iterable[tuple[Any, ...]]
) -> int:
    """``executemany`` straight through the driver, in chunks (no per-row ORM or compiling)."""
    if connection.dialect.name == "postgresql":
        slots = ", ".join(f"${i + 1}" for i in range(len(columns)))
    else:
        slots = ", ".join("?" for _ in columns)
    statement = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({slots})"
    count = 0
    for chunk in chunks(rows):
        await connection.exec_driver_sql(statement, chunk)
        count += len(chunk)
    return count


async def load(
    engine: AsyncEngine, size: Size, seed: int, persons: int = people.PER_HOUSEHOLD
) -> Loaded:
    """Bulk-load everything with chunked inserts (executemany), in one transaction;
    ``persons`` people per household in the register (``bench/people.py``)."""
    began = time.perf_counter()
    now = RULES_FROM
    tables = models.metadata.tables
    grids, leaves = grid_rows(size.workers, now)
    first_person = 1
    workers = [
        {
            "id": first_person + n,
            "name": f"网格员{n + 1}",
            "telegram_id": TELEGRAM_IDS + n,
            "reachable": True,
            "active": True,
            "created_at": now,
            "updated_at": now,
        }
        for n in range(size.workers)
    ]
    sqlite = engine.dialect.name == "sqlite"
    data = generate(size, leaves, first_person, now, seed, sqlite)
    async with engine.begin() as connection:
        for table, rows in (("grid", grids), ("person", workers)):
            for chunk in chunks(rows):
                await connection.execute(insert(tables[table]), chunk)
        await bulk_insert(connection, "household", HOUSEHOLD_COLUMNS, data.households)
        await bulk_insert(connection, "visit", VISIT_COLUMNS, data.visits)
        await bulk_insert(connection, "visit_tally", TALLY_COLUMNS, data.tallies)
        members = people.member_rows(
            [row[0] for row in data.households], now, sqlite=sqlite, per_household=persons
        )
        persons_loaded = await bulk_insert(
            connection, "household_member", people.MEMBER_COLUMNS, members
        )
        if not sqlite:  # the ids were given: move the sequences on
            for table, count in (
                ("grid", grids),
                ("person", workers),
                ("household", data.households),
            ):
                await connection.execute(
                    text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), :n)"),
                    {"n": len(count)},
                )
    async with AsyncSession(engine) as session:
        await quotas.ensure_default_rules(session, RULES_FROM, tz=TZ)
        await session.commit()
    await analyze(engine)
    return Loaded(
        grids=len(grids),
        workers=len(workers),
        households=len(data.households),
        persons=persons_loaded,
        visits=len(data.visits),
        tallies=len(data.tallies),
        seconds=time.perf_counter() - began,
    )


async def analyze(engine: AsyncEngine) -> None:
    """Fresh planner statistics, as a running database would have."""
    if engine.dialect.name == "postgresql":
        async with engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text("VACUUM ANALYZE"))
    else:
        async with engine.begin() as connection:
            await connection.execute(text("ANALYZE"))


# --- the measurements ---------------------------------------------------------------------------


async def scan(session: AsyncSession) -> int:
    """(a) Every household's id and worker: the least any engine must read."""
    household = models.metadata.tables["household"]
    connection = await session.connection()
    rows = (await connection.execute(select(household.c.id, household.c.worker_id))).all()
    return len(rows)


async def engine_due(session: AsyncSession) -> int:
    """(b) Every due (household, rule) pair, for all workers."""
    return len(await quotas.due_pairs(session, NOW, tz=TZ))


async def engine_plan(session: AsyncSession) -> int:
    """(c) Today's push for every worker."""
    plans = await quotas.plan_daily_push(session, NOW, tz=TZ)
    return sum(len(p.suggestions) for p in plans.values())


async def morning_push(session: AsyncSession) -> int:
    """The whole 08:00 sweep: plans, open tickets, meetings, claims and every worker's
    rendered push queued in the outbox (rolled back like every step)."""
    await daily_push.send_daily_pushes(session, NOW, PUSH_SETTINGS, render_push)
    await session.flush()
    connection = await session.connection()
    outbox = models.metadata.tables["outbox"]
    queued = select(func.count()).select_from(outbox).where(outbox.c.ref.like("dp:%"))
    return int((await connection.execute(queued)).scalar() or 0)


async def engine_progress(session: AsyncSession) -> int:
    """The centre's /quota table: grids side by side (for information)."""
    return len(await quotas.progress(session, NOW, by="grid", scope_path="/1/", tz=TZ))


Step = Callable[[AsyncSession], Awaitable[int]]


async def timed(
    engine: AsyncEngine, steps: dict[str, Step], runs: int
) -> dict[str, tuple[float, int]]:
    """Median seconds and rows of each step over ``runs`` rounds (after a warm-up round).

    The steps take turns within each round, each in its own session, so that whatever else
    the machine is doing weighs on all of them alike.
    """
    seconds: dict[str, list[float]] = {name: [] for name in steps}
    rows: dict[str, int] = {}
    for attempt in range(runs + 1):
        for name, step in steps.items():
            async with AsyncSession(engine) as session:
                began = time.perf_counter()
                rows[name] = await step(session)
                elapsed = time.perf_counter() - began
                await session.rollback()
            if attempt:
                seconds[name].append(elapsed)
    return {name: (statistics.median(seconds[name]), rows[name]) for name in steps}


# --- the run ------------------------------------------------------------------------------------


def prepare_postgresql(url: str) -> None:
    """Drop and create the bench database through the server's ``test`` database."""
    target = make_url(url)
    if target.database in (None, "", "test", "postgres"):
        raise SystemExit("choose a database of its own for the benchmark, e.g. gridbot_bench")
    admin_url = target.set(database="test").render_as_string(hide_password=False)

    async def recreate() -> None:
        admin = create_engine(admin_url, poolclass=NullPool)
        async with admin.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{target.database}"'))
            await connection.execute(text(f'CREATE DATABASE "{target.database}"'))
        await admin.dispose()

    asyncio.run(recreate())


async def already_loaded(engine: AsyncEngine, size: Size) -> bool:
    """Whether a kept database holds this size's households already."""
    async with engine.connect() as connection:
        count = (await connection.execute(text("SELECT count(*) FROM household"))).scalar()
    if count not in (0, size.households):
        raise SystemExit(f"the kept database holds {count:,} households: delete it first")
    return count == size.households


async def measure(url: str, size: Size, runs: int, seed: int, persons: int) -> None:
    engine = create_engine(url, poolclass=NullPool)
    try:
        if await already_loaded(engine, size):
            await analyze(engine)  # a new index since the last run needs its statistics
            print("reusing the loaded database")
        else:
            loaded = await load(engine, size, seed, persons)
            print(
                f"loaded {loaded.workers:,} workers, {loaded.households:,} households "
                f"({loaded.persons:,} persons), "
                f"{loaded.visits:,} visits and {loaded.tallies:,} tallies "
                f"under {loaded.grids:,} grids in {loaded.seconds:.1f} s"
            )
        async with AsyncSession(engine) as session:
            rules = await quotas.list_rules(session, NOW, tz=TZ)
        local = NOW.astimezone(TZ)
        print(f"now {local:%Y-%m-%d %H:%M} {TZ.key}; {len(rules)} rules in force; {runs} runs")
        results = await timed(
            engine,
            {
                "scan": scan,
                "due": engine_due,
                "plan": engine_plan,
                "progress": engine_progress,
                "push": morning_push,
            },
            runs,
        )
        base, scanned = results["scan"]
        due, pairs = results["due"]
        plan, suggested = results["plan"]
        table, grids = results["progress"]
        push, messages = results["push"]
        print(f"(a) scan household (id, worker_id)  {scanned:>9,} rows        {base:7.3f} s")
        print(
            f"(b) due_pairs, all workers          {pairs:>9,} pairs       {due:7.3f} s"
            f"   (b)/(a) = {due / base:.2f}"
        )
        print(
            f"(c) plan_daily_push, all workers    {suggested:>9,} suggestions {plan:7.3f} s"
            f"   (c)/(a) = {plan / base:.2f}"
        )
        print(
            f"    progress by grid (the centre)   {grids:>9,} rows        {table:7.3f} s"
            f"   ratio   = {table / base:.2f}"
        )
        print(
            f"    the whole 08:00 push, queued    {messages:>9,} messages    {push:7.3f} s"
            f"   ratio   = {push / base:.2f}"
        )
        verdict = "within" if max(due, plan) <= 3 * base else "OVER"
        print(f"target ≤ 3.00 × the scan: {verdict}")
    finally:
        await engine.dispose()


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    size = QUICK if args.quick else FULL
    size = Size(args.households or size.households, args.workers or size.workers)
    if size.households < 1 or not 1 <= size.workers <= size.households:
        raise SystemExit("need at least one household and 1 ≤ workers ≤ households")
    persons = (
        args.persons if args.persons is not None else 0 if args.quick else people.PER_HOUSEHOLD
    )
    if persons < 0:
        raise SystemExit("--persons must be 0 or more")
    with tempfile.TemporaryDirectory(prefix="gridbot-bench-") as directory:
        if args.database_url:
            if args.sqlite_file:
                raise SystemExit("--sqlite-file is for SQLite only")
            url = args.database_url
            prepare_postgresql(url)
        elif args.sqlite_file:
            url = f"sqlite+aiosqlite:///{args.sqlite_file.resolve()}"
        else:
            url = f"sqlite+aiosqlite:///{Path(directory) / 'bench.db'}"
        backend = make_url(url).get_backend_name()
        print(
            f"quota engine benchmark on {backend}: {size.households:,} households, "
            f"{size.workers:,} workers, {persons} persons a household"
        )
        migrate.upgrade(url)
        asyncio.run(measure(url, size, args.runs, args.seed, persons))


if __name__ == "__main__":
    main()
