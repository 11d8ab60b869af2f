"""核查结案: a resolved ticket of a kind whose policy says ``verify`` is checked on site before
it closes (GB/T 30428: 处置 → 核查 → 结案).

办结 puts such a ticket in ``verifying`` (its clock stopped, as if paused) and its verifiers —
the grid workers of the ticket's grid other than the person who handled it, or the street
centre when there is none — get its card. One of them (or the centre over it):

- **confirms** (核查通过) with a photo taken on site: the ticket is ``resolved``, its outcome is
  publicly noticed if its kind asks for it, and only now is the reporter asked to rate it;
- **sends it back** (退回) with a reason: it is ``in_progress`` again with its handler, every
  deadline moved on by the time it waited for the check, and the handler gets the card anew.

Both are kernel transitions with their events (``verified``, ``sent_back``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.errors import InvalidInput, NotAllowed
from bot.i18n import N_
from bot.routing import escalation
from bot.routing.policy import Policy
from bot.services.notice_board import post_outcome
from bot.services.people import RoleInGrid
from bot.services.permissions import Action, target_of, within
from bot.services.ticket_notices import Notice, TicketNotifier
from bot.services.tickets.concerned import ancestors, followers, holders, load_grid
from bot.services.tickets.deadlines import clock_of, policy_of, store_clock
from bot.services.tickets.kernel import load_for_action, tell, transition
from bot.services.tickets.text import MAX_NOTE, clean_text
from models import (
    AuditLog,
    HandlingKind,
    Person,
    Role,
    Ticket,
    TicketEvent,
    TicketEventKind,
    TicketPhoto,
    TicketState,
)

VERIFYING_STATES = frozenset({TicketState.VERIFYING})
VERIFIER_ROLES = frozenset({Role.WORKER, Role.HEAD, Role.CENTER, Role.ADMIN})
CENTRE_ROLES = frozenset({Role.CENTER, Role.ADMIN})
PHOTO_NEEDED = N_("Please send a photo taken on site (you may add a caption) to confirm it.")
NOT_A_VERIFIER = N_(
    "The person who handled a ticket cannot check it themselves; another grid worker or the "
    "centre checks it."
)


def verifies(policy: Policy, ticket: Ticket) -> bool:
    """Whether the policy has a resolved ticket of this kind checked on site first."""
    return policy.kinds[HandlingKind(ticket.kind)].verify


async def verifiers(session: AsyncSession, ticket: Ticket) -> list[Person]:
    """Who is asked to check it: the workers of the ticket's grid other than its handler; if
    there is none, the street centre's operators."""
    grid = await load_grid(session, ticket.grid_id)
    assert grid.id is not None
    found = [p for p in await holders(session, grid.id, Role.WORKER) if p.id != ticket.assignee_id]
    if not found:
        street = (await ancestors(session, grid))[0]
        assert street.id is not None
        found = [
            p for p in await holders(session, street.id, Role.CENTER) if p.id != ticket.assignee_id
        ]
    return found


async def hold_for_check(
    session: AsyncSession,
    notifier: TicketNotifier,
    ticket: Ticket,
    *,
    before: TicketState,
    actor: Person,
    note: str,
    photo_file_id: str | None,
    now: datetime,
) -> None:
    """办结 of a ticket whose kind is verified: ``verifying``, the clock stopped as if paused
    (a send-back moves the deadlines on by the wait), the verifiers get the card and the
    reporter hears it is being checked."""
    policy, calendar = await policy_of(session, ticket)
    clock = replace(clock_of(ticket), state=TicketState.VERIFYING, paused_at=now)
    store_clock(ticket, clock, policy, calendar)
    ticket.resolved_at = now
    ticket.verified_at = None
    ticket.assignee_id = ticket.assignee_id or actor.id
    await transition(
        session,
        ticket,
        now,
        TicketEventKind.RESOLVED,
        before=before,
        actor=actor,
        note=note,
        data={"verify": True},
    )
    checkers = await verifiers(session, ticket)
    handler = await session.get(Person, ticket.assignee_id) if ticket.assignee_id else None
    await tell(
        session,
        notifier,
        Notice.VERIFY,
        ticket,
        now,
        actor=actor,
        note=note,
        photo_file_id=photo_file_id,
        owners=checkers,
        others=list({p.id: p for p in (handler, actor) if p is not None}.values()),
    )


async def load_for_verifying(
    session: AsyncSession,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    ticket_id: int,
    now: datetime,
) -> Ticket:
    """The ticket, if ``actor`` may check it now: in scope (refusals audited), waiting for
    its check, and ``actor`` a worker, head or centre over its grid who did not handle it
    (the centre may check any)."""
    ticket = await load_for_action(
        session,
        Action.HANDLE,
        actor=actor,
        roles=roles,
        ticket_id=ticket_id,
        states=VERIFYING_STATES,
        now=now,
    )
    path = (await target_of(session, ticket)).grid_path
    over = [r for r in roles if r.role in VERIFIER_ROLES and within(r.grid_path, path)]
    if any(r.role in CENTRE_ROLES for r in over):
        return ticket
    if not over or ticket.assignee_id == actor.id:
        refusal = AuditLog(
            at=now,
            actor_id=actor.id,
            action="refused:verify",
            object_type="ticket",
            object_id=ticket.id,
            detail=path,
        )
        raise NotAllowed(NOT_A_VERIFIER, audit=refusal)
    return ticket


async def _resolution_note(session: AsyncSession, ticket: Ticket) -> str:
    """What the handler wrote when they resolved it last."""
    note = (
        await session.exec(
            select(TicketEvent.note)
            .where(
                TicketEvent.ticket_id == ticket.id,
                TicketEvent.action == TicketEventKind.RESOLVED,
            )
            .order_by(col(TicketEvent.at).desc(), col(TicketEvent.id).desc())
            .limit(1)
        )
    ).first()
    return note or ""


async def confirm(
    session: AsyncSession,
    notifier: TicketNotifier,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    ticket_id: int,
    text: str,
    photo_file_id: str | None,
    now: datetime,
) -> Ticket:
    """核查通过: confirmed on site with a photo; the reporter is asked to rate it now."""
    if not photo_file_id:
        raise InvalidInput(PHOTO_NEEDED)
    note = clean_text(text, minimum=1, maximum=MAX_NOTE) if text.strip() else None
    ticket = await load_for_verifying(
        session, actor=actor, roles=roles, ticket_id=ticket_id, now=now
    )
    policy, calendar = await policy_of(session, ticket)
    clock = replace(clock_of(ticket), state=TicketState.RESOLVED, paused_at=None)
    store_clock(ticket, clock, policy, calendar)
    ticket.verified_at = now
    await transition(
        session,
        ticket,
        now,
        TicketEventKind.VERIFIED,
        before=TicketState.VERIFYING,
        actor=actor,
        note=note,
        data={"photo": True},
    )
    assert ticket.id is not None
    session.add(
        TicketPhoto(
            ticket_id=ticket.id, file_id=photo_file_id, stage="verification", created_at=now
        )
    )
    resolution = await _resolution_note(session, ticket)
    reporters = await followers(session, ticket)
    until = await post_outcome(  # 公示 once the outcome is confirmed
        session, ticket, resolution, policy, calendar, now, names=[p.name for p in reporters]
    )
    handler = await session.get(Person, ticket.assignee_id) if ticket.assignee_id else None
    await tell(
        session,
        notifier,
        Notice.VERIFIED,
        ticket,
        now,
        actor=actor,
        note=resolution,
        reporters=reporters,
        owners=[handler] if handler is not None else [],
        others=await verifiers(session, ticket),
        extra={"notice_until": until.isoformat()} if until else None,
    )
    return ticket


async def send_back(
    session: AsyncSession,
    notifier: TicketNotifier,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    ticket_id: int,
    reason: str,
    now: datetime,
) -> Ticket:
    """核查不通过: back to its handler, in progress, with the reason; its deadlines move on by
    the time it waited for the check."""
    note = clean_text(reason, minimum=2, maximum=MAX_NOTE)
    ticket = await load_for_verifying(
        session, actor=actor, roles=roles, ticket_id=ticket_id, now=now
    )
    policy, calendar = await policy_of(session, ticket)
    clock = clock_of(ticket)
    if clock.paused_at is None:  # stopped without its mark: resume from now
        clock = replace(clock, paused_at=now)
    clock = escalation.resume(clock, policy, calendar, now)
    store_clock(ticket, clock, policy, calendar)
    ticket.resolved_at = None
    await transition(
        session,
        ticket,
        now,
        TicketEventKind.SENT_BACK,
        before=TicketState.VERIFYING,
        actor=actor,
        note=note,
    )
    handler = await session.get(Person, ticket.assignee_id) if ticket.assignee_id else None
    await tell(
        session,
        notifier,
        Notice.SENT_BACK,
        ticket,
        now,
        actor=actor,
        note=note,
        owners=[handler] if handler is not None else None,
        others=await verifiers(session, ticket),
    )
    return ticket
