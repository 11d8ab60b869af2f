"""Assessment indicators (考核指标) of a grid subtree over a period.

**Which tickets.** The ratios are computed over one cohort: the tickets *filed* in the period —
``start <= Ticket.created_at < end`` — whose grid (``Ticket.grid_id``, where the problem is) lies
in the subtree. Duplicates (state ``duplicate``) are left out everywhere: they are the same
problem as another ticket, which is counted. Outcomes are taken as they stand at ``now`` (the
moment the figures are computed), so a ticket filed on 30 April and closed on 2 May counts as
closed in April's figures read on 3 May. Escalations are the one flow figure: the escalation
events that happened in the period.

**The indicators** (numerator / denominator, both over the cohort):

- *response* (及时签收率): accepted on time / due for acceptance. *Due*: dispatched, and
  either accepted, or escalated because nobody accepted in time, or past its accept deadline
  at ``now`` — a ticket still inside its accept window is not judged yet, and one rejected
  (不予受理) without being accepted had nothing to accept. *On time*: ``accepted_at <=
  accept_deadline`` of its current window and never escalated for a missed accept deadline.
- *closure* (结案率): closed / filed. *Closed*: state ``closed`` (rated, solved) or
  ``rejected`` (closed without solving it).
- *on-time closure* (按期结案率): closed on time / closed. *On time*: finished — resolved
  (``resolved_at``), or closed if it never was — by its ``resolve_deadline``, and never
  escalated for a missed resolve deadline or overall time limit. A ticket with no deadline
  cannot be late. The reporter's delay in rating does not count against the handler.
- *resolution* (解决率), kept apart from closure: closed with ``solved`` / closed.
- *satisfaction* (满意率): (satisfied + basically satisfied) / rated. The rating is the
  reporter's latest one, else the one a return visit recorded.
- *return visits* (回访率): tickets with a return visit done / tickets resolved and not rated
  by the reporter.
- *redo* (重办率): reopened (``reopen_count > 0``) / resolved at least once (``resolved_at`` set,
  or reopened).
- *by source* (来源): the cohort's tickets filed by staff, counted by where they came from —
  found on patrol (巡查发现, ``Ticket.source`` ``patrol``), a phone call (来电, ``phone``), the
  desk (来访, ``desk``), the 12345 hotline (``hotline``), handed down (上级交办,
  ``handed_down``); the rest came from residents in the bot or partner apps.
- *returns* (退单): tickets of the cohort a department returned (an event ``returned``) at
  least once, as they stand at ``now``.
- *extensions asked / approved* (延期申请 / 批准): tickets of the cohort for which a department
  asked for more time (an event ``extension_asked``) at least once / for which the centre
  approved it (``extension_approved``) at least once.
- *urged* (被催办): tickets a supervisor urged at least once (an ``urged`` event at any time)
  / filed.
- *escalations by tier* (逐级上报): ``escalated`` events in the period for tickets in the
  subtree, counted by the tier they went to (``data["to_tier"]``).

**Supervision figures** are flows too — what happened in the period, whenever the ticket was
filed:

- *on-site checks* (核查结案): ``verified`` events (confirmed on site) and ``sent_back`` events
  (sent back to the handler) in the period; the *send-back rate* (核查退回率) is sent back /
  (confirmed + sent back).
- *urges* (督查催办): ``urged`` events in the period.
- *spot checks* (督查抽查): spot checks (``SpotCheck``) of the subtree's grids marked in the
  period (``checked_at``), confirmed (属实) or false (不属实); the *false rate* (不属实率) is
  false / marked. Per person (the scorecards) they count for the worker whose visit or ticket
  was drawn (``SpotCheck.worker_id``).

Four set-based queries, each grouped by grid — the cohort's flags, the escalation events, the
supervision events, the spot checks — give one row per grid; the rows are then summed per
child grid in Python. No query per ticket.
"""

from __future__ import annotations

import html
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, false, func, not_, or_, select, true
from sqlalchemy.orm import Mapped
from sqlmodel import col
from sqlmodel import select as orm_select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.errors import NotAllowed
from bot.i18n import N_, gettext_for
from bot.services import grids
from bot.services.people import RoleInGrid
from bot.services.periods import PeriodKind, local_day, local_midnight, period_of
from bot.services.permissions import Action, authorize, scope_paths
from models import (
    Grid,
    Person,
    Rating,
    ReturnVisit,
    SpotCheck,
    SpotCheckResult,
    Ticket,
    TicketEvent,
    TicketEventKind,
    TicketSource,
    TicketState,
)

ASSESSMENT = Action.EXPORT  # heads, the centre, supervisors and admins: who keeps the ledgers
CLOSED_STATES = (TicketState.CLOSED.value, TicketState.REJECTED.value)
CONTENT = (Rating.SATISFIED.value, Rating.BASICALLY_SATISFIED.value)
MISSED_ACCEPT = ("accept_overdue",)
MISSED_RESOLVE = ("resolve_overdue", "cap_overdue")


@dataclass(frozen=True)
class Ratio:
    """A share: ``part`` of ``whole`` (no share at all when ``whole`` is 0)."""

    part: int
    whole: int

    @property
    def percent(self) -> float | None:
        return None if self.whole == 0 else 100.0 * self.part / self.whole


@dataclass(frozen=True)
class Indicators:
    """The counts behind the indicators, for one grid or summed over several."""

    filed: int = 0
    due_for_acceptance: int = 0
    accepted_on_time: int = 0
    closed: int = 0
    closed_on_time: int = 0
    solved: int = 0
    rated: int = 0
    satisfied: int = 0
    resolved: int = 0
    reopened: int = 0
    unrated_resolved: int = 0
    return_visited: int = 0
    from_patrol: int = 0
    from_phone: int = 0
    from_desk: int = 0
    from_hotline: int = 0
    handed_down: int = 0
    returned: int = 0
    extensions_asked: int = 0
    extensions_approved: int = 0
    urged_tickets: int = 0
    # flows of the period (the module docstring): supervision
    verified: int = 0
    sent_back: int = 0
    urged: int = 0
    spot_confirmed: int = 0
    spot_false: int = 0
    escalations: Mapping[int, int] = field(default_factory=dict)  # to tier -> events

    @property
    def response(self) -> Ratio:
        return Ratio(self.accepted_on_time, self.due_for_acceptance)

    @property
    def closure(self) -> Ratio:
        return Ratio(self.closed, self.filed)

    @property
    def on_time_closure(self) -> Ratio:
        return Ratio(self.closed_on_time, self.closed)

    @property
    def resolution(self) -> Ratio:
        return Ratio(self.solved, self.closed)

    @property
    def satisfaction(self) -> Ratio:
        return Ratio(self.satisfied, self.rated)

    @property
    def return_visits(self) -> Ratio:
        return Ratio(self.return_visited, self.unrated_resolved)

    @property
    def redo(self) -> Ratio:
        return Ratio(self.reopened, self.resolved)

    @property
    def urged_share(self) -> Ratio:
        return Ratio(self.urged_tickets, self.filed)

    @property
    def send_backs(self) -> Ratio:
        return Ratio(self.sent_back, self.verified + self.sent_back)

    @property
    def spot_checks(self) -> Ratio:
        return Ratio(self.spot_false, self.spot_confirmed + self.spot_false)

    @property
    def escalated(self) -> int:
        return sum(self.escalations.values())

    def __add__(self, other: Indicators) -> Indicators:
        counts = {
            f.name: getattr(self, f.name) + getattr(other, f.name)
            for f in fields(self)
            if f.name != "escalations"
        }
        tiers = dict(self.escalations)
        for tier, events in other.escalations.items():
            tiers[tier] = tiers.get(tier, 0) + events
        return Indicators(**counts, escalations=tiers)


# the event kinds counted as flows, and the field each adds to
FLOW_EVENTS: dict[str, str] = {
    TicketEventKind.VERIFIED.value: "verified",
    TicketEventKind.SENT_BACK.value: "sent_back",
    TicketEventKind.URGED.value: "urged",
}
SPOT_RESULTS: dict[str, str] = {
    SpotCheckResult.CONFIRMED.value: "spot_confirmed",
    SpotCheckResult.FALSE.value: "spot_false",
}
FLOWS = frozenset({*FLOW_EVENTS.values(), *SPOT_RESULTS.values()})
COUNTS: tuple[str, ...] = tuple(
    f.name for f in fields(Indicators) if f.name != "escalations" and f.name not in FLOWS
)


@dataclass(frozen=True)
class GridRef:
    """A grid as a report names it."""

    id: int
    code: str
    name: str
    tier: int


@dataclass(frozen=True)
class IndicatorReport:
    """A subtree's indicators in total, and per grid one tier below its root, side by side.

    ``own`` holds the tickets filed at the root grid itself (not in any grid below); it is
    ``None`` when there are none, so the rows always add up to the total.
    """

    root: GridRef
    start: datetime
    end: datetime
    total: Indicators
    children: tuple[tuple[GridRef, Indicators], ...] = ()
    own: Indicators | None = None


# --- the queries -------------------------------------------------------------------------------


def in_subtrees(paths: Sequence[str]) -> ColumnElement[bool]:
    """``Ticket.grid_id`` lies in one of the subtrees."""
    if not paths:
        return false()
    grids_below = select(col(Grid.id)).where(or_(*(col(Grid.path).startswith(p) for p in paths)))
    return col(Ticket.grid_id).in_(grids_below)


def _escalated_because(reasons: Sequence[str]) -> ColumnElement[bool]:
    return exists().where(
        col(TicketEvent.ticket_id) == col(Ticket.id),
        col(TicketEvent.action) == "escalated",
        col(TicketEvent.data)["reason"].as_string().in_(reasons),
    )


def _has_event(action: TicketEventKind) -> ColumnElement[bool]:
    return exists().where(
        col(TicketEvent.ticket_id) == col(Ticket.id), col(TicketEvent.action) == action.value
    )


def _flags(now: datetime) -> dict[str, ColumnElement[bool]]:
    """Per ticket of the cohort: which counts it adds to (the module docstring's definitions)."""
    missed_accept = _escalated_because(MISSED_ACCEPT)
    missed_resolve = _escalated_because(MISSED_RESOLVE)
    dispatched = col(Ticket.dispatched_at).is_not(None)
    accepted = col(Ticket.accepted_at).is_not(None)
    closed = col(Ticket.state).in_(CLOSED_STATES)
    finished = func.coalesce(col(Ticket.resolved_at), col(Ticket.closed_at))
    resolved = or_(col(Ticket.resolved_at).is_not(None), col(Ticket.reopen_count) > 0)
    unrated_resolved = and_(resolved, col(Ticket.rating).is_(None))
    visit_rating = (
        select(col(ReturnVisit.rating))
        .where(
            col(ReturnVisit.ticket_id) == col(Ticket.id),
            col(ReturnVisit.done_at).is_not(None),
            col(ReturnVisit.rating).is_not(None),
        )
        .order_by(col(ReturnVisit.done_at).desc(), col(ReturnVisit.id).desc())
        .limit(1)
        .scalar_subquery()
    )
    rating = func.coalesce(col(Ticket.rating), visit_rating)
    return_visit_done = exists().where(
        col(ReturnVisit.ticket_id) == col(Ticket.id), col(ReturnVisit.done_at).is_not(None)
    )
    return {
        "filed": true(),
        "due_for_acceptance": and_(
            dispatched,
            or_(
                accepted,
                missed_accept,
                and_(
                    col(Ticket.state) != TicketState.REJECTED.value,
                    col(Ticket.accept_deadline) <= now,
                ),
            ),
        ),
        "accepted_on_time": and_(
            dispatched,
            accepted,
            col(Ticket.accepted_at) <= col(Ticket.accept_deadline),
            not_(missed_accept),
        ),
        "closed": closed,
        "closed_on_time": and_(
            closed,
            not_(missed_resolve),
            or_(
                col(Ticket.resolve_deadline).is_(None),
                finished <= col(Ticket.resolve_deadline),
            ),
        ),
        "solved": and_(closed, col(Ticket.solved).is_(True)),
        "rated": rating.is_not(None),
        "satisfied": rating.in_(CONTENT),
        "resolved": resolved,
        "reopened": col(Ticket.reopen_count) > 0,
        "unrated_resolved": unrated_resolved,
        "return_visited": and_(unrated_resolved, return_visit_done),
        "from_patrol": col(Ticket.source) == TicketSource.PATROL.value,
        "from_phone": col(Ticket.source) == TicketSource.PHONE.value,
        "from_desk": col(Ticket.source) == TicketSource.DESK.value,
        "from_hotline": col(Ticket.source) == TicketSource.HOTLINE.value,
        "handed_down": col(Ticket.source) == TicketSource.HANDED_DOWN.value,
        "returned": _has_event(TicketEventKind.RETURNED),
        "extensions_asked": _has_event(TicketEventKind.EXTENSION_ASKED),
        "extensions_approved": _has_event(TicketEventKind.EXTENSION_APPROVED),
        "urged_tickets": exists().where(
            col(TicketEvent.ticket_id) == col(Ticket.id),
            col(TicketEvent.action) == TicketEventKind.URGED.value,
        ),
    }


async def indicators_by_grid(
    session: AsyncSession,
    *,
    paths: Sequence[str],
    start: datetime,
    end: datetime,
    now: datetime,
) -> dict[int, Indicators]:
    """The counts per grid (``Ticket.grid_id``) in the subtrees ``paths``, for ``[start, end)``.

    Two queries, each grouped by grid: the cohort's flags summed, and the escalation events.
    Grids with nothing to count are absent.
    """
    return await _indicators_by(
        session,
        col(Ticket.grid_id),
        col(SpotCheck.grid_id),
        paths=paths,
        start=start,
        end=end,
        now=now,
    )


async def indicators_by_assignee(
    session: AsyncSession,
    *,
    paths: Sequence[str],
    start: datetime,
    end: datetime,
    now: datetime,
) -> dict[int, Indicators]:
    """The same counts per accepting person (``Ticket.assignee_id``) over the tickets of the
    subtrees ``paths``: a worker's own tickets, for their scorecard. Tickets nobody accepted
    belong to no one (a missing assignee matches no person)."""
    return await _indicators_by(
        session,
        col(Ticket.assignee_id),
        col(SpotCheck.worker_id),
        paths=paths,
        start=start,
        end=end,
        now=now,
    )


async def _indicators_by(
    session: AsyncSession,
    key: Mapped[int] | Mapped[int | None],  # Ticket.grid_id or Ticket.assignee_id
    spot_key: Mapped[int] | Mapped[int | None],  # SpotCheck.grid_id or SpotCheck.worker_id
    *,
    paths: Sequence[str],
    start: datetime,
    end: datetime,
    now: datetime,
) -> dict[int, Indicators]:
    _check_window(start, end, now)
    flags = _flags(now)
    per_ticket = (
        select(
            key.label("grid_id"),
            *(case((condition, 1), else_=0).label(name) for name, condition in flags.items()),
        )
        .where(
            col(Ticket.created_at) >= start,
            col(Ticket.created_at) < end,
            col(Ticket.state) != TicketState.DUPLICATE.value,
            in_subtrees(paths),
            key.is_not(None),
        )
        .subquery("per_ticket")
    )
    totals = select(
        per_ticket.c.grid_id, *(func.sum(per_ticket.c[name]) for name in COUNTS)
    ).group_by(per_ticket.c.grid_id)
    escalated = (
        select(
            key.label("grid_id"),
            col(TicketEvent.data)["to_tier"].as_integer().label("to_tier"),
        )
        .join(Ticket, col(Ticket.id) == col(TicketEvent.ticket_id))
        .where(
            col(TicketEvent.action) == "escalated",
            col(TicketEvent.at) >= start,
            col(TicketEvent.at) < end,
            in_subtrees(paths),
            key.is_not(None),
        )
        .subquery("escalated")
    )
    by_tier = select(escalated.c.grid_id, escalated.c.to_tier, func.count()).group_by(
        escalated.c.grid_id, escalated.c.to_tier
    )
    flows: Any = (
        select(key.label("grid_id"), col(TicketEvent.action), func.count())
        .join(Ticket, col(Ticket.id) == col(TicketEvent.ticket_id))
        .where(
            col(TicketEvent.action).in_(list(FLOW_EVENTS)),
            col(TicketEvent.at) >= start,
            col(TicketEvent.at) < end,
            in_subtrees(paths),
            key.is_not(None),
        )
        .group_by(key, col(TicketEvent.action))
    )
    spot_grids = select(col(Grid.id)).where(or_(*(col(Grid.path).startswith(p) for p in paths)))
    spots: Any = (
        select(spot_key.label("grid_id"), col(SpotCheck.result), func.count())
        .where(
            col(SpotCheck.result).is_not(None),
            col(SpotCheck.checked_at) >= start,
            col(SpotCheck.checked_at) < end,
            col(SpotCheck.grid_id).in_(spot_grids) if paths else false(),
            spot_key.is_not(None),
        )
        .group_by(spot_key, col(SpotCheck.result))
    )
    await session.flush()
    connection = await session.connection()
    counts: dict[int, dict[str, int]] = {
        int(row[0]): {name: int(value or 0) for name, value in zip(COUNTS, row[1:], strict=True)}
        for row in await connection.execute(totals)
    }
    tiers: dict[int, dict[int, int]] = {}
    for grid_id, to_tier, events in await connection.execute(by_tier):
        if to_tier is not None:
            tiers.setdefault(int(grid_id), {})[int(to_tier)] = int(events)
    for grid_id, action, events in await connection.execute(flows):
        counts.setdefault(int(grid_id), {})[FLOW_EVENTS[str(action)]] = int(events)
    for grid_id, result, marked in await connection.execute(spots):
        if str(result) in SPOT_RESULTS:
            counts.setdefault(int(grid_id), {})[SPOT_RESULTS[str(result)]] = int(marked)
    return {
        grid_id: Indicators(**counts.get(grid_id, {}), escalations=tiers.get(grid_id, {}))
        for grid_id in counts.keys() | tiers.keys()
    }


def _check_window(start: datetime, end: datetime, now: datetime) -> None:
    if start.tzinfo is None or end.tzinfo is None or now.tzinfo is None:
        raise ValueError("the period and now must be aware datetimes")
    if end < start:
        raise ValueError("the period ends before it starts")


_COUNTED = tuple(f.name for f in fields(Indicators) if f.name != "escalations")


def total(values: Iterable[Indicators]) -> Indicators:
    """The sum of ``values``, as adding them one by one with ``+`` (in one pass: a street's
    6,000 grids were 6,000 intermediate sums built on the event loop)."""
    counts = dict.fromkeys(_COUNTED, 0)
    tiers: dict[int, int] = {}
    for value in values:
        for name in _COUNTED:
            counts[name] += getattr(value, name)
        for tier, events in value.escalations.items():
            tiers[tier] = tiers.get(tier, 0) + events
    return Indicators(**counts, escalations=tiers)


def grid_ref(grid: Grid) -> GridRef:
    assert grid.id is not None
    return GridRef(grid.id, grid.code, grid.name, grid.tier)


async def indicator_report(
    session: AsyncSession, root: Grid, *, start: datetime, end: datetime, now: datetime
) -> IndicatorReport:
    """The indicators of ``root``'s subtree, in total and per child grid (every child, ordered
    by code, those with nothing to count too — the centre sees its communities side by side)."""
    by_grid = await indicators_by_grid(session, paths=[root.path], start=start, end=end, now=now)
    rows = await session.exec(
        orm_select(Grid.id, Grid.path).where(col(Grid.path).startswith(root.path))
    )
    path_of = {grid_id: path for grid_id, path in rows if grid_id is not None}
    children = (
        await session.exec(
            orm_select(Grid).where(Grid.parent_id == root.id).order_by(col(Grid.code))
        )
    ).all()
    child_ids = {child.id for child in children}
    per_child: dict[int, list[Indicators]] = {}
    own: list[Indicators] = []
    for grid_id, values in by_grid.items():
        below = path_of.get(grid_id, root.path)[len(root.path) :].split("/", 1)[0]
        child = int(below) if below.isdigit() else None
        if child in child_ids:
            assert child is not None
            per_child.setdefault(child, []).append(values)
        else:
            own.append(values)
    return IndicatorReport(
        root=grid_ref(root),
        start=start,
        end=end,
        total=total(by_grid.values()),
        children=tuple((grid_ref(c), total(per_child.get(c.id or 0, []))) for c in children),
        own=total(own) if own else None,
    )


MAX_GRID_QUERY = 100  # Grid.name holds 100 characters


def clean_grid_query(raw: str | None) -> str:
    """A grid code or name as typed: NFKC (full-width digits become plain), control, format,
    surrogate and unassigned characters dropped, white space collapsed, at most 100 characters
    (``""``: none given). No stored grid name holds what is dropped, and no database choke on
    it (PostgreSQL refuses NUL)."""
    text = unicodedata.normalize("NFKC", raw or "")
    visible = "".join(ch for ch in text if ch.isspace() or unicodedata.category(ch)[0] != "C")
    return " ".join(visible.split())[:MAX_GRID_QUERY].rstrip()


def month_to_date(now: datetime, tz: tzinfo) -> tuple[datetime, datetime]:
    """This month up to and including today: from its first local midnight to the next one
    after ``now`` (nothing is filed in the future, so the figures are those up to ``now``)."""
    start, _ = period_of(PeriodKind.MONTH, now, tz).utc_bounds(tz)
    return start, local_midnight(local_day(now, tz) + timedelta(days=1), tz)


async def reports_for(
    session: AsyncSession,
    person: Person,
    roles: Sequence[RoleInGrid],
    *,
    grid_query: str | None,
    now: datetime,
    tz: tzinfo,
) -> list[IndicatorReport]:
    """``/indicators [grid]``: this month so far, for the asker's scope or one grid in it.

    Without a grid: one report per subtree the person assesses (heads, the centre, supervisors
    and admins). A grid is found by code or name and must lie in that scope.
    """
    start, end = month_to_date(now, tz)
    query = clean_grid_query(grid_query)
    if query:
        grid = await grids.find_grid(session, query)
        await authorize(session, person, roles, ASSESSMENT, grid, now)
        return [await indicator_report(session, grid, start=start, end=end, now=now)]
    paths = scope_paths(roles, ASSESSMENT)
    if not paths or not person.active:
        raise NotAllowed(N_("The indicators are for grid heads, the centre and supervisors."))
    roots = (
        await session.exec(
            orm_select(Grid).where(col(Grid.path).in_(paths)).order_by(col(Grid.path))
        )
    ).all()
    return [await indicator_report(session, root, start=start, end=end, now=now) for root in roots]


# --- rendering ---------------------------------------------------------------------------------

TIER_NAMES: dict[int, str] = {
    0: N_("the street centre"),
    1: N_("tier-1 grids"),
    2: N_("tier-2 grids"),
    3: N_("tier-3 grids"),
}
LINES: tuple[tuple[str, str], ...] = (
    ("response", N_("Accepted on time (及时签收率): {ratio}")),
    ("closure", N_("Closed (结案率): {ratio}")),
    ("on_time_closure", N_("Closed on time (按期结案率): {ratio}")),
    ("resolution", N_("Solved, of those closed (解决率): {ratio}")),
    ("satisfaction", N_("Satisfied (满意率): {ratio}")),
    ("return_visits", N_("Return visits to unrated tickets (回访率): {ratio}")),
    ("redo", N_("Handled again (重办率): {ratio}")),
)
SHORT: tuple[tuple[str, str], ...] = (
    ("response", N_("accepted on time {percent}")),
    ("closure", N_("closed {percent}")),
    ("on_time_closure", N_("on time {percent}")),
    ("resolution", N_("solved {percent}")),
    ("satisfaction", N_("satisfied {percent}")),
    ("return_visits", N_("return visits {percent}")),
    ("redo", N_("handled again {percent}")),
)


def esc(value: object) -> str:
    return html.escape(str(value), quote=False)


def percent_text(ratio: Ratio) -> str:
    value = ratio.percent
    return "—" if value is None else f"{value:.1f}%"


def ratio_text(ratio: Ratio, locale: str) -> str:
    if ratio.whole == 0:
        return gettext_for(locale, N_("— (nothing to count yet)"))
    return gettext_for(
        locale,
        N_("{percent} ({part} of {whole})"),
        percent=percent_text(ratio),
        part=ratio.part,
        whole=ratio.whole,
    )


def day_text(day: date, locale: str) -> str:
    return gettext_for(locale, N_("{month}/{day}"), month=day.month, day=day.day)


def window_text(start: datetime, end: datetime, tz: tzinfo, locale: str) -> str:
    """``[start, end)`` as local days: the last day shown is the one ``end`` closes."""
    first = start.astimezone(tz).date()
    last = (end - timedelta(microseconds=1)).astimezone(tz).date() if end > start else first
    return gettext_for(
        locale,
        N_("{first} to {last}"),
        first=day_text(first, locale),
        last=day_text(last, locale),
    )


def tier_name(tier: int, locale: str) -> str:
    if tier in TIER_NAMES:
        return gettext_for(locale, TIER_NAMES[tier])
    return gettext_for(locale, N_("tier-{tier} grids"), tier=tier)


def escalations_text(values: Indicators, locale: str) -> str:
    if not values.escalations:
        return gettext_for(locale, N_("Reported up a tier (上报): none"))
    parts = [
        gettext_for(
            locale,
            N_("to {tier}: {count}"),
            tier=tier_name(tier, locale),
            count=values.escalations[tier],
        )
        for tier in sorted(values.escalations, reverse=True)
    ]
    return gettext_for(locale, N_("Reported up a tier (上报): {parts}"), parts=" · ".join(parts))


def indicator_lines(values: Indicators, locale: str) -> list[str]:
    """The full list, one indicator a line."""
    lines = [gettext_for(locale, N_("Tickets filed: {count}"), count=values.filed)]
    for attribute, message in LINES:
        ratio: Ratio = getattr(values, attribute)
        lines.append("• " + gettext_for(locale, message, ratio=ratio_text(ratio, locale)))
    lines.append("• " + escalations_text(values, locale))
    lines.append("• " + casework_text(values, locale))
    lines.append(
        "• "
        + gettext_for(
            locale,
            N_("On-site checks (核查): {verified} confirmed, {sent_back} sent back ({ratio})"),
            verified=values.verified,
            sent_back=values.sent_back,
            ratio=percent_text(values.send_backs),
        )
    )
    lines.append(
        "• " + gettext_for(locale, N_("Urged by supervisors (催办): {count}"), count=values.urged)
    )
    lines.append(
        "• "
        + gettext_for(
            locale,
            N_("Spot checks (抽查): {confirmed} confirmed, {false} false ({ratio})"),
            confirmed=values.spot_confirmed,
            false=values.spot_false,
            ratio=percent_text(values.spot_checks),
        )
    )
    return lines


def casework_text(values: Indicators, locale: str) -> str:
    """By source (staff intake), returns (退单) and extensions (延期): counts of tickets."""
    return gettext_for(
        locale,
        N_(
            "By source: patrol {patrol} · phone {phone} · desk {desk} · 12345 {hotline} · "
            "handed down {handed}; returned (退单) {returned}; more time asked (延期) {asked}, "
            "approved {approved}"
        ),
        patrol=values.from_patrol,
        phone=values.from_phone,
        desk=values.from_desk,
        hotline=values.from_hotline,
        handed=values.handed_down,
        returned=values.returned,
        asked=values.extensions_asked,
        approved=values.extensions_approved,
    )


def compact_line(values: Indicators, locale: str) -> str:
    """One line of percentages for a row of the side-by-side comparison."""
    parts = [
        gettext_for(locale, message, percent=percent_text(getattr(values, attribute)))
        for attribute, message in SHORT
    ]
    parts.append(gettext_for(locale, N_("reported up {count}"), count=values.escalated))
    if values.urged:
        parts.append(gettext_for(locale, N_("urged {count}"), count=values.urged))
    return " · ".join(parts)


def render_report(report: IndicatorReport, locale: str, tz: tzinfo) -> str:
    """The report as one HTML message text (split it with :func:`split_message` if needed)."""
    lines = [
        "📊 <b>"
        + esc(gettext_for(locale, N_("Assessment indicators: {grid}"), grid=report.root.name))
        + "</b>",
        esc(window_text(report.start, report.end, tz, locale)),
        "",
        *(esc(line) for line in indicator_lines(report.total, locale)),
    ]
    rows = list(report.children)
    if rows and report.own is not None:  # a leaf grid's own tickets are its total
        rows.append((report.root, report.own))
    if rows:
        lines += ["", "<b>" + esc(gettext_for(locale, N_("Side by side"))) + "</b>"]
        for grid, values in rows:
            name = grid.name
            if grid == report.root:
                name = gettext_for(locale, N_("{grid} itself"), grid=grid.name)
            lines.append(
                "<b>"
                + esc(name)
                + "</b> · "
                + esc(gettext_for(locale, N_("filed {count}"), count=values.filed))
            )
            lines.append(esc(compact_line(values, locale)))
    lines += ["", esc(gettext_for(locale, DEFINITIONS_HINT))]
    return "\n".join(lines)


DEFINITIONS_HINT = N_(
    "Over the tickets filed in the period, as they stand now; “—” means nothing to count yet."
)
