"""Household import and export at scale: a 50,000-row ledger in, and out again.

Builds a migrated database (SQLite in a temporary directory by default; PostgreSQL with
``--database-url`` or ``GRIDBOT_BENCH_DATABASE_URL``) holding a street of 2,000 tier-3 grids with
a worker each, writes a household file of ``--rows`` rows (XLSX and GBK CSV, as Excel in China
saves them), then times

(a) a plain bulk INSERT of the same rows, already parsed, without any check — the baseline;
(b) reading and checking the file alone (no database), XLSX and CSV;
(c) :func:`bot.services.imports.import_households` of the XLSX into the empty table;
    then ``--persons`` persons are registered for each household (default 3, set-based:
    ``bench/people.py``), so that (d)–(f) run beside the persons register;
(d) the same file again (every row unchanged);
(e) the file with one row in ten changed (updates);
(f) :func:`bot.services.exports.export_households` of everything;

and prints each time with its ratio to (a). Every step runs in a transaction rolled back
afterwards, except (c), which (d)–(f) build on.

    .venv/bin/python bench/import_households.py                 # 50,000 rows, SQLite
    .venv/bin/python bench/import_households.py --rows 5000     # quick
    .venv/bin/python -m bench.import_households \\
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/gridbot_bench

The PostgreSQL database is dropped and created afresh through a connection to the ``test``
database of the same server; it must not be ``test`` itself (the test suite resets that one).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import os
import random
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from openpyxl import Workbook
from sqlalchemy import insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import NullPool
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from bench import people
from bench.quota_engine import bulk_insert
from bot import migrate
from bot.db import create_engine
from bot.i18n import gettext_for
from bot.services.addresses import address_key
from bot.services.exports import export_households
from bot.services.imports import (
    ImportReport,
    import_households,
    normalise_phone,
    parse_households,
    read_household_file,
)
from bot.services.people import roles_of
from models import Grid, Household, Person, Role, RoleAssignment

NOW = datetime(2026, 3, 12, 1, 0, tzinfo=UTC)
STREET = "350211001"
COMMUNITIES, TIER2_PER_COMMUNITY, TIER3_PER_TIER2 = 20, 10, 10  # 2,000 tier-3 grids
HEADER = ["户编号", "网格编码", "户主姓名", "联系电话", "地址", "家庭人口", "户类别", "重点户"]
HEADER += ["工商企业户", "责任网格员", "备注"]
CATEGORIES = [
    "",
    "",
    "",
    "",
    "",
    "低保",
    "重病重残户",
    "空巢老人户",
    "留守儿童、烈属",
    "易返贫致贫户",
]
T = TypeVar("T")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument(
        "--persons",
        type=int,
        default=people.PER_HOUSEHOLD,
        help="persons registered per household after (c) (default 3; 0: none)",
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
        if name in (None, "test"):
            raise SystemExit("use a database of its own (not 'test'), e.g. …/gridbot_bench")
        admin = create_engine(
            make_url(url).set(database="test").render_as_string(hide_password=False),
            poolclass=NullPool,
            isolation_level="AUTOCOMMIT",
        )
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        await admin.dispose()
    await asyncio.to_thread(migrate.upgrade, url)
    return url


async def build_street(engine: AsyncEngine) -> tuple[list[str], dict[str, str]]:
    """The grid tree, an admin and a worker per tier-3 grid; tier-3 codes and worker phones."""
    tier3: list[str] = []
    worker_of: dict[str, str] = {}
    async with AsyncSession(engine) as session:
        street = Grid(code=STREET, name="街道", tier=0, created_at=NOW)
        session.add(street)
        await session.flush()
        street.path = f"/{street.id}/"
        admin = Person(name="管理员", phone="+8613900000000", created_at=NOW, updated_at=NOW)
        session.add(admin)
        await session.flush()
        session.add(
            RoleAssignment(
                person_id=admin.id or 0, role=Role.ADMIN, grid_id=street.id or 0, created_at=NOW
            )
        )
        for c in range(1, COMMUNITIES + 1):
            community = await _grid(session, f"{STREET}{c:03d}", 1, street)
            for t in range(1, TIER2_PER_COMMUNITY + 1):
                tier2 = await _grid(session, f"{community.code}{t:02d}", 2, community)
                for k in range(1, TIER3_PER_TIER2 + 1):
                    grid = await _grid(session, f"{tier2.code}{k:02d}", 3, tier2)
                    phone = f"+86137{len(tier3):08d}"
                    worker = Person(
                        name=f"网格员{len(tier3)}", phone=phone, created_at=NOW, updated_at=NOW
                    )
                    session.add(worker)
                    await session.flush()
                    session.add(
                        RoleAssignment(
                            person_id=worker.id or 0,
                            role=Role.WORKER,
                            grid_id=grid.id or 0,
                            created_at=NOW,
                        )
                    )
                    tier3.append(grid.code)
                    worker_of[grid.code] = phone
        await session.commit()
    return tier3, worker_of


async def _grid(session: AsyncSession, code: str, tier: int, parent: Grid) -> Grid:
    grid = Grid(code=code, name=f"网格{code}", tier=tier, parent_id=parent.id, created_at=NOW)
    session.add(grid)
    await session.flush()
    grid.path = f"{parent.path}{grid.id}/"
    return grid


def household_rows(count: int, tier3: list[str], worker_of: dict[str, str]) -> list[list[str]]:
    rng = random.Random(2026)
    rows = []
    for n in range(count):
        grid = tier3[n % len(tier3)]
        rows.append(
            [
                f"{grid}{n // len(tier3) + 1:03d}",
                grid,
                f"户主{n}",
                f"139{n:08d}",
                f"杏林街道 {grid[-4:]} 号楼 {n % 300 + 101} 室",
                str(rng.randint(1, 6)),
                rng.choice(CATEGORIES),
                "",
                "否",
                worker_of[grid][3:],
                "",
            ]
        )
    return rows


def to_xlsx(rows: list[list[str]]) -> bytes:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet()
    sheet.append(HEADER)
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def to_csv(rows: list[list[str]]) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(HEADER)
    writer.writerows(rows)
    return buffer.getvalue().encode("gbk")


async def register_persons(engine: AsyncEngine, per_household: int) -> int:
    """``per_household`` persons for every household, inserted set-based (executemany)."""
    async with engine.begin() as connection:
        ids = (
            await connection.execute(select(col(Household.id)).order_by(col(Household.id)))
        ).scalars()
        rows = people.member_rows(
            [i for i in ids if i is not None],
            NOW,
            sqlite=engine.dialect.name == "sqlite",
            per_household=per_household,
        )
        return await bulk_insert(connection, "household_member", people.MEMBER_COLUMNS, rows)


async def timed(label: str, step: Callable[[], Awaitable[T]]) -> tuple[float, T]:
    started = time.perf_counter()
    result = await step()
    elapsed = time.perf_counter() - started
    print(f"  {label:<44} {elapsed:8.2f} s", flush=True)
    return elapsed, result


async def main() -> None:
    args = parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = await prepare_database(args.database_url, Path(folder))
        engine = create_engine(url, poolclass=NullPool)
        tier3, worker_of = await build_street(engine)
        rows = household_rows(args.rows, tier3, worker_of)
        xlsx, gbk = to_xlsx(rows), to_csv(rows)
        changed = [list(r) for r in rows]
        for row in changed[::10]:
            row[4] += " (新)"
        changed_xlsx = to_xlsx(changed)
        print(
            f"{args.rows:,} households in {len(tier3):,} grids on {engine.dialect.name}; "
            f"XLSX {len(xlsx) / 2**20:.1f} MB, CSV (GBK) {len(gbk) / 2**20:.1f} MB"
        )

        async def baseline() -> int:
            prepared = [
                {
                    "code": r[0],
                    "grid_id": 1,
                    "address": r[4],
                    "address_key": address_key(r[4]),
                    "head_name": r[2],
                    "phone": normalise_phone(r[3]),
                    "members": int(r[5]),
                    "created_at": NOW,
                    "updated_at": NOW,
                }
                for r in rows
            ]
            async with AsyncSession(engine) as session:
                for start in range(0, len(prepared), 2_000):
                    await session.exec(insert(Household), params=prepared[start : start + 2_000])
                await session.rollback()
            return len(prepared)

        async def parse(data: bytes) -> int:
            good, errors = parse_households(read_household_file(data))
            assert not errors, errors[:3]
            return len(good)

        async def run(data: bytes, keep: bool = False) -> ImportReport:
            async with AsyncSession(engine) as session:
                admin = await session.get(Person, 1)
                assert admin is not None and admin.id is not None
                report = await import_households(
                    session, admin, await roles_of(session, admin.id), data, now=NOW
                )
                assert report.ok, report.errors[:3]
                await (session.commit() if keep else session.rollback())
            return report

        async def export() -> int:
            async with AsyncSession(engine) as session:
                admin = await session.get(Person, 1)
                assert admin is not None and admin.id is not None
                data = await export_households(
                    session,
                    admin,
                    await roles_of(session, admin.id),
                    now=NOW,
                    translate=lambda m: gettext_for("zh_Hans", m),
                )
                await session.rollback()
            return len(data)

        steps: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
            ("(a) bulk INSERT, no checks (baseline)", baseline),
            ("(b) read + check XLSX, no database", lambda: parse(xlsx)),
            ("(b) read + check CSV (GBK), no database", lambda: parse(gbk)),
            ("(c) import XLSX into an empty table", lambda: run(xlsx, keep=True)),
            ("(d) import it again: all unchanged", lambda: run(xlsx)),
            ("(e) import with 1 row in 10 changed", lambda: run(changed_xlsx)),
            ("(f) export the household ledger", export),
        ]
        times: list[float] = []
        for label, step in steps:
            elapsed, result = await timed(label, step)
            times.append(elapsed)
            if isinstance(result, ImportReport):
                print(
                    f"  {'':<44} created {result.created:,}, updated {result.updated:,}, "
                    f"unchanged {result.unchanged:,}"
                )
            if label.startswith("(c)") and args.persons:
                registered = await register_persons(engine, args.persons)
                print(f"  {'':<44} then {registered:,} persons registered beside them")
        print("ratios to the baseline (a):")
        for (label, _), elapsed in zip(steps[1:], times[1:], strict=True):
            print(f"  {label:<44} {elapsed / times[0]:8.1f} ×")
        await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
