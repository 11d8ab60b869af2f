"""The deadline sweep (限时办理), and the escalation step it shares with 上报 by hand."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from functools import cache

from sqlalchemy import and_, bindparam, or_
from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import Select

from bot.routing import escalation
from bot.routing.policy import Policy
from bot.routing.working_time import WorkCalendar
from bot.services.ticket_notices import Notice, TicketNotifier
from bot.services.tickets.concerned import (
    Lookups,
    grid_at_tier,
    load_grid,
    owners,
    supervisors_over,
)
from bot.services.tickets.deadlines import clock_of, policy_of, store_clock
from bot.services.tickets.kernel import AlreadyHandled, tell, transition
from models import Person, Ticket, TicketEvent, TicketEventKind, TicketState

log = logging.getLogger(__name__)


async def escalate_overdue(
    session: AsyncSession, notifier: TicketNotifier, now: datetime, *, batch: int = 500
) -> int:
    """One sweep: warn before deadlines, escalate past them, flag the overdue at the top.

    Reads only tickets whose indexed ``next_deadline_at``/``warn_at`` has come, so its cost
    grows with what is due, not with all tickets. Who is who, the policies and the calendar
    are read once for the whole batch (:class:`Lookups`), in a read of their own. Then each
    ticket is settled in a short transaction of its own (:func:`settle_due`) and committed, so
    a person acting on a ticket of the batch waits for that one ticket at most, never for the
    batch; a ticket that fails is rolled back alone, logged, and stays due for the next sweep.

    Commits ``session`` once per ticket: it must keep its objects on commit (the sessions of
    :func:`bot.db.create_session_factory` do), so the batch's lookups stay readable. Returns
    the number of steps taken.
    """
    query = (
        select(Ticket.id)
        .where(or_(col(Ticket.next_deadline_at) <= now, col(Ticket.warn_at) <= now))
        .order_by(col(Ticket.next_deadline_at))
        .limit(batch)
    )
    ids = [ticket_id for ticket_id in (await session.exec(query)).all() if ticket_id is not None]
    lookups = await _lookups_for(session, ids)
    steps_taken = 0
    for position, ticket_id in enumerate(ids):
        try:
            steps = await settle_due(session, notifier, ticket_id, now, lookups)
            await session.commit()
        except Exception as error:
            await session.rollback()  # this ticket alone; it stays due for the next sweep
            if isinstance(error, StaleDataError | AlreadyHandled):
                log.info("ticket %s moved on while the sweep settled it", ticket_id)
            else:
                log.exception("the deadline sweep could not settle ticket %s", ticket_id)
            # a rollback expires every object the session holds, the lookups' too
            lookups = await _lookups_for(session, ids[position + 1 :])
            continue
        steps_taken += steps
    return steps_taken


async def _lookups_for(session: AsyncSession, ticket_ids: Sequence[int]) -> Lookups:
    """The batch's lookups, read in a transaction that ends before any ticket is locked."""
    lookups = Lookups()
    await lookups.prefetch(session, ticket_ids)
    await session.commit()
    return lookups


def _is_due(ticket: Ticket, now: datetime) -> bool:
    return any(at is not None and at <= now for at in (ticket.next_deadline_at, ticket.warn_at))


@cache
def _locked_with_followers(skip_locked: bool) -> Select[Ticket, int | None]:
    """The sweep's read of one ticket (``:ticket_id``), fresh from the database and locked
    (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite's write transaction holds the whole
    database), one row per resident who joined it. A joining resident's event row waits for
    that lock (its key check on the ticket), so the followers read here stay true until the
    ticket's transaction commits. Built once: only the id changes."""
    query = (
        select(Ticket, TicketEvent.actor_id)
        .outerjoin(
            TicketEvent,
            and_(
                col(TicketEvent.ticket_id) == Ticket.id,
                col(TicketEvent.action) == TicketEventKind.JOINED,
            ),
        )
        .where(col(Ticket.id) == bindparam("ticket_id"))
        .execution_options(populate_existing=True)
    )
    if skip_locked:
        query = query.with_for_update(of=Ticket, skip_locked=True)
    return query


async def settle_due(
    session: AsyncSession,
    notifier: TicketNotifier,
    ticket_id: int,
    now: datetime,
    lookups: Lookups | None = None,
) -> int:
    """Take the steps one ticket has due, in the caller's transaction: lock it, check it is
    still due (a person or another sweep may have moved it since the batch was read), advance
    its clock (:func:`bot.routing.escalation.advance`), save it, record each step's event and
    queue its messages. A ticket locked by someone else is left for the next sweep. Returns the
    number of steps taken."""
    lookups = lookups or Lookups()
    query = _locked_with_followers(session.get_bind().dialect.name == "postgresql")
    rows = (await session.exec(query, params={"ticket_id": ticket_id})).all()
    if not rows or not _is_due(rows[0][0], now):
        return 0
    ticket = rows[0][0]
    await lookups.know_followers(session, ticket, [joined for _, joined in rows])
    policy, calendar = await policy_of(session, ticket, lookups=lookups)
    steps = escalation.advance(clock_of(ticket), policy, calendar, now)
    for step in steps:
        if isinstance(step, escalation.Escalate):
            await apply_escalation(
                session, notifier, ticket, step, policy, calendar, now, lookups=lookups
            )
            continue
        before = TicketState(ticket.state)
        store_clock(ticket, escalation.apply(clock_of(ticket), step), policy, calendar)
        if isinstance(step, escalation.Warn):
            data = {"which": step.which, "deadline": step.deadline.isoformat()}
            await transition(
                session, ticket, now, TicketEventKind.WARNED, before=before, data=data
            )
            await tell(session, notifier, Notice.WARNED, ticket, now, lookups=lookups)
        else:
            data = {"which": step.which, "at": step.at.isoformat()}
            await transition(
                session, ticket, now, TicketEventKind.OVERDUE, before=before, data=data
            )
            grid = await load_grid(session, ticket.grid_id)
            await tell(
                session,
                notifier,
                Notice.OVERDUE_AT_TOP,
                ticket,
                now,
                others=await supervisors_over(session, grid, lookups=lookups),
                lookups=lookups,
            )
    if not steps:  # nothing due after all: make sure it leaves the sweep's index
        store_clock(ticket, clock_of(ticket), policy, calendar)
        session.add(ticket)
        await session.flush()
    return len(steps)


async def apply_escalation(
    session: AsyncSession,
    notifier: TicketNotifier,
    ticket: Ticket,
    step: escalation.Escalate,
    policy: Policy,
    calendar: WorkCalendar,
    now: datetime,
    *,
    actor: Person | None = None,
    lookups: Lookups | None = None,
) -> None:
    """Persist one escalation step: new owners and deadlines, an event, everyone told.

    ``lookups`` (a sweep's) answers who is who without asking the database again.
    """
    lookups = lookups or Lookups()
    previous = await owners(session, ticket, lookups=lookups)
    before = TicketState(ticket.state)
    grid = await load_grid(session, ticket.grid_id)
    owner_grid = await grid_at_tier(session, grid, step.to_tier, lookups=lookups)
    clock = escalation.apply(clock_of(ticket), step)
    store_clock(ticket, clock, policy, calendar)
    ticket.owner_grid_id = owner_grid.id
    ticket.assignee_id = None
    await transition(
        session,
        ticket,
        now,
        TicketEventKind.ESCALATED,
        before=before,
        actor=actor,
        note=step.note,
        data={
            "reason": step.reason,
            "from_tier": step.from_tier,
            "to_tier": step.to_tier,
            "to_role": step.to_role,
            "deadline_passed": step.at.isoformat(),
        },
    )
    now_owning = await owners(session, ticket, lookups=lookups)
    still = {o.id for o in now_owning}
    await tell(
        session,
        notifier,
        Notice.ESCALATED,
        ticket,
        now,
        actor=actor,
        note=step.note,
        owners=now_owning,
        others=[p for p in previous if p.id not in still],
        extra={"reason": step.reason, "grid": owner_grid.name},
        lookups=lookups,
    )
