"""重复: a ticket closed as the same problem as another — only one the marker may handle, and
only the same kind of problem (seen: a worker attached a reporter to another community's
ticket, whose full card the reporter then saw)."""

from __future__ import annotations

import pytest
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import FrozenClock
from bot.errors import InvalidInput, NotAllowed
from bot.services import tickets
from bot.services.demo import load_demo_data
from bot.services.notice_board import resident_grid
from bot.services.ticket_numbers import shown_number
from bot.settings import Settings
from models import AuditLog, Ticket, TicketCategory, TicketState
from tests.services.test_dispatching import Demo


@pytest.fixture
async def demo(session: AsyncSession, clock: FrozenClock) -> Demo:
    await load_demo_data(session, clock.now())
    await session.flush()
    return Demo(session, clock.now())


async def file_for(demo: Demo, persona: str, category: TicketCategory) -> Ticket:
    reporter, _ = await demo.person(persona)
    assert reporter.id is not None
    grid = await resident_grid(demo.session, reporter.id)
    assert grid is not None
    return await tickets.file_ticket(
        demo.session,
        demo.notifier,
        reporter=reporter,
        grid=grid,
        report=tickets.Report(category, "楼道灯不亮，晚上看不见台阶"),
        settings=Settings(_env_file=None),  # type: ignore[call-arg]
        now=demo.now,
    )


async def mark(demo: Demo, by: str, ticket: Ticket, original: Ticket) -> Ticket:
    actor, roles = await demo.person(by)
    return await tickets.mark_duplicate(
        demo.session,
        demo.notifier,
        actor=actor,
        roles=roles,
        ticket_id=ticket.id or 0,
        original_number=original.number,
        now=demo.now,
    )


async def test_a_ticket_of_the_same_kind_in_the_workers_grid_is_a_duplicate(demo: Demo) -> None:
    first = await file_for(demo, "resident", TicketCategory.FACILITY)
    again = await file_for(demo, "resident", TicketCategory.FACILITY)
    marked = await mark(demo, "worker", again, first)
    assert marked.state == TicketState.DUPLICATE and marked.duplicate_of_id == first.id


async def test_a_ticket_outside_the_markers_grids_is_as_if_there_were_none(demo: Demo) -> None:
    mine = await file_for(demo, "resident", TicketCategory.FACILITY)
    elsewhere = await file_for(demo, "other_resident", TicketCategory.FACILITY)
    with pytest.raises(NotAllowed) as refused:
        await mark(demo, "worker", mine, elsewhere)
    assert refused.value.message == tickets.handling.NO_OTHER_TICKET  # the unknown number's
    assert refused.value.audit is not None
    assert refused.value.audit.action == "refused:duplicate"
    assert mine.state != TicketState.DUPLICATE and mine.duplicate_of_id is None
    audits = (await demo.session.exec(select(AuditLog))).all()
    assert all(a.action != "refused:duplicate" for a in audits)  # written by the error handler


async def test_another_kind_of_problem_is_not_the_same_one(demo: Demo) -> None:
    lamp = await file_for(demo, "resident", TicketCategory.FACILITY)
    fire = await file_for(demo, "resident", TicketCategory.FIRE)
    with pytest.raises(InvalidInput):
        await mark(demo, "worker", lamp, fire)
    assert lamp.duplicate_of_id is None


async def test_the_original_is_named_by_its_short_number_too(demo: Demo) -> None:
    """The worker reads the short number on the card and types it; typing garbage or the
    ticket itself gets a clear answer and changes nothing."""
    first = await file_for(demo, "resident", TicketCategory.FACILITY)
    again = await file_for(demo, "resident", TicketCategory.FACILITY)
    actor, roles = await demo.person("worker")

    async def typed(text: str) -> Ticket:
        return await tickets.mark_duplicate(
            demo.session,
            demo.notifier,
            actor=actor,
            roles=roles,
            ticket_id=again.id or 0,
            original_number=text,
            now=demo.now,
        )

    for garbage in ("路灯那张", "", "<b>1</b>", shown_number(again)):
        with pytest.raises(InvalidInput):
            await typed(garbage)
    assert again.state != TicketState.DUPLICATE
    marked = await typed(f" #{shown_number(first)} ")
    assert marked.state == TicketState.DUPLICATE and marked.duplicate_of_id == first.id
