"""Return visits (回访): a resolved ticket its reporter has not rated within a working day is
handed to a worker, who calls them and records what they said."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.errors import NotFound
from bot.routing.policy import parse_duration
from bot.services import outbox
from bot.services.people import RoleInGrid
from bot.services.permissions import Action
from bot.services.ticket_notices import TicketNotifier
from bot.services.tickets.concerned import grid_at_tier, holders, load_grid
from bot.services.tickets.deadlines import policy_of
from bot.services.tickets.kernel import load_for_action, moved_on, record_event
from bot.services.tickets.rating import settle_rating
from models import Person, Rating, ReturnVisit, Role, Ticket, TicketEventKind, TicketState

RATING_WAIT = "1 working_days"  # a resolved ticket nobody rated gets a return visit after this


# (worker, ticket, return visit, reporter's name) -> (text, reply markup as Bot API JSON)
ReturnVisitRenderer = Callable[[Person, Ticket, ReturnVisit, str], tuple[str, dict[str, Any]]]


async def open_return_visits(
    session: AsyncSession, render: ReturnVisitRenderer, now: datetime
) -> int:
    """Resolved tickets the reporter has not rated within one working day become a return
    visit (回访) for the handler (or the grid's worker), who is asked to call and record it."""
    waiting = (
        await session.exec(
            select(Ticket)
            .where(
                Ticket.state == TicketState.RESOLVED,
                col(Ticket.resolved_at) <= now - timedelta(hours=12),
                ~col(Ticket.id).in_(select(ReturnVisit.ticket_id)),
            )
            .order_by(col(Ticket.resolved_at))
            .limit(500)
        )
    ).all()
    opened = 0
    for ticket in waiting:
        assert ticket.resolved_at is not None and ticket.id is not None
        _, calendar = await policy_of(session, ticket)
        asked = ticket.verified_at or ticket.resolved_at  # 核查: the rating was asked for then
        due = calendar.add(asked, parse_duration(RATING_WAIT))
        if due > now:
            continue
        worker = await session.get(Person, ticket.assignee_id) if ticket.assignee_id else None
        if worker is None or not worker.active:
            grid = await load_grid(session, ticket.grid_id)
            workers = await holders(
                session, (await grid_at_tier(session, grid, 3)).id or 0, Role.WORKER
            )
            worker = workers[0] if workers else None
        visit = ReturnVisit(
            ticket_id=ticket.id,
            worker_id=worker.id if worker else None,
            due_at=due,
            created_at=now,
        )
        session.add(visit)
        await session.flush()
        state = TicketState(ticket.state)
        record_event(
            session,
            ticket,
            now,
            TicketEventKind.RETURN_VISIT_DUE,
            from_state=state,
            to_state=state,
        )
        if worker is not None and worker.telegram_id is not None and worker.reachable:
            reporter = (
                await session.get(Person, ticket.reporter_id) if ticket.reporter_id else None
            )
            text, keyboard = render(worker, ticket, visit, reporter.name if reporter else "—")
            outbox.send_text(
                session,
                chat_id=worker.telegram_id,
                text=text,
                now=now,
                reply_markup=keyboard,
                person_id=worker.id,
                ref=f"rv:{visit.id}",
            )
        opened += 1
    return opened


async def record_return_visit(
    session: AsyncSession,
    notifier: TicketNotifier,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    visit_id: int,
    rating: Rating | None,
    now: datetime,
) -> Ticket:
    """What the reporter said on the phone: a rating closes or reopens the ticket like their own
    would; ``None`` (not reachable) closes it as resolved, unrated."""
    visit = await session.get(ReturnVisit, visit_id)
    if visit is None:
        raise NotFound()
    ticket = await load_for_action(
        session,
        Action.HANDLE,
        actor=actor,
        roles=roles,
        ticket_id=visit.ticket_id,
        states={TicketState.RESOLVED},
        now=now,
    )
    if visit.done_at is not None:
        raise await moved_on(session, ticket)
    visit.done_at = now
    visit.rating = rating
    visit.outcome = "rated" if rating else "unreachable"
    session.add(visit)
    return await settle_rating(
        session, notifier, ticket, actor, rating, now, note=None, data={"return_visit": visit_id}
    )
