"""Party members of the demo community (党员联系户), so the sandbox shows them.

Each tier-2 grid has a party branch (党支部, 方案1's second tier); in each tier-3 grid one or
two adults of the register are party members (mostly full members, some probationary, a
floating resident a floating member), each with up to ten contact households of her grid,
a few of them contacted already this month. None of them uses the bot, and no household a
demo resident belongs to is a contact household: the named personas see what they saw before
(a test gives one of them contact households of her own). The same seed gives the same
party members.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models import (
    Grid,
    Household,
    HouseholdMember,
    PartyBranch,
    PartyContact,
    PartyContactLog,
    PartyKind,
    Person,
    Relation,
    ResidenceStatus,
    VisitKind,
)

PER_GRID = 2  # party members in a tier-3 grid (at most)
CONTACTS_EACH = 10  # contact households each
CONTACTED_SHARE = 0.4  # of the contact households, contacted this month already


async def load_demo_party(session: AsyncSession, now: datetime, seed: int = 2026) -> int:
    """Branches, party members and their contact households; the caller commits. Returns
    how many party members there are."""
    rng = random.Random(seed * 37 + 1)
    grids = (await session.exec(select(Grid).order_by(col(Grid.path)))).all()
    branches: dict[int, PartyBranch] = {}
    for grid in grids:
        if grid.tier == 2 and grid.id is not None:
            branches[grid.id] = PartyBranch(
                grid_id=grid.id, name=f"{grid.name}党支部", created_at=now
            )
            session.add(branches[grid.id])
    await session.flush()
    used_phones = set(
        (await session.exec(select(Person.phone).where(col(Person.phone).is_not(None)))).all()
    )
    residents_homes = set(
        (
            await session.exec(
                select(Person.household_id).where(col(Person.household_id).is_not(None))
            )
        ).all()
    )
    count = 0
    for grid in grids:
        if grid.tier != 3 or grid.parent_id not in branches:
            continue
        households = (
            await session.exec(
                select(Household).where(Household.grid_id == grid.id).order_by(col(Household.code))
            )
        ).all()
        free = [h for h in households if h.id not in residents_homes]
        candidates = await _candidates(session, [h.id or 0 for h in free], used_phones, now)
        rng.shuffle(candidates)
        for member in candidates[:PER_GRID]:
            member.party = (
                PartyKind.FLOATING
                if member.status == ResidenceStatus.FLOATING
                else PartyKind.PROBATIONARY
                if rng.random() < 0.15
                else PartyKind.FULL
            )
            member.party_branch_id = branches[grid.parent_id or 0].id
            session.add(member)
            count += 1
            mine, free = free[:CONTACTS_EACH], free[CONTACTS_EACH:]
            for household in mine:
                assert member.id is not None and household.id is not None
                session.add(
                    PartyContact(household_id=household.id, member_id=member.id, assigned_at=now)
                )
                if rng.random() < CONTACTED_SHARE:
                    session.add(
                        PartyContactLog(
                            member_id=member.id,
                            household_id=household.id,
                            kind=rng.choice((VisitKind.PHONE, VisitKind.IN_PERSON)),
                            contacted_at=now - timedelta(days=rng.randrange(1, 5)),
                        )
                    )
    await session.flush()
    return count


async def _candidates(
    session: AsyncSession,
    household_ids: Sequence[int],
    used_phones: set[str | None],
    now: datetime,
) -> list[HouseholdMember]:
    """Adults heading or married into a household, living there, whose phone no bot user has."""
    if not household_ids:
        return []
    adult = now.date() - timedelta(days=20 * 365)
    rows = (
        await session.exec(
            select(HouseholdMember)
            .where(
                col(HouseholdMember.household_id).in_(list(household_ids)),
                col(HouseholdMember.relation).in_([Relation.HEAD, Relation.SPOUSE]),
                col(HouseholdMember.moved_out).is_(None),
                col(HouseholdMember.birth_date) < adult,
            )
            .order_by(col(HouseholdMember.id))
        )
    ).all()
    return [m for m in rows if m.phone not in used_phones]
