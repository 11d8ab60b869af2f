"""Routing and escalation (限时办理、逐级上报): who owns a ticket and what happens when its
deadline passes.

Pure code — data in, decisions out. It imports no aiogram, no database session, no
telegram layer, handlers or scheduler, and never reads the clock: ``now`` is an argument.

- ``policy``       — :class:`Policy` (routing rules, the escalation chain, deadlines per
  handling kind and tier, business hours), :func:`parse_policy` for admin input,
  :func:`policy_to_json`, :func:`load_default_policy` (``default_policy.json``).
- ``working_time`` — :class:`WorkCalendar`: working days (China's holidays and make-up days
  via ``chinese_calendar``, admin overrides first), business hours, working-time arithmetic.
- ``rules``        — :func:`route` a new ticket (first match wins), :func:`chain_to_notify`,
  :func:`next_link`.
- ``escalation``   — :class:`TicketClock` and the pure state machine: :func:`start_clock`,
  :func:`accept`, :func:`pause`, :func:`resume`, :func:`reopen`, :func:`advance` →
  ``list[Step]`` (:class:`Warn`, :class:`Escalate`, :class:`FlagOverdueAtTop`),
  :func:`apply`, :func:`escalate_by_hand`, :func:`next_deadline`, :func:`warn_at`.
  Its docstring describes how the glue persists and sweeps.
- ``summary``      — :func:`summarize` the policy for ``/sla``.
- ``wording``      — msgids to render durations, reasons and deadlines.

See ``docs/routing.md`` for the tier chain, the deadlines and the policy file format.
"""

from bot.routing.escalation import (
    AtTheTop,
    ClockMarks,
    ClockStopped,
    Escalate,
    FlagOverdueAtTop,
    Step,
    TicketClock,
    Warn,
    accept,
    advance,
    apply,
    escalate_by_hand,
    next_deadline,
    pause,
    reopen,
    resume,
    start_clock,
    warn_at,
)
from bot.routing.policy import (
    ChainLink,
    Duration,
    Inform,
    InvalidPolicy,
    KindPolicy,
    Policy,
    RouteRule,
    Unit,
    Windows,
    load_default_policy,
    parse_duration,
    parse_policy,
    policy_to_json,
)
from bot.routing.rules import RouteDecision, TicketFacts, chain_to_notify, next_link, route
from bot.routing.summary import PolicySummary, summarize
from bot.routing.working_time import WorkCalendar, official_calendar_covers

__all__ = [
    "AtTheTop",
    "ChainLink",
    "ClockMarks",
    "ClockStopped",
    "Duration",
    "Escalate",
    "FlagOverdueAtTop",
    "Inform",
    "InvalidPolicy",
    "KindPolicy",
    "Policy",
    "PolicySummary",
    "RouteDecision",
    "RouteRule",
    "Step",
    "TicketClock",
    "TicketFacts",
    "Unit",
    "Warn",
    "Windows",
    "WorkCalendar",
    "accept",
    "advance",
    "apply",
    "chain_to_notify",
    "escalate_by_hand",
    "load_default_policy",
    "next_deadline",
    "next_link",
    "official_calendar_covers",
    "parse_duration",
    "parse_policy",
    "pause",
    "policy_to_json",
    "reopen",
    "resume",
    "route",
    "start_clock",
    "summarize",
    "warn_at",
]
