"""Households (户) as the people who serve them see them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import ColumnElement, func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.errors import NotAllowed, NotFound
from bot.i18n import N_
from bot.services.id_numbers import IdVault, InvalidIdNumber, parse_id_number
from bot.services.members import MemberView, household_members
from bot.services.people import RoleInGrid
from bot.services.permissions import Action, authorize, scope_paths
from models import Grid, Household, HouseholdCategory, HouseholdMember, Person

PAGE_SIZE = 10


@dataclass(frozen=True)
class HouseholdPage:
    rows: list[Household]
    page: int
    pages: int
    total: int


async def list_households(
    session: AsyncSession,
    roles: Sequence[RoleInGrid],
    *,
    query: str = "",
    page: int = 0,
    vault: IdVault | None = None,
) -> HouseholdPage:
    """Households in the grids a person may visit, key households first, then by address.

    ``query`` matches the head's name, the address, the code, the phone, the name of anyone
    registered in the household, or — with the vault — a whole resident ID number (by its
    keyed hash: nothing is decrypted)."""
    paths = scope_paths(roles, Action.VISIT) or scope_paths(roles, Action.READ_SENSITIVE)
    if not paths:
        raise NotAllowed(N_("This command is for grid staff."))
    where: list[ColumnElement[bool]] = [
        col(Household.grid_id).in_(
            select(Grid.id).where(or_(*(col(Grid.path).startswith(p) for p in paths)))
        )
    ]
    text = query.strip()[:50]
    if text:
        matches = [
            col(Household.head_name).contains(text),
            col(Household.address).contains(text),
            col(Household.code).contains(text),
            col(Household.phone).contains(text),
            col(Household.id).in_(
                select(HouseholdMember.household_id).where(
                    col(HouseholdMember.name).contains(text)
                )
            ),
        ]
        digest = _id_digest(text, vault)
        if digest is not None:
            matches.append(
                col(Household.id).in_(
                    select(HouseholdMember.household_id).where(HouseholdMember.id_hash == digest)
                )
            )
        where.append(or_(*matches))
    total = int((await session.exec(select(func.count()).where(*where))).one())
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(page, 0), pages - 1)
    rows = (
        await session.exec(
            select(Household)
            .where(*where)
            .order_by(col(Household.is_key).desc(), col(Household.address), col(Household.id))
            .offset(page * PAGE_SIZE)
            .limit(PAGE_SIZE)
        )
    ).all()
    return HouseholdPage(list(rows), page, pages, total)


def _id_digest(text: str, vault: IdVault | None) -> str | None:
    """The keyed hash of a whole ID number typed as a search, or None for other words."""
    if vault is None:
        return None
    try:
        number = parse_id_number(text, today=date.max)
    except InvalidIdNumber:
        return None
    return vault.digest(number)


@dataclass(frozen=True)
class HouseholdCard:
    household: Household
    grid: Grid
    worker: Person | None
    categories: list[HouseholdCategory]
    members: list[MemberView] = field(default_factory=list)  # as the reader may see them


async def household_card(
    session: AsyncSession,
    *,
    person: Person,
    roles: Sequence[RoleInGrid],
    household_id: int,
    now: datetime,
    vault: IdVault | None = None,
) -> HouseholdCard:
    """One household with its sensitive details and its members as the personal-field table
    lets the reader see them; the read is authorised and audited."""
    household = await session.get(Household, household_id)
    if household is None:
        raise NotFound()
    await authorize(session, person, roles, Action.READ_SENSITIVE, household, now)
    grid = await session.get(Grid, household.grid_id)
    assert grid is not None
    worker = await session.get(Person, household.worker_id) if household.worker_id else None
    flags = HouseholdCategory(household.categories)
    people = await household_members(
        session, person=person, roles=roles, household=household, vault=vault
    )
    return HouseholdCard(
        household, grid, worker, [c for c in HouseholdCategory if c in flags], people
    )
