"""The deadline sweep reads who is who once per batch (:class:`tickets.Lookups`) and still
sends the same messages to the same people, with the same events, as settling each ticket on
its own; its database work grows by a fixed few statements per ticket; and it commits ticket
by ticket, so one ticket's failure undoes nothing else and a person acting on a ticket of the
batch does not wait for the rest of it."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Awaitable, Callable, Iterator
from contextlib import closing, contextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import FrozenClock
from bot.db import create_session_factory
from bot.services import tickets
from bot.services.demo import DEMO_PERSONAS, load_demo_data
from bot.services.notice_board import resident_grid
from bot.services.people import roles_of
from bot.settings import ReportLimits, Settings
from bot.telegram.ticket_notifier import TelegramTicketNotifier
from models import (
    CalendarDay,
    Grid,
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


async def file_tickets(session: AsyncSession, now: datetime) -> list[Ticket]:
    """Tickets from two residents of two grids; one with photos, one that a neighbour joined."""
    await load_demo_data(session, now)
    make_up = now.date() + timedelta(days=9)  # a Saturday worked (调休)
    session.add(CalendarDay(day=make_up, is_workday=True, created_at=now))
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
                    now=now,
                )
            )
    neighbour = await person(session, "other_resident")
    await tickets.join_ticket(
        session, RecordingNotifier(), person=neighbour, ticket_id=filed[0].id or 0, now=now
    )
    await session.flush()
    return filed


@pytest.fixture
async def filed(session: AsyncSession, clock: FrozenClock) -> list[Ticket]:
    return await file_tickets(session, clock.now())


async def test_lookups_answer_as_the_plain_helpers(
    session: AsyncSession, filed: list[Ticket]
) -> None:
    prefetched = tickets.Lookups()
    await prefetched.prefetch(session, [t.id for t in filed if t.id is not None])
    for lookups in (prefetched, tickets.Lookups()):  # filled for the batch, and on demand
        for ticket in filed:
            assert ticket.id is not None
            grid = await session.get(Grid, ticket.grid_id)
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
            assert ticket_id is not None
            one_by_one += await tickets.settle_due(session, notifier, ticket_id, now)
        alone_result = await sent_and_recorded(session, last or 0)
        await alone.rollback()

    steps = await tickets.escalate_overdue(session, notifier, now)  # commits ticket by ticket
    batch_result = await sent_and_recorded(session, last or 0)

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


class FailingOnce(RecordingNotifier):
    """Fails while telling about one ticket: as if a person had moved it first, or broken."""

    def __init__(self, ticket_id: int, error: Exception) -> None:
        super().__init__()
        self.ticket_id = ticket_id
        self.error = error

    async def __call__(self, session: Any, update: Any, now: Any) -> None:
        if update.ticket.id == self.ticket_id:
            raise self.error
        await super().__call__(session, update, now)


@pytest.mark.parametrize(
    "error",
    [tickets.AlreadyHandled(state="—", name="—"), RuntimeError("the notifier broke")],
    ids=["moved-on", "broken"],
)
async def test_a_ticket_that_fails_is_rolled_back_alone(
    session: AsyncSession,
    filed: list[Ticket],
    clock: FrozenClock,
    error: Exception,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The tickets before and after it are escalated and kept; it is logged, left as it was,
    and still due for the next sweep."""
    ids = [t.id or 0 for t in filed]
    failing = ids[3]
    clock.advance(timedelta(days=1))
    caplog.set_level(logging.INFO)

    steps = await tickets.escalate_overdue(session, FailingOnce(failing, error), clock.now())

    assert steps == len(ids) - 1
    escalated = (
        await session.exec(select(TicketEvent.ticket_id).where(TicketEvent.action == "escalated"))
    ).all()
    assert sorted(escalated) == sorted(i for i in ids if i != failing)
    left = await session.get(Ticket, failing)
    assert left is not None and left.escalation_count == 0 and left.owner_role == "worker"
    assert any(str(failing) in record.getMessage() for record in caplog.records)
    assert await tickets.escalate_overdue(session, RecordingNotifier(), clock.now()) == 1


class ActingMidBatch(RecordingNotifier):
    """Once the sweep tells about its second ticket, runs ``act`` with the first ticket's id
    and one the sweep has not reached yet, in the middle of the batch."""

    def __init__(self, act: Callable[[int, int], Awaitable[None]], batch: list[int]) -> None:
        super().__init__()
        self.act, self.batch = act, batch
        self.acted = False

    async def __call__(self, session: Any, update: Any, now: Any) -> None:
        await super().__call__(session, update, now)
        seen = list(dict.fromkeys(u.ticket.id or 0 for u in self.updates))
        if len(seen) == 2 and not self.acted:
            self.acted = True
            await self.act(seen[0], next(i for i in reversed(self.batch) if i not in seen))


async def test_a_person_acting_during_a_sweep_waits_for_one_ticket_not_the_batch(
    engine: AsyncEngine, clock: FrozenClock
) -> None:
    """While the sweep settles its second ticket, the first is already committed (another
    connection reads it escalated). On PostgreSQL a worker's 签收 of the first goes through
    then and there, and one of a ticket the sweep has not reached yet is not undone: the
    sweep finds that ticket no longer due and leaves it alone."""
    sessions = create_session_factory(engine)
    async with sessions() as session:
        batch = [t.id or 0 for t in await file_tickets(session, clock.now())]
        await session.commit()
    clock.advance(timedelta(days=1))
    now = clock.now()
    accepted: list[int] = []

    async def act(first: int, later: int) -> None:
        if engine.dialect.name == "sqlite":  # one writer: a plain reader of the file
            assert engine.url.database is not None
            with closing(sqlite3.connect(engine.url.database)) as reader:
                (count,) = reader.execute(
                    "SELECT escalation_count FROM ticket WHERE id = ?", (first,)
                ).fetchone()
            assert count == 1
            return
        async with sessions() as other:
            # a lock still held by the batch fails the test instead of hanging it
            await (await other.connection()).execute(text("SET LOCAL lock_timeout = '20s'"))
            for ticket_id in (first, later):
                ticket = await other.get(Ticket, ticket_id)
                assert ticket is not None
                (owner, *_) = await tickets.owners(other, ticket)
                assert owner.id is not None
                await tickets.accept(
                    other,
                    RecordingNotifier(),
                    actor=owner,
                    roles=await roles_of(other, owner.id),
                    ticket_id=ticket_id,
                    now=now,
                )
                accepted.append(ticket_id)
            await other.commit()

    notifier = ActingMidBatch(act, batch)
    async with sessions() as session:
        steps = await tickets.escalate_overdue(session, notifier, now)

    assert notifier.acted
    async with sessions() as session:
        events = (
            await session.exec(
                select(TicketEvent.ticket_id, TicketEvent.action).where(
                    col(TicketEvent.action).in_(("escalated", "accepted"))
                )
            )
        ).all()
    escalated = sorted(ticket_id for ticket_id, action in events if action == "escalated")
    assert steps == len(escalated)
    if engine.dialect.name == "sqlite":
        assert escalated == sorted(batch)
        return
    first, later = accepted
    assert escalated == sorted(i for i in batch if i != later)
    assert sorted(i for i, action in events if action == "accepted") == sorted(accepted)
    assert first in escalated
