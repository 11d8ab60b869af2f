"""Residents join their grid (加入网格): the QR link, then their phone number."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.errors import InvalidInput
from bot.i18n import N_
from bot.services.phones import normalize_phone
from models import AuditLog, Grid, Household, Person, Role, RoleAssignment


@dataclass(frozen=True)
class Joined:
    grid: Grid
    household: Household | None
    already_member: bool


async def join_grid(session: AsyncSession, *, person: Person, grid: Grid, now: datetime) -> bool:
    """Make the person a resident of ``grid``; False if they already were.

    A resident belongs to one grid at a time: joining another one moves them.
    """
    assert person.id is not None and grid.id is not None
    if grid.tier == 0:
        raise InvalidInput(N_("Residents join a grid, not the street centre."))
    current = (
        await session.exec(
            select(RoleAssignment).where(
                RoleAssignment.person_id == person.id, RoleAssignment.role == Role.RESIDENT
            )
        )
    ).all()
    if any(r.grid_id == grid.id and r.active for r in current):
        return False
    for assignment in current:
        await session.delete(assignment)
    await session.flush()
    session.add(
        RoleAssignment(person_id=person.id, role=Role.RESIDENT, grid_id=grid.id, created_at=now)
    )
    session.add(
        AuditLog(
            at=now,
            actor_id=person.id,
            action="resident_join",
            object_type="grid",
            object_id=grid.id,
        )
    )
    return True


async def bind_phone(
    session: AsyncSession, *, person: Person, grid: Grid, phone: str, now: datetime
) -> Household | None:
    """Keep the person's phone and link them to the household in ``grid`` with that phone."""
    number = normalize_phone(phone)
    person.phone = number
    person.updated_at = now
    matches = (
        await session.exec(
            select(Household)
            .where(Household.phone == number, col(Household.grid_id) == grid.id)
            .limit(2)
        )
    ).all()
    household = matches[0] if len(matches) == 1 else None
    person.household_id = household.id if household else None
    session.add(person)
    return household
