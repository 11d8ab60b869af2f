"""Inspections due at city scale: which places every worker must inspect, for all at once.

Loads the quota engine's city (``bench.quota_engine``: 300,000 households, 12,000 workers, a
quarter of visits) and beside it 100,000 places of the six default place types, spread over
the workers' grids, most inspected some time in the last two months, some never, a few with
hazards waiting for their re-inspection. Then times

(a) a plain scan reading ``(id, grid_id)`` of every place — the baseline;
(b) :func:`bot.services.inspections.due_by_worker` for every worker (the morning push's read);
(c) :func:`bot.services.inspection_ledgers.coverage` of the whole street (the centre's /quota);

and prints the ratios (b)/(a) and (c)/(a), medians of a few runs in the same process on the
same data. The target is ≤ 3× the scan. Beside each figure: the seconds Python's garbage
collector spent inside the step (a full collection of this process's heap takes a large part
of a second, and falls on whichever step allocates past the collector's threshold), and the
ratios without them.

    .venv/bin/python -m bench.inspection_due            # 100,000 places, SQLite
    .venv/bin/python -m bench.inspection_due --quick    # 10,000 places, 20,000 households
    .venv/bin/python -m bench.inspection_due \\
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/gridbot_bench
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import NullPool
from sqlmodel.ext.asyncio.session import AsyncSession

import models
from bench.quota_engine import (
    FULL,
    NOW,
    QUICK,
    RULES_FROM,
    Size,
    analyze,
    bulk_insert,
    grid_rows,
    load,
    prepare_postgresql,
    timed,
)
from bot import migrate
from bot.db import create_engine
from bot.services import inspection_ledgers, inspections
from bot.services.place_policy import DEFAULT_POLICY

PLACES_FULL, PLACES_QUICK = 100_000, 10_000
NEVER_SHARE = 0.05  # places added and not yet inspected
HAZARD_SHARE = 0.03  # places with a hazard waiting for its re-inspection

PLACE_COLUMNS = [
    "id",
    "code",
    "name",
    "type_key",
    "grid_id",
    "address",
    "active",
    "last_inspected_at",
    "next_due_at",
    "created_at",
    "updated_at",
]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.inspection_due", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="10,000 places beside 20,000 households"
    )
    parser.add_argument("--places", type=int, default=None)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("GRIDBOT_BENCH_DATABASE_URL"),
        help="postgresql+asyncpg://…/gridbot_bench (default: SQLite in a temporary directory)",
    )
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each step")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args(argv)
    if args.places is not None and args.places < 1:
        parser.error("--places must be at least 1")
    return args


def _stamp(sqlite: bool) -> Any:
    def stamp(instant: Any) -> Any:
        if instant is None or not sqlite:
            return instant
        return instant.replace(tzinfo=None).isoformat(" ", "microseconds")

    return stamp


async def load_places(
    engine: AsyncEngine, size: Size, places: int, seed: int
) -> tuple[dict[int, list[str]], int]:
    """The places (and their hazards) in the workers' grids; each worker's scope."""
    rng = random.Random(seed + 1)
    grids, leaves = grid_rows(size.workers, RULES_FROM)
    path_of = {row["id"]: row["path"] for row in grids}
    sqlite = engine.dialect.name == "sqlite"
    stamp = _stamp(sqlite)
    types = [t.key for t in DEFAULT_POLICY.types]
    intervals = {t.key: c.interval for t in DEFAULT_POLICY.types if (c := t.cadence_of("worker"))}
    now = NOW
    place_rows: list[tuple[Any, ...]] = []
    hazard_rows: list[tuple[Any, ...]] = []
    inspection_rows: list[tuple[Any, ...]] = []
    for n in range(places):
        place_id = n + 1
        leaf = leaves[n % len(leaves)]
        last = None if rng.random() < NEVER_SHARE else now - timedelta(hours=rng.randint(1, 1440))
        type_key = rng.choice(types)
        place_rows.append(
            (
                place_id,
                f"P{place_id:07d}",
                f"场所{place_id}",
                type_key,
                leaf,
                f"杏林路{place_id}号",
                True,
                stamp(last),
                stamp(RULES_FROM if last is None else last + intervals[type_key]),
                stamp(RULES_FROM),
                stamp(RULES_FROM),
            )
        )
        if last is not None and rng.random() < HAZARD_SHARE:
            inspection_id = len(inspection_rows) + 1
            inspection_rows.append(
                (
                    inspection_id,
                    place_id,
                    1,
                    "routine",
                    False,
                    stamp(last),
                    "{}",
                    "{}",
                    "",
                    stamp(last),
                    stamp(last),
                )
            )
            hazard_rows.append(
                (
                    place_id,
                    inspection_id,
                    "exits_clear",
                    "疏散通道畅通",
                    "grave",
                    "open",
                    stamp(last),
                    stamp(last + timedelta(days=1)),
                )
            )
    async with engine.begin() as connection:
        await bulk_insert(connection, "place", PLACE_COLUMNS, place_rows)
        await bulk_insert(
            connection,
            "inspection",
            [
                "id",
                "place_id",
                "inspector_id",
                "kind",
                "refused",
                "inspected_at",
                "results",
                "photos",
                "note",
                "created_at",
                "updated_at",
            ],
            inspection_rows,
        )
        await bulk_insert(
            connection,
            "hazard",
            [
                "place_id",
                "inspection_id",
                "item_key",
                "item_text",
                "severity",
                "state",
                "found_at",
                "fix_by",
            ],
            hazard_rows,
        )
    scopes = {1 + n: [path_of[leaf]] for n, leaf in enumerate(leaves)}
    return scopes, len(hazard_rows)


class Collector:
    """The seconds the garbage collector spends inside each call of a step (``gc.callbacks``)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.started = 0.0
        self.calls: dict[str, list[tuple[float, float]]] = {}  # step -> (elapsed, collecting)

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self.started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self.started

    def step(
        self, name: str, step: Callable[[AsyncSession], Awaitable[int]]
    ) -> Callable[[AsyncSession], Awaitable[int]]:
        async def counted(session: AsyncSession) -> int:
            self.seconds, began = 0.0, time.perf_counter()
            rows = await step(session)
            self.calls.setdefault(name, []).append((time.perf_counter() - began, self.seconds))
            return rows

        return counted

    def medians(self, name: str) -> tuple[float, float]:
        """Median seconds in the collector, and median seconds outside it (the warm-up left
        out, as ``timed`` does)."""
        calls = self.calls[name][1:]
        return (
            statistics.median(collecting for _, collecting in calls),
            statistics.median(elapsed - collecting for elapsed, collecting in calls),
        )


async def measure(url: str, size: Size, places: int, runs: int, seed: int) -> None:
    engine = create_engine(url, poolclass=NullPool)
    try:
        began = time.perf_counter()
        loaded = await load(engine, size, seed)
        scopes, hazards = await load_places(engine, size, places, seed)
        await analyze(engine)
        print(
            f"loaded {loaded.households:,} households, {loaded.workers:,} workers, "
            f"{places:,} places and {hazards:,} open hazards in "
            f"{time.perf_counter() - began:.1f} s"
        )

        async def scan(session: AsyncSession) -> int:
            place = models.metadata.tables["place"]
            connection = await session.connection()
            return len((await connection.execute(select(place.c.id, place.c.grid_id))).all())

        async def due(session: AsyncSession) -> int:
            totals: dict[int, int] = {}  # as the push reads it: the first ten and a count
            await inspections.due_by_worker(
                session,
                scopes,
                DEFAULT_POLICY,
                NOW,
                limit=inspections.MAX_IN_PUSH,
                totals=totals,
            )
            return sum(totals.values())

        async def coverage(session: AsyncSession) -> int:
            rows = await inspection_ledgers.coverage(session, ["/1/"], DEFAULT_POLICY, NOW)
            return sum(row.places for row in rows)

        collector = Collector()
        steps = {"scan": scan, "due": due, "coverage": coverage}
        gc.callbacks.append(collector)
        try:
            results = await timed(
                engine, {name: collector.step(name, step) for name, step in steps.items()}, runs
            )
        finally:
            gc.callbacks.remove(collector)
        base, scanned = results["scan"]
        spent, found = results["due"]
        cover, counted = results["coverage"]
        gc_base, net_base = collector.medians("scan")
        gc_due, net_due = collector.medians("due")
        gc_cover, net_cover = collector.medians("coverage")
        print(
            f"(a) scan place (id, grid_id)        {scanned:>9,} rows     {base:7.3f} s"
            f"   (collector {gc_base:.3f} s; without it {net_base:.3f} s)"
        )
        print(
            f"(b) due_by_worker, all workers      {found:>9,} due      {spent:7.3f} s"
            f"   (b)/(a) = {spent / base:.2f}"
            f"   (collector {gc_due:.3f} s; without it {net_due / net_base:.2f})"
        )
        print(
            f"(c) coverage of the street          {counted:>9,} places   {cover:7.3f} s"
            f"   (c)/(a) = {cover / base:.2f}"
            f"   (collector {gc_cover:.3f} s; without it {net_cover / net_base:.2f})"
        )
        verdict = "within" if max(spent, cover) <= 3 * base else "OVER"
        net = "within" if max(net_due, net_cover) <= 3 * net_base else "OVER"
        print(f"target ≤ 3.00 × the scan: {verdict}; without the collector: {net}")
    finally:
        await engine.dispose()


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    size = QUICK if args.quick else FULL
    places = args.places or (PLACES_QUICK if args.quick else PLACES_FULL)
    with tempfile.TemporaryDirectory(prefix="gridbot-bench-") as directory:
        if args.database_url:
            url = args.database_url
            prepare_postgresql(url)
        else:
            url = f"sqlite+aiosqlite:///{Path(directory) / 'bench.db'}"
        backend = make_url(url).get_backend_name()
        print(
            f"inspections due on {backend}: {places:,} places beside "
            f"{size.households:,} households"
        )
        migrate.upgrade(url)
        asyncio.run(measure(url, size, places, args.runs, args.seed))


if __name__ == "__main__":
    main()
