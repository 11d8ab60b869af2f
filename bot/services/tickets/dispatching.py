"""下派 / 上收: the street centre chooses which tier of a ticket's chain owns it now.

Escalation moves a ticket one tier up when a deadline passes or a handler asks; the centre
(综合调处中心) may also place it itself: send it down (下派) from the centre to the community
head, the tier-2 head or the tier-3 grid workers of the ticket's own grid chain, take it up
(上收) to the centre from any tier, or take it back from a department it was transferred to.
Sending it to a department is the existing transfer (转办, :func:`.handling.transfer`).

Only people holding :attr:`Action.DISPATCH` over the ticket's grid (centre operators, admins)
may do it. The new owners are the holders of the chosen role on the ticket's grid at that tier;
if nobody holds it the move is refused, naming the grid — a ticket is never left without an
owner. The pure decision (new owner, clock restarted at dispatch inside the ticket's cap) is
:func:`bot.routing.escalation.dispatch_to`; this module persists it with its event and tells
the new owners (the card), the previous ones (it moved) and the reporter (已下派 / 已上收).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.errors import DomainError, NotAllowed
from bot.i18n import N_
from bot.labels import ROLE
from bot.routing import escalation
from bot.routing.policy import ChainLink, Policy
from bot.services.people import RoleInGrid
from bot.services.permissions import Action, permits, target_of
from bot.services.ticket_notices import Notice, TicketNotifier
from bot.services.tickets.concerned import ancestors, department_of, holders, load_grid, owners
from bot.services.tickets.deadlines import clock_of, policy_of, store_clock
from bot.services.tickets.kernel import MOVABLE, load_for_action, tell, transition
from models import AuditLog, Department, Grid, Person, Role, Ticket, TicketEventKind, TicketState

FORGED = N_("Sorry, that button is not one of ours.")


class NobodyThere(NotAllowed):
    """The chosen tier's grid has nobody in the role: the ticket would have no owner."""

    message = N_(
        "Nobody in {grid} is a {role} yet, so the ticket cannot be sent there. "
        "Assign someone first, or choose another tier."
    )


@dataclass(frozen=True)
class TierChoice:
    """One link of the ticket's chain, on the ticket's own grid chain, with its people."""

    link: ChainLink
    grid: Grid
    holders: tuple[Person, ...]
    current: bool  # the ticket is with this link now

    @property
    def grid_name(self) -> str:
        return self.grid.name


@dataclass(frozen=True)
class DispatchChoices:
    """Where the centre can send a ticket: the chain's links, bottom to top; and the
    department that has it now, if any."""

    ticket: Ticket
    tiers: tuple[TierChoice, ...]
    department: Department | None

    @property
    def current(self) -> TierChoice | None:
        return next((choice for choice in self.tiers if choice.current), None)


@dataclass(frozen=True)
class Dispatched:
    """The result of :func:`send_to_tier`: the ticket and who has it now."""

    ticket: Ticket
    to: TierChoice
    direction: escalation.Direction


async def may_dispatch(
    session: AsyncSession, person: Person, roles: Sequence[RoleInGrid], ticket: Ticket
) -> bool:
    """Whether the card should offer 下派/上收 to this person (the service re-checks it)."""
    if not person.active or ticket.state not in MOVABLE:
        return False
    return permits(roles, Action.DISPATCH, await target_of(session, ticket), person.id)


async def choices(
    session: AsyncSession,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    ticket_id: int,
    now: datetime,
) -> DispatchChoices:
    """The tiers the centre may send the ticket to, with their grids and role holders."""
    ticket = await _for_dispatching(session, actor, roles, ticket_id, now)
    policy, _ = await policy_of(session, ticket)
    department = await department_of(session, ticket)
    return DispatchChoices(ticket, await _tiers(session, ticket, policy), department)


async def check_target(
    session: AsyncSession,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    ticket_id: int,
    tier: int,
    role: Role,
    now: datetime,
) -> TierChoice:
    """Refuse at once what :func:`send_to_tier` would refuse for the target (before the
    operator is asked for a reason); returns the target."""
    ticket = await _for_dispatching(session, actor, roles, ticket_id, now)
    policy, _ = await policy_of(session, ticket)
    return await _target(session, actor, ticket, policy, tier, role, now)


async def send_to_tier(
    session: AsyncSession,
    notifier: TicketNotifier,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    ticket_id: int,
    tier: int,
    role: Role | None = None,
    reason: str | None,
    now: datetime,
) -> Dispatched:
    """下派 / 上收: the holders of ``role`` (by default the chain's link at ``tier``) on the
    ticket's grid at ``tier`` own the ticket now, its clock restarted there."""
    ticket = await _for_dispatching(session, actor, roles, ticket_id, now)
    policy, calendar = await policy_of(session, ticket)
    target = await _target(session, actor, ticket, policy, tier, role, now)
    clock = clock_of(ticket)
    step = escalation.dispatch_to(clock, policy, calendar, now, target.link, reason)
    previous = await owners(session, ticket)
    before = TicketState(ticket.state)
    department = await department_of(session, ticket)
    store_clock(ticket, escalation.apply_dispatch(clock, step), policy, calendar)
    ticket.owner_grid_id = target.grid.id
    ticket.owner_department_id = None
    ticket.assignee_id = None
    await transition(
        session,
        ticket,
        now,
        TicketEventKind.DISPATCHED,
        before=before,
        actor=actor,
        note=step.note,
        data={
            "by": "centre",
            "direction": step.direction,
            "from_tier": step.from_tier,
            "from_role": step.from_role,
            "from_department": department.code if department else None,
            "to_tier": step.to_tier,
            "to_role": step.to_role,
            "grid": target.grid.code,
        },
    )
    now_with = {person.id for person in target.holders}
    await tell(
        session,
        notifier,
        Notice.TAKEN_UP if step.direction == "up" else Notice.SENT_DOWN,
        ticket,
        now,
        actor=actor,
        note=step.note,
        others=[person for person in previous if person.id not in now_with],
        extra={"grid": target.grid.name},
    )
    return Dispatched(ticket, target, step.direction)


def forged(person: Person, data: str, now: datetime) -> NotAllowed:
    """The refusal for dispatch callback data no button of ours carries, with its audit."""
    return forged_refusal(person, data, now, action=Action.DISPATCH.value)


def forged_refusal(person: Person, data: str, now: datetime, *, action: str) -> NotAllowed:
    """The refusal for callback data no button of ours carries (it claims to ``action`` a
    ticket), with its audit record: ``refused:<action>`` and the data as it came."""
    shown = "".join(ch if ch.isprintable() else "?" for ch in data[:64])
    return NotAllowed(
        FORGED,
        audit=AuditLog(
            at=now,
            actor_id=person.id,
            action=f"refused:{action}",
            object_type="callback",
            detail=shown,
        ),
    )


def keep_refusal(session: AsyncSession, refusal: DomainError) -> None:
    """Keep a refusal's audit record in this transaction, for a caller that answers the
    refusal itself instead of raising it (raising would roll the transaction back)."""
    if refusal.audit is not None:
        session.add(refusal.audit)


# --- internals -----------------------------------------------------------------------------


async def _for_dispatching(
    session: AsyncSession,
    actor: Person,
    roles: Sequence[RoleInGrid],
    ticket_id: int,
    now: datetime,
) -> Ticket:
    """The ticket, if ``actor`` may dispatch it (centre or admin over its grid) in a state
    that can move; a refusal is audited by :func:`authorize`."""
    return await load_for_action(
        session,
        Action.DISPATCH,
        actor=actor,
        roles=roles,
        ticket_id=ticket_id,
        states=MOVABLE,
        now=now,
    )


async def _tiers(session: AsyncSession, ticket: Ticket, policy: Policy) -> tuple[TierChoice, ...]:
    grid = await load_grid(session, ticket.grid_id)
    chain = await ancestors(session, grid)
    owner = None if ticket.owner_department_id is not None else clock_of(ticket).owner
    found: list[TierChoice] = []
    for link in policy.chain:
        if link.tier > grid.tier:
            continue  # below the ticket's grid: nobody there to send it to
        at = [g for g in chain if g.tier <= link.tier]
        if not at or at[-1].id is None:
            continue
        people = await holders(session, at[-1].id, link.role)
        found.append(TierChoice(link, at[-1], tuple(people), current=link == owner))
    return tuple(found)


async def _target(
    session: AsyncSession,
    actor: Person,
    ticket: Ticket,
    policy: Policy,
    tier: int,
    role: Role | None,
    now: datetime,
) -> TierChoice:
    """The chosen link (``role`` None: the chain's first link at ``tier``) on this ticket's
    chain, with somebody in it; a link outside the chain is hostile (no button of ours offers
    it) and its refusal is audited."""
    chosen = next(
        (
            c
            for c in await _tiers(session, ticket, policy)
            if c.link.tier == tier and (role is None or c.link.role == role)
        ),
        None,
    )
    if chosen is None:
        raise NotAllowed(
            escalation.NOT_IN_CHAIN,
            audit=AuditLog(
                at=now,
                actor_id=actor.id,
                action=f"refused:{Action.DISPATCH.value}",
                object_type="ticket",
                object_id=ticket.id,
                detail=f"tier={tier} role={role.value if role else '-'}",
            ),
        )
    if chosen.current:
        raise escalation.AlreadyThere()
    if not chosen.holders:
        raise NobodyThere(grid=chosen.grid.name, role=ROLE[chosen.link.role])
    return chosen
