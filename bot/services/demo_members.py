"""The people of the demo community's households (实有人口), so the sandbox shows the register.

Every residential household gets as many people as its member count says: the head (whose
name the household has), a spouse, children, and in larger households a parent or two — with
resident ID numbers that pass the check (GB 11643), encrypted with the sandbox's key. About
one person in twelve is floating population (流动人口) from another province, one in nine
a permanent resident registered elsewhere (常住), a few have moved out. The same seed gives
the same people; a few thousand rows take a fraction of a second.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models import Gender, Household, HouseholdMember, Relation, ResidenceStatus

from .demo import DISTRICT_CODE, GIVEN_NAMES, MOBILE_PREFIXES, SURNAMES
from .id_numbers import IdVault, with_check_digit

# where floating and permanent residents come from (county codes of 江西, 安徽, 福建, 四川)
ORIGINS = ("360502", "340104", "350583", "510122", "360721", "341202")
FLOATING_SHARE, RESIDENT_SHARE, MOVED_OUT_SHARE = 0.08, 0.11, 0.02


@dataclass(frozen=True)
class DemoMember:
    household_id: int
    name: str
    relation: Relation
    gender: Gender
    birth_date: date
    id_number: str
    phone: str | None
    status: ResidenceStatus
    moved_in: date | None
    moved_out: date | None


class _Numbers:
    """Distinct valid ID numbers: region, birth date, a sequence whose parity is the gender."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._used: set[str] = set()

    def make(self, region: str, born: date, gender: Gender) -> str:
        while True:
            sequence = self._rng.randrange(100) * 10 + self._rng.randrange(5) * 2
            sequence += 1 if gender is Gender.MALE else 0
            number = with_check_digit(f"{region}{born:%Y%m%d}{sequence:03d}")
            if number not in self._used:
                self._used.add(number)
                return number


def _born(rng: random.Random, today: date, low: int, high: int) -> date:
    return today - timedelta(days=rng.randrange(low * 365, high * 365))


def demo_members(
    households: list[tuple[int, str, int]], today: date, seed: int = 2026
) -> list[DemoMember]:
    """The people of ``households`` (id, head's name, member count), described (pure)."""
    rng = random.Random(seed * 31 + 14)
    numbers = _Numbers(rng)
    found: list[DemoMember] = []
    for household_id, head_name, count in households:
        surname = head_name[:1] if head_name[:1] in SURNAMES else rng.choice(SURNAMES)
        roll = rng.random()
        status = (
            ResidenceStatus.FLOATING
            if roll < FLOATING_SHARE
            else ResidenceStatus.RESIDENT
            if roll < FLOATING_SHARE + RESIDENT_SHARE
            else ResidenceStatus.REGISTERED
        )
        region = DISTRICT_CODE if status is ResidenceStatus.REGISTERED else rng.choice(ORIGINS)
        moved_in = None if status is ResidenceStatus.REGISTERED else _born(rng, today, 0, 6)
        head_born = _born(rng, today, 30, 75)
        head_gender = rng.choice((Gender.MALE, Gender.FEMALE))
        plan: list[tuple[Relation, Gender, date]] = [(Relation.HEAD, head_gender, head_born)]
        if count >= 2:
            other = Gender.FEMALE if head_gender is Gender.MALE else Gender.MALE
            plan.append(
                (Relation.SPOUSE, other, head_born + timedelta(days=rng.randrange(-1500, 1500)))
            )
        for _ in range(count - len(plan)):
            if len(plan) >= 4 and head_born.year > today.year - 60:
                plan.append(
                    (
                        Relation.PARENT,
                        rng.choice(list(Gender)),
                        head_born - timedelta(days=rng.randrange(8000, 11000)),
                    )
                )
            else:
                child = head_born + timedelta(days=rng.randrange(7500, 12000))
                plan.append(
                    (
                        Relation.CHILD,
                        rng.choice(list(Gender)),
                        min(child, today - timedelta(days=30)),
                    )
                )
        for relation, gender, born in plan:
            name = (
                head_name
                if relation is Relation.HEAD
                else (
                    surname
                    if relation in (Relation.CHILD, Relation.PARENT)
                    else rng.choice(SURNAMES)
                )
                + rng.choice(GIVEN_NAMES)
            )
            adult = (today - born).days > 18 * 365
            moved_out = (
                today - timedelta(days=rng.randrange(30, 2000))
                if relation is not Relation.HEAD and rng.random() < MOVED_OUT_SHARE
                else None
            )
            found.append(
                DemoMember(
                    household_id=household_id,
                    name=name,
                    relation=relation,
                    gender=gender,
                    birth_date=born,
                    id_number=numbers.make(region, born, gender),
                    phone=(
                        f"+86{rng.choice(MOBILE_PREFIXES)}{rng.randrange(10**8):08d}"
                        if adult and rng.random() < 0.7
                        else None
                    ),
                    status=status,
                    moved_in=moved_in,
                    moved_out=moved_out,
                )
            )
    return found


async def load_demo_members(
    session: AsyncSession, vault: IdVault, now: datetime, seed: int = 2026
) -> int:
    """Register the people of every residential household; the caller commits."""
    rows = (
        await session.exec(
            select(col(Household.id), col(Household.head_name), col(Household.members))
            .where(col(Household.is_business).is_(False))
            .order_by(col(Household.id))
        )
    ).all()
    households = [(i, name, max(1, members)) for i, name, members in rows if i is not None]
    described = demo_members(households, now.date(), seed)
    params = []
    for m in described:
        sealed = vault.seal(m.id_number)
        params.append(
            {
                "household_id": m.household_id,
                "name": m.name,
                "relation": m.relation,
                "gender": m.gender,
                "birth_date": m.birth_date,
                "id_cipher": sealed.cipher,
                "id_hash": sealed.digest,
                "phone": m.phone,
                "status": m.status,
                "moved_in": m.moved_in,
                "moved_out": m.moved_out,
                "created_at": now,
                "updated_at": now,
            }
        )
    for start in range(0, len(params), 2_000):
        await session.exec(
            # NULLs written, not left out: rows with and without a phone stay one statement
            insert(HouseholdMember).execution_options(render_nulls=True),
            params=params[start : start + 2_000],
        )
    return len(params)
