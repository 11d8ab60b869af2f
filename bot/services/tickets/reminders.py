"""Reminders of what nobody acts on (催办提醒): an assisting department's ask (协办) not
answered, and a ticket waiting for its on-site check (待核查).

Each is asked again once, a working day after it began (``1 working_days`` on the ticket's
own calendar: the close of business of the next working day) — an assisting ask only while
its own deadline has not passed. The reminder is an event ``reminded`` (``data.assist`` or
``data.verify``), which is also what marks it done. Run by the scheduler beside the deadline
sweep; one ticket per transaction.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.routing.policy import Duration, Unit
from bot.services.ticket_notices import Notice, TicketNotifier
from bot.services.tickets.concerned import department_of, department_staff
from bot.services.tickets.deadlines import policy_of
from bot.services.tickets.kernel import MOVABLE, record_event, tell
from bot.services.tickets.verifying import verifiers
from models import Department, Ticket, TicketAssist, TicketEvent, TicketEventKind, TicketState

log = logging.getLogger(__name__)

REMIND_AFTER = Duration(1, Unit.WORKING_DAYS)


async def _reminded(session: AsyncSession, ticket: Ticket, key: str, value: object) -> bool:
    events = await session.exec(
        select(TicketEvent).where(
            TicketEvent.ticket_id == ticket.id,
            col(TicketEvent.action) == TicketEventKind.REMINDED,
        )
    )
    return any(event.data.get(key) == value for event in events)


async def remind_assist(
    session: AsyncSession, notifier: TicketNotifier, assist_id: int, now: datetime
) -> bool:
    """Ask an assisting department again, if its ask is still open and a working day old."""
    assist = await session.get(TicketAssist, assist_id)
    if assist is None or assist.answered_at is not None or assist.due_at <= now:
        return False
    ticket = await session.get(Ticket, assist.ticket_id)
    if ticket is None or ticket.state not in MOVABLE:
        return False
    _policy, calendar = await policy_of(session, ticket)
    if calendar.add(assist.created_at, REMIND_AFTER) > now:
        return False
    if await _reminded(session, ticket, "assist", assist.id):
        return False
    helper = await session.get(Department, assist.department_id)
    lead = await department_of(session, ticket)
    if helper is None:
        return False
    state = TicketState(ticket.state)
    record_event(
        session,
        ticket,
        now,
        TicketEventKind.REMINDED,
        from_state=state,
        to_state=state,
        data={"assist": assist.id, "department": helper.code},
    )
    await tell(
        session,
        notifier,
        Notice.ASSIST_ASKED,
        ticket,
        now,
        reporters=[],
        owners=[],
        others=await department_staff(session, helper.id or 0),
        extra={
            "department": helper.name,
            "lead": lead.name if lead else "—",
            "assist_id": str(assist.id),
            "due": assist.due_at.isoformat(),
            "reminder": "1",
        },
    )
    return True


async def remind_verify(
    session: AsyncSession, notifier: TicketNotifier, ticket_id: int, now: datetime
) -> bool:
    """Ask a ticket's verifiers again, if it has waited a working day for its on-site check."""
    ticket = await session.get(Ticket, ticket_id)
    if ticket is None or ticket.state != TicketState.VERIFYING or ticket.resolved_at is None:
        return False
    _policy, calendar = await policy_of(session, ticket)
    if calendar.add(ticket.resolved_at, REMIND_AFTER) > now:
        return False
    since = ticket.resolved_at.isoformat()
    if await _reminded(session, ticket, "verify", since):
        return False
    record_event(
        session,
        ticket,
        now,
        TicketEventKind.REMINDED,
        from_state=TicketState.VERIFYING,
        to_state=TicketState.VERIFYING,
        data={"verify": since},
    )
    await tell(
        session,
        notifier,
        Notice.REMINDED,
        ticket,
        now,
        reporters=[],
        owners=await verifiers(session, ticket),
        extra={"since": since},
    )
    return True


async def remind_idle(session: AsyncSession, notifier: TicketNotifier, now: datetime) -> int:
    """One pass: every open 协办 ask and every 待核查 ticket a working day old is reminded
    once. Commits each ticket on its own; a failure is rolled back alone and logged."""
    assists = (
        await session.exec(
            select(TicketAssist.id)
            .join(Ticket, col(Ticket.id) == TicketAssist.ticket_id)
            .where(
                col(TicketAssist.answered_at).is_(None),
                col(TicketAssist.due_at) > now,
                col(Ticket.state).in_([s.value for s in MOVABLE]),
            )
        )
    ).all()
    waiting = (
        await session.exec(select(Ticket.id).where(Ticket.state == TicketState.VERIFYING))
    ).all()
    await session.commit()
    sent = 0
    jobs = [(remind_assist, i) for i in assists] + [(remind_verify, i) for i in waiting]
    for remind, object_id in jobs:
        if object_id is None:
            continue
        try:
            sent += await remind(session, notifier, object_id, now)
            await session.commit()
        except Exception:
            await session.rollback()
            log.exception("could not send the reminder of %s %s", remind.__name__, object_id)
    return sent
