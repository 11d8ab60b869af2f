"""公示: the outcome of an approval item is posted on its grid's notice board for the policy's
notice period, without the reporter's name or phone, and residents read it in /mygrid."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import FrozenClock
from bot.routing.policy import load_default_policy
from bot.routing.working_time import WorkCalendar
from bot.services import tickets
from bot.services.demo import load_demo_data
from bot.services.notice_board import posted_outcomes, public_text, resident_grid
from bot.services.ticket_notices import Notice
from bot.services.ticket_numbers import shown_number
from bot.services.tickets import classifying
from models import Grid, HandlingKind, Rating, Ticket, TicketCategory, TicketState
from tests.services.test_dispatching import Demo

CAL = WorkCalendar.for_policy(load_default_policy())


@pytest.fixture
async def demo(session: AsyncSession, clock: FrozenClock) -> Demo:
    await load_demo_data(session, clock.now())
    await session.flush()
    return Demo(session, clock.now())


async def approval_resolved(demo: Demo, note: str) -> Ticket:
    """A ticket the worker classifies as needing approval, which the community head accepts
    and resolves."""
    ticket = await demo.file()
    worker, worker_roles = await demo.person("worker")
    await classifying.reclassify(
        demo.session,
        demo.notifier,
        actor=worker,
        roles=worker_roles,
        ticket_id=ticket.id or 0,
        kind=HandlingKind.APPROVAL,
        reason="需社区审批",
        now=demo.now,
    )
    head, head_roles = await demo.person("community_head")
    for step in ("accept", "resolve"):
        demo.now += timedelta(minutes=30)
        if step == "accept":
            await tickets.accept(
                demo.session,
                demo.notifier,
                actor=head,
                roles=head_roles,
                ticket_id=ticket.id or 0,
                now=demo.now,
            )
        else:
            await tickets.resolve(
                demo.session,
                demo.notifier,
                actor=head,
                roles=head_roles,
                ticket_id=ticket.id or 0,
                text=note,
                now=demo.now,
            )
    return ticket


async def grid_of(demo: Demo, name: str) -> Grid:
    person, roles = await demo.person(name)
    assert person.id is not None
    grid = await resident_grid(demo.session, person.id)
    if grid is None:
        grid = await demo.session.get(Grid, roles[-1].grid_id)
    assert grid is not None
    return grid


async def test_an_approval_outcome_is_posted_for_five_working_days(demo: Demo) -> None:
    reporter, _ = await demo.person("resident")
    ticket = await approval_resolved(
        demo, f"经社区审核同意{reporter.name}家门前加装护栏，联系电话13812345678"
    )
    resolved_at = demo.now
    until = CAL.add(resolved_at, load_default_policy().kinds[HandlingKind.APPROVAL].notice_period)

    (event,) = await demo.events(ticket, "public_notice")
    assert event.data["until"] == until.isoformat()
    assert reporter.name not in (event.note or "") and "13812345678" not in (event.note or "")
    assert reporter.name[0] + "某" in (event.note or "")
    resolved = [u for u in demo.notifier.updates if u.notice == Notice.RESOLVED][-1]
    assert resolved.extra["notice_until"] == until.isoformat()  # the reporter is told

    home = await grid_of(demo, "resident")
    (shown,) = await posted_outcomes(demo.session, home, demo.now)
    assert shown.number == shown_number(ticket) and shown.kind is HandlingKind.APPROVAL
    assert shown.category is TicketCategory.FIRE and shown.until == until
    assert shown.text == event.note
    # the community's board shows it too; a sibling grid's does not
    assert [
        o.number
        for o in await posted_outcomes(
            demo.session, await grid_of(demo, "community_head"), demo.now
        )
    ] == [shown_number(ticket)]
    assert (
        await posted_outcomes(demo.session, await grid_of(demo, "other_resident"), demo.now) == []
    )
    # still up just before it ends, gone after
    assert await posted_outcomes(demo.session, home, until - timedelta(minutes=1))
    assert await posted_outcomes(demo.session, home, until) == []


async def test_it_stays_up_after_the_rating_closes_the_ticket(demo: Demo) -> None:
    ticket = await approval_resolved(demo, "审批通过，已在小区公示栏张贴")
    reporter, _ = await demo.person("resident")
    await tickets.rate(
        demo.session,
        demo.notifier,
        reporter=reporter,
        ticket_id=ticket.id or 0,
        rating=Rating.SATISFIED,
        now=demo.now + timedelta(hours=1),
    )
    assert ticket.state == TicketState.CLOSED
    home = await grid_of(demo, "resident")
    assert len(await posted_outcomes(demo.session, home, demo.now + timedelta(hours=2))) == 1


async def test_a_reopened_ticket_leaves_the_board_until_resolved_again(demo: Demo) -> None:
    ticket = await approval_resolved(demo, "审批通过，按方案整改")
    reporter, _ = await demo.person("resident")
    home = await grid_of(demo, "resident")
    demo.now += timedelta(hours=1)
    await tickets.rate(
        demo.session,
        demo.notifier,
        reporter=reporter,
        ticket_id=ticket.id or 0,
        rating=Rating.UNSATISFIED,
        now=demo.now,
    )
    assert ticket.state == TicketState.REOPENED
    assert await posted_outcomes(demo.session, home, demo.now) == []
    head, head_roles = await demo.person("community_head")
    for accept in (True, False):
        demo.now += timedelta(minutes=10)
        if accept:
            await tickets.accept(
                demo.session,
                demo.notifier,
                actor=head,
                roles=head_roles,
                ticket_id=ticket.id or 0,
                now=demo.now,
            )
        else:
            await tickets.resolve(
                demo.session,
                demo.notifier,
                actor=head,
                roles=head_roles,
                ticket_id=ticket.id or 0,
                text="重新审核后调整方案",
                now=demo.now,
            )
    (shown,) = await posted_outcomes(demo.session, home, demo.now)
    assert shown.text == "重新审核后调整方案"
    assert len(await demo.events(ticket, "public_notice")) == 2


async def test_a_general_ticket_is_not_posted(demo: Demo) -> None:
    ticket = await demo.file()
    worker, roles = await demo.person("worker")
    await tickets.accept(
        demo.session,
        demo.notifier,
        actor=worker,
        roles=roles,
        ticket_id=ticket.id or 0,
        now=demo.now,
    )
    await tickets.resolve(
        demo.session,
        demo.notifier,
        actor=worker,
        roles=roles,
        ticket_id=ticket.id or 0,
        text="已清理楼道杂物",
        now=demo.now,
    )
    assert await demo.events(ticket, "public_notice") == []
    resolved = [u for u in demo.notifier.updates if u.notice == Notice.RESOLVED][-1]
    assert "notice_until" not in resolved.extra
    assert await posted_outcomes(demo.session, await grid_of(demo, "resident"), demo.now) == []


async def test_notices_are_listed_newest_first_and_bounded(demo: Demo) -> None:
    numbers = []
    for i in range(3):
        numbers.append(shown_number(await approval_resolved(demo, f"第{i + 1}项审批事项已办结")))
    home = await grid_of(demo, "resident")
    shown = await posted_outcomes(demo.session, home, demo.now)
    assert [o.number for o in shown] == numbers[::-1]
    assert len(await posted_outcomes(demo.session, home, demo.now, limit=2)) == 2
    rows = (await demo.session.exec(select(Ticket).where(Ticket.kind == "approval"))).all()
    assert len(rows) == 3


@pytest.mark.parametrize(
    ("text", "names", "expected"),
    [
        ("请联系 138 1234 5678 或 0592-6123456", (), "请联系 *** 或 ***"),
        ("王小明家已整改", ("王小明",), "王某家已整改"),
        ("身份证350211199001011234已核验", (), "身份证***已核验"),
        ("工单 35021100100100-20260312-001 已办结", (), "工单 35021100100100-20260312-001 已办结"),
        ("Zhang Wei agreed", ("Zhang Wei", " "), "Z某 agreed"),
    ],
)
def test_public_text_masks_what_identifies_people(
    text: str, names: tuple[str, ...], expected: str
) -> None:
    assert public_text(text, names) == expected
