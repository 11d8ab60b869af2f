"""Permissions: roles over grid subtrees, departments, residents, audited refusals."""

from __future__ import annotations

import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import FrozenClock
from bot.errors import NotAllowed
from bot.services.people import RoleInGrid
from bot.services.permissions import Action, Target, authorize, permits, scope_paths
from bot.services.ticket_numbers import street_id_of
from models import Grid, Person, Role, Ticket, TicketCategory


def role(kind: Role, path: str, department_id: int | None = None) -> RoleInGrid:
    return RoleInGrid(
        role=kind,
        grid_id=0,
        grid_name="g",
        grid_code="c",
        grid_tier=path.count("/") - 2,
        grid_path=path,
        department_id=department_id,
    )


HOUSEHOLD_IN_17 = Target("household", 5, "/1/4/17/")


def test_a_worker_acts_in_their_grid_and_not_next_door() -> None:
    worker = [role(Role.WORKER, "/1/4/17/")]
    assert permits(worker, Action.VISIT, HOUSEHOLD_IN_17)
    assert not permits(worker, Action.VISIT, Target("household", 6, "/1/4/18/"))
    assert not permits(worker, Action.MANAGE, HOUSEHOLD_IN_17)


def test_prefixes_are_whole_path_segments() -> None:
    worker = [role(Role.WORKER, "/1/4/1/")]
    assert not permits(worker, Action.VISIT, Target("household", 1, "/1/4/17/"))


def test_a_head_covers_the_subtree_below() -> None:
    head = [role(Role.HEAD, "/1/4/")]
    assert permits(head, Action.AMEND_VISIT, HOUSEHOLD_IN_17)
    assert not permits(head, Action.MANAGE, HOUSEHOLD_IN_17)


def test_departments_act_only_on_what_was_transferred_to_them() -> None:
    police = [role(Role.DEPARTMENT, "/1/", department_id=3)]
    assert permits(police, Action.HANDLE, Target("ticket", 9, "/1/4/17/", department_id=3))
    assert not permits(police, Action.HANDLE, Target("ticket", 9, "/1/4/17/", department_id=4))
    assert not permits(police, Action.VIEW, HOUSEHOLD_IN_17)


def test_residents_see_their_own_tickets_only() -> None:
    resident = [role(Role.RESIDENT, "/1/4/17/")]
    mine = Target("ticket", 1, "/1/4/17/", reporter_id=42)
    assert permits(resident, Action.VIEW, mine, person_id=42)
    assert not permits(resident, Action.VIEW, mine, person_id=43)
    assert not permits(resident, Action.VIEW, HOUSEHOLD_IN_17, person_id=42)
    assert permits(resident, Action.VIEW, Target("grid", 17, "/1/4/17/"))


def test_scope_paths_drop_covered_subtrees() -> None:
    roles = [role(Role.WORKER, "/1/4/17/"), role(Role.HEAD, "/1/4/"), role(Role.RESIDENT, "/1/5/")]
    assert scope_paths(roles, Action.HANDLE) == ["/1/4/"]


async def test_a_refusal_carries_its_audit_record(
    session: AsyncSession, clock: FrozenClock
) -> None:
    now = clock.now()
    grid = Grid(code="350206001001", name="A", tier=1, path="/x/", created_at=now)
    session.add(grid)
    await session.flush()
    grid.path = f"/{grid.id}/"
    person = Person(name="W", created_at=now, updated_at=now)
    session.add(person)
    await session.flush()
    ticket = Ticket(
        number="T1",
        street_id=street_id_of(grid),
        short_number=1,
        grid_id=grid.id or 0,
        category=TicketCategory.FIRE,
        description="d",
        created_at=now,
        updated_at=now,
    )
    session.add(ticket)
    await session.flush()
    with pytest.raises(NotAllowed) as refused:
        await authorize(session, person, [role(Role.WORKER, "/999/")], Action.HANDLE, ticket, now)
    assert refused.value.audit is not None
    assert refused.value.audit.action == "refused:handle"
    assert refused.value.audit.object_id == ticket.id
    await authorize(session, person, [role(Role.WORKER, grid.path)], Action.HANDLE, ticket, now)
