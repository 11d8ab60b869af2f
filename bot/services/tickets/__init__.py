"""Tickets (事件 / 诉求): filing, handling, escalation, rating, return visits — the 7-step loop.

"去有目的、来有问题、后有反馈": every change is one transaction that writes the ticket, its
event (who, when, from, to, why) and, through the
:class:`~bot.services.ticket_notices.TicketNotifier`, the messages it causes. Deadlines and
escalation come from :mod:`bot.routing`; this package is the glue that persists their
decisions, and every use case goes through its kernel (:mod:`.kernel`).

States (DESIGN.md): submitted → dispatched (the clock starts) → accepted → in_progress →
resolved → closed, with waiting_reporter (clock paused), escalated moves between tiers,
transferred (to a department), duplicate, rejected and reopened (重办).

The modules, by concern: :mod:`.kernel` (load a ticket for an action, save and record a
transition, tell the people concerned), :mod:`.deadlines` (policy, calendar, clock),
:mod:`.concerned` (who is who), :mod:`.text`, :mod:`.placing` (which grid a report's place
is in), :mod:`.filing`, :mod:`.handling`, :mod:`.rating`, :mod:`.sweep`,
:mod:`.return_visits`, :mod:`.verifying` (核查结案), :mod:`.urging` (催办) and
:mod:`.queries`. The names callers outside the package use are
re-exported here.
"""

from __future__ import annotations

from bot.services.tickets.concerned import (
    Lookups,
    ancestors,
    followers,
    grid_at_tier,
    holders,
    owners,
    supervisors_over,
)
from bot.services.tickets.deadlines import (
    calendar_for,
    clock_of,
    current_policy,
    policy_of,
    store_clock,
)
from bot.services.tickets.filing import (
    MAX_PHOTOS,
    Intake,
    Muted,
    Report,
    TooManyReports,
    check_may_report,
    file_ticket,
    join_ticket,
    likely_duplicates,
)
from bot.services.tickets.handling import (
    accept,
    add_note,
    answer_question,
    ask_reporter,
    ensure_actionable,
    escalate,
    mark_duplicate,
    reject,
    resolve,
    transfer,
)
from bot.services.tickets.kernel import AlreadyHandled
from bot.services.tickets.placing import PlacedBy, Placement, place_report
from bot.services.tickets.queries import (
    Found,
    card_facts,
    departments,
    find_by_number,
    history,
    my_tickets,
    photos_forged,
    report_photos,
    seen_as_follower,
    supervises_only,
    tickets_in_scope,
    viewable,
    waiting_for,
)
from bot.services.tickets.rating import add_rating_comment, rate
from bot.services.tickets.return_visits import (
    ReturnVisitRenderer,
    open_return_visits,
    record_return_visit,
)
from bot.services.tickets.sweep import escalate_overdue, settle_due
from bot.services.tickets.text import MAX_NOTE, MAX_TEXT, clean_text

__all__ = [
    "MAX_NOTE",
    "MAX_PHOTOS",
    "MAX_TEXT",
    "AlreadyHandled",
    "Found",
    "Intake",
    "Lookups",
    "Muted",
    "PlacedBy",
    "Placement",
    "Report",
    "ReturnVisitRenderer",
    "TooManyReports",
    "accept",
    "add_note",
    "add_rating_comment",
    "ancestors",
    "answer_question",
    "ask_reporter",
    "calendar_for",
    "card_facts",
    "check_may_report",
    "clean_text",
    "clock_of",
    "current_policy",
    "departments",
    "ensure_actionable",
    "escalate",
    "escalate_overdue",
    "file_ticket",
    "find_by_number",
    "followers",
    "grid_at_tier",
    "history",
    "holders",
    "join_ticket",
    "likely_duplicates",
    "mark_duplicate",
    "my_tickets",
    "open_return_visits",
    "owners",
    "place_report",
    "photos_forged",
    "policy_of",
    "rate",
    "record_return_visit",
    "reject",
    "report_photos",
    "resolve",
    "seen_as_follower",
    "settle_due",
    "store_clock",
    "supervises_only",
    "supervisors_over",
    "tickets_in_scope",
    "transfer",
    "viewable",
    "waiting_for",
]
