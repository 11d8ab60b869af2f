"""Short ticket numbers: one sequence per street, easy to say, unique under concurrency and by
constraint; existing tickets numbered by the migration; typed numbers parsed safely."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import NullPool
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

import models
from bot import migrate
from bot.clock import FrozenClock
from bot.db import create_engine, create_session_factory
from bot.errors import InvalidInput
from bot.services import tickets
from bot.services.demo import DEMO_PERSONAS, load_demo_data
from bot.services.notice_board import resident_grid
from bot.services.ticket_numbers import parse_number, shown_number, spoken, street_id_of
from bot.settings import ReportLimits, Settings
from models import Counter, Grid, Person, Ticket, TicketCategory
from tests.conftest import TEST_DATABASE_URL, _on_server, run_database_name
from tests.fakes import RecordingNotifier

SETTINGS = Settings(
    _env_file=None,  # type: ignore[call-arg]
    reports=ReportLimits(per_hour=100, per_day=100),
)


# --- how a short number reads -----------------------------------------------------------------


def test_a_short_number_is_digits_in_groups_of_four_from_the_right() -> None:
    assert spoken(7) == "7"
    assert spoken(2048) == "2048"
    assert spoken(10000) == "1-0000"
    assert spoken(120457) == "12-0457"
    assert spoken(123456789) == "1-2345-6789"


@given(st.integers(min_value=1, max_value=10**12 - 1))
def test_what_is_shown_reads_back_as_the_same_number(n: int) -> None:
    shown = spoken(n)
    assert set(shown) <= set("0123456789-")
    assert parse_number(shown) == n
    assert parse_number(shown.replace("-", "")) == n


# --- what a person types ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "wanted"),
    [
        ("2048", 2048),
        ("  2048 ", 2048),
        ("#2048", 2048),
        ("№ 2048", 2048),
        ("工单 2048", 2048),
        ("２０４８", 2048),  # full-width digits
        ("12-0457", 120457),
        ("12 0457", 120457),
        ("12－0457", 120457),  # full-width hyphen
        ("0042", 42),
        ("3502110010010101-20261207-001", "3502110010010101-20261207-001"),
        ("３５０２１１００１-２０２６１２０７-００１", "350211001-20261207-001"),
    ],
)
def test_either_number_is_understood(typed: str, wanted: str | int) -> None:
    assert parse_number(typed) == wanted


@pytest.mark.parametrize(
    "typed",
    ["", "   ", "abc", "0", "-", "12--34", "2048; DROP TABLE ticket", "<b>1</b>", "1" * 40],
)
def test_anything_else_is_a_clear_refusal(typed: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_number(typed)
    shown = refused.value.params.get("value", "")
    assert len(shown) <= 40 and "\n" not in shown


@given(st.text(max_size=200))
def test_hostile_text_is_a_number_or_a_refusal(typed: str) -> None:
    try:
        wanted = parse_number(typed)
    except InvalidInput as refused:
        shown = str(refused.params.get("value", ""))
        assert all(ch.isprintable() for ch in shown) and len(shown) <= 40
    else:
        assert (isinstance(wanted, int) and 0 < wanted < 10**12) or (
            isinstance(wanted, str) and len(wanted) <= 48
        )


# --- filing gives them ------------------------------------------------------------------------


async def _reporter(session: AsyncSession, persona: str) -> tuple[Person, Grid]:
    reporter = (
        await session.exec(select(Person).where(Person.telegram_id == DEMO_PERSONAS[persona]))
    ).one()
    assert reporter.id is not None
    grid = await resident_grid(session, reporter.id)
    assert grid is not None
    return reporter, grid


async def _file(session: AsyncSession, persona: str, now: datetime, what: str) -> Ticket:
    reporter, grid = await _reporter(session, persona)
    return await tickets.file_ticket(
        session,
        RecordingNotifier(),
        reporter=reporter,
        grid=grid,
        report=tickets.Report(TicketCategory.FACILITY, what),
        settings=SETTINGS,
        now=now,
    )


async def test_tickets_of_a_street_are_numbered_one_by_one(
    session: AsyncSession, clock: FrozenClock
) -> None:
    await load_demo_data(session, clock.now())
    first = await _file(session, "resident", clock.now(), "路灯不亮了")
    second = await _file(session, "other_resident", clock.now(), "井盖松了")
    grid = await session.get(Grid, first.grid_id)
    assert grid is not None
    street = (await session.exec(select(Grid).where(Grid.tier == 0))).one()
    assert first.street_id == street_id_of(grid) == street.id
    assert (first.short_number, second.short_number) == (1, 2)
    assert shown_number(second) == "2"
    assert len(first.number) > 20  # the long number stays, inside


async def test_a_street_never_has_two_tickets_with_one_short_number(
    session: AsyncSession, clock: FrozenClock
) -> None:
    await load_demo_data(session, clock.now())
    filed = await _file(session, "resident", clock.now(), "路灯不亮了")
    twin = Ticket(
        number="twin",
        street_id=filed.street_id,
        short_number=filed.short_number,
        grid_id=filed.grid_id,
        category=TicketCategory.FACILITY,
        description="同号",
        created_at=clock.now(),
        updated_at=clock.now(),
    )
    session.add(twin)
    with pytest.raises(IntegrityError):
        await session.flush()


# --- two reports at once ----------------------------------------------------------------------

AT_ONCE = 12


@pytest.fixture
async def engines(database_url: str) -> AsyncIterator[tuple[AsyncEngine, AsyncEngine]]:
    """Two engines on one database, as two bot processes would have."""
    pair = (
        create_engine(database_url, poolclass=NullPool),
        create_engine(database_url, poolclass=NullPool),
    )
    try:
        yield pair
    finally:
        if pair[0].dialect.name == "postgresql":
            tables = ", ".join(f'"{t.name}"' for t in models.metadata.sorted_tables)
            async with pair[0].begin() as connection:
                await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        for engine in pair:
            await engine.dispose()


async def test_reports_at_once_never_share_a_short_number(
    engines: tuple[AsyncEngine, AsyncEngine], clock: FrozenClock
) -> None:
    async with create_session_factory(engines[0])() as session:
        await load_demo_data(session, clock.now())
        await session.commit()
    start = asyncio.Event()

    async def report(engine: AsyncEngine, persona: str, n: int) -> int:
        await start.wait()
        async with create_session_factory(engine)() as session:
            ticket = await _file(session, persona, clock.now(), f"第{n}号路灯不亮了")
            await asyncio.sleep(0)  # let the other reports in while this one is open
            await session.commit()
            return ticket.short_number

    tasks = [
        asyncio.create_task(report(engines[n % 2], ("resident", "other_resident")[n % 2], n))
        for n in range(AT_ONCE)
    ]
    start.set()
    numbers = await asyncio.gather(*tasks)
    assert sorted(numbers) == list(range(1, AT_ONCE + 1))
    async with create_session_factory(engines[0])() as session:
        stored = (await session.exec(select(Ticket.short_number))).all()
    assert sorted(stored) == list(range(1, AT_ONCE + 1))


# --- the migration numbers what is there ------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
async def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A database of its own with no tables yet (PostgreSQL: made and dropped here)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
        return
    if not TEST_DATABASE_URL:
        request.getfixturevalue("pg_url")  # skipped (or failed under CI) the usual way
    assert TEST_DATABASE_URL is not None
    server = make_url(TEST_DATABASE_URL)
    name = run_database_name(server.database, os.getpid(), "mig" + secrets.token_hex(3))
    await _on_server(server, f'CREATE DATABASE "{name}"')
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        await _on_server(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_the_migration_numbers_existing_tickets_per_street(empty_url: str) -> None:
    await asyncio.to_thread(migrate.upgrade, empty_url, "0007")  # before short numbers
    engine = create_engine(empty_url, poolclass=NullPool)
    at = datetime(2026, 12, 1, tzinfo=UTC)
    try:
        async with engine.begin() as connection:
            # two streets: 1 (with grid 2 below it) and 3 (with grid 4 below it)
            for grid_id, path, tier in ((1, "/1/", 0), (2, "/1/2/", 1), (3, "/3/", 0)):
                await connection.execute(
                    text(
                        "INSERT INTO grid (id, code, name, tier, path, created_at) "
                        "VALUES (:id, :code, :name, :tier, :path, :at)"
                    ),
                    {
                        "id": grid_id,
                        "code": f"c{grid_id}",
                        "name": f"g{grid_id}",
                        "tier": tier,
                        "path": path,
                        "at": at,
                    },
                )
            await connection.execute(
                text(
                    "INSERT INTO grid (id, code, name, tier, parent_id, path, created_at) "
                    "VALUES (4, 'c4', 'g4', 1, 3, '/3/4/', :at)"
                ),
                {"at": at},
            )
            filed = [(10, 2, 3), (11, 4, 1), (12, 1, 2), (13, 2, 1), (14, 4, 2)]  # id, grid, day
            for ticket_id, grid_id, day in filed:
                await connection.execute(
                    text(
                        "INSERT INTO ticket (id, number, grid_id, category, kind, description, "
                        "state, sla, reopen_count, escalation_count, version, created_at, "
                        "updated_at) VALUES (:id, :number, :grid, 'facility', 'general', 'x', "
                        "'dispatched', '{}', 0, 0, 1, :at, :at)"
                    ),
                    {
                        "id": ticket_id,
                        "number": f"n{ticket_id}",
                        "grid": grid_id,
                        "at": at.replace(day=day),
                    },
                )
        await asyncio.to_thread(migrate.upgrade, empty_url)
        async with create_session_factory(engine)() as session:
            numbered = {
                t.id: (t.street_id, t.short_number)
                for t in (await session.exec(select(Ticket))).all()
            }
            counters = {
                c.name: c.value
                for c in (
                    await session.exec(
                        select(Counter).where(col(Counter.name).startswith("ticket-short:"))
                    )
                ).all()
            }
        # street 1 in filing order: 13 (day 1), 12 (day 2), 10 (day 3); street 3: 11, 14
        assert numbered == {13: (1, 1), 12: (1, 2), 10: (1, 3), 11: (3, 1), 14: (3, 2)}
        assert counters == {"ticket-short:1": 3, "ticket-short:3": 2}
        config = migrate.alembic_config(empty_url)
        await asyncio.to_thread(command.downgrade, config, "0007")  # and back down
        await asyncio.to_thread(migrate.upgrade, empty_url)
    finally:
        await engine.dispose()
