"""The deadline sweep reads who is who once per batch (:class:`tickets.Lookups`) and still
sends the same messages to the same people, with the same events, as settling each ticket on
its own; and its database work grows by a fixed few statements per ticket."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import FrozenClock
from bot.services import tickets
from bot.services.demo import DEMO_PERSONAS, load_demo_data
from bot.services.notice import resident_grid
from bot.settings import ReportLimits, Settings
from bot.telegram.ticket_notifier import TelegramTicketNotifier
from models import (
    CalendarDay,
    OutboxMessage,
    Person,
    Ticket,
    TicketCategory,
    TicketEvent,
)
from tests.fakes import RecordingNotifier

PER_PERSONA = 4  # tickets filed by each of the two demo residents
SETTINGS = Settings(
    _env_file=None,  # type: ignore[call-arg]
    reports=ReportLimits(per_hour=50, per_day=50),
)


async def person(session: AsyncSession, persona: str) -> Person:
    return (
        await session.exec(select(Person).where(Person.telegram_id == DEMO_PERSONAS[persona]))
    ).one()


@pytest.fixture
async def filed(session: AsyncSession, clock: FrozenClock) -> AsyncIterator[list[Ticket]]:
    """Tickets from two residents of two grids; one with photos, one that a neighbour joined."""
    await load_demo_data(session, clock.now())
    make_up = clock.now().date() + timedelta(days=9)  # a Saturday worked (调休)
    session.add(CalendarDay(day=make_up, is_workday=True, created_at=clock.now()))
    await session.flush()
    filed: list[Ticket] = []
    for persona in ("resident", "other_resident"):
        reporter = await person(session, persona)
        assert reporter.id is not None
        grid = await resident_grid(session, reporter.id)
        assert grid is not None
        for n in range(PER_PERSONA):
            photos = ("photo-a", "photo-b") if n == 1 else ()
            report = tickets.Report(
                TicketCategory.FACILITY, f"第{n}号路灯不亮了", photo_file_ids=photos
            )
            filed.append(
                await tickets.file_ticket(
                    session,
                    RecordingNotifier(),
                    reporter=reporter,
                    grid=grid,
                    report=report,
                    settings=SETTINGS,
                    now=clock.now(),
                )
            )
    neighbour = await person(session, "other_resident")
    await tickets.join_ticket(
        session, RecordingNotifier(), person=neighbour, ticket_id=filed[0].id or 0, now=clock.now()
    )
    await session.flush()
    yield filed


async def test_lookups_answer_as_the_plain_helpers(
    session: AsyncSession, filed: list[Ticket]
) -> None:
    prefetched = tickets.Lookups()
    await prefetched.prefetch(session, [t.id for t in filed if t.id is not None])
    for lookups in (prefetched, tickets.Lookups()):  # filled for the batch, and on demand
        for ticket in filed:
            assert ticket.id is not None
            grid = await session.get(tickets.Grid, ticket.grid_id)
            assert grid is not None
            policy, calendar = await tickets.policy_of(session, ticket)
            cached_policy, cached_calendar = await tickets.policy_of(
                session, ticket, lookups=lookups
            )
            assert cached_policy == policy
            assert cached_calendar.overrides == calendar.overrides
            assert (
                await tickets.ancestors(session, grid, lookups=lookups)
            ) == await tickets.ancestors(session, grid)
            for tier in (3, 2, 1, 0):
                at = await tickets.grid_at_tier(session, grid, tier)
                assert (await tickets.grid_at_tier(session, grid, tier, lookups=lookups)) is at
                for link in policy.chain:
                    assert at.id is not None
                    assert await tickets.holders(
                        session, at.id, link.role, lookups=lookups
                    ) == await tickets.holders(session, at.id, link.role)
            assert await tickets.owners(session, ticket, lookups=lookups) == await tickets.owners(
                session, ticket
            )
            assert await tickets.supervisors_over(
                session, grid, lookups=lookups
            ) == await tickets.supervisors_over(session, grid)
            *_, photos = await tickets.card_facts(session, ticket)
            assert prefetched.report_photos[ticket.id] == photos
    assert [p.id for p in await tickets.followers(session, filed[0])] == sorted(
        [(await person(session, "resident")).id, (await person(session, "other_resident")).id]
    )


async def sent_and_recorded(session: AsyncSession, after_id: int) -> tuple[list[Any], list[Any]]:
    outbox = (
        await session.exec(
            select(OutboxMessage)
            .where(col(OutboxMessage.id) > after_id)
            .order_by(col(OutboxMessage.id))
        )
    ).all()
    events = (
        await session.exec(
            select(TicketEvent)
            .where(col(TicketEvent.action).in_(("warned", "escalated", "overdue")))
            .order_by(col(TicketEvent.id))
        )
    ).all()
    return (
        [(m.chat_id, m.person_id, m.method, m.payload, m.ref, m.edit_ref) for m in outbox],
        [(e.ticket_id, e.action, e.from_state, e.to_state, e.note, e.data) for e in events],
    )


@pytest.mark.parametrize("later", [timedelta(hours=8), timedelta(days=1), timedelta(days=40)])
async def test_a_sweep_sends_what_settling_each_ticket_alone_sends(
    session: AsyncSession, filed: list[Ticket], clock: FrozenClock, later: timedelta
) -> None:
    """Warnings (8 h), one escalation (a day), and every tier climbed with the top flagged to
    the supervisors (40 days): the batch sweep and one fresh sweep per ticket agree exactly."""
    clock.advance(later)
    now = clock.now()
    notifier = TelegramTicketNotifier(SETTINGS)
    last = (
        await session.exec(select(OutboxMessage.id).order_by(col(OutboxMessage.id).desc()))
    ).first()

    async with session.begin_nested() as batch:
        steps = await tickets.escalate_overdue(session, notifier, now)
        batch_result = await sent_and_recorded(session, last or 0)
        await batch.rollback()

    due = (
        await session.exec(
            select(Ticket.id)
            .where((col(Ticket.next_deadline_at) <= now) | (col(Ticket.warn_at) <= now))
            .order_by(col(Ticket.next_deadline_at))
        )
    ).all()
    async with session.begin_nested() as alone:
        one_by_one = 0
        for ticket_id in due:
            async with session.begin_nested():
                one_by_one += await tickets._sweep_one(session, notifier, ticket_id, now)
        alone_result = await sent_and_recorded(session, last or 0)
        await alone.rollback()

    assert steps == one_by_one >= len(filed)
    assert batch_result == alone_result
    messages, events = batch_result
    assert len(events) == steps and messages
    if later == timedelta(days=40):
        supervisor = await person(session, "supervisor")
        flagged = [m for m in messages if m[0] == supervisor.telegram_id]
        assert len(flagged) == len(filed)  # each ticket overdue at the top, told once


async def test_an_escalation_tells_the_old_owner_the_new_owners_and_the_reporters(
    session: AsyncSession, filed: list[Ticket], clock: FrozenClock
) -> None:
    ticket = filed[0]
    assert ticket.id is not None
    previous = await tickets.owners(session, ticket)
    reporters = await tickets.followers(session, ticket)
    clock.advance(timedelta(days=1))
    notifier = RecordingNotifier()

    await tickets.escalate_overdue(session, notifier, clock.now())

    update = next(u for u in notifier.updates if u.ticket.id == ticket.id)
    assert update.notice == "escalated"
    assert [p.id for p in update.owners] == [p.id for p in await tickets.owners(session, ticket)]
    assert [p.id for p in update.others] == [p.id for p in previous]
    assert [p.id for p in update.reporters] == [p.id for p in reporters]
    assert update.report_photos == 0 and len(reporters) == 2
    assert next(u for u in notifier.updates if u.ticket.id == filed[1].id).report_photos == 2


@contextmanager
def counting(session: AsyncSession) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    engine = session.get_bind().engine  # after execution: as the database received them
    event.listen(engine, "after_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "after_cursor_execute", count)


async def test_each_escalation_reads_once_and_writes_the_ticket_once(
    session: AsyncSession, filed: list[Ticket], clock: FrozenClock
) -> None:
    """Per ticket only the locked read (with who joined it) is read; the policy, calendar,
    grid chains, holders, people and photo counts come once a batch; the ticket is updated
    once."""
    clock.advance(timedelta(days=1))
    with counting(session) as statements:
        steps = await tickets.escalate_overdue(
            session, TelegramTicketNotifier(SETTINGS), clock.now()
        )
        await session.flush()
    assert steps == len(filed)
    reads = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    per_batch = 7  # the selection; grids, grids above, holders, photos, people; calendar days
    assert len(reads) <= per_batch + steps, "\n".join(reads)
    updates = [s for s in statements if s.lstrip().upper().startswith("UPDATE TICKET ")]
    assert len(updates) == steps
    savepoints = {s for s in statements if s.startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))}
    if session.get_bind().dialect.name != "postgresql":
        assert len(savepoints) == 2 * steps
        return
    assert savepoints == {  # asyncpg prepares each distinct text: here once
        f"SAVEPOINT {tickets.SWEEP_SAVEPOINT}",
        f"RELEASE SAVEPOINT {tickets.SWEEP_SAVEPOINT}",
    }
    with counting(session) as after:  # after the sweep, savepoints take their own names again
        async with session.begin_nested():
            await session.exec(select(Ticket.id).limit(1))
    assert after and after[0].startswith("SAVEPOINT sa_savepoint_")


class FailingOnce(RecordingNotifier):
    """Refuses to tell about one ticket, as if a person had moved it first."""

    def __init__(self, ticket_id: int) -> None:
        super().__init__()
        self.ticket_id = ticket_id

    async def __call__(self, session: Any, update: Any, now: Any) -> None:
        if update.ticket.id == self.ticket_id:
            raise tickets.AlreadyHandled(state="—", name="—")
        await super().__call__(session, update, now)


async def test_a_ticket_that_fails_is_rolled_back_alone(
    session: AsyncSession, filed: list[Ticket], clock: FrozenClock
) -> None:
    """Its savepoint is rolled back (the one name reused on PostgreSQL still finds it); the
    tickets before and after it are escalated; it stays due for the next sweep."""
    failing = filed[3]
    assert failing.id is not None
    clock.advance(timedelta(days=1))
    notifier = FailingOnce(failing.id)

    steps = await tickets.escalate_overdue(session, notifier, clock.now())

    assert steps == len(filed) - 1
    escalated = (
        await session.exec(select(TicketEvent.ticket_id).where(TicketEvent.action == "escalated"))
    ).all()
    assert sorted(escalated) == sorted(t.id for t in filed if t is not failing)
    await session.refresh(failing)
    assert failing.escalation_count == 0 and failing.owner_role == "worker"
    assert await tickets.escalate_overdue(session, RecordingNotifier(), clock.now()) == 1
