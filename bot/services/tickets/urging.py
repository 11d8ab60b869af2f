"""催办: a supervisor (督查) urges an open ticket; its owners get the card anew, headed by the
urge, and the urge is an event (``urged``) that the indicators and the assessment count.

Supervisors hold ``Action.SUPERVISE`` over their grids: they read tickets, they do not
handle them. An urge is refused out of scope (audited), on a ticket that is no longer open,
and again by the same person within :data:`URGE_GAP` (the owners were just pinged)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.errors import DomainError
from bot.i18n import N_
from bot.services.people import RoleInGrid
from bot.services.permissions import Action
from bot.services.ticket_notices import Notice, TicketNotifier
from bot.services.ticket_numbers import shown_number
from bot.services.tickets.concerned import owners as owners_of
from bot.services.tickets.kernel import load_for_action, record_event, tell
from bot.services.tickets.verifying import verifiers
from models import OPEN_TICKET_STATES, Person, Ticket, TicketEvent, TicketEventKind, TicketState

URGE_GAP = timedelta(hours=1)


class UrgedAlready(DomainError):
    message = N_("You urged ticket {number} less than an hour ago; its handlers have been told.")


async def urge(
    session: AsyncSession,
    notifier: TicketNotifier,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    ticket_id: int,
    now: datetime,
) -> tuple[Ticket, int]:
    """Urge the ticket; returns it and how many people were pinged."""
    ticket = await load_for_action(
        session,
        Action.SUPERVISE,
        actor=actor,
        roles=roles,
        ticket_id=ticket_id,
        states=OPEN_TICKET_STATES,
        now=now,
    )
    last = (
        await session.exec(
            select(TicketEvent.at)
            .where(
                TicketEvent.ticket_id == ticket.id,
                TicketEvent.action == TicketEventKind.URGED,
                TicketEvent.actor_id == actor.id,
            )
            .order_by(col(TicketEvent.at).desc())
            .limit(1)
        )
    ).first()
    if last is not None and now - last < URGE_GAP:
        raise UrgedAlready(number=shown_number(ticket))
    if ticket.state == TicketState.VERIFYING:
        pinged = await verifiers(session, ticket)
    else:
        pinged = await owners_of(session, ticket)
    overdue = ticket.next_deadline_at is not None and ticket.next_deadline_at <= now
    state = TicketState(ticket.state)
    record_event(
        session,
        ticket,
        now,
        TicketEventKind.URGED,
        from_state=state,
        to_state=state,
        actor=actor,
        data={"overdue": overdue, "pinged": [p.id for p in pinged]},
    )
    await tell(
        session, notifier, Notice.URGED, ticket, now, actor=actor, reporters=[], owners=pinged
    )
    return ticket, len(pinged)
