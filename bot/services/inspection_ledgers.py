"""Counting inspections: coverage, hazard figures, and the two ledgers (台账).

- **Coverage** (巡查覆盖率) of a subtree, by place type: the places whose routine inspection is
  not overdue now (inspected within their worker cadence) over all active places — one
  grouped query, with the same due condition as :mod:`bot.services.inspections`.
- **Hazard figures** for a period: found, fixed on time (closed as fixed by the fix-by
  date), fixed late, still open, overdue (open past the fix-by date), became tickets.
- ``/export inspections [month]`` — every inspection of the month in the asker's grids, one
  row per inspection (refusals too); ``/export hazards [month]`` — every hazard found in the
  month with its state. Phones are not in these ledgers; the place register has them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from html import escape as esc

from sqlalchemy import ColumnElement, case, func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.errors import InvalidInput, NotAllowed
from bot.i18n import N_
from bot.services.imports import Translate
from bot.services.inspections import OPEN_HAZARD_STATES, RECHECK, routine_due
from bot.services.people import RoleInGrid
from bot.services.periods import local_midnight
from bot.services.permissions import Action, scope_paths
from bot.services.place_policy import PlacePolicy
from bot.services.tabular import CellValue, Sheet, write_workbook
from bot.services.ticket_numbers import shown_number
from models import AuditLog, Grid, Hazard, Inspection, Person, Place, Ticket

MONTH = re.compile(r"(\d{4})[-/.年](\d{1,2})月?")
RESULT_LABEL = {"pass": N_("Pass"), "fail": N_("Fail"), "na": N_("N/A")}
STATE_LABEL = {
    "open": N_("open"),
    "reported": N_("said fixed"),
    "fixed": N_("fixed"),
    "ticket": N_("became a ticket"),
    "withdrawn": N_("withdrawn"),
}
SEVERITY_LABEL = {
    "minor": N_("minor hazard"),
    "major": N_("major hazard"),
    "grave": N_("grave hazard"),
}


@dataclass(frozen=True)
class Coverage:
    type_key: str
    type_name: str
    places: int
    covered: int  # not overdue now

    @property
    def share(self) -> float | None:
        return self.covered / self.places if self.places else None


@dataclass(frozen=True)
class HazardFigures:
    found: int = 0
    fixed_on_time: int = 0
    fixed_late: int = 0
    open: int = 0
    overdue: int = 0
    ticketed: int = 0


def _under(paths: Sequence[str]) -> ColumnElement[bool]:
    return or_(*(col(Grid.path).startswith(p) for p in paths))


async def coverage(
    session: AsyncSession, paths: Sequence[str], policy: PlacePolicy, now: datetime
) -> list[Coverage]:
    """Inspection coverage by place type in the subtrees, in the policy's order of types."""
    if not paths:
        return []
    rows = await session.exec(
        select(
            col(Place.type_key),
            func.count(col(Place.id)),
            func.sum(case((routine_due(now), 0), else_=1)),
        )
        .join(Grid, col(Grid.id) == col(Place.grid_id))
        .where(col(Place.active).is_(True), _under(paths))
        .group_by(col(Place.type_key))
    )
    counts = {key: (int(total), int(covered or 0)) for key, total, covered in rows}
    return [Coverage(t.key, t.name, *counts[t.key]) for t in policy.types if t.key in counts]


async def hazard_figures(
    session: AsyncSession, paths: Sequence[str], start: datetime, end: datetime, now: datetime
) -> HazardFigures:
    """Hazards found in ``[start, end)`` in the subtrees, and what became of them by now."""
    if not paths:
        return HazardFigures()
    rows = await session.exec(
        select(Hazard.state, Hazard.fix_by, Hazard.closed_at)
        .join(Place, col(Place.id) == col(Hazard.place_id))
        .join(Grid, col(Grid.id) == col(Place.grid_id))
        .where(
            col(Hazard.found_at) >= start,
            col(Hazard.found_at) < end,
            col(Hazard.state) != "withdrawn",
            _under(paths),
        )
    )
    found = on_time = late = still_open = overdue = ticketed = 0
    for state, fix_by, closed_at in rows:
        found += 1
        if state == "fixed":
            if closed_at is not None and closed_at <= fix_by:
                on_time += 1
            else:
                late += 1
        elif state == "ticket":
            ticketed += 1
        elif state in OPEN_HAZARD_STATES:
            still_open += 1
            overdue += fix_by < now
    return HazardFigures(found, on_time, late, still_open, overdue, ticketed)


def parse_month(text: str | None, today: date) -> date:
    """The first day of the month typed (``2026-03``, ``2026年3月``), else of this month."""
    cleaned = unicodedata.normalize("NFKC", text or "").strip()[:20]
    if not cleaned:
        return today.replace(day=1)
    match = MONTH.fullmatch(cleaned)
    if (
        match is None
        or not 1 <= int(match.group(2)) <= 12
        or not 2000 <= int(match.group(1)) <= 2100
    ):
        raise InvalidInput(
            N_("“{value}” is not a month. Write it like 2026-03."), value=cleaned[:20]
        )
    return date(int(match.group(1)), int(match.group(2)), 1)


def month_bounds(first: date, tz: tzinfo) -> tuple[datetime, datetime]:
    following = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
    return local_midnight(first, tz), local_midnight(following, tz)


def _paths(actor: Person, roles: Sequence[RoleInGrid], now: datetime) -> list[str]:
    paths = scope_paths(roles, Action.EXPORT)
    if not actor.active or not paths:
        raise NotAllowed(
            N_("Sorry, you cannot export ledgers."),
            audit=AuditLog(at=now, actor_id=actor.id, action="refused:export"),
        )
    return paths


async def export_inspections(
    session: AsyncSession,
    actor: Person,
    roles: Sequence[RoleInGrid],
    policy: PlacePolicy,
    *,
    month: date,
    now: datetime,
    tz: tzinfo,
    translate: Translate,
) -> bytes:
    """The inspection ledger (巡查台账) of a month in the asker's grids, as XLSX."""
    paths = _paths(actor, roles, now)
    start, end = month_bounds(month, tz)
    rows = await session.exec(
        select(Inspection, Place, Grid, Person.name)
        .join(Place, col(Place.id) == col(Inspection.place_id))
        .join(Grid, col(Grid.id) == col(Place.grid_id))
        .join(Person, col(Person.id) == col(Inspection.inspector_id))
        .where(
            col(Inspection.inspected_at) >= start,
            col(Inspection.inspected_at) < end,
            _under(paths),
        )
        .order_by(col(Inspection.inspected_at), col(Inspection.id))
    )
    names = {t.key: t.name for t in policy.types}
    lines: list[list[CellValue]] = []
    for inspection, place, grid, inspector in rows:
        results = inspection.results or {}
        failed = sum(1 for r in results.values() if r == "fail")
        if inspection.refused:
            outcome = translate(N_("refused inspection"))
        elif inspection.kind == RECHECK:
            outcome = translate(N_("re-inspection"))
        else:
            outcome = translate(N_("inspection"))
        lines.append(
            [
                inspection.inspected_at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
                place.code,
                place.name,
                names.get(place.type_key, place.type_key),
                grid.code,
                grid.name,
                inspector,
                outcome,
                len(results),
                failed,
                "✓" if inspection.latitude is not None else "",
                translate(N_("withdrawn")) if inspection.withdrawn_at is not None else "",
            ]
        )
    headers = [
        N_("Inspected at"),
        N_("Place code"),
        N_("Place name"),
        N_("Place type"),
        N_("Grid code"),
        N_("Grid name"),
        N_("Inspector"),
        N_("Kind"),
        N_("Items"),
        N_("Failed"),
        N_("Location"),
        N_("Withdrawn"),
    ]
    session.add(
        AuditLog(at=now, actor_id=actor.id, action="export:inspections", data={"rows": len(lines)})
    )
    return write_workbook(
        [
            Sheet(
                title=translate(N_("Inspection ledger")),
                headers=[translate(h) for h in headers],
                rows=lines,
                widths=[17, 16, 24, 12, 18, 18, 10, 10, 6, 6, 6, 8],
                text_columns=frozenset({1, 4}),
                auto_filter=True,
            )
        ]
    )


async def export_hazards(
    session: AsyncSession,
    actor: Person,
    roles: Sequence[RoleInGrid],
    policy: PlacePolicy,
    *,
    month: date,
    now: datetime,
    tz: tzinfo,
    translate: Translate,
) -> bytes:
    """The hazard ledger (隐患台账) of a month: each hazard found, its fix-by date and fate."""
    paths = _paths(actor, roles, now)
    start, end = month_bounds(month, tz)
    rows = await session.exec(
        select(Hazard, Place, Grid, Ticket)
        .join(Place, col(Place.id) == col(Hazard.place_id))
        .join(Grid, col(Grid.id) == col(Place.grid_id))
        .outerjoin(Ticket, col(Ticket.id) == col(Hazard.ticket_id))
        .where(
            col(Hazard.found_at) >= start,
            col(Hazard.found_at) < end,
            _under(paths),
        )
        .order_by(col(Hazard.found_at), col(Hazard.id))
    )
    names = {t.key: t.name for t in policy.types}

    def day(moment: datetime | None) -> str:
        return moment.astimezone(tz).strftime("%Y-%m-%d") if moment is not None else ""

    lines: list[list[CellValue]] = []
    for hazard, place, grid, ticket in rows:
        overdue = hazard.state in OPEN_HAZARD_STATES and hazard.fix_by < now
        lines.append(
            [
                day(hazard.found_at),
                place.code,
                place.name,
                names.get(place.type_key, place.type_key),
                grid.code,
                hazard.item_text,
                translate(SEVERITY_LABEL.get(hazard.severity, hazard.severity)),
                day(hazard.fix_by),
                translate(STATE_LABEL.get(hazard.state, hazard.state)),
                day(hazard.reported_fixed_at),
                day(hazard.closed_at),
                translate(N_("overdue")) if overdue else "",
                shown_number(ticket) if ticket is not None else "",
            ]
        )
    headers = [
        N_("Found on"),
        N_("Place code"),
        N_("Place name"),
        N_("Place type"),
        N_("Grid code"),
        N_("Hazard"),
        N_("Severity"),
        N_("Fix by"),
        N_("State"),
        N_("Said fixed on"),
        N_("Closed on"),
        N_("Overdue"),
        N_("Ticket"),
    ]
    session.add(
        AuditLog(at=now, actor_id=actor.id, action="export:hazards", data={"rows": len(lines)})
    )
    return write_workbook(
        [
            Sheet(
                title=translate(N_("Hazard ledger")),
                headers=[translate(h) for h in headers],
                rows=lines,
                widths=[11, 16, 24, 12, 18, 30, 8, 11, 10, 11, 11, 8, 8],
                text_columns=frozenset({1, 4}),
                auto_filter=True,
            )
        ]
    )


def coverage_text(
    rows: Sequence[Coverage], figures: HazardFigures, grid_name: str, tr: Callable[..., str]
) -> str:
    """Inspection coverage by place type and the period's hazards, as HTML (/quota,
    /indicators, the monthly digest); ``tr(msgid, **params)`` in the reader's language."""
    lines = [
        "<b>" + esc(tr(N_("Inspection coverage (巡查覆盖率): {grid}"), grid=grid_name)) + "</b>"
    ]
    for row in rows:
        share = f"{row.share:.0%}" if row.share is not None else "—"
        lines.append(
            esc(
                tr(
                    N_("• {type}: {covered} of {places} places inspected on time ({share})"),
                    type=row.type_name,
                    covered=row.covered,
                    places=row.places,
                    share=share,
                )
            )
        )
    lines.append(
        esc(
            tr(
                N_(
                    "Hazards found in the period: {found}; {on_time} fixed on time, {late} "
                    "fixed late, {open} open ({overdue} overdue), {ticketed} became tickets."
                ),
                found=figures.found,
                on_time=figures.fixed_on_time,
                late=figures.fixed_late,
                open=figures.open,
                overdue=figures.overdue,
                ticketed=figures.ticketed,
            )
        )
    )
    return "\n".join(lines)
