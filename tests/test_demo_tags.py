"""The demo community's tagged people: every default tag is on someone, none in the persona
workers' households (their end-to-end stories stay as they are), and their follow-ups are due
in other workers' pushes."""

from __future__ import annotations

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import FrozenClock
from bot.services import follow_ups, tags
from bot.services.demo import DEMO_PERSONAS, load_demo_data
from bot.services.id_numbers import IdVault, new_key
from models import Household, HouseholdMember, Person, PersonTag


async def test_the_demo_has_tagged_people_outside_the_persona_workers_households(
    session: AsyncSession, clock: FrozenClock
) -> None:
    await load_demo_data(session, clock.now(), vault=IdVault(new_key()))
    rows = (
        await session.exec(
            select(PersonTag.tag, Household.worker_id)
            .join(HouseholdMember, col(HouseholdMember.id) == col(PersonTag.member_id))
            .join(Household, col(Household.id) == col(HouseholdMember.household_id))
        )
    ).all()
    assert {tag for tag, _ in rows} == {t.key for t in tags.DEFAULT_POLICY.tags}
    personas = (
        await session.exec(
            select(Person.id).where(
                col(Person.telegram_id).in_(
                    [DEMO_PERSONAS["worker"], DEMO_PERSONAS["other_worker"]]
                )
            )
        )
    ).all()
    workers = {worker for _, worker in rows}
    assert workers and not workers & set(personas)
    due = await follow_ups.due_by_worker(
        session, sorted(w for w in workers if w), tags.DEFAULT_POLICY, clock.now()
    )
    assert sum(len(items) for items in due.values()) == len(rows)
