"""Routing (派单): who receives a new ticket, and which links of the chain hear of it.

The policy's rules are tried in order and the first that matches wins; the last rule matches
everything, so every ticket gets an owner. :func:`route` returns the owner and the rule's
name — the glue stores the name in ``Ticket.routing_rule`` so that "why did this come to
me?" always has an answer — plus the links to inform at once (urgent tickets are reported
up at once, major ones go to the street centre with the grid's chain informed).

The owner is a :class:`ChainLink` (a role over a tier); the glue picks the grid: the ticket's
grid's ancestor at that tier. A ticket reported on a grid shallower than the rule's tier (a
community-level ticket, for a rule aimed at tier 3) goes to that role on its own grid.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.routing.policy import ChainLink, Inform, Policy, RouteRule
from models.enums import HandlingKind, TicketCategory


@dataclass(frozen=True)
class TicketFacts:
    """What routing looks at: the ticket's category and kind, and the grid it is in."""

    category: TicketCategory
    kind: HandlingKind
    grid_code: str  # 网格编码 of the ticket's grid
    grid_path: str  # ``Grid.path`` of the ticket's grid, e.g. ``/1/4/17/``
    grid_tier: int


@dataclass(frozen=True)
class RouteDecision:
    """The owner of a new ticket, the rule that chose it, and who else to tell at once."""

    rule: str
    owner: ChainLink
    inform: tuple[ChainLink, ...]
    department: str | None = None  # the lead department's code (主办), when the rule names one
    assist: tuple[str, ...] = ()  # the assisting departments' codes (协办)


def rule_matches(rule: RouteRule, facts: TicketFacts) -> bool:
    """Every criterion the rule sets holds (an empty criterion holds for any ticket)."""
    return (
        (not rule.categories or facts.category in rule.categories)
        and (not rule.kinds or facts.kind in rule.kinds)
        and (not rule.grids or any(_in_scope(scope, facts) for scope in rule.grids))
    )


def route(facts: TicketFacts, policy: Policy) -> RouteDecision:
    """The first matching rule's decision (the policy guarantees a catch-all last rule)."""
    rule = next(rule for rule in policy.routes if rule_matches(rule, facts))
    owner = rule.to
    if owner.tier > facts.grid_tier:
        owner = ChainLink(facts.grid_tier, owner.role)
    return RouteDecision(
        rule=rule.name,
        owner=owner,
        inform=chain_to_notify(policy, owner, rule.inform, grid_tier=facts.grid_tier),
        department=rule.department,
        assist=rule.assist,
    )


def chain_to_notify(
    policy: Policy, owner: ChainLink, inform: Inform, grid_tier: int | None = None
) -> tuple[ChainLink, ...]:
    """The links of the chain, other than the owner, to notify at once, bottom to top.

    ``Inform.ALL`` is the urgent and major case: every tier hears of the ticket the moment it
    is dispatched. Links below a ticket's grid (``grid_tier``) have nobody to tell and are left
    out.
    """
    mine = owner.rank
    if inform is Inform.NONE or mine is None:
        return ()
    chosen: list[ChainLink] = []
    for link in policy.chain:
        rank = link.rank
        if rank is None or link == owner or (grid_tier is not None and link.tier > grid_tier):
            continue
        below = rank < mine
        if inform is Inform.ALL or (inform is Inform.BELOW) == below:
            chosen.append(link)
    return tuple(chosen)


def next_link(policy: Policy, owner: ChainLink) -> ChainLink | None:
    """The link a ticket escalates to from ``owner``; None at the top, or for a department
    (a department is outside the chain: an overdue transfer is flagged, not escalated)."""
    mine = owner.rank
    if mine is None:
        return None
    for link in policy.chain:
        rank = link.rank
        if rank is not None and rank > mine:
            return link
    return None


def _in_scope(scope: str, facts: TicketFacts) -> bool:
    if scope.startswith("/"):
        return facts.grid_path.startswith(scope)
    return facts.grid_code.startswith(scope)
