"""Rental houses and tenants of the demo community (出租房屋), so the sandbox shows them.

About one residential household in nine (never among the first three of its grid, which the
walkthroughs and tests use) lets rooms: the head of household is the landlord (no Telegram
account bound — a worker's ``/rental`` gives the link), with one to three tenants from other
provinces. Most tenants' residence registrations were confirmed; a few wait for the worker,
and one in a dozen lapsed (their reminders count as sent already, so the demo's own rows send
none). The household's member count includes its tenants. The same seed gives the same
tenants.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models import (
    Gender,
    Household,
    HouseholdMember,
    Relation,
    Rental,
    ResidenceStatus,
    Tenancy,
)

from .demo import GIVEN_NAMES, MOBILE_PREFIXES, SURNAMES
from .id_numbers import IdVault, with_check_digit

# counties tenants come from (湖南, 湖北, 广西, 贵州): none the demo's residents come from
TENANT_REGIONS = ("430102", "420106", "450103", "520102")
ORIGIN_NAMES = {
    "430102": "湖南省长沙市",
    "420106": "湖北省武汉市",
    "450103": "广西南宁市",
    "520102": "贵州省贵阳市",
}
SKIP_FIRST = 3  # households per grid left as they are
RENTAL_EVERY = 9
LAPSED_SHARE, WAITING_SHARE = 0.08, 0.12


async def load_demo_rentals(
    session: AsyncSession,
    vault: IdVault,
    now: datetime,
    *,
    registration_days: int = 30,
    seed: int = 2026,
) -> int:
    """Rentals and tenants for the demo's households; returns how many tenants. The caller
    commits."""
    rng = random.Random(seed * 17 + 11)
    today = now.date()
    rows = (
        await session.exec(
            select(Household)
            .where(col(Household.is_business).is_(False))
            .order_by(col(Household.grid_id), col(Household.id))
        )
    ).all()
    used: set[str] = set()
    seen_in_grid: dict[int, int] = {}
    tenants = 0
    for household in rows:
        index = seen_in_grid.get(household.grid_id, 0)
        seen_in_grid[household.grid_id] = index + 1
        if index < SKIP_FIRST or (household.id or 0) % RENTAL_EVERY != 4:
            continue
        assert household.id is not None
        rental = Rental(
            household_id=household.id,
            landlord_name=household.head_name,
            landlord_phone=household.phone,
            created_at=now,
            updated_at=now,
        )
        session.add(rental)
        await session.flush()
        assert rental.id is not None
        count = rng.randint(1, 3)
        for _ in range(count):
            region = rng.choice(TENANT_REGIONS)
            gender = rng.choice(list(Gender))
            born = today - timedelta(days=rng.randrange(19 * 365, 50 * 365))
            number = _number(rng, region, born, gender, used)
            sealed = vault.seal(number)
            moved_in = today - timedelta(days=rng.randrange(1, 400))
            due = moved_in + timedelta(days=registration_days)
            roll = rng.random()
            lapsed = due < today and roll < LAPSED_SHARE
            waiting = due >= today and roll < LAPSED_SHARE + WAITING_SHARE
            member = HouseholdMember(
                household_id=household.id,
                name=rng.choice(SURNAMES) + rng.choice(GIVEN_NAMES),
                relation=Relation.TENANT,
                gender=gender,
                birth_date=born,
                id_cipher=sealed.cipher,
                id_hash=sealed.digest,
                phone=f"+86{rng.choice(MOBILE_PREFIXES)}{rng.randrange(10**8):08d}",
                status=ResidenceStatus.FLOATING,
                moved_in=moved_in,
                origin=ORIGIN_NAMES[region],
                stay_until=moved_in + timedelta(days=rng.choice((180, 365, 730))),
                created_at=now,
                updated_at=now,
            )
            session.add(member)
            await session.flush()
            assert member.id is not None
            confirmed = not lapsed and not waiting
            session.add(
                Tenancy(
                    rental_id=rental.id,
                    member_id=member.id,
                    registered_at=now,
                    due_on=due,
                    confirmed_at=now if confirmed else None,
                    # the demo's past: its reminders went out then, so the sandbox's first
                    # morning (and every test on the demo) gets none from these rows
                    reminded_at=now,
                    lapse_told_at=now,
                )
            )
            tenants += 1
        household.members += count
        session.add(household)
    return tenants


def _number(rng: random.Random, region: str, born: date, gender: Gender, used: set[str]) -> str:
    while True:
        sequence = rng.randrange(100) * 10 + rng.randrange(5) * 2
        sequence += 1 if gender is Gender.MALE else 0
        number = with_check_digit(f"{region}{born:%Y%m%d}{sequence:03d}")
        if number not in used:
            used.add(number)
            return number
