"""A ticket's deadlines: the policy it was filed under, the working calendar, and its clock
(:class:`bot.routing.escalation.TicketClock`) as the ticket's columns keep it."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.routing import escalation
from bot.routing.escalation import TicketClock
from bot.routing.policy import Policy, load_default_policy, parse_policy
from bot.routing.working_time import WorkCalendar
from models import CalendarDay, HandlingKind, PolicyVersion, Role, Ticket, TicketState

if TYPE_CHECKING:
    from bot.services.tickets.concerned import Lookups


async def current_policy(session: AsyncSession) -> Policy:
    """The newest admin policy, else the one GridBot ships with."""
    body = (
        await session.exec(
            select(PolicyVersion.body).order_by(col(PolicyVersion.id).desc()).limit(1)
        )
    ).first()
    return parse_policy(body) if body else load_default_policy()


async def calendar_for(session: AsyncSession, policy: Policy) -> WorkCalendar:
    return WorkCalendar.for_policy(policy, await calendar_overrides(session))


async def calendar_overrides(session: AsyncSession) -> dict[date, bool]:
    """The admin's holidays and make-up days (``CalendarDay``)."""
    days = (await session.exec(select(CalendarDay))).all()
    return {day.day: day.is_workday for day in days}


def clock_of(ticket: Ticket) -> TicketClock:
    marks = escalation.ClockMarks.from_json(ticket.sla.get("clock"))
    tier = int(ticket.sla.get("tier", 3))
    return TicketClock(
        state=TicketState(ticket.state),
        kind=HandlingKind(ticket.kind),
        tier=tier,
        role=Role(ticket.owner_role or Role.WORKER),
        dispatched_at=ticket.dispatched_at,
        window_start=marks.window_start,
        accept_deadline=ticket.accept_deadline,
        resolve_deadline=ticket.resolve_deadline,
        cap_deadline=marks.cap_deadline,
        accepted_at=ticket.accepted_at,
        paused_at=ticket.paused_at,
        warned=marks.warned,
        top_flagged=marks.top_flagged,
        escalations=ticket.escalation_count,
    )


def store_clock(
    ticket: Ticket, clock: TicketClock, policy: Policy, calendar: WorkCalendar
) -> None:
    """Copy a clock onto the ticket, with the two indexed sweep columns kept current."""
    ticket.state = clock.state
    ticket.owner_role = clock.role
    ticket.dispatched_at = clock.dispatched_at
    ticket.accept_deadline = clock.accept_deadline
    ticket.resolve_deadline = clock.resolve_deadline
    ticket.accepted_at = clock.accepted_at
    ticket.paused_at = clock.paused_at
    ticket.escalation_count = clock.escalations
    ticket.sla = {**ticket.sla, "clock": clock.marks.to_json(), "tier": clock.tier}
    ticket.next_deadline_at = escalation.next_deadline(clock)
    ticket.warn_at = escalation.warn_at(clock, policy, calendar)


async def policy_of(
    session: AsyncSession, ticket: Ticket, *, lookups: Lookups | None = None
) -> tuple[Policy, WorkCalendar]:
    """The policy the ticket was created under, and its calendar."""
    if lookups is not None:
        return await lookups.policy_of(session, ticket)
    raw = ticket.sla.get("policy")
    policy = parse_policy(raw) if raw else await current_policy(session)
    return policy, await calendar_for(session, policy)
