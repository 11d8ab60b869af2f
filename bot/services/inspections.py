"""Inspections (巡查): what is due, and the inspection record.

**What is due** is set-based, like the quota engine: one query finds every place whose
routine inspection is due by a moment, for all grids at once — for each place type, the
places never inspected or last inspected at least one cadence interval before that moment
(``Place.last_inspected_at``, indexed with the type) — and one query finds the places with
hazards waiting for their re-inspection (复查) on or before it. The caller narrows to the
grids a worker serves (a path prefix), so the morning push reads the places once for every
worker (:func:`due_by_worker`), and ``/inspect`` reads them for one.

**The record** is kept like the visit diary (:mod:`bot.services.visits`): who, which place,
when, where (the worker's location), and an answer per checklist item — 合格 ``pass``,
不合格 ``fail`` (with a photo) or 不适用 ``na``. A failed item becomes a hazard
(:mod:`bot.services.hazards`). A re-inspection answers the open hazards instead of the
checklist: ``pass`` is fixed, ``fail`` is not. The author may withdraw an inspection on the
local day it was made; after that only a head over the place's grid (the visit rules); its
hazards are withdrawn with it.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_
from sqlalchemy import select as sa_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.errors import InvalidInput, NotAllowed, NotFound
from bot.i18n import N_
from bot.services.people import RoleInGrid
from bot.services.periods import DEFAULT_TZ, local_day
from bot.services.permissions import Action, Target, permits, same, scope_paths, within
from bot.services.place_policy import PlacePolicy
from models import AuditLog, Grid, Hazard, Inspection, Person, Place

RESULTS = ("pass", "fail", "na")
ROUTINE, RECHECK = "routine", "recheck"
WEEK = timedelta(days=7)
OPEN_HAZARD_STATES = ("open", "reported")
NOTE_LIMIT = 1000
FILE_ID_LIMIT = 255
MAX_LISTED = 200  # places in one /inspect list
MAX_IN_PUSH = 10  # places named in a morning push


@dataclass(frozen=True)
class DuePlace:
    """A place due for a routine inspection or a re-inspection, and when."""

    place: Place
    kind: str  # ROUTINE or RECHECK
    due_at: datetime
    hazards: int = 0  # open hazards waiting for the re-inspection

    @property
    def overdue_at(self) -> datetime:
        return self.due_at


@dataclass(frozen=True)
class DueInspection:
    """A place due today as the morning push names it."""

    place_id: int
    name: str
    type_name: str
    kind: str  # ROUTINE or RECHECK
    hazards: int = 0


def for_push(due: Sequence[DuePlace], policy: PlacePolicy) -> tuple[DueInspection, ...]:
    found = []
    for item in due:
        place_type = policy.type(item.place.type_key)
        found.append(
            DueInspection(
                item.place.id or 0,
                item.place.name,
                place_type.name if place_type is not None else item.place.type_key,
                item.kind,
                item.hazards,
            )
        )
    return tuple(found)


async def inspected_since(
    session: AsyncSession, place_ids: Sequence[int], since: datetime
) -> set[int]:
    """Which of the places were inspected (not withdrawn, refusals too) since ``since``."""
    if not place_ids:
        return set()
    rows = await session.exec(
        select(col(Inspection.place_id)).where(
            col(Inspection.place_id).in_(list(place_ids)),
            col(Inspection.inspected_at) >= since,
            col(Inspection.withdrawn_at).is_(None),
        )
    )
    return set(rows.all())


@dataclass(frozen=True)
class CheckLine:
    """One line of what an inspection asks: a checklist item, or an open hazard."""

    key: str  # the item's key, or ``h<hazard id>`` at a re-inspection
    text: str
    severity: str


# --- what is due ------------------------------------------------------------------------------


def routine_due(policy: PlacePolicy, by: datetime) -> ColumnElement[bool]:
    """SQL: the place's routine inspection is due by ``by`` (by its type's worker cadence)."""
    clauses = []
    for place_type in policy.types:
        cadence = place_type.cadence_of("worker")
        if cadence is None:
            continue
        clauses.append(
            and_(
                col(Place.type_key) == place_type.key,
                or_(
                    col(Place.last_inspected_at).is_(None),
                    col(Place.last_inspected_at) <= by - cadence.interval,
                ),
            )
        )
    return or_(*clauses) if clauses else col(Place.id).is_(None)


def due_at(place: Place, policy: PlacePolicy) -> datetime:
    """When the place's next routine inspection is due (never inspected: since it was added)."""
    place_type = policy.type(place.type_key)
    cadence = place_type.cadence_of("worker") if place_type is not None else None
    if place.last_inspected_at is None or cadence is None:
        return place.created_at
    return place.last_inspected_at + cadence.interval


def _under(paths: Sequence[str]) -> ColumnElement[bool]:
    return or_(*(col(Grid.path).startswith(p) for p in paths))


def clean_search(text: str | None) -> str:
    """Words typed to find a place: NFKC, spaces folded, at most 40 characters."""
    folded = unicodedata.normalize("NFKC", text or "")
    return " ".join(re.sub(r"[%_\\]", " ", folded).split())[:40]


async def due_places(
    session: AsyncSession,
    paths: Sequence[str],
    policy: PlacePolicy,
    by: datetime,
    *,
    search: str = "",
    limit: int = MAX_LISTED,
) -> list[DuePlace]:
    """Places in the subtrees ``paths`` due by ``by``, soonest (most overdue) first; with
    ``search``, every active place whose name or code holds the words, due or not."""
    if not paths:
        return []
    found: list[DuePlace] = []
    statement = (
        select(Place)
        .join(Grid, col(Grid.id) == col(Place.grid_id))
        .where(col(Place.active).is_(True), _under(paths))
    )
    if search:
        for word in search.split():
            statement = statement.where(
                or_(col(Place.name).contains(word), col(Place.code).contains(word))
            )
        statement = statement.order_by(col(Place.name)).limit(limit)
    else:
        statement = statement.where(routine_due(policy, by))
    for place in await session.exec(statement):
        found.append(DuePlace(place, ROUTINE, due_at(place, policy)))
    rechecks = await _rechecks(session, paths, by if not search else None, search)
    found.extend(rechecks)
    found.sort(key=lambda d: (d.due_at, d.kind != RECHECK, d.place.name))
    return found[:limit]


async def _rechecks(
    session: AsyncSession, paths: Sequence[str], by: datetime | None, search: str = ""
) -> list[DuePlace]:
    statement = (
        select(Place, func.min(Hazard.fix_by), func.count(col(Hazard.id)))
        .join(Hazard, col(Hazard.place_id) == col(Place.id))
        .join(Grid, col(Grid.id) == col(Place.grid_id))
        .where(col(Hazard.state).in_(OPEN_HAZARD_STATES), _under(paths))
        .group_by(col(Place.id))
    )
    if by is not None:
        statement = statement.where(col(Hazard.fix_by) <= by)
    for word in search.split():
        statement = statement.where(
            or_(col(Place.name).contains(word), col(Place.code).contains(word))
        )
    return [
        DuePlace(place, RECHECK, fix_by, count)
        for place, fix_by, count in await session.exec(statement)
    ]


async def due_by_worker(
    session: AsyncSession,
    scopes: Mapping[int, Sequence[str]],
    policy: PlacePolicy,
    by: datetime,
    *,
    limit: int | None = None,
    totals: dict[int, int] | None = None,
) -> dict[int, list[DueInspection]]:
    """Each worker's places due by ``by``, soonest first, for all workers at once; with
    ``limit``, the first so many (and each worker's count in ``totals``).

    Set-based: the due places are read once as plain columns (two queries: routine and
    re-inspections), grouped by grid, and each worker takes the grids under their subtrees
    (a path prefix): no row is read or built per worker."""
    if not any(scopes.values()):
        return {}
    names = {t.key: t.name for t in policy.types}
    intervals = {
        t.key: cadence.interval for t in policy.types if (cadence := t.cadence_of("worker"))
    }
    Entry = tuple[datetime, str, int, str, str, int]  # due, name, place, type, kind, hazards
    by_grid: dict[str, list[Entry]] = {}
    connection = await session.connection()  # plain rows: nothing built per place but these
    rows = await connection.execute(
        sa_select(
            col(Place.id),
            col(Place.name),
            col(Place.type_key),
            func.coalesce(col(Place.last_inspected_at), col(Place.created_at)),
            col(Place.last_inspected_at).is_(None),
            col(Grid.path),
        )
        .join(Grid, col(Grid.id) == col(Place.grid_id))
        .where(col(Place.active).is_(True), routine_due(policy, by))
    )
    none = timedelta()
    for place_id, name, type_key, since, never, path in rows:
        when = since if never else since + intervals.get(type_key, none)
        by_grid.setdefault(path, []).append((when, name, place_id or 0, type_key, ROUTINE, 0))
    rechecks = await connection.execute(
        sa_select(
            col(Place.id),
            col(Place.name),
            col(Place.type_key),
            col(Grid.path),
            func.min(Hazard.fix_by),
            func.count(col(Hazard.id)),
        )
        .join(Hazard, col(Hazard.place_id) == col(Place.id))
        .join(Grid, col(Grid.id) == col(Place.grid_id))
        .where(col(Hazard.state).in_(OPEN_HAZARD_STATES), col(Hazard.fix_by) <= by)
        .group_by(col(Place.id), col(Place.name), col(Place.type_key), col(Grid.path))
    )
    for place_id, name, type_key, path, fix_by, count in rechecks:
        by_grid.setdefault(path, []).append(
            (fix_by, name, place_id or 0, type_key, RECHECK, count)
        )
    under: dict[str, list[str]] = {}  # a subtree's path -> the grids with places due in it
    for path in by_grid:
        parts = [part for part in path.split("/") if part]
        for depth in range(1, len(parts) + 1):
            under.setdefault("/" + "/".join(parts[:depth]) + "/", []).append(path)
    found: dict[int, list[DueInspection]] = {}
    for worker_id, paths in scopes.items():
        grids = {grid for p in paths for grid in under.get(p, ())}
        if grids:
            items = [entry for grid in grids for entry in by_grid[grid]]
            items.sort(key=lambda entry: (entry[0], entry[1]))
            if totals is not None:
                totals[worker_id] = len(items)
            found[worker_id] = [
                DueInspection(place_id, name, names.get(key, key), kind, hazards)
                for _when, name, place_id, key, kind, hazards in items[:limit]
            ]
    return found


# --- the checklist ----------------------------------------------------------------------------


async def place_to_inspect(
    session: AsyncSession,
    person: Person,
    roles: Sequence[RoleInGrid],
    place_id: int,
    now: datetime,
) -> tuple[Place, Grid]:
    """The place, if the person may inspect it (a worker or head over its grid); else
    NotFound or NotAllowed with its audit record."""
    place = await session.get(Place, place_id)
    grid = None if place is None else await session.get(Grid, place.grid_id)
    if place is None or grid is None or not place.active:
        raise NotFound(N_("That place is not in the register."))
    target = Target("place", place.id, grid.path)
    if not person.active or not permits(roles, Action.VISIT, target, person.id):
        raise NotAllowed(
            N_("Sorry, this is outside the grids you look after."),
            audit=AuditLog(
                at=now,
                actor_id=person.id,
                action="refused:inspect",
                object_type="place",
                object_id=place.id,
                detail=grid.path,
            ),
        )
    return place, grid


async def checklist_of(
    session: AsyncSession, place: Place, policy: PlacePolicy, kind: str
) -> list[CheckLine]:
    """What an inspection of ``kind`` asks at this place."""
    if kind == RECHECK:
        hazards = await session.exec(
            select(Hazard)
            .where(Hazard.place_id == place.id, col(Hazard.state).in_(OPEN_HAZARD_STATES))
            .order_by(col(Hazard.id))
        )
        return [CheckLine(f"h{h.id}", h.item_text, h.severity) for h in hazards]
    place_type = policy.type(place.type_key)
    if place_type is None:
        raise NotFound(N_("That place is not in the register."))
    return [CheckLine(i.key, i.text, i.severity) for i in place_type.checklist]


def check_answers(
    lines: Sequence[CheckLine], results: Mapping[str, str], photos: Mapping[str, str]
) -> None:
    """Every line answered once with a known result, and a photo for each failure."""
    keys = [line.key for line in lines]
    if set(results) != set(keys) or any(r not in RESULTS for r in results.values()):
        raise InvalidInput(N_("Please answer every item of the checklist."))
    for key, file_id in photos.items():
        if results.get(key) != "fail" or not _file_id_ok(file_id):
            raise InvalidInput(N_("That photo could not be kept. Please send it again."))
    missing = [line for line in lines if results[line.key] == "fail" and line.key not in photos]
    if missing:
        raise InvalidInput(
            N_("Please send a photo of “{item}”, which failed."), item=missing[0].text[:40]
        )


def _file_id_ok(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= FILE_ID_LIMIT and value.isprintable()


def parse_point(latitude: float | None, longitude: float | None) -> tuple[float, float] | None:
    if latitude is None and longitude is None:
        return None
    if (
        latitude is None
        or longitude is None
        or not (math.isfinite(latitude) and math.isfinite(longitude))
        or not (-90 <= latitude <= 90 and -180 <= longitude <= 180)
    ):
        raise InvalidInput(N_("That location is not a place on the map."))
    return float(latitude), float(longitude)


# --- the record -------------------------------------------------------------------------------


async def new_inspection(
    session: AsyncSession,
    *,
    place: Place,
    inspector: Person,
    kind: str,
    now: datetime,
    results: Mapping[str, str] | None = None,
    photos: Mapping[str, str] | None = None,
    point: tuple[float, float] | None = None,
    refused: bool = False,
    note: str = "",
) -> Inspection:
    """Write the inspection row; a routine one moves the place's next due date."""
    assert inspector.id is not None and place.id is not None
    inspection = Inspection(
        place_id=place.id,
        inspector_id=inspector.id,
        kind=kind,
        refused=refused,
        inspected_at=now,
        results=dict(results or {}),
        photos=dict(photos or {}),
        note=note[:NOTE_LIMIT],
        latitude=point[0] if point else None,
        longitude=point[1] if point else None,
        created_at=now,
        updated_at=now,
    )
    session.add(inspection)
    if kind == ROUTINE and not refused:
        place.last_inspected_at = now
        place.updated_at = now
        session.add(place)
    await session.flush()
    return inspection


async def changeable(
    session: AsyncSession,
    person: Person,
    roles: Sequence[RoleInGrid],
    inspection_id: int,
    now: datetime,
    tz: tzinfo = DEFAULT_TZ,
) -> tuple[Inspection, Place, bool]:
    """The inspection, its place, and whether changing it is an amendment (not the author's
    own same-day correction) — the visit rules. Refuses everyone else."""
    inspection = await session.get(Inspection, inspection_id)
    place = None if inspection is None else await session.get(Place, inspection.place_id)
    grid = None if place is None else await session.get(Grid, place.grid_id)
    if inspection is None or place is None or grid is None:
        raise NotFound(N_("That inspection is not in the record."))
    if inspection.withdrawn_at is not None:
        raise InvalidInput(N_("This inspection has already been withdrawn."))
    target = Target("place", place.id, grid.path)
    own_today = same(inspection.inspector_id, person.id) and local_day(
        inspection.inspected_at, tz
    ) == local_day(now, tz)
    if person.active and own_today and permits(roles, Action.VISIT, target, person.id):
        return inspection, place, False
    if person.active and permits(roles, Action.AMEND_VISIT, target, person.id):
        return inspection, place, True
    raise NotAllowed(
        N_(
            "Only the inspector can change an inspection, on the day it was made. "
            "After that, please ask your grid head."
        ),
        audit=AuditLog(
            at=now,
            actor_id=person.id,
            action=f"refused:{Action.AMEND_VISIT.value}",
            object_type="inspection",
            object_id=inspection.id,
            detail=grid.path,
        ),
    )


async def withdraw_inspection(
    session: AsyncSession,
    person: Person,
    roles: Sequence[RoleInGrid],
    inspection_id: int,
    now: datetime,
    *,
    tz: tzinfo = DEFAULT_TZ,
) -> Inspection:
    """Withdraw an inspection made by mistake: its open hazards go with it, and the place's
    last inspection is the one before. A hazard already turned into a ticket stays."""
    inspection, place, amended = await changeable(session, person, roles, inspection_id, now, tz)
    inspection.withdrawn_at = now
    inspection.updated_at = now
    session.add(inspection)
    hazards = await session.exec(
        select(Hazard).where(
            Hazard.inspection_id == inspection.id, col(Hazard.state).in_(OPEN_HAZARD_STATES)
        )
    )
    for hazard in hazards:
        hazard.state = "withdrawn"
        hazard.closed_at = now
        session.add(hazard)
    await session.flush()
    if inspection.kind == ROUTINE:
        place.last_inspected_at = (
            await session.exec(
                select(func.max(Inspection.inspected_at)).where(
                    Inspection.place_id == place.id,
                    Inspection.kind == ROUTINE,
                    col(Inspection.refused).is_(False),
                    col(Inspection.withdrawn_at).is_(None),
                )
            )
        ).one()
        session.add(place)
    session.add(
        AuditLog(
            at=now,
            actor_id=person.id,
            action="inspection:amend-withdraw" if amended else "inspection:withdraw",
            object_type="inspection",
            object_id=inspection.id,
        )
    )
    return inspection


async def inspected_in(
    session: AsyncSession, start: datetime, end: datetime, paths: Sequence[str]
) -> list[tuple[Inspection, Place, Grid]]:
    """Inspections made in ``[start, end)`` in the subtrees, not withdrawn, oldest first."""
    if not paths:
        return []
    rows = await session.exec(
        select(Inspection, Place, Grid)
        .join(Place, col(Place.id) == col(Inspection.place_id))
        .join(Grid, col(Grid.id) == col(Place.grid_id))
        .where(
            col(Inspection.inspected_at) >= start,
            col(Inspection.inspected_at) < end,
            col(Inspection.withdrawn_at).is_(None),
            _under(paths),
        )
        .order_by(col(Inspection.inspected_at), col(Inspection.id))
    )
    return list(rows.all())


def inspector_paths(roles: Sequence[RoleInGrid]) -> list[str]:
    """The subtrees where a person inspects places (where they may visit households)."""
    return scope_paths(roles, Action.VISIT)


def in_scope(paths: Sequence[str], path: str) -> bool:
    return any(within(p, path) for p in paths)
