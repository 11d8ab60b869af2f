"""``gridbot export-all`` / ``import-all``: the demo community moves from SQLite to another
database (SQLite always, PostgreSQL when configured) with every table equal row by row, new
rows get fresh ids afterwards; and a file that is not a sound export, or a database that is not
empty, is refused in one translated line with nothing imported."""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid
import zipfile
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.pool import NullPool
from sqlmodel import col, select

from bot import moving
from bot.__main__ import main
from bot.clock import FrozenClock
from bot.db import create_engine, create_session_factory
from bot.i18n import gettext_for
from bot.services.demo import load_demo_data
from bot.startup import NOT_UP_TO_DATE, StartupProblem
from models import Grid, JobRun, Ticket
from tests.test_backup import file_one

Rows = dict[str, list[tuple[Any, ...]]]


def url_of(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def every_row(database_url: str) -> Rows:
    async def read() -> Rows:
        engine = create_engine(database_url, poolclass=NullPool)
        try:
            async with engine.connect() as connection:
                found: Rows = {}
                for table in moving.tables():
                    result = await connection.execute(
                        select(table).order_by(*table.primary_key.columns)
                    )
                    found[table.name] = [tuple(row) for row in result]
                return found
        finally:
            await engine.dispose()

    return asyncio.run(read())


@pytest.fixture
def pilot(sqlite_template: Path, tmp_path: Path, clock: FrozenClock) -> str:
    """The demo community with tickets (events, JSON, datetimes), a job run and a moved grid
    (its parent created after it: a reference forward in id order)."""
    path = tmp_path / "pilot.db"
    shutil.copy(sqlite_template, path)
    url = url_of(path)

    async def fill() -> None:
        engine = create_engine(url, poolclass=NullPool)
        async with create_session_factory(engine)() as session:
            await load_demo_data(session, clock.now())
            for n in range(3):
                await file_one(session, "resident", n, clock.now())
            session.add(
                JobRun(job_id="digests.weekly", last_started_at=clock.now(), last_status="ok")
            )
            root = (await session.exec(select(Grid).where(col(Grid.parent_id).is_(None)))).first()
            assert root is not None and root.id is not None
            late = Grid(
                code="ZZ-LATE",
                name="后建的上级网格",
                tier=root.tier,
                parent_id=root.id,
                path=f"{root.path}ZZ/",
                created_at=clock.now(),
            )
            session.add(late)
            await session.flush()
            first = (await session.exec(select(Grid).where(col(Grid.id) != late.id))).first()
            assert first is not None
            first.parent_id = late.id  # an older grid under a newer one
            await session.commit()
        await engine.dispose()

    asyncio.run(fill())
    return url


def empty_copy(sqlite_template: Path, folder: Path) -> str:
    path = folder / "city.db"
    shutil.copy(sqlite_template, path)
    return url_of(path)


def move_and_compare(pilot: str, city: str, export: Path) -> None:
    exported = moving.export_all(pilot, export)
    imported = moving.import_all(city, export)
    assert exported == imported and imported.rows > 900
    source, target = every_row(pilot), every_row(city)
    assert set(source) == set(target)
    for name, rows in source.items():
        assert target[name] == rows, name
    assert sum(map(len, source.values())) == imported.rows


def test_the_demo_community_moves_to_another_sqlite_database(
    pilot: str, sqlite_template: Path, tmp_path: Path, clock: FrozenClock
) -> None:
    city = empty_copy(sqlite_template, tmp_path)
    move_and_compare(pilot, city, tmp_path / "community.zip")
    assert_new_rows_get_fresh_ids(city, clock)


@pytest.fixture
def empty_pg(pg_url: str) -> Any:
    async def truncate() -> None:
        engine = create_engine(pg_url, poolclass=NullPool)
        tables = ", ".join(f'"{t.name}"' for t in moving.tables())
        async with engine.begin() as connection:
            await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        await engine.dispose()

    asyncio.run(truncate())
    yield pg_url
    asyncio.run(truncate())


def test_the_demo_community_moves_from_sqlite_to_postgresql(
    pilot: str, empty_pg: str, tmp_path: Path, clock: FrozenClock
) -> None:
    move_and_compare(pilot, empty_pg, tmp_path / "community.zip")
    assert_new_rows_get_fresh_ids(empty_pg, clock)


def assert_new_rows_get_fresh_ids(database_url: str, clock: FrozenClock) -> None:
    """Sequences moved past the imported ids: a new ticket and its events insert cleanly."""

    async def file() -> tuple[int, int]:
        engine = create_engine(database_url, poolclass=NullPool)
        async with create_session_factory(engine)() as session:
            highest = max((await session.exec(select(Ticket.id))).all())
            await file_one(session, "resident", 9, clock.now() + timedelta(hours=2))
            await session.commit()
            newest = max((await session.exec(select(Ticket.id))).all())
        await engine.dispose()
        return highest, newest

    highest, newest = asyncio.run(file())
    assert newest > highest


# -- refusals -------------------------------------------------------------------------------


@pytest.fixture
def export(pilot: str, tmp_path: Path) -> Path:
    path = tmp_path / "community.zip"
    moving.export_all(pilot, path)
    return path


def refused(database_url: str, path: Path) -> StartupProblem:
    with pytest.raises(StartupProblem) as problem:
        moving.import_all(database_url, path)
    return problem.value


def test_import_refuses_a_database_that_holds_data(pilot: str, export: Path) -> None:
    problem = refused(pilot, export)
    assert problem.message == moving.NOT_EMPTY and problem.params["table"] == "counter"


def test_import_refuses_a_database_not_migrated(tmp_path: Path, export: Path) -> None:
    blank = tmp_path / "blank.db"
    blank.touch()
    assert refused(url_of(blank), export).message == NOT_UP_TO_DATE


def test_export_refuses_to_overwrite(pilot: str, export: Path) -> None:
    with pytest.raises(StartupProblem) as problem:
        moving.export_all(pilot, export)
    assert problem.value.message == moving.EXPORT_EXISTS


def rewrite(export: Path, target: Path, change: dict[str, bytes | None]) -> Path:
    """A copy of the export with some members replaced (``None``: left out)."""
    with zipfile.ZipFile(export) as source, zipfile.ZipFile(target, "w") as out:
        for item in source.infolist():
            if item.filename in change:
                continue
            out.writestr(item, source.read(item))
        for name, body in change.items():
            if body is not None:
                out.writestr(name, body)
    return target


def manifest(export: Path, **changes: Any) -> bytes:
    with zipfile.ZipFile(export) as source:
        data = json.loads(source.read(moving.MANIFEST))
    data.update(changes)
    return json.dumps(data).encode()


def grid_row(export: Path, **changes: Any) -> bytes:
    with zipfile.ZipFile(export) as source:
        lines = source.read("tables/grid.jsonl").decode().splitlines()
    row = json.loads(lines[1])
    row.update(changes)
    lines[1] = json.dumps(row)
    return ("\n".join(lines) + "\n").encode()


HOSTILE: dict[str, tuple[Any, str]] = {
    "no manifest": (lambda e: {moving.MANIFEST: None}, moving.NOT_AN_EXPORT),
    "manifest not json": (lambda e: {moving.MANIFEST: b"\xff{"}, moving.NOT_AN_EXPORT),
    "manifest a list": (lambda e: {moving.MANIFEST: b"[1, 2]"}, moving.NOT_AN_EXPORT),
    "other format": (lambda e: {moving.MANIFEST: manifest(e, format="x")}, moving.NOT_AN_EXPORT),
    "newer format": (lambda e: {moving.MANIFEST: manifest(e, version=2)}, moving.NOT_AN_EXPORT),
    "tables not a list": (lambda e: {moving.MANIFEST: manifest(e, tables="all")}, "NOT"),
    "unknown table": (
        lambda e: {moving.MANIFEST: manifest(e, tables=[{"name": "evil", "rows": 1}])},
        moving.NOT_AN_EXPORT,
    ),
    "other revision": (
        lambda e: {moving.MANIFEST: manifest(e, revision="0099_future")},
        moving.OTHER_REVISION,
    ),
    "table missing": (lambda e: {"tables/person.jsonl": None}, moving.NOT_AN_EXPORT),
    "a partial row": (
        lambda e: {"tables/grid.jsonl": grid_row(e) + b'{"id": 99999}\n'},
        moving.BAD_ROW,
    ),
    "a row the manifest does not count": (
        lambda e: {
            "tables/grid.jsonl": grid_row(e)
            + grid_row(e, id=99999, code="X").split(b"\n")[1]
            + b"\n"
        },
        moving.NOT_AN_EXPORT,
    ),
    "text for a number": (lambda e: {"tables/grid.jsonl": grid_row(e, tier="1")}, "BAD_ROW"),
    "bool for a number": (lambda e: {"tables/grid.jsonl": grid_row(e, tier=True)}, "BAD_ROW"),
    "bad datetime": (
        lambda e: {"tables/grid.jsonl": grid_row(e, created_at="yesterday")},
        moving.BAD_ROW,
    ),
    "naive datetime": (
        lambda e: {"tables/grid.jsonl": grid_row(e, created_at="2026-03-12T01:00:00")},
        moving.BAD_ROW,
    ),
    "unknown column": (lambda e: {"tables/grid.jsonl": grid_row(e, evil=1)}, moving.BAD_ROW),
    "no id": (lambda e: {"tables/grid.jsonl": grid_row(e, id=None)}, moving.BAD_ROW),
    "not an object": (lambda e: {"tables/grid.jsonl": b"[1]\n"}, moving.BAD_ROW),
    "not utf-8": (lambda e: {"tables/grid.jsonl": b"\xff\xfe\n"}, moving.BAD_ROW),
    "not json": (lambda e: {"tables/grid.jsonl": b"{id: 1\n"}, moving.BAD_ROW),
    "duplicate id": (
        lambda e: {"tables/grid.jsonl": grid_row(e, id=1)},
        moving.IMPORT_FAILED,
    ),
    "a dangling reference": (
        lambda e: {"tables/grid.jsonl": grid_row(e, parent_id=987654)},
        moving.IMPORT_FAILED,
    ),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_import_refuses_a_hostile_file_and_imports_nothing(
    case: str, export: Path, sqlite_template: Path, tmp_path: Path
) -> None:
    make, message = HOSTILE[case]
    message = {"NOT": moving.NOT_AN_EXPORT, "BAD_ROW": moving.BAD_ROW}.get(message, message)
    hostile = rewrite(export, tmp_path / "hostile.zip", make(export))
    city = empty_copy(sqlite_template, tmp_path)
    problem = refused(city, hostile)
    assert problem.message == message, problem
    assert all(rows == [] for rows in every_row(city).values())


@pytest.mark.parametrize("body", [b"", b"PK\x03\x04 broken", b"\x00" * 100, "台账".encode()])
def test_import_refuses_what_is_not_a_zip(
    body: bytes, sqlite_template: Path, tmp_path: Path
) -> None:
    path = tmp_path / "not.zip"
    path.write_bytes(body)
    assert refused(empty_copy(sqlite_template, tmp_path), path).message == moving.NOT_AN_EXPORT


def test_the_command_line_moves_and_refuses_in_one_translated_line(
    pilot: str,
    sqlite_template: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DEFAULT_LOCALE", "zh_Hant")
    monkeypatch.setenv("DATABASE_URL", pilot)
    export = tmp_path / "community.zip"
    assert main(["export-all", str(export)]) == 0
    assert capsys.readouterr().out.startswith("已匯出")
    monkeypatch.setenv("DATABASE_URL", empty_copy(sqlite_template, tmp_path))
    assert main(["import-all", str(export)]) == 0
    assert capsys.readouterr().out.startswith("已從")
    assert main(["import-all", str(export)]) == 2
    err = capsys.readouterr().err
    assert err == gettext_for("zh_Hant", moving.NOT_EMPTY, table="counter") + "\n"


# -- values ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("datetime", datetime(2026, 3, 12, 1, 0, 0, 123456, tzinfo=UTC)),
        ("date", date(2026, 2, 29 - 1)),
        ("time", time(21, 30)),
        ("interval", timedelta(days=2, seconds=5)),
        ("bytes", b"\x00\xffGridBot"),
        ("decimal", Decimal("12.340")),
        ("uuid", uuid.UUID(int=42)),
        ("json", {"policy": {"tiers": [1, 2]}, "名字": "网格"}),
        ("str", "第1号路灯不亮了"),
        ("int", 2**40),
        ("float", 31.25),
        ("bool", False),
    ],
)
def test_each_kind_of_value_survives_json(kind: str, value: Any) -> None:
    carried = json.loads(json.dumps(moving.encode(kind, value)))
    assert moving.decode(kind, carried) == value
