"""After a meeting (会后): minutes, problems raised, absentees.

Only once the meeting has started (:func:`ensure_started`); only its organiser or those above
(:func:`bot.services.meetings.managed`). Recording the minutes tops a series up.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.errors import InvalidInput, NotAllowed, NotFound
from bot.i18n import N_
from bot.services import tickets
from bot.services.meetings import (
    MeetingClosed,
    MeetingNotifier,
    extend_series,
    facts,
    invites_of,
    managed,
)
from bot.services.people import RoleInGrid
from bot.services.permissions import within
from bot.services.ticket_notices import TicketNotifier
from bot.services.ticket_numbers import shown_number
from bot.settings import Settings
from models import AuditLog, Grid, Meeting, MeetingInvite, Person, Ticket, TicketCategory

MAX_MINUTES = 8000


def ensure_started(meeting: Meeting, now: datetime) -> None:
    """Minutes, problems and absentees only once the meeting has started."""
    if meeting.cancelled_at is not None:
        raise MeetingClosed()
    if meeting.starts_at > now:
        raise InvalidInput(N_("The meeting has not started yet."))


async def record_minutes(
    session: AsyncSession,
    notifier: MeetingNotifier,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    meeting_id: int,
    text: str,
    settings: Settings,
    now: datetime,
) -> Meeting:
    """Write the minutes (会议记录) once the meeting has started; writing again replaces them
    (the problems already raised stay listed). A series is topped up at this point."""
    meeting = await managed(session, actor, roles, meeting_id, now)
    ensure_started(meeting, now)
    minutes = (text or "").strip()
    if not any(ch.isalnum() for ch in minutes):
        raise InvalidInput(N_("Please write the {what} in words."), what=N_("meeting minutes"))
    if len(minutes) > MAX_MINUTES:
        raise InvalidInput(
            N_("That is {length} characters; please keep it under {limit}."),
            length=len(minutes),
            limit=MAX_MINUTES,
        )
    problems = [line for line in (meeting.minutes or "").splitlines() if line.startswith("⚠ ")]
    meeting.minutes = "\n".join([minutes, *problems])
    meeting.updated_at = now
    session.add(meeting)
    await extend_series(session, notifier, meeting=meeting, settings=settings, now=now)
    return meeting


async def problem_grids(session: AsyncSession, meeting: Meeting) -> list[Grid]:
    """Where a problem raised at the meeting may be filed: its grid and the grids just below."""
    grid = await session.get(Grid, meeting.grid_id)
    if grid is None:
        raise NotFound()
    below = (
        await session.exec(
            select(Grid).where(Grid.parent_id == grid.id).order_by(col(Grid.code)).limit(24)
        )
    ).all()
    return [grid, *below]


async def raise_problem(
    session: AsyncSession,
    ticket_notifier: TicketNotifier,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    meeting_id: int,
    grid_id: int | None,
    category: TicketCategory,
    description: str,
    settings: Settings,
    now: datetime,
) -> Ticket:
    """A problem raised at the meeting becomes a ticket (the organiser reports it) in the
    meeting's grid, or in a grid below it where the problem is; it is listed in the minutes."""
    meeting = await managed(session, actor, roles, meeting_id, now)
    ensure_started(meeting, now)
    grid, _ = await facts(session, meeting)
    if grid_id is not None and grid_id != grid.id:
        below = await session.get(Grid, grid_id)
        if below is None or not within(grid.path, below.path):
            raise NotAllowed(N_("That grid is not part of this meeting's grid."))
        grid = below
    ticket = await tickets.file_ticket(
        session,
        ticket_notifier,
        reporter=actor,
        grid=grid,
        report=tickets.Report(category=category, description=description),
        settings=settings,
        now=now,
    )
    line = f"⚠ {shown_number(ticket)} {ticket.description.splitlines()[0][:200]}"
    meeting.minutes = "\n".join(filter(None, [meeting.minutes, line]))
    meeting.updated_at = now
    session.add(meeting)
    session.add(
        AuditLog(
            at=now,
            actor_id=actor.id,
            action="meeting_problem",
            object_type="ticket",
            object_id=ticket.id,
            detail=f"meeting:{meeting.id}",
        )
    )
    return ticket


async def absentees(
    session: AsyncSession,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    meeting_id: int,
    now: datetime,
) -> list[tuple[Person, MeetingInvite]]:
    """Invited but not checked in (缺席), with their answers, for the organiser."""
    meeting = await managed(session, actor, roles, meeting_id, now)
    ensure_started(meeting, now)
    assert meeting.id is not None
    return [
        (person, invite)
        for invite, person in await invites_of(session, meeting.id)
        if invite.checked_in_at is None
    ]
