"""定性: the people handling a ticket set its handling kind, and the policy routes it again.

DOMAIN.md §5 names five handling kinds — general (一般性), coordination (需协调), urgent (突发),
approval (需审批) and major (重大) — and the routing policy sends each to its own link of the
chain with its own deadlines. A ticket is filed general (or urgent, when the reporter says it is
dangerous); the grid worker, head or centre operator who handles it classifies it once the facts
are known.

Who may: whoever may handle the ticket now (its owners, its assignee once accepted, the centre
over it — :func:`.kernel.load_for_handling`), while it is open and movable. The pure decision
is :func:`bot.routing.escalation.reclassify`: the first rule of the ticket's policy that matches
the new kind names the owner, and the clock restarts there with the new kind's windows.
This module persists it with its event (``reclassified``: from and to kind, the rule, the
reason) and tells the new owners (the card), the previous ones (it moved), the rule's informed
links (a major ticket: the whole chain) and the reporter, in plain words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.errors import NotAllowed
from bot.labels import HANDLING_KIND, ROLE
from bot.routing import escalation
from bot.routing.policy import ChainLink, Policy
from bot.routing.rules import TicketFacts, route
from bot.services.people import RoleInGrid
from bot.services.ticket_notices import Notice, TicketNotifier
from bot.services.tickets.concerned import (
    department_of,
    grid_at_tier,
    holders,
    links_to_people,
    load_grid,
    owners,
)
from bot.services.tickets.deadlines import clock_of, policy_of, store_clock
from bot.services.tickets.dispatching import NobodyThere, forged_refusal
from bot.services.tickets.kernel import MOVABLE, load_for_handling, tell, transition
from models import Grid, HandlingKind, Person, Role, Ticket, TicketEventKind, TicketState

CLASSIFY = "classify"  # the action named in the audit record of a refused, forged button


@dataclass(frozen=True)
class KindOption:
    """One kind the ticket could be classified as, and where the policy would send it."""

    kind: HandlingKind
    link: ChainLink
    grid: Grid
    holders: tuple[Person, ...]
    moves: bool  # another owner than the ticket has now

    @property
    def grid_name(self) -> str:
        return self.grid.name


@dataclass(frozen=True)
class KindChoices:
    """The ticket, its kind now, and every other kind in the domain's order."""

    ticket: Ticket
    current: HandlingKind
    options: tuple[KindOption, ...]


@dataclass(frozen=True)
class Reclassified:
    """The result of :func:`reclassify`: the ticket, its old kind, and who has it now."""

    ticket: Ticket
    from_kind: HandlingKind
    to: KindOption
    rule: str

    @property
    def moved(self) -> bool:
        return self.to.moves


async def kind_choices(
    session: AsyncSession,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    ticket_id: int,
    now: datetime,
) -> KindChoices:
    """The kinds ``actor`` may classify the ticket as, each with where it would go."""
    ticket = await _for_classifying(session, actor, roles, ticket_id, now)
    policy, _ = await policy_of(session, ticket)
    grid = await load_grid(session, ticket.grid_id)
    current = HandlingKind(ticket.kind)
    options = [
        await _option(session, ticket, grid, policy, kind)
        for kind in HandlingKind
        if kind is not current
    ]
    return KindChoices(ticket, current, tuple(options))


async def check_kind(
    session: AsyncSession,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    ticket_id: int,
    kind: HandlingKind,
    now: datetime,
) -> tuple[Ticket, KindOption]:
    """Refuse at once what :func:`reclassify` would refuse (before the handler is asked for a
    reason); returns the ticket and where it would go."""
    ticket = await _for_classifying(session, actor, roles, ticket_id, now)
    policy, calendar = await policy_of(session, ticket)
    grid = await load_grid(session, ticket.grid_id)
    escalation.reclassify(clock_of(ticket), _facts(ticket, grid, kind), policy, calendar, now)
    return ticket, _staffed(await _option(session, ticket, grid, policy, kind))


async def reclassify(
    session: AsyncSession,
    notifier: TicketNotifier,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    ticket_id: int,
    kind: HandlingKind,
    reason: str | None,
    now: datetime,
) -> Reclassified:
    """定性: the ticket becomes ``kind``; the policy's rule for it names the owner, the clock
    restarts there, the rule's informed links hear of it, and the reporter is told."""
    ticket = await _for_classifying(session, actor, roles, ticket_id, now)
    policy, calendar = await policy_of(session, ticket)
    grid = await load_grid(session, ticket.grid_id)
    clock = clock_of(ticket)
    step = escalation.reclassify(clock, _facts(ticket, grid, kind), policy, calendar, now, reason)
    target = _staffed(await _option(session, ticket, grid, policy, kind))
    previous = await owners(session, ticket)
    before = TicketState(ticket.state)
    department = await department_of(session, ticket)
    store_clock(ticket, escalation.apply_reclassify(clock, step), policy, calendar)
    ticket.kind = kind
    ticket.routing_rule = step.rule
    if step.moves:
        ticket.owner_grid_id = target.grid.id
        ticket.owner_department_id = None
        ticket.assignee_id = None
    await transition(
        session,
        ticket,
        now,
        TicketEventKind.RECLASSIFIED,
        before=before,
        actor=actor,
        note=step.note,
        data={
            "from_kind": step.from_kind,
            "to_kind": step.to_kind,
            "rule": step.rule,
            "moved": step.moves,
            "from_tier": step.from_tier,
            "from_role": step.from_role,
            "from_department": department.code if department else None,
            "to_tier": step.to_tier,
            "to_role": step.to_role,
            "grid": target.grid.code,
        },
    )
    owners_now = await owners(session, ticket)
    owning = {person.id for person in owners_now}
    moved_away = [person for person in previous if person.id not in owning]
    told = owning | {person.id for person in previous} | {actor.id}
    informed: list[Person] = []
    for person in await links_to_people(session, grid, step.inform):
        if person.id not in told:
            told.add(person.id)
            informed.append(person)
    await tell(
        session,
        notifier,
        Notice.RECLASSIFIED,
        ticket,
        now,
        actor=actor,
        note=step.note,
        owners=owners_now,
        others=moved_away,
        informed=informed,
        extra={
            "kind": HANDLING_KIND[kind],
            "role": ROLE[target.link.role],
            "moved": "yes" if step.moves else "",
        },
    )
    return Reclassified(ticket, step.from_kind, target, step.rule)


def forged(person: Person, data: str, now: datetime) -> NotAllowed:
    """The refusal for classify callback data no button of ours carries, with its audit."""
    return forged_refusal(person, data, now, action=CLASSIFY)


# --- internals -----------------------------------------------------------------------------


async def _for_classifying(
    session: AsyncSession,
    actor: Person,
    roles: Sequence[RoleInGrid],
    ticket_id: int,
    now: datetime,
) -> Ticket:
    """The ticket, if ``actor`` may handle it now and it is open and movable (a closed ticket,
    or one waiting for the reporter, is refused naming its state and holder)."""
    return await load_for_handling(
        session, actor=actor, roles=roles, ticket_id=ticket_id, states=MOVABLE, now=now
    )


def _facts(ticket: Ticket, grid: Grid, kind: HandlingKind) -> TicketFacts:
    return TicketFacts(ticket.category, kind, grid.code, grid.path, grid.tier)


async def _option(
    session: AsyncSession, ticket: Ticket, grid: Grid, policy: Policy, kind: HandlingKind
) -> KindOption:
    """Where the policy's rules send the ticket as ``kind``, and who is there."""
    link = route(_facts(ticket, grid, kind), policy).owner
    at = await grid_at_tier(session, grid, link.tier)
    assert at.id is not None
    people = await holders(session, at.id, link.role)
    here = None if ticket.owner_department_id is not None else clock_of(ticket).owner
    return KindOption(kind, link, at, tuple(people), moves=link != here)


def _staffed(option: KindOption) -> KindOption:
    """A ticket is never left without an owner: a move to a link nobody holds is refused."""
    if option.moves and not option.holders:
        raise NobodyThere(grid=option.grid_name, role=ROLE[Role(option.link.role)])
    return option
