"""The ticket kernel: what every use case that moves a ticket goes through.

1. **Load it for an action** — :func:`load_for_handling` (its owners, its assignee once
   accepted, or the centre over it) or :func:`load_for_action` (scope only: dispatching by the
   centre, a return visit): the person's scope is checked (a refusal carries its audit record)
   and a ticket that has moved on is refused naming its state and who has it now
   (:func:`moved_on`).
2. **Apply the transition** — change the ticket (its clock through :mod:`.deadlines`), then
   :func:`transition` saves it under the version check (a change based on a stale read
   loses) and records its event: who, when, from which state to which, why. An event that
   moves nothing (a resident joining, a return visit falling due) is :func:`record_event`.
3. **Tell the people concerned** — :func:`tell` hands a
   :class:`~bot.services.ticket_notices.TicketUpdate` to the notifier: the reporter and
   followers, the owners, and whoever else the use case names. An urgent ticket at the
   centre goes to the operator on duty first (:mod:`bot.services.duty.paging`).

All of it in the caller's transaction, so the ticket, its event and the messages it causes
commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm.exc import StaleDataError
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.errors import DomainError, NotAllowed, NotFound
from bot.i18n import N_
from bot.labels import TICKET_STATE
from bot.services.duty import paging
from bot.services.people import RoleInGrid
from bot.services.permissions import Action, authorize
from bot.services.ticket_notices import Notice, TicketNotifier, TicketUpdate
from bot.services.tickets.concerned import Lookups
from bot.services.tickets.concerned import followers as followers_of
from bot.services.tickets.concerned import owners as owners_of
from models import Department, Person, Role, Ticket, TicketEvent, TicketEventKind, TicketState


class AlreadyHandled(DomainError):
    message = N_("This ticket has already moved on: {state}, by {name}.")


class NotYourTicket(NotAllowed):
    message = N_("Only the people handling this ticket can do that.")


# the states in which the people handling a ticket may act on it
ACCEPTABLE = frozenset({TicketState.DISPATCHED, TicketState.REOPENED, TicketState.TRANSFERRED})
WORKING = frozenset({TicketState.ACCEPTED, TicketState.IN_PROGRESS})
MOVABLE = ACCEPTABLE | WORKING


async def load(session: AsyncSession, ticket_id: int) -> Ticket:
    """The ticket, or :class:`~bot.errors.NotFound`."""
    ticket = await session.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound()
    return ticket


async def moved_on(session: AsyncSession, ticket: Ticket) -> AlreadyHandled:
    """The refusal for a ticket that is no longer where the person thought: its state now and
    who has it."""
    return AlreadyHandled(
        state=TICKET_STATE[TicketState(ticket.state)], name=await _holder_name(session, ticket)
    )


async def _holder_name(session: AsyncSession, ticket: Ticket) -> str:
    if ticket.assignee_id is not None:
        assignee = await session.get(Person, ticket.assignee_id)
        if assignee is not None:
            return assignee.name
    if ticket.owner_department_id is not None:
        department = await session.get(Department, ticket.owner_department_id)
        if department is not None:
            return department.name
    current = await owners_of(session, ticket)
    return "、".join(p.name for p in current) or "—"


async def load_for_action(
    session: AsyncSession,
    action: Action,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    ticket_id: int,
    states: Collection[TicketState],
    now: datetime,
) -> Ticket:
    """The ticket, if ``actor`` may do ``action`` on it (in scope: :func:`authorize`, whose
    refusal carries its audit record) and it is in one of ``states`` (else the refusal says
    where it is now)."""
    ticket = await load(session, ticket_id)
    await authorize(session, actor, roles, action, ticket, now)
    if ticket.state not in states:
        raise await moved_on(session, ticket)
    return ticket


async def load_for_handling(
    session: AsyncSession,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    ticket_id: int,
    states: Collection[TicketState],
    now: datetime,
) -> Ticket:
    """The ticket, if ``actor`` may act on it now: in scope, among its owners (or its
    assignee once accepted, or the centre over it), and in one of ``states``."""
    ticket = await load_for_action(
        session,
        Action.HANDLE,
        actor=actor,
        roles=roles,
        ticket_id=ticket_id,
        states=states,
        now=now,
    )
    if any(r.role in {Role.CENTER, Role.ADMIN} for r in roles):
        return ticket  # authorize checked the scope
    if ticket.assignee_id is not None and ticket.state in WORKING | {TicketState.REOPENED}:
        if ticket.assignee_id != actor.id:
            raise await moved_on(session, ticket)
        return ticket
    if actor.id not in {p.id for p in await owners_of(session, ticket)}:
        raise await moved_on(session, ticket)
    return ticket


async def save(session: AsyncSession, ticket: Ticket, now: datetime) -> None:
    """Flush the ticket's change with the version check: a change based on a stale read loses
    (:class:`AlreadyHandled`; whoever catches it rolls the transaction back)."""
    ticket.updated_at = now
    session.add(ticket)
    try:
        await session.flush()
    except StaleDataError:
        raise AlreadyHandled(state="—", name="—") from None


def record_event(
    session: AsyncSession,
    ticket: Ticket,
    now: datetime,
    action: TicketEventKind,
    *,
    from_state: TicketState | None,
    to_state: TicketState | None,
    actor: Person | None = None,
    note: str | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    """Add the ticket's event: who (``None``: GridBot itself), when, from which state to
    which, and why (``note``, ``data``)."""
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


async def transition(
    session: AsyncSession,
    ticket: Ticket,
    now: datetime,
    action: TicketEventKind,
    *,
    before: TicketState,
    actor: Person | None = None,
    note: str | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    """Save a change made to the ticket (:func:`save`) and record it as ``action``: from the
    state it was in ``before`` to the one it is in now."""
    await save(session, ticket, now)
    record_event(
        session,
        ticket,
        now,
        action,
        from_state=before,
        to_state=TicketState(ticket.state),
        actor=actor,
        note=note,
        data=data,
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
    reporters: Sequence[Person] | None = None,
    owners: Sequence[Person] | None = None,
    others: Sequence[Person] = (),
    informed: Sequence[Person] = (),
    extra: dict[str, str] | None = None,
    lookups: Lookups | None = None,
) -> None:
    """Tell the people concerned what happened to the ticket, through ``notifier`` in the
    caller's transaction: its ``reporters`` (the reporter and the residents who joined) and
    its ``owners`` — each looked up unless given —, ``others`` (previous owners, links of the
    chain) and ``informed`` links. ``lookups`` (a sweep's) answers who is who without asking
    the database again."""
    assert ticket.id is not None
    report_photos = None
    if lookups is None:
        if reporters is None:
            reporters = await followers_of(session, ticket)
        if owners is None:
            owners = await owners_of(session, ticket)
    else:
        if owners is None:
            owners = await owners_of(session, ticket, lookups=lookups)
        if reporters is None:
            with session.no_autoflush:  # the step's event waits for the outbox rows: one flush
                reporters = await lookups.followers(session, ticket)
        report_photos = lookups.report_photos.get(ticket.id)
    extra = dict(extra or {})
    # 值班: an urgent ticket at the centre goes to the operator on duty first
    held: list[Person] = []
    if notice in paging.PAGED:
        owners, held, minutes = await paging.page_first(session, ticket, notice, owners, now)
        if held:
            extra["duty_minutes"] = str(minutes)
    else:
        held = await paging.not_yet_told(session, ticket, owners)
        owners = [p for p in owners if p.id not in {h.id for h in held}]
    if held:
        held_ids = {p.id for p in held}
        others = [p for p in others if p.id not in held_ids]
        informed = [p for p in informed if p.id not in held_ids]
    await notifier(
        session,
        TicketUpdate(
            notice,
            ticket,
            actor=actor,
            note=note,
            photo_file_id=photo_file_id,
            reporters=list(reporters),
            owners=list(owners),
            others=list(others),
            informed=list(informed),
            extra=extra,
            report_photos=report_photos,
        ),
        now,
    )
