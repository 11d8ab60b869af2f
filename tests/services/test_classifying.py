"""定性 on a real database (SQLite, and PostgreSQL when configured): a handler classifies a
ticket, the policy's rules route it again, and everyone concerned hears of it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import FrozenClock
from bot.errors import InvalidInput, NotAllowed
from bot.labels import HANDLING_KIND
from bot.routing.escalation import SameKind
from bot.routing.policy import ChainLink
from bot.services import tickets
from bot.services.demo import load_demo_data
from bot.services.ticket_notices import Notice
from bot.services.tickets import classifying, dispatching
from models import HandlingKind, Person, Role, RoleAssignment, Ticket, TicketState
from tests.services.test_dispatching import Demo, ids


@pytest.fixture
async def demo(session: AsyncSession, clock: FrozenClock) -> Demo:
    await load_demo_data(session, clock.now())
    await session.flush()
    return Demo(session, clock.now())


async def classify(
    demo: Demo, ticket: Ticket, kind: HandlingKind, *, by: str, reason: str | None = None
) -> classifying.Reclassified:
    actor, roles = await demo.person(by)
    return await classifying.reclassify(
        demo.session,
        demo.notifier,
        actor=actor,
        roles=roles,
        ticket_id=ticket.id or 0,
        kind=kind,
        reason=reason,
        now=demo.now,
    )


async def escalate_to_the_head(demo: Demo, ticket: Ticket) -> None:
    worker, roles = await demo.person("worker")
    await tickets.escalate(
        demo.session,
        demo.notifier,
        actor=worker,
        roles=roles,
        ticket_id=ticket.id or 0,
        reason="需要网格长协调",
        now=demo.now,
    )


async def test_a_worker_classifies_a_ticket_as_major_and_the_centre_gets_it(demo: Demo) -> None:
    ticket = await demo.file()
    worker, _ = await demo.person("worker")
    head, _ = await demo.person("head")
    community_head, _ = await demo.person("community_head")
    centre, _ = await demo.person("center")
    demo.now += timedelta(minutes=30)
    demo.notifier.updates.clear()

    result = await classify(demo, ticket, HandlingKind.MAJOR, by="worker", reason="涉及整栋楼")

    assert result.moved and result.from_kind is HandlingKind.GENERAL
    assert result.rule == "major-to-centre" and centre.id in ids(result.to.holders)
    assert ticket.kind == HandlingKind.MAJOR and ticket.routing_rule == "major-to-centre"
    assert ticket.owner_role == Role.CENTER and ticket.sla["tier"] == 0
    assert ticket.state == TicketState.DISPATCHED and ticket.assignee_id is None
    assert ticket.dispatched_at == demo.now
    assert ticket.accept_deadline == demo.now + timedelta(hours=1)  # major: 1 working hour
    assert ticket.escalation_count == 0  # not an escalation
    assert centre.id in ids(await tickets.owners(demo.session, ticket))

    (event,) = await demo.events(ticket, "reclassified")
    assert event.actor_id == worker.id and event.note == "涉及整栋楼"
    assert {k: event.data[k] for k in ("from_kind", "to_kind", "rule", "moved")} == {
        "from_kind": "general",
        "to_kind": "major",
        "rule": "major-to-centre",
        "moved": True,
    }
    assert (event.data["from_tier"], event.data["to_tier"], event.data["to_role"]) == (
        3,
        0,
        "center",
    )
    (update,) = demo.notifier.updates
    assert update.notice == Notice.RECLASSIFIED and update.actor is worker
    assert update.extra == {
        "kind": HANDLING_KIND[HandlingKind.MAJOR],
        "role": "centre operator",
        "moved": "yes",
    }
    assert ticket.reporter_id in ids(update.reporters)
    assert centre.id in ids(update.owners)
    assert worker.id in ids(update.others)  # the workers' cards lose their buttons
    # major: the whole chain below the centre is told at once (the worker has it already)
    assert ids(update.informed) == {head.id, community_head.id}


async def test_a_head_classifies_as_approval_and_the_community_head_gets_it(demo: Demo) -> None:
    ticket = await demo.file()
    await escalate_to_the_head(demo, ticket)
    worker, _ = await demo.person("worker")
    head, _ = await demo.person("head")
    community_head, _ = await demo.person("community_head")
    demo.notifier.updates.clear()

    result = await classify(demo, ticket, HandlingKind.APPROVAL, by="head")

    assert result.rule == "approval-to-community" and result.to.link.tier == 1
    assert ticket.owner_role == Role.HEAD and ticket.sla["tier"] == 1
    assert community_head.id in ids(await tickets.owners(demo.session, ticket))
    (update,) = demo.notifier.updates
    assert head.id in ids(update.others) and community_head.id in ids(update.owners)
    assert ids(update.informed) == {worker.id}  # those below hear of it; not the head twice
    (event,) = await demo.events(ticket, "reclassified")
    assert event.note is None and event.data["from_tier"] == 2


async def test_a_kind_that_keeps_the_owner_restarts_the_clock_in_place(demo: Demo) -> None:
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
    demo.now += timedelta(minutes=20)
    demo.notifier.updates.clear()

    result = await classify(demo, ticket, HandlingKind.URGENT, by="worker", reason="有人被困")

    assert not result.moved and worker.id in ids(result.to.holders)
    assert ticket.state == TicketState.ACCEPTED and ticket.assignee_id == worker.id
    assert ticket.resolve_deadline == demo.now + timedelta(hours=2)  # urgent, round the clock
    (update,) = demo.notifier.updates
    assert update.extra["moved"] == "" and update.others == []
    assert len(update.informed) == 3  # urgent: reported up at once, to every tier above


async def test_the_choices_show_every_other_kind_and_where_it_goes(demo: Demo) -> None:
    ticket = await demo.file()
    worker, roles = await demo.person("worker")
    choices = await classifying.kind_choices(
        demo.session, actor=worker, roles=roles, ticket_id=ticket.id or 0, now=demo.now
    )
    assert choices.current is HandlingKind.GENERAL
    assert [option.kind for option in choices.options] == [
        HandlingKind.COORDINATION,
        HandlingKind.URGENT,
        HandlingKind.APPROVAL,
        HandlingKind.MAJOR,
    ]
    where = {o.kind: (o.link.tier, o.link.role, o.moves) for o in choices.options}
    assert where[HandlingKind.URGENT] == (3, Role.WORKER, False)
    assert where[HandlingKind.COORDINATION] == (1, Role.HEAD, True)
    assert where[HandlingKind.MAJOR] == (0, Role.CENTER, True)
    assert all(option.holders for option in choices.options)


async def test_who_may_classify_is_who_may_handle_it_now(demo: Demo) -> None:
    ticket = await demo.file()
    for name in ("resident", "supervisor", "other_worker"):
        with pytest.raises(NotAllowed) as refused:
            await classify(demo, ticket, HandlingKind.MAJOR, by=name)
        assert refused.value.audit is not None  # out of their grids: on record
    with pytest.raises(tickets.AlreadyHandled):  # the head is not handling it (yet)
        await classify(demo, ticket, HandlingKind.MAJOR, by="head")
    assert ticket.kind == HandlingKind.GENERAL and ticket.owner_role == Role.WORKER
    result = await classify(demo, ticket, HandlingKind.COORDINATION, by="center")
    assert result.to.link == ChainLink(1, Role.HEAD)


async def test_the_same_kind_a_closed_ticket_and_an_empty_reason_are_refused(
    demo: Demo,
) -> None:
    ticket = await demo.file()
    with pytest.raises(SameKind):
        await classify(demo, ticket, HandlingKind.GENERAL, by="worker")
    with pytest.raises(InvalidInput):
        await classify(demo, ticket, HandlingKind.MAJOR, by="worker", reason=" \u3000 ")
    worker, roles = await demo.person("worker")
    with pytest.raises(SameKind):
        await classifying.check_kind(
            demo.session,
            actor=worker,
            roles=roles,
            ticket_id=ticket.id or 0,
            kind=HandlingKind.GENERAL,
            now=demo.now,
        )
    ticket.state = TicketState.CLOSED
    demo.session.add(ticket)
    await demo.session.flush()
    with pytest.raises(tickets.AlreadyHandled):
        await classify(demo, ticket, HandlingKind.MAJOR, by="center")
    assert await demo.events(ticket, "reclassified") == []


async def test_a_kind_whose_owner_nobody_holds_is_refused_by_name(demo: Demo) -> None:
    ticket = await demo.file()
    community_head, _ = await demo.person("community_head")
    for assignment in (
        await demo.session.exec(
            select(RoleAssignment).where(
                RoleAssignment.person_id == community_head.id, RoleAssignment.role == Role.HEAD
            )
        )
    ).all():
        assignment.active = False
        demo.session.add(assignment)
    await demo.session.flush()
    worker, roles = await demo.person("worker")
    with pytest.raises(dispatching.NobodyThere):
        await classifying.check_kind(
            demo.session,
            actor=worker,
            roles=roles,
            ticket_id=ticket.id or 0,
            kind=HandlingKind.APPROVAL,
            now=demo.now,
        )
    with pytest.raises(dispatching.NobodyThere):
        await classify(demo, ticket, HandlingKind.APPROVAL, by="worker")
    assert ticket.kind == HandlingKind.GENERAL  # never orphaned


async def test_the_sweep_carries_on_with_the_new_kinds_deadlines(demo: Demo) -> None:
    ticket = await demo.file()
    await classify(demo, ticket, HandlingKind.COORDINATION, by="worker")
    # the community head does not accept within 2 working hours: up to the street centre
    later = demo.now + timedelta(hours=2, minutes=1)
    assert await tickets.escalate_overdue(demo.session, demo.notifier, later) == 1
    assert ticket.owner_role == Role.CENTER and ticket.kind == HandlingKind.COORDINATION
    (escalated,) = await demo.events(ticket, "escalated")
    assert escalated.data["from_tier"] == 1 and escalated.data["reason"] == "accept_overdue"


async def test_a_ticket_at_a_department_comes_back_when_classified_major(demo: Demo) -> None:
    ticket = await demo.file()
    centre, centre_roles = await demo.person("center")
    officer, officer_roles = await demo.person("department")
    police = next(d for d in await tickets.departments(demo.session) if d.code == "police")
    await tickets.transfer(
        demo.session,
        demo.notifier,
        actor=centre,
        roles=centre_roles,
        ticket_id=ticket.id or 0,
        department_id=police.id or 0,
        now=demo.now,
    )
    demo.notifier.updates.clear()
    result = await classify(demo, ticket, HandlingKind.MAJOR, by="department")
    assert result.moved and ticket.owner_department_id is None
    assert ticket.owner_role == Role.CENTER
    (event,) = await demo.events(ticket, "reclassified")
    assert event.data["from_department"] == "police" and event.data["from_role"] == "department"
    (update,) = demo.notifier.updates
    assert officer.id in ids(update.others)


def test_a_forged_button_is_refused_with_its_audit(clock: FrozenClock) -> None:
    person = Person(id=7, name="某人")
    refusal = classifying.forged(person, "cl:1:huge:g\x00", clock.now())
    assert refusal.audit is not None and refusal.audit.action == "refused:classify"
    assert refusal.audit.detail == "cl:1:huge:g?" and refusal.message == dispatching.FORGED
