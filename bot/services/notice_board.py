"""The grid's public notice (公示, DOMAIN.md §8): what the physical notice board shows.

Besides the grid's people and services, the board carries publicly noticed outcomes: when a
ticket of a kind whose policy says ``public_notice`` (需审批, approval items, by default) is
resolved, its outcome is posted for the kind's ``notice_period`` (5 working days by default, on
the policy's calendar) — the ticket number, category, kind, grid and the resolution note, never
the reporter's name or phone (个人信息保护法): names of the reporter and followers, phone numbers
and resident identity numbers in the note are masked. A notice is the ticket's
``public_notice`` event (its text and ``until``); a ticket reopened for redoing (重办) drops off
the board, and its next resolution posts a new notice.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import phonenumbers
from sqlalchemy import func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.routing.policy import Policy
from bot.routing.working_time import WorkCalendar
from bot.services.ticket_numbers import shown_number
from models import (
    Grid,
    HandlingKind,
    Household,
    Person,
    Role,
    RoleAssignment,
    Ticket,
    TicketCategory,
    TicketEvent,
    TicketState,
)

NOTICE_EVENT: Final = "public_notice"
# the longest notice period a policy allows (250 working days, 366 days) lies within this
LONGEST_NOTICE: Final = timedelta(days=400)
SHOWN_NOTICES: Final = 10
_RESIDENT_ID: Final = re.compile(
    r"(?<![0-9])[1-9][0-9]{5}(?:18|19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])"
    r"[0-9]{3}[0-9Xx](?![0-9A-Za-z])"
)


@dataclass(frozen=True)
class Contact:
    name: str
    phone: str | None
    role: Role
    grid_name: str
    grid_tier: int


@dataclass(frozen=True)
class NoticeBoard:
    grid: Grid
    parent_names: list[str]  # street → community → …, above this grid
    workers: list[Contact]
    heads: list[Contact]  # nearest first
    households: int
    people: int
    area: str | None
    services: str | None
    complaint_process: str | None
    complaint_phone: str | None  # the nearest one set on this grid or above


async def notice_board(session: AsyncSession, grid: Grid) -> NoticeBoard:
    ancestor_ids = [int(part) for part in grid.path.strip("/").split("/") if part]
    chain = {
        g.id: g
        for g in (await session.exec(select(Grid).where(col(Grid.id).in_(ancestor_ids)))).all()
    }
    ordered = [chain[i] for i in ancestor_ids if i in chain]
    people = await session.exec(
        select(RoleAssignment.role, RoleAssignment.grid_id, Person.name, Person.phone)
        .join(Person, col(Person.id) == RoleAssignment.person_id)
        .where(
            col(RoleAssignment.grid_id).in_(ancestor_ids),
            col(RoleAssignment.role).in_([Role.WORKER, Role.HEAD]),
            col(RoleAssignment.active).is_(True),
            col(Person.active).is_(True),
        )
        .order_by(col(RoleAssignment.id))
    )
    workers: list[Contact] = []
    heads: list[Contact] = []
    for role, grid_id, name, phone in people:
        contact = Contact(name, phone, Role(role), chain[grid_id].name, chain[grid_id].tier)
        if role == Role.WORKER and grid_id == grid.id:
            workers.append(contact)
        elif role == Role.HEAD:
            heads.append(contact)
    heads.sort(key=lambda contact: -contact.grid_tier)  # the nearest head first
    counts = (
        await session.exec(
            select(func.count(), func.coalesce(func.sum(Household.members), 0))
            .join(Grid, col(Grid.id) == Household.grid_id)
            .where(col(Grid.path).startswith(grid.path))
        )
    ).one()
    phone = next((g.complaint_phone for g in reversed(ordered) if g.complaint_phone), None)
    process = next((g.complaint_process for g in reversed(ordered) if g.complaint_process), None)
    return NoticeBoard(
        grid=grid,
        parent_names=[g.name for g in ordered[:-1]],
        workers=workers,
        heads=heads,
        households=int(counts[0]),
        people=int(counts[1]),
        area=grid.area_desc,
        services=grid.services,
        complaint_process=process,
        complaint_phone=phone,
    )


async def resident_grid(session: AsyncSession, person_id: int) -> Grid | None:
    return (
        await session.exec(
            select(Grid)
            .join(RoleAssignment, col(RoleAssignment.grid_id) == Grid.id)
            .where(
                RoleAssignment.person_id == person_id,
                RoleAssignment.role == Role.RESIDENT,
                col(RoleAssignment.active).is_(True),
            )
        )
    ).first()


# --- publicly noticed outcomes (公示) --------------------------------------------------------


@dataclass(frozen=True)
class PostedOutcome:
    """A resolved ticket's outcome on the notice board, as residents read it."""

    number: str
    category: TicketCategory
    kind: HandlingKind
    grid_name: str
    text: str
    posted_at: datetime
    until: datetime


def public_text(text: str, names: Sequence[str] = ()) -> str:
    """A resolution note made fit for the notice board: phone numbers and resident identity
    numbers masked, and each of ``names`` (the reporter, the followers) shortened to a surname
    and 某 ("王小明" → "王某")."""
    masked: list[str] = []
    last = 0
    for match in phonenumbers.PhoneNumberMatcher(text, "CN"):
        masked.append(text[last : match.start])
        masked.append("***")
        last = match.end
    masked.append(text[last:])
    cleaned = _RESIDENT_ID.sub("***", "".join(masked))
    for name in sorted({n.strip() for n in names if n and n.strip()}, key=len, reverse=True):
        cleaned = cleaned.replace(name, name[0] + "某")
    return cleaned


async def post_outcome(
    session: AsyncSession,
    ticket: Ticket,
    note: str,
    policy: Policy,
    calendar: WorkCalendar,
    now: datetime,
    *,
    names: Sequence[str] = (),
) -> datetime | None:
    """Post a resolved ticket's outcome on its grid's board if its kind requires a public
    notice; returns when the notice comes down (None: this kind is not noticed)."""
    kind = policy.kinds[HandlingKind(ticket.kind)]
    if not kind.public_notice:
        return None
    assert ticket.id is not None
    until = calendar.add(now, kind.notice_period)
    session.add(
        TicketEvent(
            ticket_id=ticket.id,
            at=now,
            actor_id=None,
            action=NOTICE_EVENT,
            from_state=TicketState.RESOLVED,
            to_state=TicketState.RESOLVED,
            note=public_text(note, names),
            data={"until": until.isoformat(), "period": str(kind.notice_period)},
        )
    )
    return until


async def posted_outcomes(
    session: AsyncSession, grid: Grid, now: datetime, *, limit: int = SHOWN_NOTICES
) -> list[PostedOutcome]:
    """The outcomes on ``grid``'s board now, newest first: those of tickets in the grid, in the
    grids above it (a community-wide matter) and in the grids below it."""
    above = [int(part) for part in grid.path.strip("/").split("/") if part]
    nearby = select(Grid.id).where(
        or_(col(Grid.path).startswith(grid.path), col(Grid.id).in_(above))
    )
    rows = await session.exec(
        select(TicketEvent, Ticket, Grid.name)
        .join(Ticket, col(Ticket.id) == TicketEvent.ticket_id)
        .join(Grid, col(Grid.id) == Ticket.grid_id)
        .where(
            col(Ticket.grid_id).in_(nearby),
            col(Ticket.state).in_([TicketState.RESOLVED, TicketState.CLOSED]),
            col(Ticket.resolved_at) > now - LONGEST_NOTICE,
            TicketEvent.action == NOTICE_EVENT,
            col(TicketEvent.at) >= col(Ticket.resolved_at),  # this resolution's, not an older one
        )
        .order_by(col(TicketEvent.at).desc(), col(TicketEvent.id).desc())
        .limit(limit * 20)  # the newest; older ones have mostly come down
    )
    shown: list[PostedOutcome] = []
    for event, ticket, grid_name in rows:
        raw = event.data.get("until")
        until = datetime.fromisoformat(raw) if isinstance(raw, str) else None
        if until is None or until <= now:
            continue
        shown.append(
            PostedOutcome(
                number=shown_number(ticket),
                category=TicketCategory(ticket.category),
                kind=HandlingKind(ticket.kind),
                grid_name=grid_name,
                text=event.note or "",
                posted_at=event.at,
                until=until,
            )
        )
        if len(shown) >= limit:
            break
    return shown
