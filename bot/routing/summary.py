"""The policy as ``/sla`` shows it: structured data, rendered by the glue.

For each handling kind: where its tickets start (the first rule for that kind that sets no
category or grid condition), who hears of it at once, each link's time to accept and to
resolve from there up to the top, the overall cap, whether the clock runs round the clock,
and whether the outcome is publicly noticed (公示). Rules with category or grid conditions are
listed apart, as exceptions. Display names come from ``bot.routing.wording`` and
``bot.labels``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time

from bot.routing.policy import ChainLink, Duration, Policy, RouteRule
from bot.routing.rules import chain_to_notify
from models.enums import HandlingKind


@dataclass(frozen=True)
class LinkLimits:
    """The time limits at one link of the chain."""

    link: ChainLink
    accept: Duration
    resolve: Duration


@dataclass(frozen=True)
class KindSummary:
    kind: HandlingKind
    rule: str  # the rule that usually routes this kind
    starts_at: ChainLink
    inform: tuple[ChainLink, ...]
    limits: tuple[LinkLimits, ...]  # from ``starts_at`` up to the top
    cap: Duration | None
    round_the_clock: bool
    public_notice: bool
    notice_period: Duration  # how long a publicly noticed outcome stays up


@dataclass(frozen=True)
class PolicySummary:
    timezone: str
    business_hours: tuple[tuple[time, time], ...]
    official_holidays: bool
    warn_percent: int | None  # the warning comes when this much of a window has passed
    chain: tuple[ChainLink, ...]  # bottom to top, for naming its links (``wording.link_name``)
    kinds: tuple[KindSummary, ...]
    exceptions: tuple[RouteRule, ...]  # rules that look at the category or the grid


def summarize(policy: Policy) -> PolicySummary:
    return PolicySummary(
        timezone=policy.timezone,
        business_hours=policy.business_hours,
        official_holidays=policy.official_holidays,
        warn_percent=None if policy.warn_fraction is None else round(policy.warn_fraction * 100),
        chain=tuple(policy.chain),
        kinds=tuple(_kind_summary(policy, kind) for kind in HandlingKind),
        exceptions=tuple(rule for rule in policy.routes if rule.categories or rule.grids),
    )


def _kind_summary(policy: Policy, kind: HandlingKind) -> KindSummary:
    rule = next(
        rule
        for rule in policy.routes
        if (not rule.kinds or kind in rule.kinds) and not rule.categories and not rule.grids
    )
    start = rule.to.rank
    assert start is not None  # route targets are chain links
    kind_policy = policy.kinds[kind]
    limits = tuple(
        LinkLimits(
            link,
            kind_policy.windows(link.tier).accept,
            kind_policy.windows(link.tier).resolve,
        )
        for link in policy.chain
        if link.rank is not None and link.rank >= start
    )
    return KindSummary(
        kind=kind,
        rule=rule.name,
        starts_at=rule.to,
        inform=chain_to_notify(policy, rule.to, rule.inform),
        limits=limits,
        cap=kind_policy.cap,
        round_the_clock=kind_policy.round_the_clock,
        public_notice=kind_policy.public_notice,
        notice_period=kind_policy.notice_period,
    )
