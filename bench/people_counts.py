"""People counts per grid (/mygrid's 户籍/常住/流动) at city scale: 900,000 persons.

Loads the city of ``bench/quota_engine.py`` (300,000 households, 12,000 workers, three
persons a household: ``bench/people.py``) or reuses its ``--sqlite-file``, then times

(a) a plain scan reading ``(household_id, status)`` of every person — the baseline;
(b) :func:`bot.services.members.grid_counts` for the street (every person);
(c) the same for every community (tier 1) in turn, all together;
(d) the same for ``--leaves`` tier-3 grids (a worker's /mygrid), all together, against
(d0) a plain read of those grids' persons' status (join on ``household.grid_id``, no
    grouping, no grid path) — the baseline for one grid;

and prints the medians of a few runs and the ratios (b)/(a), (c)/(a) and (d)/(d0).
The target is ≤ 3× the baseline for each.

    .venv/bin/python -m bench.people_counts                          # full size, SQLite
    .venv/bin/python -m bench.people_counts --quick                  # 20,000 households
    .venv/bin/python -m bench.people_counts --sqlite-file /tmp/quota.db   # reuse a load
    .venv/bin/python -m bench.people_counts \\
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/gridbot_bench
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import tempfile
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import NullPool
from sqlmodel import col
from sqlmodel import select as sqlmodel_select
from sqlmodel.ext.asyncio.session import AsyncSession

import models
from bench import people
from bench.quota_engine import (
    FULL,
    QUICK,
    Size,
    Step,
    already_loaded,
    analyze,
    load,
    prepare_postgresql,
    timed,
)
from bot import migrate
from bot.db import create_engine
from bot.services.members import grid_counts
from models import Grid

TARGET = 3.0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.people_counts", description=__doc__)
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
        help="keep the SQLite database in this file (the same as bench.quota_engine's)",
    )
    parser.add_argument("--leaves", type=int, default=200, help="tier-3 grids timed in (d)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each step")
    parser.add_argument("--seed", type=int, default=2026)
    return parser.parse_args(argv)


async def grids_of_tier(engine: AsyncEngine, tier: int) -> list[Grid]:
    async with AsyncSession(engine) as session:
        found = await session.exec(
            sqlmodel_select(Grid).where(col(Grid.tier) == tier).order_by(col(Grid.id))
        )
        return list(found)


def steps(street: Grid, communities: list[Grid], leaves: list[Grid]) -> dict[str, Step]:
    member = models.metadata.tables["household_member"]
    household = models.metadata.tables["household"]

    async def scan(session: AsyncSession) -> int:
        connection = await session.connection()
        rows = await connection.execute(select(member.c.household_id, member.c.status))
        return len(rows.all())

    async def street_counts(session: AsyncSession) -> int:
        return (await grid_counts(session, street)).total

    async def community_counts(session: AsyncSession) -> int:
        return sum([(await grid_counts(session, grid)).total for grid in communities])

    async def leaf_reads(session: AsyncSession) -> int:
        connection = await session.connection()
        read = 0
        for grid in leaves:
            rows = await connection.execute(
                select(member.c.status)
                .join(household, household.c.id == member.c.household_id)
                .where(household.c.grid_id == grid.id, member.c.moved_out.is_(None))
            )
            read += len(rows.all())
        return read

    async def leaf_counts(session: AsyncSession) -> int:
        return sum([(await grid_counts(session, grid)).total for grid in leaves])

    return {
        "scan": scan,
        "street": street_counts,
        "communities": community_counts,
        "leaf reads": leaf_reads,
        "leaves": leaf_counts,
    }


async def measure(url: str, size: Size, runs: int, seed: int, leaf_count: int) -> None:
    engine = create_engine(url, poolclass=NullPool)
    try:
        if await already_loaded(engine, size):
            await analyze(engine)
            print("reusing the loaded database")
        else:
            loaded = await load(engine, size, seed, people.PER_HOUSEHOLD)
            print(
                f"loaded {loaded.households:,} households, {loaded.persons:,} persons "
                f"under {loaded.grids:,} grids in {loaded.seconds:.1f} s"
            )
        async with engine.connect() as connection:
            persons = (
                await connection.execute(
                    select(func.count()).select_from(models.metadata.tables["household_member"])
                )
            ).scalar() or 0
        if not persons:
            raise SystemExit("the database holds no persons: load it with --persons 3")
        (street,) = await grids_of_tier(engine, 0)
        communities = await grids_of_tier(engine, 1)
        leaves = random.Random(seed).sample(
            await grids_of_tier(engine, 3), min(leaf_count, size.workers)
        )
        print(
            f"{persons:,} persons; {len(communities)} communities, {len(leaves)} tier-3 grids "
            f"sampled; {runs} runs"
        )
        results = await timed(engine, steps(street, communities, leaves), runs)
        base, scanned = results["scan"]
        whole, counted = results["street"]
        tier1, tier1_counted = results["communities"]
        leaf_base, leaf_read = results["leaf reads"]
        leaf, leaf_counted = results["leaves"]
        print(
            f"(a)  scan household_member (household_id, status) {scanned:>9,} rows  {base:7.3f} s"
        )
        print(
            f"(b)  grid_counts, the street                      {counted:>9,} people "
            f"{whole:7.3f} s"
            f"   (b)/(a)  = {whole / base:.2f}"
        )
        print(
            f"(c)  grid_counts, each community                  {tier1_counted:>9,} people "
            f"{tier1:7.3f} s   (c)/(a)  = {tier1 / base:.2f}"
        )
        print(
            f"(d0) plain read, {len(leaves)} tier-3 grids one by one     {leaf_read:>9,} rows  "
            f"{leaf_base:7.3f} s"
        )
        print(
            f"(d)  grid_counts, the same grids                  {leaf_counted:>9,} people "
            f"{leaf:7.3f} s   (d)/(d0) = {leaf / leaf_base:.2f}"
            f"   ({leaf / len(leaves) * 1000:.1f} ms a grid)"
        )
        worst = max(whole / base, tier1 / base, leaf / leaf_base)
        print(f"target ≤ {TARGET:.2f} × the baseline: {'within' if worst <= TARGET else 'OVER'}")
    finally:
        await engine.dispose()


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    size = QUICK if args.quick else FULL
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
        print(
            f"people counts benchmark on {make_url(url).get_backend_name()}: "
            f"{size.households:,} households, {size.workers:,} workers"
        )
        migrate.upgrade(url)
        asyncio.run(measure(url, size, args.runs, args.seed, args.leaves))


if __name__ == "__main__":
    main()
