"""Party members and their contact households (党员联系户): membership by heads and
administrators in scope, the picker, the cap, contacts and what is due, coverage, the push
(once a day, only with something due), and the broadcast audience."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import FrozenClock
from bot.errors import InvalidInput, NotAllowed, NotFound
from bot.services import broadcasts, party
from bot.settings import PartySettings, Settings
from models import (
    AuditLog,
    Gender,
    Household,
    HouseholdMember,
    OutboxMessage,
    PartyKind,
    Person,
    Relation,
    ResidenceStatus,
    VisitKind,
)

from .test_imports import EAST, EAST_A, EAST_B, WORKER_A, Community, build_community

SETTINGS = Settings(_env_file=None)  # type: ignore[call-arg]
PHONE = "+8613911112222"


@pytest.fixture
async def community(session: AsyncSession, clock: FrozenClock) -> Community:
    return await build_community(session, clock.now())


async def _households(session: AsyncSession, c: Community, grid: str, count: int) -> list[int]:
    ids = []
    for n in range(count):
        household = Household(
            code=f"{grid}P{n:02d}",
            grid_id=c.grids[grid].id or 0,
            address=f"{n + 1}号",
            head_name=f"户主{grid[-1]}{n}",
            created_at=c.now,
            updated_at=c.now,
        )
        session.add(household)
        await session.flush()
        ids.append(household.id or 0)
    return ids


async def _member(session: AsyncSession, c: Community, household_id: int) -> HouseholdMember:
    member = HouseholdMember(
        household_id=household_id,
        name="李红",
        relation=Relation.HEAD,
        gender=Gender.FEMALE,
        birth_date=date(1970, 3, 1),
        phone=PHONE,
        status=ResidenceStatus.REGISTERED,
        created_at=c.now,
        updated_at=c.now,
    )
    session.add(member)
    await session.flush()
    return member


async def test_membership_contacts_and_coverage(
    session: AsyncSession, community: Community
) -> None:
    c = community
    homes = await _households(session, c, EAST_A, 5)
    elsewhere = await _households(session, c, EAST_B, 1)
    member = await _member(session, c, homes[0])
    assert member.id is not None
    head_roles = await c.roles(session, c.head)
    worker = c.workers[WORKER_A]
    worker_roles = await c.roles(session, worker)

    # a worker may not set membership; the head may; the branch is the only one serving it
    with pytest.raises(NotAllowed):
        await party.set_party(
            session, worker, worker_roles, member.id, PartyKind.FULL, None, c.now
        )
    admin_roles = await c.roles(session, c.east_admin)
    branch = await party.add_branch(
        session, c.east_admin, admin_roles, c.grids[EAST], "杏东社区第一党支部", c.now
    )
    with pytest.raises(InvalidInput):
        await party.add_branch(
            session, c.east_admin, admin_roles, c.grids[EAST], "杏东社区第一党支部", c.now
        )
    with pytest.raises(NotAllowed):
        await party.add_branch(session, c.head, head_roles, c.grids[EAST], "另一支部", c.now)
    _place, chosen = await party.set_party(
        session, c.head, head_roles, member.id, PartyKind.FULL, None, c.now
    )
    assert chosen is not None and chosen.id == branch.id and member.party == PartyKind.FULL
    with pytest.raises(NotFound):
        await party.set_party(
            session, c.head, head_roles, member.id, PartyKind.FULL, "没有这个支部", c.now
        )
    assert party.parse_kind("预备") == PartyKind.PROBATIONARY
    assert party.parse_kind("群众") is None
    with pytest.raises(InvalidInput):
        party.parse_kind("'; DROP TABLE x")

    # the worker assigns contact households in the member's grid; not elsewhere; a cap
    pick = await party.picker(session, worker, worker_roles, member.id, 0, c.now)
    assert len(pick.rows) == 5 and pick.chosen == 0
    small = PartySettings(max_households=2)
    for household_id in homes[:2]:
        assert await party.toggle_contact(
            session, worker, worker_roles, member.id, household_id, c.now, small
        )
    with pytest.raises(InvalidInput):
        await party.toggle_contact(
            session, worker, worker_roles, member.id, homes[2], c.now, small
        )
    with pytest.raises(NotAllowed):
        await party.toggle_contact(
            session, worker, worker_roles, member.id, elsewhere[0], c.now, small
        )
    assert not await party.toggle_contact(
        session, worker, worker_roles, member.id, homes[1], c.now, small
    )
    assert await party.toggle_contact(
        session, worker, worker_roles, member.id, homes[2], c.now, small
    )
    audits = (
        await session.exec(select(AuditLog.action).where(col(AuditLog.action).startswith("party")))
    ).all()
    assert audits.count("party:assign") == 3 and audits.count("party:unassign") == 1

    # she uses the bot (the same phone): what is due, a contact recorded
    her = Person(name="李红", phone=PHONE, telegram_id=777001, created_at=c.now, updated_at=c.now)
    stranger = Person(
        name="路人", phone="+8613000000000", telegram_id=777002, created_at=c.now, updated_at=c.now
    )
    session.add_all([her, stranger])
    await session.flush()
    plans = await party.my_plans(session, her, c.now, SETTINGS)
    assert [h.household.id for h in plans[0].households] == [homes[0], homes[2]]
    assert all(h.contact_due and h.lecture_due for h in plans[0].households)
    with pytest.raises(NotAllowed):
        await party.record_contact(session, stranger, homes[0], VisitKind.PHONE, c.now)
    with pytest.raises(NotAllowed):
        await party.record_contact(session, her, homes[1], VisitKind.PHONE, c.now)
    await party.record_contact(session, her, homes[0], VisitKind.LECTURE, c.now)
    plans = await party.my_plans(session, her, c.now, SETTINGS)
    first = plans[0].households[0]
    assert not first.contact_due and not first.lecture_due and first.last == c.now

    # coverage: staff of the grid only
    cover = await party.coverage(session, head_roles, c.grids[EAST_A], c.now, SETTINGS)
    assert cover == party.Coverage(households=5, covered=2, contacted=1, party_members=1)
    assert await party.coverage(session, [], c.grids[EAST_A], c.now, SETTINGS) is None
    assert await party.contact_of_household(session, homes[2]) == "李红"
    assert await party.contact_of_household(session, homes[1]) is None

    # the broadcast audience: her, not the stranger
    audience = await broadcasts.audience_of(session, "party")
    people = (
        await session.exec(
            select(Person.id).where(
                col(Person.id).in_(broadcasts.audience_people(audience, c.grids[EAST].path))
            )
        )
    ).all()
    assert list(people) == [her.id]

    # masses: no longer a member, her contacts end
    await party.set_party(session, c.head, head_roles, member.id, None, None, c.now)
    assert await party.contact_of_household(session, homes[2]) is None
    assert await party.my_plans(session, her, c.now, SETTINGS) == []


def _render(push: party.PartyPush, locale: str, settings: Settings) -> list[tuple[str, Any]]:
    return [(f"{push.person.name}:{sum(len(p.due) for p in push.plans)}", None)]


async def test_the_push_goes_once_a_working_day_with_something_due(
    session: AsyncSession, community: Community
) -> None:
    c = community
    homes = await _households(session, c, EAST_A, 2)
    member = await _member(session, c, homes[0])
    member.party = PartyKind.PROBATIONARY
    session.add(member)
    head_roles = await c.roles(session, c.head)
    for household_id in homes:
        await party.toggle_contact(
            session, c.head, head_roles, member.id or 0, household_id, c.now, SETTINGS.party
        )
    session.add(
        Person(name="李红", phone=PHONE, telegram_id=777003, created_at=c.now, updated_at=c.now)
    )
    await session.flush()
    monday = datetime(2026, 12, 7, 1, 0, tzinfo=SETTINGS.tz)  # 01:00 local: too early
    assert await party.send_party_pushes(session, monday, SETTINGS, _render) == 0
    nine = monday + timedelta(hours=8)
    assert await party.send_party_pushes(session, nine, SETTINGS, _render) == 1
    assert (
        await party.send_party_pushes(session, nine + timedelta(hours=1), SETTINGS, _render) == 0
    )
    sunday = nine - timedelta(days=1)
    assert await party.send_party_pushes(session, sunday, SETTINGS, _render) == 0
    queued = (
        await session.exec(select(OutboxMessage).where(col(OutboxMessage.ref).startswith("yp:")))
    ).all()
    assert len(queued) == 1 and queued[0].chat_id == 777003
