"""The duty rota's services on a real database (SQLite, and PostgreSQL when configured):
the sheet all or nothing, swaps checked on both presses, gaps warned once; and its pure parts
with hostile input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.errors import InvalidInput, NotAllowed
from bot.services.duty import gaps, rota, sheet, swaps
from bot.services.people import RoleInGrid
from bot.settings import Settings
from models import (
    AuditLog,
    DutyGapWarning,
    DutyShift,
    Grid,
    OutboxMessage,
    Person,
    Role,
    RoleAssignment,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


def shift(start_hours: float, end_hours: float) -> DutyShift:
    return DutyShift(
        grid_id=1,
        person_id=1,
        starts_at=NOW + timedelta(hours=start_hours),
        ends_at=NOW + timedelta(hours=end_hours),
        created_at=NOW,
    )


def test_gaps_start_where_a_shift_ends() -> None:
    horizon = NOW + timedelta(hours=24)
    assert gaps.gaps_in([shift(-1, 3), shift(5, 30)], NOW, horizon) == [
        (NOW + timedelta(hours=3), NOW + timedelta(hours=5))
    ]
    assert gaps.gaps_in([shift(-1, 3), shift(2, 6)], NOW, horizon) == [
        (NOW + timedelta(hours=6), horizon)
    ]
    assert gaps.gaps_in([shift(-1, 30)], NOW, horizon) == []
    assert gaps.gaps_in([], NOW, horizon) == []
    # a gap that began before now was warned when it was ahead: not again
    assert gaps.gaps_in([shift(-5, -1), shift(2, 30)], NOW, horizon) == []


def test_times_are_read_in_the_ways_people_write_them() -> None:
    expected = datetime(2026, 12, 8, 8, 0, tzinfo=SHANGHAI)
    for text in (
        "2026-12-08 08:00",
        "2026/12/8 8:00",
        "2026年12月8日 8:00",
        "2026-12-08T08:00:00",
    ):
        assert rota.parse_when(text, SHANGHAI) == expected
    assert rota.parse_when("２０２６－１２－０８　０８：００", SHANGHAI) == expected


@given(st.text(max_size=80))
def test_any_typed_time_is_read_or_refused_clearly(text: str) -> None:
    try:
        when = rota.parse_when(text, SHANGHAI)
    except InvalidInput as error:
        assert error.message == rota.BAD_TIME and len(error.params["value"]) <= 25
    else:
        assert when.tzinfo is SHANGHAI


def test_spans_are_checked() -> None:
    assert rota.check_span(NOW, NOW - timedelta(hours=1), NOW) == rota.END_BEFORE_START
    assert rota.check_span(NOW, NOW + timedelta(days=8), NOW) == rota.TOO_LONG
    assert rota.check_span(NOW - timedelta(hours=3), NOW, NOW) == rota.IN_THE_PAST
    assert rota.check_span(NOW, NOW + timedelta(hours=12), NOW) is None


async def centre(session: AsyncSession) -> tuple[Grid, Person, Person, Person]:
    grid = Grid(code="350211001", name="杏林街道", tier=0, created_at=NOW)
    session.add(grid)
    await session.flush()
    grid.path = f"/{grid.id}/"
    people = []
    for name, phone, role in (
        ("甲", "+8613900000001", Role.CENTER),
        ("乙", "+8613900000002", Role.CENTER),
        ("丙", "+8613900000003", Role.HEAD),
    ):
        person = Person(
            name=name, phone=phone, telegram_id=int(phone[-6:]), created_at=NOW, updated_at=NOW
        )
        session.add(person)
        await session.flush()
        assert person.id is not None and grid.id is not None
        session.add(
            RoleAssignment(person_id=person.id, role=role, grid_id=grid.id, created_at=NOW)
        )
        people.append(person)
    await session.flush()
    return grid, people[0], people[1], people[2]


def roles_of(grid: Grid, role: Role) -> list[RoleInGrid]:
    return [RoleInGrid(role, grid.id or 0, grid.name, grid.code, 0, grid.path)]


def csv(*rows: str) -> bytes:
    return "\n".join(("手机号,开始,结束", *rows)).encode("gbk")


async def test_a_sheet_is_all_or_nothing(session: AsyncSession) -> None:
    grid, first, second, head = await centre(session)
    roles = roles_of(grid, Role.CENTER)
    bad = csv(
        "13900000001,2026-12-08 08:00,2026-12-08 20:00",
        "13900000002,2026-12-08 19:00,2026-12-09 08:00",  # overlaps row 2
        "13900000003,2026-12-09 08:00,2026-12-09 20:00",  # a head, not an operator
    )
    report = await sheet.import_rota(session, first, roles, bad, NOW, tz=SHANGHAI)
    assert report.bad_rows == (3, 4)
    assert not (await session.exec(select(DutyShift))).all()

    good = csv(
        "13900000001,2026-12-08 08:00,2026-12-08 20:00",
        "139 0000 0002,2026/12/8 20:00,2026/12/9 8:00",
    )
    report = await sheet.import_rota(session, first, roles, good, NOW, tz=SHANGHAI)
    assert report.ok and report.created == 2
    # the same days sent again replace, not add
    report = await sheet.import_rota(session, first, roles, good, NOW, tz=SHANGHAI)
    assert len((await session.exec(select(DutyShift))).all()) == 2

    with pytest.raises(NotAllowed):
        await sheet.import_rota(session, head, roles_of(grid, Role.HEAD), good, NOW, tz=SHANGHAI)
    with pytest.raises(InvalidInput):
        await sheet.import_rota(session, first, roles, b"x" * (3 * 1024 * 1024), NOW, tz=SHANGHAI)
    with pytest.raises(InvalidInput):
        await sheet.import_rota(session, first, roles, b"\x00\x01\x02garbage", NOW, tz=SHANGHAI)


async def test_a_swap_needs_the_colleague_and_only_them(session: AsyncSession) -> None:
    grid, first, second, head = await centre(session)
    added = await rota.add_shift(
        session,
        first,
        roles_of(grid, Role.CENTER),
        NOW,
        phone="13900000001",
        starts="2026-12-08 08:00",
        ends="2026-12-08 20:00",
        tz=SHANGHAI,
    )
    with pytest.raises(NotAllowed):  # not the shift's operator
        await swaps.ask_swap(session, second, roles_of(grid, Role.CENTER), added.id, 0, NOW)
    with pytest.raises(NotAllowed):  # a head is no colleague
        await swaps.ask_swap(
            session, first, roles_of(grid, Role.CENTER), added.id, head.id or 0, NOW
        )
    facts = await swaps.ask_swap(
        session, first, roles_of(grid, Role.CENTER), added.id, second.id or 0, NOW
    )
    swap_id = facts.swap.id or 0
    with pytest.raises(NotAllowed):  # only the colleague asked may answer
        await swaps.answer_swap(session, head, swap_id, True, NOW)
    await swaps.answer_swap(session, second, swap_id, True, NOW)
    moved = await session.get(DutyShift, added.id)
    assert moved is not None and moved.person_id == second.id and moved.source == "swap"
    with pytest.raises(InvalidInput):
        await swaps.answer_swap(session, second, swap_id, True, NOW)
    with pytest.raises(NotAllowed) as refused:
        await swaps.answer_swap(session, first, swap_id + 1000, True, NOW)
    audit = refused.value.audit
    assert isinstance(audit, AuditLog) and audit.action == "refused:duty_swap"


async def test_a_gap_is_warned_once(session: AsyncSession) -> None:
    grid, first, second, _ = await centre(session)
    assert grid.id is not None
    for start, end, person in ((0, 3, first), (5, 40, second)):
        session.add(
            DutyShift(
                grid_id=grid.id,
                person_id=person.id or 0,
                starts_at=NOW + timedelta(hours=start),
                ends_at=NOW + timedelta(hours=end),
                created_at=NOW,
            )
        )
    await session.flush()
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert await gaps.warn_gaps(session, NOW, settings) == 2  # both operators
    assert await gaps.warn_gaps(session, NOW + timedelta(hours=1), settings) == 0
    assert len((await session.exec(select(DutyGapWarning))).all()) == 1
    assert len((await session.exec(select(OutboxMessage))).all()) == 2
