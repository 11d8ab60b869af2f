"""Reading tickets: a person's own, those in their scope, one ticket's history and the facts its
card shows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.errors import NotAllowed, NotFound
from bot.i18n import N_
from bot.services.people import RoleInGrid
from bot.services.permissions import Action, authorize, permits, same, scope_paths, target_of
from bot.services.ticket_numbers import parse_number, tickets_numbered
from bot.services.tickets.concerned import followers
from bot.services.tickets.dispatching import forged_refusal
from bot.services.tickets.kernel import load
from models import (
    OPEN_TICKET_STATES,
    AuditLog,
    Department,
    Grid,
    Person,
    Ticket,
    TicketEvent,
    TicketEventKind,
    TicketPhoto,
    TicketState,
)


async def history(session: AsyncSession, ticket_id: int) -> list[tuple[TicketEvent, str | None]]:
    """The ticket's events, oldest first, with the actor's name."""
    rows = await session.exec(
        select(TicketEvent, Person.name)
        .join(Person, col(Person.id) == TicketEvent.actor_id, isouter=True)
        .where(TicketEvent.ticket_id == ticket_id)
        .order_by(col(TicketEvent.at), col(TicketEvent.id))
    )
    return [(event, name) for event, name in rows]


async def my_tickets(session: AsyncSession, person: Person, *, limit: int = 10) -> list[Ticket]:
    joined = select(TicketEvent.ticket_id).where(
        TicketEvent.actor_id == person.id, TicketEvent.action == TicketEventKind.JOINED
    )
    return list(
        (
            await session.exec(
                select(Ticket)
                .where(or_(col(Ticket.reporter_id) == person.id, col(Ticket.id).in_(joined)))
                .order_by(col(Ticket.created_at).desc())
                .limit(limit)
            )
        ).all()
    )


async def tickets_in_scope(
    session: AsyncSession,
    person: Person,
    roles: Sequence[RoleInGrid],
    *,
    states: Sequence[TicketState] | None = None,
    limit: int = 20,
) -> list[Ticket]:
    """Open tickets a person may handle, soonest deadline first."""
    wanted = list(states or OPEN_TICKET_STATES)
    paths = scope_paths(roles, Action.HANDLE)
    departments = [r.department_id for r in roles if r.department_id is not None]
    conditions = []
    if paths:
        conditions.append(
            col(Ticket.grid_id).in_(
                select(Grid.id).where(or_(*(col(Grid.path).startswith(p) for p in paths)))
            )
        )
    if departments:
        conditions.append(col(Ticket.owner_department_id).in_(departments))
    if not conditions:
        raise NotAllowed(N_("This command is for grid staff."))
    return list(
        (
            await session.exec(
                select(Ticket)
                .where(col(Ticket.state).in_(wanted), or_(*conditions))
                .order_by(col(Ticket.next_deadline_at).is_(None), col(Ticket.next_deadline_at))
                .limit(limit)
            )
        ).all()
    )


async def waiting_for(session: AsyncSession, reporter: Person) -> Ticket | None:
    """The newest ticket of this reporter that waits for their answer."""
    return (
        await session.exec(
            select(Ticket)
            .where(
                Ticket.reporter_id == reporter.id,
                Ticket.state == TicketState.WAITING_REPORTER,
            )
            .order_by(col(Ticket.updated_at).desc())
            .limit(1)
        )
    ).first()


async def departments(session: AsyncSession) -> list[Department]:
    return list(
        (
            await session.exec(
                select(Department)
                .where(col(Department.active).is_(True))
                .order_by(col(Department.id))
            )
        ).all()
    )


async def viewable(
    session: AsyncSession,
    *,
    person: Person,
    roles: Sequence[RoleInGrid],
    ticket_id: int,
    now: datetime,
) -> Ticket:
    """A ticket the person may see: their own, or one in their scope."""
    ticket = await load(session, ticket_id)
    if person.id not in {p.id for p in await followers(session, ticket)}:
        await authorize(session, person, roles, Action.VIEW, ticket, now)
    return ticket


async def report_photos(
    session: AsyncSession,
    *,
    person: Person,
    roles: Sequence[RoleInGrid],
    ticket_id: int,
    now: datetime,
) -> tuple[Ticket, list[str]]:
    """The photos filed with the ticket's report (their file ids, oldest first), for its
    reporter or someone whose scope covers it. A resident who only follows the ticket sees
    none of what the reporter sent: the refusal, like any out of scope, is audited."""
    ticket = await load(session, ticket_id)
    await authorize(session, person, roles, Action.VIEW, ticket, now)
    photos = await session.exec(
        select(TicketPhoto.file_id)
        .where(TicketPhoto.ticket_id == ticket.id, TicketPhoto.stage == "report")
        .order_by(col(TicketPhoto.id))
    )
    return ticket, list(photos.all())


def photos_forged(person: Person, data: str, now: datetime) -> NotAllowed:
    """The refusal for photo callback data no button of ours carries, with its audit."""
    return forged_refusal(person, data, now, action=Action.VIEW.value)


NO_SUCH_TICKET = N_("There is no ticket numbered {number} that you can see.")
MAX_FOUND = 5


@dataclass(frozen=True)
class Found:
    """A ticket found by its number, and how its finder sees it: through a role over its grid
    (``as_staff``: the card, with its actions) or as its reporter or a follower (its
    history)."""

    ticket: Ticket
    as_staff: bool


async def find_by_number(
    session: AsyncSession,
    *,
    person: Person,
    roles: Sequence[RoleInGrid],
    typed: str | None,
    now: datetime,
) -> list[Found]:
    """``/ticket <number>``: the tickets with that short number (one per street) or long number
    that the person may see. A number that exists but is not theirs to see is answered like one
    that does not exist (and audited), so typing numbers finds out nothing."""
    wanted = parse_number(typed)
    shown = (typed or "").strip()[:40]
    candidates = await tickets_numbered(session, wanted)
    found = []
    for ticket in candidates:
        target = await target_of(session, ticket)
        if person.active and permits(roles, Action.VIEW, target):
            found.append(Found(ticket, as_staff=True))
        elif same(ticket.reporter_id, person.id) or person.id in {
            p.id for p in await followers(session, ticket)
        }:
            found.append(Found(ticket, as_staff=False))
    if found:
        return found[:MAX_FOUND]
    if candidates:
        refusal = AuditLog(
            at=now,
            actor_id=person.id,
            action=f"refused:{Action.VIEW.value}",
            object_type="ticket",
            object_id=candidates[0].id,
        )
        raise NotAllowed(NO_SUCH_TICKET, audit=refusal, number=shown)
    raise NotFound(NO_SUCH_TICKET, number=shown)


async def seen_as_follower(
    session: AsyncSession,
    *,
    person: Person,
    roles: Sequence[RoleInGrid],
    ticket: Ticket,
) -> bool:
    """The person sees ``ticket`` only because they follow it (they reported the same problem
    and it was joined to this one): they see how it goes, not who reported it, where they
    live, or what anyone wrote."""
    if ticket.reporter_id is not None and ticket.reporter_id == person.id:
        return False
    return not permits(roles, Action.VIEW, await target_of(session, ticket), person.id)


async def supervises_only(
    session: AsyncSession, *, roles: Sequence[RoleInGrid], ticket: Ticket
) -> bool:
    """The person oversees the ticket (督查, ``Action.SUPERVISE`` over its grid) but may not
    handle it: their card is read-only, with 催办."""
    target = await target_of(session, ticket)
    return permits(roles, Action.SUPERVISE, target) and not permits(roles, Action.HANDLE, target)


async def card_facts(
    session: AsyncSession, ticket: Ticket, *, photos: int | None = None
) -> tuple[str, str | None, str | None, int]:
    """What a card shows besides the ticket: grid name, reporter, who has it, photo count
    (counted here unless the caller passes the number of report ``photos``)."""
    grid = await session.get(Grid, ticket.grid_id)
    reporter = await session.get(Person, ticket.reporter_id) if ticket.reporter_id else None
    holder = await session.get(Person, ticket.assignee_id) if ticket.assignee_id else None
    if photos is None:
        photos = (
            await session.exec(
                select(func.count()).where(
                    TicketPhoto.ticket_id == ticket.id, TicketPhoto.stage == "report"
                )
            )
        ).one()
    return (
        grid.name if grid else "—",
        reporter.name if reporter else None,
        holder.name if holder else None,
        int(photos),
    )
