"""下派 / 上收 on a real database (SQLite, and PostgreSQL when configured): the street centre
places a ticket on a tier of its chain, and everyone concerned hears of it."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import FrozenClock
from bot.errors import InvalidInput, NotAllowed
from bot.routing.escalation import AlreadyThere
from bot.services import tickets
from bot.services.demo import DEMO_PERSONAS, load_demo_data
from bot.services.notice_board import resident_grid
from bot.services.people import RoleInGrid, roles_of
from bot.services.ticket_notices import Notice
from bot.services.tickets import dispatching
from bot.settings import Settings
from models import (
    AuditLog,
    Department,
    Grid,
    HandlingKind,
    Person,
    Role,
    RoleAssignment,
    Ticket,
    TicketCategory,
    TicketEvent,
    TicketState,
)
from tests.fakes import RecordingNotifier


class Demo:
    """The demo community, its named people with their roles, and one filed ticket."""

    def __init__(self, session: AsyncSession, now: datetime) -> None:
        self.session = session
        self.now = now
        self.notifier = RecordingNotifier()

    async def person(self, name: str) -> tuple[Person, list[RoleInGrid]]:
        person = (
            await self.session.exec(
                select(Person).where(Person.telegram_id == DEMO_PERSONAS[name])
            )
        ).one()
        assert person.id is not None
        return person, await roles_of(self.session, person.id)

    async def file(self, kind: HandlingKind = HandlingKind.GENERAL) -> Ticket:
        reporter, _ = await self.person("resident")
        assert reporter.id is not None
        grid = await resident_grid(self.session, reporter.id)
        assert grid is not None
        ticket = await tickets.file_ticket(
            self.session,
            self.notifier,
            reporter=reporter,
            grid=grid,
            report=tickets.Report(TicketCategory.FIRE, "楼道里电动车飞线充电，有火灾隐患"),
            settings=Settings(_env_file=None),  # type: ignore[call-arg]
            now=self.now,
        )
        ticket.kind = kind  # as if classified so (nothing in the bot files a major one yet)
        self.session.add(ticket)
        await self.session.flush()
        return ticket

    async def send(
        self, ticket: Ticket, tier: int, *, by: str = "center", reason: str | None = None
    ) -> dispatching.Dispatched:
        actor, roles = await self.person(by)
        return await dispatching.send_to_tier(
            self.session,
            self.notifier,
            actor=actor,
            roles=roles,
            ticket_id=ticket.id or 0,
            tier=tier,
            reason=reason,
            now=self.now,
        )

    async def events(self, ticket: Ticket, action: str) -> list[TicketEvent]:
        return list(
            (
                await self.session.exec(
                    select(TicketEvent)
                    .where(TicketEvent.ticket_id == ticket.id, TicketEvent.action == action)
                    .order_by(col(TicketEvent.id))
                )
            ).all()
        )


@pytest.fixture
async def demo(session: AsyncSession, clock: FrozenClock) -> Demo:
    await load_demo_data(session, clock.now())
    await session.flush()
    return Demo(session, clock.now())


def ids(people: list[Person] | tuple[Person, ...]) -> set[int | None]:
    return {person.id for person in people}


async def test_the_centre_sends_a_major_ticket_down_to_the_grid_workers(demo: Demo) -> None:
    ticket = await demo.file(HandlingKind.MAJOR)
    await demo.send(ticket, 0, reason="重大隐患，中心统筹")  # taken up to the centre first
    centre, _ = await demo.person("center")
    worker, worker_roles = await demo.person("worker")
    demo.now += timedelta(minutes=10)
    demo.notifier.updates.clear()

    result = await demo.send(ticket, 3, reason="  属地先处置，网格员  到现场核实 ")

    assert result.direction == "down" and result.to.link.tier == 3
    assert worker.id in ids(result.to.holders)
    assert ticket.state == TicketState.DISPATCHED and ticket.owner_role == Role.WORKER
    assert ticket.assignee_id is None and ticket.owner_department_id is None
    assert ticket.dispatched_at == demo.now
    assert ticket.sla["tier"] == 3
    # the major windows at tier 3: accept within a working hour of the dispatch
    assert ticket.accept_deadline == demo.now + timedelta(hours=1)
    assert ticket.next_deadline_at == ticket.accept_deadline
    assert worker.id in ids(await tickets.owners(demo.session, ticket))

    event = (await demo.events(ticket, "dispatched"))[-1]
    assert event.actor_id == centre.id and event.note == "属地先处置，网格员 到现场核实"
    assert event.from_state == TicketState.DISPATCHED and event.to_state == TicketState.DISPATCHED
    assert {k: event.data[k] for k in ("direction", "from_tier", "to_tier", "to_role")} == {
        "direction": "down",
        "from_tier": 0,
        "to_tier": 3,
        "to_role": "worker",
    }
    (update,) = demo.notifier.updates
    assert update.notice == Notice.SENT_DOWN and update.actor is not None
    assert update.note == "属地先处置，网格员 到现场核实"
    assert ticket.reporter_id in ids(update.reporters)  # the reporter is told
    assert worker.id in ids(update.owners)  # the workers get the card
    assert centre.id in ids(update.others)  # the centre is told it moved on

    accepted = await tickets.accept(
        demo.session,
        demo.notifier,
        actor=worker,
        roles=worker_roles,
        ticket_id=ticket.id or 0,
        now=demo.now + timedelta(minutes=5),
    )
    assert accepted.state == TicketState.ACCEPTED and accepted.assignee_id == worker.id


async def test_taking_a_ticket_up_from_the_workers_to_the_centre(demo: Demo) -> None:
    ticket = await demo.file()
    worker, _ = await demo.person("worker")
    centre, _ = await demo.person("center")
    demo.notifier.updates.clear()

    result = await demo.send(ticket, 0)

    assert result.direction == "up" and centre.id in ids(result.to.holders)
    assert ticket.owner_role == Role.CENTER and ticket.sla["tier"] == 0
    assert ticket.escalation_count == 0  # not an escalation: indicators do not count it
    (update,) = demo.notifier.updates
    assert update.notice == Notice.TAKEN_UP and update.note is None
    assert worker.id in ids(update.others)
    event = (await demo.events(ticket, "dispatched"))[-1]
    assert event.data["direction"] == "up" and event.note is None


async def test_a_ticket_with_a_department_is_taken_back_to_the_community(demo: Demo) -> None:
    ticket = await demo.file()
    centre, centre_roles = await demo.person("center")
    police = (await demo.session.exec(select(Department).where(Department.code == "police"))).one()
    await tickets.transfer(
        demo.session,
        demo.notifier,
        actor=centre,
        roles=centre_roles,
        ticket_id=ticket.id or 0,
        department_id=police.id or 0,
        now=demo.now,
    )
    officer, _ = await demo.person("department")
    community_head, _ = await demo.person("community_head")
    choices = await dispatching.choices(
        demo.session, actor=centre, roles=centre_roles, ticket_id=ticket.id or 0, now=demo.now
    )
    assert choices.department is not None and choices.department.code == "police"
    assert choices.current is None  # with a department, every tier may take it
    demo.notifier.updates.clear()

    result = await demo.send(ticket, 1, reason="不属于派出所职责，社区牵头")

    assert ticket.owner_department_id is None and ticket.owner_role == Role.HEAD
    assert result.direction == "down" and community_head.id in ids(result.to.holders)
    assert ticket.state == TicketState.DISPATCHED
    (update,) = demo.notifier.updates
    assert officer.id in ids(update.others)  # the department hears it is no longer theirs
    event = (await demo.events(ticket, "dispatched"))[-1]
    assert event.data["from_department"] == "police" and event.data["from_role"] == "department"


async def test_the_choices_name_each_tier_with_its_people(demo: Demo) -> None:
    ticket = await demo.file()
    centre, centre_roles = await demo.person("center")
    choices = await dispatching.choices(
        demo.session, actor=centre, roles=centre_roles, ticket_id=ticket.id or 0, now=demo.now
    )
    assert [(c.link.tier, c.link.role) for c in choices.tiers] == [
        (3, Role.WORKER),
        (2, Role.HEAD),
        (1, Role.HEAD),
        (0, Role.CENTER),
    ]
    assert [c.grid.tier for c in choices.tiers] == [3, 2, 1, 0]
    assert choices.current is choices.tiers[0]
    assert all(c.holders for c in choices.tiers)
    worker, _ = await demo.person("worker")
    assert worker.id in ids(choices.tiers[0].holders)


async def test_only_the_centre_and_admins_may_dispatch(demo: Demo) -> None:
    ticket = await demo.file()
    for name in ("center", "admin"):
        person, roles = await demo.person(name)
        assert await dispatching.may_dispatch(demo.session, person, roles, ticket)
    for name in ("worker", "head", "community_head", "supervisor", "resident", "department"):
        person, roles = await demo.person(name)
        assert not await dispatching.may_dispatch(demo.session, person, roles, ticket)
        with pytest.raises(NotAllowed) as refused:
            await demo.send(ticket, 0, by=name)
        assert refused.value.audit is not None
        assert refused.value.audit.action == "refused:dispatch"
    assert ticket.owner_role == Role.WORKER  # nothing moved
    admin_result = await demo.send(ticket, 2, by="admin")
    assert admin_result.to.link.role == Role.HEAD


async def test_a_tier_with_nobody_in_the_role_is_refused_by_name(demo: Demo) -> None:
    ticket = await demo.file()
    head, _ = await demo.person("head")
    assignments = (
        await demo.session.exec(
            select(RoleAssignment).where(
                RoleAssignment.person_id == head.id, RoleAssignment.role == Role.HEAD
            )
        )
    ).all()
    for assignment in assignments:
        assignment.active = False
        demo.session.add(assignment)
    await demo.session.flush()
    grid = await demo.session.get(Grid, assignments[0].grid_id)
    assert grid is not None
    with pytest.raises(dispatching.NobodyThere) as refused:
        await demo.send(ticket, 2)
    assert refused.value.params["grid"] == grid.name
    assert ticket.owner_role == Role.WORKER and ticket.sla["tier"] == 3  # never orphaned
    assert len(await demo.events(ticket, "dispatched")) == 1  # the filing's only


@pytest.mark.parametrize(
    ("tier", "role"), [(5, None), (-1, None), (0, Role.ADMIN), (3, Role.HEAD)]
)
async def test_a_link_outside_the_chain_is_refused_and_audited(
    demo: Demo, tier: int, role: Role | None
) -> None:
    ticket = await demo.file()
    centre, centre_roles = await demo.person("center")
    with pytest.raises(NotAllowed) as refused:
        await dispatching.send_to_tier(
            demo.session,
            demo.notifier,
            actor=centre,
            roles=centre_roles,
            ticket_id=ticket.id or 0,
            tier=tier,
            role=role,
            reason=None,
            now=demo.now,
        )
    audit = refused.value.audit
    assert isinstance(audit, AuditLog) and audit.action == "refused:dispatch"
    assert audit.object_id == ticket.id


async def test_where_it_is_already_and_a_finished_ticket_are_refused(demo: Demo) -> None:
    ticket = await demo.file()
    with pytest.raises(AlreadyThere):
        await demo.send(ticket, 3)
    with pytest.raises(InvalidInput):
        await demo.send(ticket, 0, reason="   ")
    ticket.state = TicketState.CLOSED
    demo.session.add(ticket)
    await demo.session.flush()
    with pytest.raises(tickets.AlreadyHandled):
        await demo.send(ticket, 0)


async def test_a_ticket_waiting_for_the_reporter_cannot_be_moved(demo: Demo) -> None:
    ticket = await demo.file()
    worker, worker_roles = await demo.person("worker")
    await tickets.accept(
        demo.session,
        demo.notifier,
        actor=worker,
        roles=worker_roles,
        ticket_id=ticket.id or 0,
        now=demo.now,
    )
    await tickets.ask_reporter(
        demo.session,
        demo.notifier,
        actor=worker,
        roles=worker_roles,
        ticket_id=ticket.id or 0,
        question="具体是哪一栋楼？",
        now=demo.now,
    )
    with pytest.raises(tickets.AlreadyHandled):
        await demo.send(ticket, 0)
    assert ticket.state == TicketState.WAITING_REPORTER


async def test_the_sweep_carries_on_from_the_new_tier(demo: Demo) -> None:
    ticket = await demo.file(HandlingKind.MAJOR)
    await demo.send(ticket, 0)
    await demo.send(ticket, 3, reason="先由网格员核实")
    # nobody at tier 3 accepts within the working hour: the sweep sends it up one tier
    later = demo.now + timedelta(hours=1, minutes=1)
    steps = await tickets.escalate_overdue(demo.session, demo.notifier, later)
    assert steps == 1
    assert ticket.owner_role == Role.HEAD and ticket.sla["tier"] == 2
    (escalated,) = await demo.events(ticket, "escalated")
    assert escalated.data["from_tier"] == 3 and escalated.data["reason"] == "accept_overdue"
