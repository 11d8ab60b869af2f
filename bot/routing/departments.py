"""A department's clock (职能部门): the lead's deadlines (主办), an assisting department's
(协办), and a request for more time (延期申请) — pure steps over a :class:`TicketClock`.

A department stands outside the tier chain: a ticket overdue there is flagged, never
escalated (:func:`bot.routing.escalation.advance`). The windows come from the policy's
``departments`` terms (:class:`~bot.routing.policy.DepartmentTerms`).

- :func:`to_department` — the ticket arrives at its lead department (a rule sends it there, or
  the centre transfers it): the clock restarts now with the department's accept and resolve
  windows. The overall cap never cuts a department's window short; it moves on to the
  department's resolve deadline if that is later (the centre answers for the whole).
- :func:`assist_due` — when an assisting department's answer is due, counted from now.
- :func:`extend` — an approved 延期: the resolve deadline moves to ``wanted`` (later than it
  is, after now, at most ``max_extension`` past it); a fresh warning and a fresh round.
- :func:`parse_wanted_date` — the date a person typed for a 延期, as the close of business of
  that day in the policy's zone.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import replace
from datetime import date, datetime
from typing import Final

from bot.errors import InvalidInput
from bot.i18n import N_
from bot.routing.escalation import ClockStopped, TicketClock
from bot.routing.policy import Policy
from bot.routing.working_time import WorkCalendar
from models.enums import Role, TicketState

NOT_A_DATE = N_(
    "Please send the new date as year-month-day, such as 2026-12-31, or month-day, such as 12-31."
)
NOT_LATER = N_("The new date must be later than the deadline now ({deadline}).")
TOO_FAR = N_("The new date may be at most {limit} past the deadline now, that is {latest}.")
MAX_DATE_TEXT: Final = 40

_FULL: Final = re.compile(r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?")
_SHORT: Final = re.compile(r"(\d{1,2})[-/.月](\d{1,2})日?")


def to_department(
    clock: TicketClock, policy: Policy, calendar: WorkCalendar, now: datetime
) -> TicketClock:
    """The ticket is now its lead department's (转办 / routed there): its windows open now."""
    if clock.state not in {
        TicketState.DISPATCHED,
        TicketState.ACCEPTED,
        TicketState.IN_PROGRESS,
        TicketState.REOPENED,
        TicketState.TRANSFERRED,
    }:
        raise ClockStopped()
    terms = policy.departments
    resolve_by = calendar.add(now, terms.resolve)
    accept_by = min(calendar.add(now, terms.accept), resolve_by)
    cap = clock.cap_deadline
    if cap is not None and cap < resolve_by:
        cap = resolve_by
    return replace(
        clock,
        state=TicketState.TRANSFERRED,
        role=Role.DEPARTMENT,
        window_start=now,
        accept_deadline=accept_by,
        resolve_deadline=resolve_by,
        cap_deadline=cap,
        accepted_at=None,
        paused_at=None,
        warned=False,
        top_flagged=False,
    )


def assist_due(policy: Policy, calendar: WorkCalendar, now: datetime) -> datetime:
    """When an assisting department (协办) asked now must have answered."""
    return calendar.add(now, policy.departments.assist)


def latest_extension(clock: TicketClock, policy: Policy, calendar: WorkCalendar) -> datetime:
    """The furthest a 延期 may move the resolve deadline."""
    assert clock.resolve_deadline is not None
    return calendar.add(clock.resolve_deadline, policy.departments.max_extension)


def check_extension(
    clock: TicketClock, policy: Policy, calendar: WorkCalendar, wanted: datetime
) -> None:
    """Refuse a 延期 to ``wanted`` that is not later than the deadline now, or too far past it
    (the times named in the policy's zone)."""
    if clock.resolve_deadline is None:
        raise ClockStopped()
    if wanted <= clock.resolve_deadline:
        raise InvalidInput(NOT_LATER, deadline=local(clock.resolve_deadline, policy))
    latest = latest_extension(clock, policy, calendar)
    if wanted > latest:
        raise InvalidInput(
            TOO_FAR, limit=str(policy.departments.max_extension), latest=local(latest, policy)
        )


def check_assist_extension(
    due: datetime, policy: Policy, calendar: WorkCalendar, wanted: datetime
) -> None:
    """Refuse an assisting department's 延期 to ``wanted`` not later than its answer deadline
    ``due``, or further past it than the policy's ``max_extension``."""
    if wanted <= due:
        raise InvalidInput(NOT_LATER, deadline=local(due, policy))
    latest = calendar.add(due, policy.departments.max_extension)
    if wanted > latest:
        raise InvalidInput(
            TOO_FAR, limit=str(policy.departments.max_extension), latest=local(latest, policy)
        )


def local(instant: datetime, policy: Policy) -> str:
    """An instant as people of the policy's zone read it: ``2026-12-31 17:30``."""
    return f"{instant.astimezone(policy.tz):%Y-%m-%d %H:%M}"


def extend(
    clock: TicketClock, policy: Policy, calendar: WorkCalendar, now: datetime, wanted: datetime
) -> TicketClock:
    """An approved 延期: the resolve deadline is ``wanted`` (checked again at approval)."""
    if not clock.running:
        raise ClockStopped()
    check_extension(clock, policy, calendar, wanted)
    accept_by = clock.accept_deadline
    if accept_by is not None and accept_by > wanted:
        accept_by = wanted
    cap = clock.cap_deadline
    if cap is not None and cap < wanted:
        cap = wanted
    return replace(
        clock,
        resolve_deadline=wanted,
        accept_deadline=accept_by,
        cap_deadline=cap,
        window_start=now,
        warned=False,
        top_flagged=False,
    )


def parse_wanted_date(text: str, calendar: WorkCalendar, now: datetime) -> datetime:
    """``2026-12-31``, ``2026年12月31日``, ``12-31`` or ``12月31日`` (full-width digits too) →
    the close of business that day (or the next working day) in the policy's zone. A month-day
    already past this year means next year's."""
    cleaned = unicodedata.normalize("NFKC", text or "").strip()
    if not cleaned or len(cleaned) > MAX_DATE_TEXT:
        raise InvalidInput(NOT_A_DATE)
    today = calendar.local_day(now)
    full = _FULL.fullmatch(cleaned)
    short = _SHORT.fullmatch(cleaned)
    try:
        if full is not None:
            day = date(int(full.group(1)), int(full.group(2)), int(full.group(3)))
        elif short is not None:
            day = date(today.year, int(short.group(1)), int(short.group(2)))
            if day < today:
                day = date(today.year + 1, day.month, day.day)
        else:
            raise InvalidInput(NOT_A_DATE)
    except ValueError:  # 2026-02-30, month 13
        raise InvalidInput(NOT_A_DATE) from None
    if day.year > today.year + 1 or day < today:
        raise InvalidInput(NOT_A_DATE)
    return calendar.end_of_business(day)
