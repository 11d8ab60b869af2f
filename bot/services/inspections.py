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
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, func, literal, or_, union_all
from sqlalchemy import select as sa_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.errors import InvalidInput, NotAllowed, NotFound
from bot.i18n import N_
from bot.services.people import RoleInGrid
from bot.services.periods import DEFAULT_TZ, local_day
from bot.services.permissions import Action, Target, permits, same, scope_paths, within
from bot.services.place_policy import PlacePolicy, current_policy, next_due
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


class DueInspection(NamedTuple):
    """A place due today as the morning push names it (a plain record, built for every place
    due in the street each morning)."""

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


def routine_due(by: datetime) -> ColumnElement[bool]:
    """SQL: the place's routine inspection is due by ``by``."""
    return col(Place.next_due_at) <= by


def due_at(place: Place) -> datetime:
    """When the place's next routine inspection is due (no cadence: since it was added)."""
    return place.next_due_at or place.created_at


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
        statement = statement.where(routine_due(by))
    for place in await session.exec(statement):
        found.append(DuePlace(place, ROUTINE, due_at(place)))
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

    Set-based: one query reads the routine inspections due (``next_due_at`` by ``by``, from
    the index ``ix_place_due`` alone) and the re-inspections due (open hazards' fix-by dates)
    as plain columns, already in order — soonest first, then by name — so each row's place in
    that order is all a worker's list is sorted by; no date is read at all. Each row is read
    once into the record the push names (the result rows are not kept beside them) and
    grouped by grid; each worker takes the grids under their subtrees (a path prefix):
    nothing is read or built per worker."""
    if not any(scopes.values()):
        return {}
    names = {t.key: t.name for t in policy.types}
    columns: list[ColumnElement[Any]] = [
        col(Place.id).label("place_id"),
        col(Place.name).label("name"),
        col(Place.type_key).label("type_key"),
        col(Place.grid_id).label("grid_id"),
        literal(ROUTINE).label("kind"),
        literal(0).label("hazards"),
        col(Place.next_due_at).label("due"),
    ]
    routine = sa_select(*columns).where(col(Place.active).is_(True), routine_due(by))
    rechecks = (
        sa_select(
            col(Place.id),
            col(Place.name),
            col(Place.type_key),
            col(Place.grid_id),
            literal(RECHECK),
            func.count(col(Hazard.id)),
            func.min(Hazard.fix_by),
        )
        .join(Hazard, col(Hazard.place_id) == col(Place.id))
        .where(col(Hazard.state).in_(OPEN_HAZARD_STATES), col(Hazard.fix_by) <= by)
        .group_by(col(Place.id), col(Place.name), col(Place.type_key), col(Place.grid_id))
    )
    both = union_all(routine, rechecks).subquery()
    ordered = sa_select(
        both.c.place_id, both.c.name, both.c.type_key, both.c.grid_id, both.c.kind, both.c.hazards
    ).order_by(both.c.due, both.c.name, both.c.kind.desc(), both.c.place_id)
    connection = await session.connection()  # plain rows, not ORM objects
    due: list[DueInspection] = []  # in the order: soonest, then by name
    by_grid: dict[int, list[int]] = {}  # a grid -> where its places are in ``due``
    for place_id, name, type_key, grid_id, kind, hazards in await connection.execute(ordered):
        by_grid.setdefault(grid_id, []).append(len(due))
        due.append(DueInspection(place_id, name, names.get(type_key, type_key), kind, hazards))
    under: dict[str, list[int]] = {}  # a subtree's path -> the grids with places due in it
    for grid_id, path in await connection.execute(sa_select(col(Grid.id), col(Grid.path))):
        if grid_id not in by_grid:
            continue
        parts = [part for part in path.split("/") if part]
        for depth in range(1, len(parts) + 1):
            under.setdefault("/" + "/".join(parts[:depth]) + "/", []).append(grid_id)
    found: dict[int, list[DueInspection]] = {}
    for worker_id, scope in scopes.items():
        grids = {grid for p in scope for grid in under.get(p, ())}
        if not grids:
            continue
        if len(grids) == 1:  # most workers: one grid, its places already in order
            ranks = by_grid[grids.pop()]
        else:
            ranks = sorted(rank for grid in grids for rank in by_grid[grid])
        if totals is not None:
            totals[worker_id] = len(ranks)
        found[worker_id] = [due[rank] for rank in ranks[:limit]]
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
        if results.get(key) != "fail" or not file_id_ok(file_id):
            raise InvalidInput(N_("That photo could not be kept. Please send it again."))
    missing = [line for line in lines if results[line.key] == "fail" and line.key not in photos]
    if missing:
        raise InvalidInput(
            N_("Please send a photo of “{item}”, which failed."), item=missing[0].text[:40]
        )


def file_id_ok(value: Any) -> bool:
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
    policy: PlacePolicy,
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
        place.next_due_at = next_due(policy, place)
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
        place.next_due_at = next_due(await current_policy(session), place)
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
