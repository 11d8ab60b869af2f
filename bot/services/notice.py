"""The grid's public notice (公示, DOMAIN.md §8): what the physical notice board shows."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models import Grid, Household, Person, Role, RoleAssignment


@dataclass(frozen=True)
class Contact:
    name: str
    phone: str | None
    role: Role
    grid_name: str
    grid_tier: int


@dataclass(frozen=True)
class NoticeBoard:
    grid: Grid
    parent_names: list[str]  # street → community → …, above this grid
    workers: list[Contact]
    heads: list[Contact]  # nearest first
    households: int
    people: int
    area: str | None
    services: str | None
    complaint_process: str | None
    complaint_phone: str | None  # the nearest one set on this grid or above


async def notice_board(session: AsyncSession, grid: Grid) -> NoticeBoard:
    ancestor_ids = [int(part) for part in grid.path.strip("/").split("/") if part]
    chain = {
        g.id: g
        for g in (await session.exec(select(Grid).where(col(Grid.id).in_(ancestor_ids)))).all()
    }
    ordered = [chain[i] for i in ancestor_ids if i in chain]
    people = await session.exec(
        select(RoleAssignment.role, RoleAssignment.grid_id, Person.name, Person.phone)
        .join(Person, col(Person.id) == RoleAssignment.person_id)
        .where(
            col(RoleAssignment.grid_id).in_(ancestor_ids),
            col(RoleAssignment.role).in_([Role.WORKER, Role.HEAD]),
            col(RoleAssignment.active).is_(True),
            col(Person.active).is_(True),
        )
        .order_by(col(RoleAssignment.id))
    )
    workers: list[Contact] = []
    heads: list[Contact] = []
    for role, grid_id, name, phone in people:
        contact = Contact(name, phone, Role(role), chain[grid_id].name, chain[grid_id].tier)
        if role == Role.WORKER and grid_id == grid.id:
            workers.append(contact)
        elif role == Role.HEAD:
            heads.append(contact)
    heads.sort(key=lambda contact: -contact.grid_tier)  # the nearest head first
    counts = (
        await session.exec(
            select(func.count(), func.coalesce(func.sum(Household.members), 0))
            .join(Grid, col(Grid.id) == Household.grid_id)
            .where(col(Grid.path).startswith(grid.path))
        )
    ).one()
    phone = next((g.complaint_phone for g in reversed(ordered) if g.complaint_phone), None)
    process = next((g.complaint_process for g in reversed(ordered) if g.complaint_process), None)
    return NoticeBoard(
        grid=grid,
        parent_names=[g.name for g in ordered[:-1]],
        workers=workers,
        heads=heads,
        households=int(counts[0]),
        people=int(counts[1]),
        area=grid.area_desc,
        services=grid.services,
        complaint_process=process,
        complaint_phone=phone,
    )


async def resident_grid(session: AsyncSession, person_id: int) -> Grid | None:
    return (
        await session.exec(
            select(Grid)
            .join(RoleAssignment, col(RoleAssignment.grid_id) == Grid.id)
            .where(
                RoleAssignment.person_id == person_id,
                RoleAssignment.role == Role.RESIDENT,
                col(RoleAssignment.active).is_(True),
            )
        )
    ).first()
