"""Tagged people in the demo community (人员标签), so the sandbox shows follow-ups (随访).

Among the people registered by :mod:`bot.services.demo_members`, a few carry the default tags
(:data:`bot.services.tags.DEFAULT_POLICY`) as a community would have them: chronic disease
among the older, the elderly living alone past eighty, a pregnant woman here and there,
left-behind children, subsistence households, disability, and one or two of each special
group. Households of the "worker" and "other_worker" personas are left untagged, so the
end-to-end stories told on them (their morning push, /quota) stay as they are; every other
worker gets follow-ups in the push. The same seed gives the same tags.
"""

from __future__ import annotations

import random
from datetime import date, datetime

from sqlalchemy import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models import Gender, Household, HouseholdMember, Person, PersonTag, Relation

from .demo import DEMO_PERSONAS

SPECIAL = ("correction", "released", "drug", "mental")  # one or two of each in the street


def _years(born: date | None, today: date) -> int:
    return 0 if born is None else (today - born).days // 365


def choose_tags(
    people: list[tuple[int, Relation, Gender | None, date | None]], today: date, seed: int
) -> list[tuple[int, str]]:
    """(member id, tag key) for ``people`` (id, relation, gender, birth date) — pure."""
    rng = random.Random(seed * 37 + 22)
    found: list[tuple[int, str]] = []
    for member_id, relation, gender, born in people:
        age = _years(born, today)
        if age >= 80 and rng.random() < 0.5:
            found.append((member_id, "elderly_alone"))
        if age >= 60 and rng.random() < 0.25:
            found.append((member_id, "chronic"))
        if gender is Gender.FEMALE and 22 <= age <= 38 and rng.random() < 0.04:
            found.append((member_id, "maternal"))
        if relation is Relation.CHILD and age < 16 and rng.random() < 0.05:
            found.append((member_id, "left_behind"))
        if relation is Relation.HEAD and rng.random() < 0.02:
            found.append((member_id, "subsistence"))
        if age >= 18 and rng.random() < 0.01:
            found.append((member_id, "disabled"))
    adults = [p[0] for p in people if 20 <= _years(p[3], today) <= 60]
    for key in SPECIAL:
        for member_id in rng.sample(adults, min(len(adults), 2)):
            found.append((member_id, key))
    return sorted(set(found))


async def load_demo_tags(session: AsyncSession, now: datetime, seed: int = 2026) -> int:
    """Tag some of the registered people (see the module); the caller commits."""
    personas = [DEMO_PERSONAS["worker"], DEMO_PERSONAS["other_worker"]]
    kept = select(col(Person.id)).where(col(Person.telegram_id).in_(personas))
    rows = (
        await session.exec(
            select(
                col(HouseholdMember.id),
                col(HouseholdMember.relation),
                col(HouseholdMember.gender),
                col(HouseholdMember.birth_date),
            )
            .join(Household, col(Household.id) == col(HouseholdMember.household_id))
            .where(
                col(HouseholdMember.moved_out).is_(None),
                col(Household.worker_id).is_not(None),
                col(Household.worker_id).not_in(kept),
            )
            .order_by(col(HouseholdMember.id))
        )
    ).all()
    people = [
        (member_id, Relation(relation), Gender(gender) if gender else None, born)
        for member_id, relation, gender, born in rows
        if member_id is not None
    ]
    chosen = choose_tags(people, now.date(), seed)
    if chosen:
        await session.exec(
            insert(PersonTag),
            params=[{"member_id": m, "tag": tag, "tagged_at": now} for m, tag in chosen],
        )
    return len(chosen)
