"""The ticket kernel: what every use case that moves a ticket goes through."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm.exc import StaleDataError
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.i18n import N_
from bot.labels import TICKET_STATE
from bot.services.errors import DomainError, NotAllowed, NotFound
from bot.services.notify import Notice, TicketNotifier, TicketUpdate
from bot.services.people import RoleInGrid
from bot.services.policy import Action, authorize
from bot.services.tickets.concerned import Lookups, followers, owners
from models import Department, Person, Role, Ticket, TicketEvent, TicketState


class AlreadyHandled(DomainError):
    message = N_("This ticket has already moved on: {state}, by {name}.")


class NotYourTicket(NotAllowed):
    message = N_("Only the people handling this ticket can do that.")


ACCEPTABLE = frozenset({TicketState.DISPATCHED, TicketState.REOPENED, TicketState.TRANSFERRED})


WORKING = frozenset({TicketState.ACCEPTED, TicketState.IN_PROGRESS})


MOVABLE = ACCEPTABLE | WORKING


async def load(session: AsyncSession, ticket_id: int) -> Ticket:
    ticket = await session.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound()
    return ticket


async def _holder_name(session: AsyncSession, ticket: Ticket) -> str:
    if ticket.assignee_id is not None:
        assignee = await session.get(Person, ticket.assignee_id)
        if assignee is not None:
            return assignee.name
    if ticket.owner_department_id is not None:
        department = await session.get(Department, ticket.owner_department_id)
        if department is not None:
            return department.name
    current = await owners(session, ticket)
    return "、".join(p.name for p in current) or "—"


async def moved_on(session: AsyncSession, ticket: Ticket) -> AlreadyHandled:
    return AlreadyHandled(
        state=TICKET_STATE[TicketState(ticket.state)], name=await _holder_name(session, ticket)
    )


async def load_for_handling(
    session: AsyncSession,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    ticket_id: int,
    states: frozenset[TicketState],
    now: datetime,
) -> Ticket:
    """The ticket, if ``actor`` may act on it now: in scope, among its owners (or its
    assignee once accepted, or the centre over it), and in one of ``states``."""
    ticket = await load(session, ticket_id)
    await authorize(session, actor, roles, Action.HANDLE, ticket, now)
    if ticket.state not in states:
        raise await moved_on(session, ticket)
    if any(r.role in {Role.CENTER, Role.ADMIN} for r in roles):
        return ticket  # authorize checked the scope
    if ticket.assignee_id is not None and ticket.state in WORKING | {TicketState.REOPENED}:
        if ticket.assignee_id != actor.id:
            raise await moved_on(session, ticket)
        return ticket
    if actor.id not in {p.id for p in await owners(session, ticket)}:
        raise await moved_on(session, ticket)
    return ticket


async def save(session: AsyncSession, ticket: Ticket, now: datetime) -> None:
    """Flush with the version check: a change based on a stale read loses."""
    ticket.updated_at = now
    session.add(ticket)
    try:
        await session.flush()
    except StaleDataError:  # the caller's transaction is rolled back by whoever catches this
        raise AlreadyHandled(state="—", name="—") from None


def record_event(
    session: AsyncSession,
    ticket: Ticket,
    now: datetime,
    actor: Person | None,
    action: str,
    from_state: TicketState | None,
    to_state: TicketState | None,
    *,
    note: str | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    assert ticket.id is not None
    session.add(
        TicketEvent(
            ticket_id=ticket.id,
            at=now,
            actor_id=actor.id if actor else None,
            action=action,
            from_state=from_state,
            to_state=to_state,
            note=note,
            data=data or {},
        )
    )


async def tell(
    session: AsyncSession,
    notifier: TicketNotifier,
    notice: Notice,
    ticket: Ticket,
    now: datetime,
    *,
    actor: Person | None = None,
    note: str | None = None,
    photo_file_id: str | None = None,
    others: Sequence[Person] = (),
    extra: dict[str, str] | None = None,
) -> None:
    await notifier(
        session,
        TicketUpdate(
            notice,
            ticket,
            actor=actor,
            note=note,
            photo_file_id=photo_file_id,
            reporters=await followers(session, ticket),
            owners=await owners(session, ticket),
            others=list(others),
            extra=extra or {},
        ),
        now,
    )


async def announce(
    session: AsyncSession,
    notifier: TicketNotifier,
    notice: Notice,
    ticket: Ticket,
    now: datetime,
    lookups: Lookups,
    *,
    actor: Person | None = None,
    note: str | None = None,
    owners_now: Sequence[Person] | None = None,
    others: Sequence[Person] = (),
    extra: dict[str, str] | None = None,
) -> None:
    """:func:`tell` with who is who from ``lookups`` (and the owners, when already known)."""
    assert ticket.id is not None
    if owners_now is None:
        owners_now = await owners(session, ticket, lookups=lookups)
    with session.no_autoflush:  # the step's event waits for the outbox rows: one flush
        reporters = await lookups.followers(session, ticket)
    await notifier(
        session,
        TicketUpdate(
            notice,
            ticket,
            actor=actor,
            note=note,
            reporters=reporters,
            owners=list(owners_now),
            others=list(others),
            extra=extra or {},
            report_photos=lookups.report_photos.get(ticket.id),
        ),
        now,
    )
