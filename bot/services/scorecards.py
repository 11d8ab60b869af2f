"""Scorecards (考核得分) and the ranking (红黑榜) of workers and grids over a period.

A scorecard holds one figure per measure of :mod:`bot.services.assessment_policy` — a
:class:`~bot.services.indicators.Ratio`, ``part`` over ``whole`` — for one worker or one grid,
over a calendar month, quarter or year (a period still running: up to now). The figures
reuse the engines that already count them: visits from :func:`bot.services.quotas.progress`,
tickets from :mod:`bot.services.indicators` (by grid, or by the person who accepted them),
meetings from the invitations, inspections on time from the places and their inspections.

**The score** is the weighted mean of the measures *that have something to count*:
``100 × Σ weight·share / Σ weight`` over measures whose ``whole`` is above 0 (a share is
``part / whole``, or ``1 − part / whole`` where lower is better). A measure with nothing to
count neither helps nor hurts; a card with nothing at all to count has no score and is not
ranked. **A veto** (一票否决) puts the card last, whatever its score.

**Who sees what.** Heads, the centre, supervisors and admins rank the workers of a subtree
they assess (``Action.EXPORT``) and its grids one tier below, side by side. A worker sees
their own card and the ranking of their peers: the workers whose grid has the same parent
grid as theirs (names and scores only). Every read is checked against those scopes.
"""

from __future__ import annotations

import asyncio
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import Literal

from babel.dates import format_skeleton
from sqlalchemy import and_, case, exists, func, or_, select
from sqlmodel import col
from sqlmodel import select as orm_select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.errors import InvalidInput, NotAllowed
from bot.i18n import N_, gettext_for
from bot.services import follow_ups, grids, indicators, inspections, place_policy, quotas
from bot.services.assessment_policy import (
    MEASURES,
    AssessmentPolicy,
    VetoRule,
    current_policy,
)
from bot.services.indicators import MISSED_ACCEPT, MISSED_RESOLVE, GridRef, Ratio, grid_ref
from bot.services.people import RoleInGrid
from bot.services.periods import (
    Period,
    PeriodKind,
    local_day,
    period_end,
    period_of,
)
from bot.services.permissions import Action, authorize, scope_paths
from models import (
    Grid,
    Inspection,
    Meeting,
    MeetingInvite,
    Person,
    Place,
    Role,
    RoleAssignment,
    Ticket,
    TicketEvent,
)

ASSESSMENT = indicators.ASSESSMENT
RANK_SHOWN = 5  # 红榜 and 黑榜: the best five and the worst five
MAX_ROOTS = 3  # subtrees ranked for one command (a person rarely assesses more than one)
_KIND_ORDER = {PeriodKind.MONTH: 0, PeriodKind.QUARTER: 1, PeriodKind.YEAR: 2}


@dataclass(frozen=True)
class RuleFigure:
    """One visit rule's standing within a card: households that met it / households owed."""

    rule_id: int
    rule_name: str  # a msgid for the default rules: translate with quotas.rule_name
    fulfilled: int
    households: int


@dataclass(frozen=True)
class Scorecard:
    """One worker's or one grid's figures for a period, their score and their rank."""

    subject_id: int
    name: str
    grid_name: str
    figures: Mapping[str, Ratio]
    visit_rules: tuple[RuleFigure, ...] = ()
    vetoed: bool = False
    score: float | None = None
    rank: int | None = None  # 1 = best; None = not ranked (nothing to count)
    under: int | None = None  # the grid one tier below the ranked root it lies in


@dataclass(frozen=True)
class Ranking:
    """The ranked cards of one subtree: its workers, and its grids one tier below."""

    root: GridRef
    period: Period
    start: datetime
    end: datetime  # the period's end, or now while it runs
    workers: tuple[Scorecard, ...]
    grids: tuple[Scorecard, ...]
    own: Scorecard | None = None  # the asking worker's card
    peers: bool = False  # a worker's view: the ranking of their peers


@dataclass
class _RuleCount:
    name: str
    fulfilled: int = 0
    households: int = 0


@dataclass
class _Tally:
    """Counts being gathered for one subject."""

    figures: dict[str, list[int]] = field(default_factory=dict)
    rules: dict[int, _RuleCount] = field(default_factory=dict)
    vetoes: dict[int, int] = field(default_factory=dict)  # veto rule index -> tickets

    def add(self, key: str, part: int, whole: int) -> None:
        counts = self.figures.setdefault(key, [0, 0])
        counts[0] += part
        counts[1] += whole


# --- the period --------------------------------------------------------------------------------

_WORDS: dict[str, tuple[PeriodKind, int]] = {
    # word -> (kind, periods back)
    "month": (PeriodKind.MONTH, 0),
    "本月": (PeriodKind.MONTH, 0),
    "月": (PeriodKind.MONTH, 0),
    "lastmonth": (PeriodKind.MONTH, 1),
    "上月": (PeriodKind.MONTH, 1),
    "上个月": (PeriodKind.MONTH, 1),
    "上個月": (PeriodKind.MONTH, 1),
    "quarter": (PeriodKind.QUARTER, 0),
    "季度": (PeriodKind.QUARTER, 0),
    "本季度": (PeriodKind.QUARTER, 0),
    "本季": (PeriodKind.QUARTER, 0),
    "lastquarter": (PeriodKind.QUARTER, 1),
    "上季度": (PeriodKind.QUARTER, 1),
    "year": (PeriodKind.YEAR, 0),
    "年": (PeriodKind.YEAR, 0),
    "本年": (PeriodKind.YEAR, 0),
    "年度": (PeriodKind.YEAR, 0),
    "本年度": (PeriodKind.YEAR, 0),
    "今年": (PeriodKind.YEAR, 0),
    "lastyear": (PeriodKind.YEAR, 1),
    "去年": (PeriodKind.YEAR, 1),
    "上年": (PeriodKind.YEAR, 1),
}
_MONTH = re.compile(r"(\d{4})(?:[-/.]|年)(\d{1,2})月?")
_QUARTER = re.compile(r"(\d{4})[-/.]?(?:q|年第?)([1-4])(?:季度?)?")
_YEAR = re.compile(r"(\d{4})年?(?:度)?")
MAX_PERIOD_TEXT = 20
FIRST_YEAR = 2000


def clean_period(raw: str) -> str:
    text = unicodedata.normalize("NFKC", raw or "")[:MAX_PERIOD_TEXT].lower()
    return "".join(ch for ch in text if not ch.isspace())


def parse_period(raw: str | None, now: datetime, tz: tzinfo) -> Period | None:
    """A period as typed (``2026-11``, ``2026年11月``, ``2026Q4``, ``2026``, ``本月``, ``上月``,
    ``quarter``…), or ``None`` when the text is not a period at all. A period not started
    yet, or before 2000, is refused."""
    text = clean_period(raw or "")
    if not text:
        return None
    today = local_day(now, tz)
    period: Period | None = None
    if text in _WORDS:
        kind, back = _WORDS[text]
        period = period_of(kind, now, tz)
        for _ in range(back):
            period = period.previous()
    elif match := _MONTH.fullmatch(text):
        year, month = int(match[1]), int(match[2])
        if not 1 <= month <= 12:
            return None
        period = Period(PeriodKind.MONTH, date(max(year, 1), month, 1))
    elif match := _QUARTER.fullmatch(text):
        year, quarter = int(match[1]), int(match[2])
        period = Period(PeriodKind.QUARTER, date(max(year, 1), 3 * quarter - 2, 1))
    elif match := _YEAR.fullmatch(text):
        period = Period(PeriodKind.YEAR, date(max(int(match[1]), 1), 1, 1))
    if period is None:
        return None
    if period.start > today:
        raise InvalidInput(N_("That period has not started yet."))
    if period.start.year < FIRST_YEAR:
        raise InvalidInput(N_("There is nothing to assess before {year}."), year=FIRST_YEAR)
    return period


def split_args(raw: str | None, now: datetime, tz: tzinfo) -> tuple[str, Period]:
    """``/score [grid] [period]``: the grid query and the period (this month by default).
    The period is the last word when it reads as one; everything before it names the grid."""
    words = (raw or "").split()
    if words:
        period = parse_period(words[-1], now, tz)
        if period is not None:
            return " ".join(words[:-1]), period
    return " ".join(words), period_of(PeriodKind.MONTH, now, tz)


def period_text(period: Period, locale: str) -> str:
    start = period.start
    if period.kind is PeriodKind.MONTH:
        return format_skeleton("yMMMM", start, locale=locale)  # 2026年3月, March 2026
    if period.kind is PeriodKind.QUARTER:
        return gettext_for(
            locale, N_("Q{quarter} {year}"), year=start.year, quarter=(start.month + 2) // 3
        )
    return gettext_for(locale, N_("the year {year}"), year=start.year)


# --- the figures -------------------------------------------------------------------------------


def score_of(figures: Mapping[str, Ratio], policy: AssessmentPolicy) -> float | None:
    """The weighted mean of the shares that have something to count (module docstring)."""
    weighted = total = 0.0
    for measure in MEASURES:
        weight = policy.weight(measure.key)
        ratio = figures.get(measure.key)
        if weight <= 0 or ratio is None or ratio.whole <= 0:
            continue
        share = ratio.part / ratio.whole
        weighted += weight * ((1.0 - share) if measure.lower_is_better else share)
        total += weight
    return None if total == 0 else 100.0 * weighted / total


def _months(period: Period, today: date) -> list[Period]:
    months: list[Period] = []
    month = Period(PeriodKind.MONTH, period.start)
    while month.start < period.end and month.start <= today:
        months.append(month)
        month = month.next()
    return months


async def _visits(
    session: AsyncSession,
    period: Period,
    *,
    by: Literal["worker", "grid"],
    scope_path: str,
    now: datetime,
    tz: tzinfo,
) -> dict[int, _Tally]:
    """Every visit rule of the period's length or shorter, for each of its periods within the
    period: read at the end of each month (or now), keeping the rule periods ending then."""
    tallies: dict[int, _Tally] = {}
    for month in _months(period, local_day(now, tz)):
        _, month_end = month.utc_bounds(tz)
        running = now < month_end
        at = now if running else month_end - timedelta(microseconds=1)
        rows = await quotas.progress(
            session,
            at,
            by=by,
            scope_path=scope_path,
            tz=tz,
        )
        for row in rows:
            if row.subject_id is None:
                continue
            for cell in row.cells:
                if _KIND_ORDER[cell.period] > _KIND_ORDER[period.kind]:
                    continue
                if not running and period_end(cell.period, cell.period_start) != month.end:
                    continue
                tally = tallies.setdefault(row.subject_id, _Tally())
                tally.add("visits", cell.fulfilled, cell.households)
                rule = tally.rules.setdefault(cell.rule_id, _RuleCount(cell.rule_name))
                rule.fulfilled += cell.fulfilled
                rule.households += cell.households
    return tallies


async def _meetings(
    session: AsyncSession, person_ids: Sequence[int], start: datetime, end: datetime
) -> dict[int, tuple[int, int]]:
    """Per person: (checked in, invited) over the meetings that started in ``[start, end)``
    and were not cancelled."""
    if not person_ids:
        return {}
    statement = (
        select(
            col(MeetingInvite.person_id),
            func.count(),
            func.count(col(MeetingInvite.checked_in_at)),
        )
        .join(Meeting, col(Meeting.id) == col(MeetingInvite.meeting_id))
        .where(
            col(MeetingInvite.person_id).in_(list(person_ids)),
            col(Meeting.starts_at) >= start,
            col(Meeting.starts_at) < end,
            col(Meeting.cancelled_at).is_(None),
        )
        .group_by(col(MeetingInvite.person_id))
    )
    rows = (await (await session.connection()).execute(statement)).all()
    return {int(person): (int(present), int(invited)) for person, invited, present in rows}


async def _veto_tickets(
    session: AsyncSession, rule: VetoRule, scope_path: str, start: datetime, end: datetime
) -> list[tuple[int, int | None]]:
    """(grid id, assignee id) of each ticket in the subtree the rule catches in the period."""
    missed = select(col(TicketEvent.ticket_id)).where(
        col(TicketEvent.action) == "escalated",
        col(TicketEvent.at) >= start,
        col(TicketEvent.at) < end,
        col(TicketEvent.data)["reason"].as_string().in_(MISSED_ACCEPT + MISSED_RESOLVE),
    )
    statement = select(col(Ticket.grid_id), col(Ticket.assignee_id)).where(
        col(Ticket.category).in_(rule.categories),
        col(Ticket.kind).in_(rule.handling),
        col(Ticket.id).in_(missed),
        indicators.in_subtrees([scope_path]),
    )
    connection = await session.connection()
    return [(int(g), a) for g, a in (await connection.execute(statement)).all()]


async def _inspections(
    session: AsyncSession, scope_path: str, at: datetime
) -> dict[int, tuple[int, int]]:
    """Per grid of the subtree: (places not overdue at ``at``, places to inspect at ``at``) —
    active places added before ``at`` whose type has a worker's cadence; not overdue means a
    routine inspection (not withdrawn) within the cadence's interval before ``at``."""
    policy = await place_policy.current_policy(session)
    covered = []
    kinds = []
    for place_type in policy.types:
        cadence = place_type.cadence_of("worker")
        if cadence is None:
            continue
        kinds.append(place_type.key)
        recent = exists().where(
            col(Inspection.place_id) == col(Place.id),
            col(Inspection.kind) == inspections.ROUTINE,
            col(Inspection.withdrawn_at).is_(None),
            col(Inspection.inspected_at) < at,
            col(Inspection.inspected_at) > at - cadence.interval,
        )
        covered.append(and_(col(Place.type_key) == place_type.key, recent))
    if not kinds:
        return {}
    statement = (
        select(
            col(Place.grid_id),
            func.count(),
            func.sum(case((or_(*covered), 1), else_=0)),
        )
        .join(Grid, col(Grid.id) == col(Place.grid_id))
        .where(
            col(Place.active).is_(True),
            col(Place.created_at) < at,
            col(Place.type_key).in_(kinds),
            col(Grid.path).startswith(scope_path),
        )
        .group_by(col(Place.grid_id))
    )
    rows = (await (await session.connection()).execute(statement)).all()
    return {int(grid): (int(done or 0), int(total)) for grid, total, done in rows}


def _summed(
    per_grid: Mapping[int, tuple[int, int]], paths: Mapping[int, str], subtree: str
) -> tuple[int, int]:
    """The (part, whole) of every grid in ``subtree``."""
    part = whole = 0
    for grid_id, (done, total) in per_grid.items():
        if paths.get(grid_id, "").startswith(subtree):
            part, whole = part + done, whole + total
    return part, whole


def _child_of(path: str, root_path: str) -> int | None:
    below = path[len(root_path) :].split("/", 1)[0] if path.startswith(root_path) else ""
    return int(below) if below.isdigit() else None


async def _workers(session: AsyncSession, root: Grid) -> list[tuple[int, str, Grid]]:
    """(person id, name, grid) of every active worker with a role in the subtree; a person
    with several worker grids is listed at the first."""
    rows = (
        await session.exec(
            orm_select(Person.id, Person.name, Grid)
            .join(RoleAssignment, col(RoleAssignment.person_id) == col(Person.id))
            .join(Grid, col(Grid.id) == col(RoleAssignment.grid_id))
            .where(
                col(RoleAssignment.role) == Role.WORKER.value,
                col(RoleAssignment.active).is_(True),
                col(Person.active).is_(True),
                col(Grid.path).startswith(root.path),
            )
            .order_by(col(Person.id), col(RoleAssignment.id))
        )
    ).all()
    seen: dict[int, tuple[int, str, Grid]] = {}
    for person_id, name, grid in rows:
        if person_id is not None and person_id not in seen:
            seen[person_id] = (person_id, name, grid)
    return list(seen.values())


def _card(
    subject_id: int,
    name: str,
    grid_name: str,
    tally: _Tally,
    policy: AssessmentPolicy,
    under: int | None,
) -> Scorecard:
    figures = {key: Ratio(part, whole) for key, (part, whole) in tally.figures.items()}
    vetoed = any(
        count >= policy.veto[index].at_least
        for index, count in tally.vetoes.items()
        if index < len(policy.veto)
    )
    rules = tuple(
        RuleFigure(rule_id, count.name, count.fulfilled, count.households)
        for rule_id, count in sorted(tally.rules.items())
    )
    return Scorecard(
        subject_id=subject_id,
        name=name,
        grid_name=grid_name,
        figures=figures,
        visit_rules=rules,
        vetoed=vetoed,
        score=score_of(figures, policy),
        under=under,
    )


def rank(cards: Sequence[Scorecard]) -> tuple[Scorecard, ...]:
    """Best first: not vetoed before vetoed, then by score; cards without a score last and
    unranked. Equal scores share a rank (1, 2, 2, 4)."""
    scored = [c for c in cards if c.score is not None]
    unscored = sorted((c for c in cards if c.score is None), key=lambda c: (c.name, c.subject_id))
    scored.sort(key=lambda c: (c.vetoed, -round(c.score or 0.0, 1), c.name, c.subject_id))
    ranked: list[Scorecard] = []
    for index, card in enumerate(scored):
        previous = ranked[-1] if ranked else None
        tied = (
            previous is not None
            and previous.vetoed == card.vetoed
            and round(previous.score or 0.0, 1) == round(card.score or 0.0, 1)
        )
        position = previous.rank if tied and previous is not None else index + 1
        ranked.append(_with_rank(card, position))
    return tuple(ranked) + tuple(unscored)


def _with_rank(card: Scorecard, position: int | None) -> Scorecard:
    return Scorecard(
        subject_id=card.subject_id,
        name=card.name,
        grid_name=card.grid_name,
        figures=card.figures,
        visit_rules=card.visit_rules,
        vetoed=card.vetoed,
        score=card.score,
        rank=position,
        under=card.under,
    )


async def ranking(
    session: AsyncSession,
    root: Grid,
    period: Period,
    *,
    now: datetime,
    tz: tzinfo,
    policy: AssessmentPolicy | None = None,
) -> Ranking:
    """Every worker of ``root``'s subtree and every grid one tier below it, scored and ranked
    for ``period`` (this is the computation; callers check who may read it)."""
    policy = policy or await current_policy(session)
    start, period_end_at = period.utc_bounds(tz)
    end = min(period_end_at, now) if start <= now else start
    workers = await _workers(session, root)
    worker_ids = [w[0] for w in workers]
    children = (
        await session.exec(
            orm_select(Grid).where(Grid.parent_id == root.id).order_by(col(Grid.code))
        )
    ).all()
    child_by_id = {c.id: c for c in children if c.id is not None}
    by_worker: dict[int, _Tally] = {w: _Tally() for w in worker_ids}
    by_grid: dict[int, _Tally] = {g: _Tally() for g in child_by_id}

    # visits
    for subject, tally in (
        await _visits(session, period, by="worker", scope_path=root.path, now=now, tz=tz)
    ).items():
        if subject in by_worker:
            by_worker[subject] = tally
    for subject, tally in (
        await _visits(session, period, by="grid", scope_path=root.path, now=now, tz=tz)
    ).items():
        if subject in by_grid:
            by_grid[subject] = tally

    # tickets
    ticket_measures = ("response", "on_time_closure", "satisfaction", "redo")
    measure_of = {
        **{key: key for key in ticket_measures},
        "urged": "urged_share",
        "send_backs": "send_backs",
        "spot_checks": "spot_checks",
    }
    mine = await indicators.indicators_by_assignee(
        session, paths=[root.path], start=start, end=period_end_at, now=now
    )
    for person_id, values in mine.items():
        if person_id in by_worker:
            for key, attribute in measure_of.items():
                ratio: Ratio = getattr(values, attribute)
                by_worker[person_id].add(key, ratio.part, ratio.whole)
    report = await indicators.indicator_report(
        session, root, start=start, end=period_end_at, now=now
    )
    for ref, values in report.children:
        if ref.id in by_grid:
            for key, attribute in measure_of.items():
                ratio = getattr(values, attribute)
                by_grid[ref.id].add(key, ratio.part, ratio.whole)

    # meetings: a person's own invites; a grid's are its workers'
    attendance = await _meetings(session, worker_ids, start, end)
    for person_id, _name, grid in workers:
        present, invited = attendance.get(person_id, (0, 0))
        by_worker[person_id].add("meetings", present, invited)
        child = _child_of(grid.path, root.path)
        if child in by_grid:
            by_grid[child].add("meetings", present, invited)

    # follow-ups of tagged people made on time (随访)
    for figure in await follow_ups.on_time_counts(
        session, period, scope_path=root.path, now=now, tz=tz
    ):
        if figure.worker_id is not None and figure.worker_id in by_worker:
            by_worker[figure.worker_id].add("follow_ups", figure.on_time, figure.due)
        child = _child_of(figure.grid_path, root.path)
        if child in by_grid:
            by_grid[child].add("follow_ups", figure.on_time, figure.due)

    rows = await session.exec(
        orm_select(Grid.id, Grid.path).where(col(Grid.path).startswith(root.path))
    )
    paths = {grid_id: path for grid_id, path in rows if grid_id is not None}

    # inspections on time (按期巡查): a worker's grid's places, a grid's subtree's
    places = await _inspections(session, root.path, end)
    for person_id, _name, grid in workers:
        part, whole = _summed(places, paths, grid.path)
        by_worker[person_id].add("inspections", part, whole)
    for grid_id, below in child_by_id.items():
        part, whole = _summed(places, paths, below.path)
        by_grid[grid_id].add("inspections", part, whole)

    # vetoes
    for index, rule in enumerate(policy.veto):
        for grid_id, assignee in await _veto_tickets(session, rule, root.path, start, end):
            if assignee is not None and assignee in by_worker:
                vetoes = by_worker[assignee].vetoes
                vetoes[index] = vetoes.get(index, 0) + 1
            child = _child_of(paths.get(grid_id, ""), root.path)
            if child in by_grid:
                vetoes = by_grid[child].vetoes
                vetoes[index] = vetoes.get(index, 0) + 1

    subjects = [
        (person_id, name, grid.name, by_worker[person_id], _child_of(grid.path, root.path))
        for person_id, name, grid in workers
    ]
    grid_subjects = [
        (grid_id, grid.name, grid.name, by_grid[grid_id], grid_id)
        for grid_id, grid in child_by_id.items()
    ]
    # a street's thousands of cards, scored and ranked: plain data, in a worker thread
    worker_cards, grid_cards = await asyncio.to_thread(
        _ranked_cards, subjects, grid_subjects, policy
    )
    return Ranking(
        root=grid_ref(root),
        period=period,
        start=start,
        end=end,
        workers=worker_cards,
        grids=grid_cards,
    )


_Subject = tuple[int, str, str, _Tally, int | None]  # id, name, grid name, tally, under


def _ranked_cards(
    workers: Sequence[_Subject], grids: Sequence[_Subject], policy: AssessmentPolicy
) -> tuple[tuple[Scorecard, ...], tuple[Scorecard, ...]]:
    """The workers' and the grids' cards, each ranked (no session: run in a thread)."""

    def ranked(subjects: Sequence[_Subject]) -> tuple[Scorecard, ...]:
        return rank(
            [
                _card(subject_id, name, grid_name, tally, policy, under)
                for subject_id, name, grid_name, tally, under in subjects
            ]
        )

    return ranked(workers), ranked(grids)


# --- who may read what -------------------------------------------------------------------------


async def rankings_for(
    session: AsyncSession,
    person: Person,
    roles: Sequence[RoleInGrid],
    *,
    args: str | None,
    now: datetime,
    tz: tzinfo,
    export: bool = False,
) -> list[Ranking]:
    """``/score [grid] [period]``: the rankings this person may read (module docstring).
    ``export``: for the workbook, which only those who assess a subtree may take (a worker
    sees their peers' scores, not their figures)."""
    query, period = split_args(args, now, tz)
    query = indicators.clean_grid_query(query)
    if not person.active:
        raise NotAllowed(N_("Scorecards are for grid workers, heads, the centre and supervisors."))
    assessed = scope_paths(roles, ASSESSMENT)
    if assessed:
        if query:
            grid = await grids.find_grid(session, query)
            await authorize(session, person, roles, ASSESSMENT, grid, now)
            roots = [grid]
        else:
            roots = list(
                (
                    await session.exec(
                        orm_select(Grid)
                        .where(col(Grid.path).in_(assessed))
                        .order_by(col(Grid.path))
                    )
                ).all()
            )[:MAX_ROOTS]
        results = [await ranking(session, root, period, now=now, tz=tz) for root in roots]
        return [_with_own(r, person, peers=False) for r in results]
    if export:
        raise NotAllowed(
            N_("The assessment workbook is for grid heads, the centre and supervisors.")
        )
    worker_grids = [r for r in roles if r.role == Role.WORKER]
    mine = await session.get(Grid, worker_grids[0].grid_id) if worker_grids else None
    if mine is None:
        raise NotAllowed(N_("Scorecards are for grid workers, heads, the centre and supervisors."))
    if query:  # a worker may name only a grid they work in; the ranking stays their peers'
        await authorize(
            session, person, roles, Action.VIEW, await grids.find_grid(session, query), now
        )
    parent = await session.get(Grid, mine.parent_id) if mine.parent_id is not None else None
    result = await ranking(session, parent or mine, period, now=now, tz=tz)
    return [_with_own(result, person, peers=True)]


def _with_own(result: Ranking, person: Person, *, peers: bool) -> Ranking:
    own = next((c for c in result.workers if same_person(c.subject_id, person.id)), None)
    return Ranking(
        root=result.root,
        period=result.period,
        start=result.start,
        end=result.end,
        workers=result.workers,
        grids=() if peers else result.grids,
        own=own,
        peers=peers,
    )


def same_person(a: int | None, b: int | None) -> bool:
    return a is not None and b is not None and a == b
