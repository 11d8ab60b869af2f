"""/tickets as a service: pages past 20, every filter, the scope of handlers and supervisors,
and typed filters — hostile words refused with a clear answer, foreign grids audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.errors import InvalidInput, NotAllowed
from bot.services.people import RoleInGrid
from bot.services.tickets import listing
from bot.services.tickets.listing import PAGE_SIZE, TicketFilter, choice_at
from models import Department, Grid, Person, Role, TicketCategory, TicketSource, TicketState

from .test_indicators import NOW, Builder, build_tree


def held(role: Role, grid: Grid) -> list[RoleInGrid]:
    return [RoleInGrid(role, grid.id or 0, grid.name, grid.code, grid.tier, grid.path)]


async def person(session: AsyncSession, name: str) -> Person:
    row = Person(name=name, created_at=NOW, updated_at=NOW)
    session.add(row)
    await session.flush()
    return row


async def test_pages_filters_and_scope(session: AsyncSession) -> None:
    tree = await build_tree(session)
    make = Builder(session)
    for index in range(23):
        await make.ticket(
            tree.a1a,
            NOW - timedelta(hours=index + 1),
            state=TicketState.DISPATCHED,
            next_deadline_at=NOW + timedelta(hours=index - 3, minutes=30),  # three are overdue
            category=TicketCategory.FIRE if index % 2 else TicketCategory.FACILITY,
            source=TicketSource.OPEN311 if index == 5 else TicketSource.TELEGRAM,
        )
    fire = Department(name="消防站", code="fire", grid_id=tree.centre.id or 0, created_at=NOW)
    session.add(fire)
    await session.flush()
    await make.ticket(tree.a1a, NOW, state=TicketState.TRANSFERRED, owner_department_id=fire.id)
    await make.ticket(tree.b, NOW, state=TicketState.DISPATCHED)  # another community
    await make.ticket(tree.a1a, NOW, state=TicketState.CLOSED)
    supervisor = await person(session, "督查")
    head = await person(session, "网格长")
    boss, local = held(Role.SUPERVISOR, tree.centre), held(Role.HEAD, tree.a)

    first = await listing.list_tickets(session, supervisor, boss, TicketFilter(), page=0, now=NOW)
    assert (first.total, first.pages, len(first.tickets)) == (25, 3, PAGE_SIZE)
    last = await listing.list_tickets(session, supervisor, boss, TicketFilter(), page=99, now=NOW)
    assert last.page == 2 and len(last.tickets) == 5  # past the end: the last page
    mine = await listing.list_tickets(session, head, local, TicketFilter(), page=0, now=NOW)
    assert mine.total == 24  # not community B's

    for wanted, expected in (
        (TicketFilter(overdue=True), 3),
        (TicketFilter(category=TicketCategory.FIRE), 11),
        (TicketFilter(source=TicketSource.OPEN311), 1),
        (TicketFilter(state=TicketState.CLOSED), 1),
        (TicketFilter(grid_id=tree.a1a.id), 24),
        (TicketFilter(department_id=fire.id), 1),
        (TicketFilter(overdue=True, category=TicketCategory.FIRE), 1),
    ):
        page = await listing.list_tickets(session, head, local, wanted, page=0, now=NOW)
        assert page.total == expected, wanted

    with pytest.raises(NotAllowed) as refused:  # a grid outside the head's scope
        await listing.list_tickets(
            session, head, local, TicketFilter(grid_id=tree.b.id), page=0, now=NOW
        )
    assert refused.value.audit is not None and refused.value.audit.action == "refused:view"
    with pytest.raises(NotAllowed):
        await listing.list_tickets(session, head, [], TicketFilter(), page=0, now=NOW)
    grids = await listing.grid_choices(session, head, local, TicketFilter(), NOW)
    assert [(g.code, n) for g, n in grids] == [(tree.a1a.code, 24)]


async def test_typed_filters(session: AsyncSession) -> None:
    tree = await build_tree(session)
    head = await person(session, "网格长")
    local = held(Role.HEAD, tree.a)
    parsed = await listing.parse_filter(
        session, head, local, f"超期 消防隐患 {tree.a1.code} 合作应用（Open311）", NOW
    )
    assert parsed == TicketFilter(
        overdue=True,
        category=TicketCategory.FIRE,
        grid_id=tree.a1.id,
        source=TicketSource.OPEN311,
    )
    assert (await listing.parse_filter(session, head, local, "closed", NOW)).state == (
        TicketState.CLOSED
    )
    fire = Department(name="消防站", code="fire", grid_id=tree.centre.id or 0, created_at=NOW)
    session.add(fire)
    await session.flush()
    assert (await listing.parse_filter(session, head, local, "消防站", NOW)).department_id == (
        fire.id
    )
    for typed in ("<b>x</b>", "=cmd|x", "1 2 3 4 5 6 7", "ｘ" * 500):
        with pytest.raises(InvalidInput) as bad:
            await listing.parse_filter(session, head, local, typed, NOW)
        assert len(str(bad.value.params["value"])) <= 30
    with pytest.raises(NotAllowed):
        await listing.parse_filter(session, head, local, tree.b.code, NOW)
    with pytest.raises(InvalidInput):
        choice_at(listing.STATES, len(listing.STATES) + 1)
    assert choice_at(listing.STATES, 0) is None
