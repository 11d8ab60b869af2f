"""/people on the demo community: re-scoping, deactivating, muting — refused cleanly."""

from __future__ import annotations

import pytest
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import FrozenClock
from bot.errors import InvalidInput
from bot.services import people, staff
from bot.services.demo import DEMO_PERSONAS, load_demo_data
from models import Department, Grid, Person, Role


@pytest.fixture
async def demo(session: AsyncSession, clock: FrozenClock) -> AsyncSession:
    await load_demo_data(session, clock.now())
    await session.flush()
    return session


async def person(session: AsyncSession, persona: str) -> Person:
    return (
        await session.exec(select(Person).where(Person.telegram_id == DEMO_PERSONAS[persona]))
    ).one()


async def roles(session: AsyncSession, who: Person) -> list[people.RoleInGrid]:
    assert who.id is not None
    return await people.roles_of(session, who.id)


async def test_a_department_role_is_never_given_without_its_department(
    demo: AsyncSession, clock: FrozenClock
) -> None:
    admin, worker = await person(demo, "admin"), await person(demo, "other_worker")
    root = (await demo.exec(select(Grid).where(Grid.tier == 0))).one()
    with pytest.raises(InvalidInput):
        await staff.rescope(
            demo,
            actor=admin,
            roles=await roles(demo, admin),
            person=worker,
            role=Role.DEPARTMENT,
            grid=root,
            now=clock.now(),
        )
    police = (await demo.exec(select(Department).order_by(col(Department.id)))).first()
    assert police is not None
    given = await staff.rescope(
        demo,
        actor=admin,
        roles=await roles(demo, admin),
        person=worker,
        role=Role.DEPARTMENT,
        grid=root,
        now=clock.now(),
        department=police,
    )
    assert given.department_id == police.id
    head = await staff.rescope(
        demo,
        actor=admin,
        roles=await roles(demo, admin),
        person=worker,
        role=Role.HEAD,
        grid=root,
        now=clock.now(),
        department=police,  # a department means nothing to a head's role
    )
    assert head.department_id is None
