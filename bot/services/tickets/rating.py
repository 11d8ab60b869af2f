"""The reporter's rating of a resolved ticket: 满意 / 基本满意 close it as solved, 不满意 reopens
it to the same handler (重办); and the words they add after it."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.errors import NotAllowed
from bot.i18n import N_
from bot.routing import escalation
from bot.services.ticket_notices import Notice, TicketNotifier
from bot.services.tickets.deadlines import clock_of, policy_of, store_clock
from bot.services.tickets.kernel import load, moved_on, tell, transition
from bot.services.tickets.text import MAX_NOTE, clean_text
from models import Person, Rating, Ticket, TicketEventKind, TicketState


async def rate(
    session: AsyncSession,
    notifier: TicketNotifier,
    *,
    reporter: Person,
    ticket_id: int,
    rating: Rating,
    now: datetime,
    comment: str | None = None,
) -> Ticket:
    """满意 / 基本满意 close the ticket as solved; 不满意 reopens it to the same handler (重办)."""
    ticket = await load(session, ticket_id)
    if ticket.reporter_id != reporter.id:
        raise NotAllowed(N_("Only the person who reported it can rate it."))
    if ticket.state != TicketState.RESOLVED:
        raise await moved_on(session, ticket)
    text = clean_text(comment, minimum=1, maximum=MAX_NOTE) if comment else None
    ticket.rating_comment = text
    return await settle_rating(
        session, notifier, ticket, reporter, rating, now, note=text, data={}
    )


async def settle_rating(
    session: AsyncSession,
    notifier: TicketNotifier,
    ticket: Ticket,
    actor: Person,
    rating: Rating | None,
    now: datetime,
    *,
    note: str | None,
    data: dict[str, Any],
) -> Ticket:
    """A resolved ticket's rating, the reporter's own or heard on a return visit: 不满意
    reopens it to the same handler (重办) with fresh deadlines; anything else (or no rating at
    all after a return visit) closes it as solved."""
    policy, calendar = await policy_of(session, ticket)
    ticket.rating = rating
    data = {**data, "rating": rating.value if rating else None}
    if rating == Rating.UNSATISFIED:
        clock = escalation.reopen(clock_of(ticket), policy, calendar, now)
        store_clock(ticket, clock, policy, calendar)
        ticket.reopen_count += 1
        ticket.resolved_at = None
        await transition(
            session,
            ticket,
            now,
            TicketEventKind.REOPENED,
            before=TicketState.RESOLVED,
            actor=actor,
            note=note,
            data=data,
        )
        notice = Notice.REOPENED
    else:
        store_clock(ticket, replace(clock_of(ticket), state=TicketState.CLOSED), policy, calendar)
        ticket.closed_at = now
        ticket.solved = True
        await transition(
            session,
            ticket,
            now,
            TicketEventKind.CLOSED,
            before=TicketState.RESOLVED,
            actor=actor,
            note=note,
            data=data,
        )
        notice = Notice.CLOSED
    owners = await redoers(session, ticket) if notice == Notice.REOPENED else None
    await tell(session, notifier, notice, ticket, now, actor=actor, note=note, owners=owners)
    return ticket


async def redoers(session: AsyncSession, ticket: Ticket) -> list[Person] | None:
    """Who redoes a reopened ticket (重办): the person who handled it, while they are active
    (only they may accept it again); ``None``: its owners, looked up as usual."""
    if ticket.assignee_id is None:
        return None
    handler = await session.get(Person, ticket.assignee_id)
    return [handler] if handler is not None and handler.active else None


async def add_rating_comment(
    session: AsyncSession,
    notifier: TicketNotifier,
    *,
    reporter: Person,
    ticket_id: int,
    comment: str,
    now: datetime,
) -> Ticket:
    """The optional words after a rating; an unhappy reporter's reach the handler."""
    text = clean_text(comment, minimum=1, maximum=MAX_NOTE)
    ticket = await load(session, ticket_id)
    if ticket.reporter_id != reporter.id or ticket.rating is None:
        raise NotAllowed()
    ticket.rating_comment = text
    before = TicketState(ticket.state)
    await transition(
        session,
        ticket,
        now,
        TicketEventKind.RATING_COMMENT,
        before=before,
        actor=reporter,
        note=text,
    )
    if ticket.rating == Rating.UNSATISFIED:  # the handler gets the card with it on
        await tell(
            session,
            notifier,
            Notice.COMPLAINT,
            ticket,
            now,
            actor=reporter,
            note=text,
            reporters=[],
            owners=await redoers(session, ticket),
        )
    return ticket
