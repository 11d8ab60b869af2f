"""Grid boundaries (网格边界): where each grid lies on the map, and which grid a point is in.

An admin sends a GeoJSON file: a ``FeatureCollection`` with one feature per grid, its grid
code in ``properties.code`` (full-width digits and spaces are folded, as in typed codes) and a
``Polygon`` or ``MultiPolygon`` in WGS-84 longitude/latitude (what GPS and Telegram give;
GCJ-02 "Mars coordinates" from Chinese web maps are some hundred metres off and must be
converted first). The file is checked as a whole and loaded **all or nothing**:

- refused outright (:class:`~bot.errors.InvalidInput`): larger than :data:`MAX_FILE_BYTES`,
  not UTF-8, not JSON (NaN and Infinity included), not a ``FeatureCollection``, more than
  :data:`MAX_FEATURES` features or :data:`MAX_POINTS` corners;
- refused with every problem listed (:class:`BoundaryProblem`): a feature without a grid code,
  a code twice, a code no grid has, a grid outside the ones the admin manages, a geometry other
  than a polygon, coordinates that are not numbers or lie outside China (longitude 73–136,
  latitude 3–54; swapped latitude and longitude are named as such), a shape that is not valid
  (crosses itself, a hole outside its shell …: ``shapely.is_valid``), and two grids neither of
  which contains the other that overlap by more than :data:`OVERLAP_TOLERANCE_M2`;
- loaded with a warning: lowest grids (those households belong to) in the admin's area that
  have no boundary. A missing grid is a warning, not an error: streets draw their maps
  community by community, and a report from an unmapped place loses nothing — it goes by its
  typed address or to the reporter's own grid, and a point outside every grid is shown to the
  street centre (:mod:`bot.services.tickets.placing`).

Loading replaces every boundary of the grids in the admin's area and draws a new version
number (:data:`VERSION_COUNTER`). Each process keeps the boundaries it read in a spatial index
(shapely's ``STRtree``) and reads them again only when that number has changed.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import secrets
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import shapely
from shapely import STRtree
from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity
from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.errors import InvalidInput, NotAllowed
from bot.i18n import N_, gettext_for
from bot.services.grid_codes import normalize_code
from bot.services.people import RoleInGrid
from bot.services.permissions import Action, scope_paths
from models import AuditLog, Counter, Grid, GridBoundary, Person

MAX_FILE_BYTES = 20 * 1024 * 1024  # what a bot may download from Telegram
MAX_FEATURES = 50_000  # a city has about 12,000 grids
MAX_POINTS = 5_000_000  # corners in the whole file
MAX_PROBLEMS = 200  # problems collected before the check stops listing them
OVERLAP_TOLERANCE_M2 = 10.0  # slivers where two hand-drawn edges do not quite meet
LONGITUDES = (73.0, 136.0)  # China, generously
LATITUDES = (3.0, 54.0)
VERSION_COUNTER = "grid_boundaries"
CACHED_DATABASES = 8  # one per database a process talks to (tests and the sandbox: several)
LOOKUP_CHUNK = 1_000
_SHOWN = 40  # a value quoted back is cut to this many characters
_METRES_PER_DEGREE = 111_320.0

# the file as a whole
TOO_BIG = N_("The file is larger than {limit} MB. Please split it into smaller files.")
NOT_UTF8 = N_("The file is not UTF-8 text. Please save it as UTF-8 GeoJSON.")
NOT_JSON = N_(
    "The file is not valid GeoJSON: there is a mistake at line {line}, column {column}. Please "
    "check it in a map tool such as QGIS and send it again."
)
TOO_NESTED = N_("The file is not valid GeoJSON: it is nested too deeply.")
NOT_NUMBER_TEXT = N_("The file is not valid GeoJSON: {value} is not a number JSON allows.")
NOT_COLLECTION = N_(
    "The file must be a GeoJSON FeatureCollection with one feature per grid; this one is not."
)
NO_FEATURES = N_("The file has no features: nothing to load.")
TOO_MANY_FEATURES = N_("The file has more than {limit} features. Please split it.")
TOO_MANY_POINTS = N_("The file has more than {limit} corners in all. Please simplify the shapes.")
NOT_AN_ADMIN = N_("Only an administrator can load grid boundaries.")

# one feature
FEATURE = N_("Feature {number}: {reason}")
NOT_A_FEATURE = N_("this is not a GeoJSON Feature.")
NO_CODE = N_("it has no grid code (properties.code).")
BAD_CODE = N_("{value} is not a grid code.")
DUPLICATE = N_("grid {code} is also in feature {first}; one boundary per grid, please.")
UNKNOWN_GRID = N_("there is no grid with the code {code}.")
OUT_OF_SCOPE = N_("grid {code} is outside the grids you manage.")
WRONG_TYPE = N_("the boundary of grid {code} is a {kind}; only Polygon and MultiPolygon are used.")
BAD_COORDINATES = N_("the coordinates of grid {code} are not a list of longitude, latitude pairs.")
SWAPPED = N_(
    "grid {code} has a point at {first}, {second}: latitude and longitude seem swapped "
    "(GeoJSON puts longitude first)."
)
OUTSIDE_CHINA = N_(
    "grid {code} has a point at longitude {lng}, latitude {lat}, outside China. Boundaries "
    "must be WGS-84 longitude and latitude in degrees."
)
CROSSES_ITSELF = N_("the boundary of grid {code} crosses itself near {lat}, {lng}.")
TOO_FEW_CORNERS = N_("the boundary of grid {code} has a ring with fewer than three corners.")
BAD_HOLE = N_("the boundary of grid {code} has a hole outside its outline near {lat}, {lng}.")
PARTS_OVERLAP = N_("the parts of grid {code} overlap or touch along a line near {lat}, {lng}.")
NOT_A_SHAPE = N_("the boundary of grid {code} is not a valid shape near {lat}, {lng}.")
OVERLAP = N_("grids {first} and {second} overlap by about {area} m².")
# an explain_validity reason → what a person reads (any other: NOT_A_SHAPE)
VALIDITY_REASONS = {
    "Self-intersection": CROSSES_ITSELF,
    "Ring Self-intersection": CROSSES_ITSELF,
    "Too few points in geometry component": TOO_FEW_CORNERS,
    "Hole lies outside shell": BAD_HOLE,
    "Nested holes": BAD_HOLE,
    "Interior is disconnected": BAD_HOLE,
    "Nested shells": PARTS_OVERLAP,
    "Duplicate Rings": PARTS_OVERLAP,
}
_VALIDITY = re.compile(r"^(?P<reason>[^\[]+)\[(?P<x>[-+0-9.eE]+) (?P<y>[-+0-9.eE]+)\]")


@dataclass(frozen=True)
class BoundaryProblem:
    """What is wrong with one feature (``number`` from 1, 0 for the file as a whole)."""

    number: int
    reason: str  # a msgid with ``{named}`` slots
    params: dict[str, str] = field(default_factory=dict)

    def render(self, locale: str) -> str:
        reason = gettext_for(locale, self.reason, **self.params)
        if self.number == 0:
            return reason
        return gettext_for(locale, FEATURE, number=self.number, reason=reason)


@dataclass
class BoundaryReport:
    """The outcome of a load: problems (then nothing was written), or what was loaded."""

    problems: list[BoundaryProblem] = field(default_factory=list)
    loaded: int = 0
    replaced: int = 0  # boundaries of the admin's grids there before, now replaced
    missing: list[str] = field(default_factory=list)  # lowest grids left without a boundary
    more_problems: bool = False  # the check stopped listing at MAX_PROBLEMS

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class Drawn:
    """One feature that passed the checks of its own: its code and shape."""

    number: int
    code: str
    geometry: dict[str, Any]  # {"type": ..., "coordinates": ...}, as checked
    shape: BaseGeometry


# --- reading the file (pure; run in a thread) ---------------------------------------------------


def read_boundaries(data: bytes) -> tuple[list[Drawn], list[BoundaryProblem]]:
    """The features of a GeoJSON file and the problems each has by itself.

    Raises :class:`InvalidInput` when the file as a whole cannot be used."""
    if len(data) > MAX_FILE_BYTES:
        raise InvalidInput(TOO_BIG, limit=MAX_FILE_BYTES // (1024 * 1024))
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput(NOT_UTF8) from None
    try:
        document = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as error:
        raise InvalidInput(NOT_JSON, line=error.lineno, column=error.colno) from None
    except RecursionError:
        raise InvalidInput(TOO_NESTED) from None
    if (
        not isinstance(document, dict)
        or document.get("type") != "FeatureCollection"
        or not isinstance(document.get("features"), list)
    ):
        raise InvalidInput(NOT_COLLECTION)
    features: list[Any] = document["features"]
    if not features:
        raise InvalidInput(NO_FEATURES)
    if len(features) > MAX_FEATURES:
        raise InvalidInput(TOO_MANY_FEATURES, limit=MAX_FEATURES)
    drawn: list[Drawn] = []
    problems: list[BoundaryProblem] = []
    first_of: dict[str, int] = {}
    points = 0
    for number, feature in enumerate(features, start=1):
        if len(problems) >= MAX_PROBLEMS:
            break
        code, problem = _code_of(feature)
        if problem is not None:
            problems.append(BoundaryProblem(number, *problem))
            continue
        assert code is not None
        if code in first_of:
            problems.append(
                BoundaryProblem(number, DUPLICATE, {"code": code, "first": str(first_of[code])})
            )
            continue
        first_of[code] = number
        geometry = feature.get("geometry")
        kind = geometry.get("type") if isinstance(geometry, dict) else None
        if kind not in ("Polygon", "MultiPolygon"):
            shown = _shown(str(kind)) if isinstance(kind, str) else "—"
            problems.append(BoundaryProblem(number, WRONG_TYPE, {"code": code, "kind": shown}))
            continue
        assert isinstance(geometry, dict)
        polygons = _polygons(geometry.get("coordinates"), multi=kind == "MultiPolygon")
        if polygons is None:
            problems.append(BoundaryProblem(number, BAD_COORDINATES, {"code": code}))
            continue
        positions = [p for polygon in polygons for ring in polygon for p in ring]
        points += len(positions)
        if points > MAX_POINTS:
            raise InvalidInput(TOO_MANY_POINTS, limit=MAX_POINTS)
        place = _place_problem(code, positions)
        if place is not None:
            problems.append(BoundaryProblem(number, *place))
            continue
        clean = {"type": kind, "coordinates": polygons if kind == "MultiPolygon" else polygons[0]}
        try:
            drawn_shape = shape(clean)
        except (ValueError, TypeError, shapely.errors.GEOSException):
            problems.append(BoundaryProblem(number, BAD_COORDINATES, {"code": code}))
            continue
        if not shapely.is_valid(drawn_shape):
            problems.append(BoundaryProblem(number, *_validity_problem(code, drawn_shape)))
            continue
        drawn.append(Drawn(number, code, clean, drawn_shape))
    return drawn, problems


def _refuse_constant(value: str) -> None:
    raise InvalidInput(NOT_NUMBER_TEXT, value=value)


def _code_of(feature: object) -> tuple[str | None, tuple[str, dict[str, str]] | None]:
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        return None, (NOT_A_FEATURE, {})
    properties = feature.get("properties")
    raw = properties.get("code") if isinstance(properties, dict) else None
    if raw is None or raw == "":
        return None, (NO_CODE, {})
    text = raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False)
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        return None, (BAD_CODE, {"value": _shown(text)})
    code = normalize_code(text)
    if not (code.isascii() and code.isdigit()):
        return None, (BAD_CODE, {"value": _shown(text)})
    return code, None


Position = list[float]
Ring = list[Position]


def _polygons(raw: object, *, multi: bool) -> list[list[Ring]] | None:
    """The polygons of a (Multi)Polygon's coordinates, each position as [lng, lat]; None when
    the nesting or a number is wrong."""
    candidates = raw if multi else [raw]
    if not isinstance(candidates, list) or not candidates:
        return None
    polygons: list[list[Ring]] = []
    for polygon in candidates:
        if not isinstance(polygon, list) or not polygon:
            return None
        rings: list[Ring] = []
        for ring in polygon:
            if not isinstance(ring, list) or not ring:
                return None
            positions: Ring = []
            for position in ring:
                if (
                    not isinstance(position, list)
                    or len(position) not in (2, 3)
                    or not all(_is_number(v) for v in position)
                ):
                    return None
                positions.append([float(position[0]), float(position[1])])
            rings.append(positions)
        polygons.append(rings)
    return polygons


def _is_number(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _place_problem(code: str, positions: Sequence[Position]) -> tuple[str, dict[str, str]] | None:
    for lng, lat in positions:
        if _inside(lng, LONGITUDES) and _inside(lat, LATITUDES):
            continue
        if _inside(lat, LONGITUDES) and _inside(lng, LATITUDES):
            return SWAPPED, {"code": code, "first": _degrees(lng), "second": _degrees(lat)}
        return OUTSIDE_CHINA, {"code": code, "lng": _degrees(lng), "lat": _degrees(lat)}
    return None


def _inside(value: float, bounds: tuple[float, float]) -> bool:
    return bounds[0] <= value <= bounds[1]


def _degrees(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".") if abs(value) < 1e6 else f"{value:.3g}"


def _validity_problem(code: str, drawn: BaseGeometry) -> tuple[str, dict[str, str]]:
    """``explain_validity``'s "Self-intersection[118.05 24.57]" as a person reads it."""
    explained = explain_validity(drawn)
    match = _VALIDITY.match(explained)
    if match is None:  # no place named: the shape's south-west corner
        west, south, _, _ = drawn.bounds
        return NOT_A_SHAPE, {"code": code, "lat": _degrees(south), "lng": _degrees(west)}
    params = {
        "code": code,
        "lng": _degrees(float(match["x"])),
        "lat": _degrees(float(match["y"])),
    }
    return VALIDITY_REASONS.get(match["reason"].strip(), NOT_A_SHAPE), params


def _shown(text: str) -> str:
    cleaned = "".join(ch for ch in text[:_SHOWN] if ch.isprintable())
    return cleaned + "…" if len(text) > _SHOWN else cleaned


def square_metres(area: BaseGeometry) -> float:
    """The area of a shape in degrees, in square metres (near enough at a grid's size)."""
    if area.is_empty:
        return 0.0
    latitude = area.centroid.y
    return float(area.area) * _METRES_PER_DEGREE**2 * math.cos(math.radians(latitude))


def _check_file(
    data: bytes,
) -> tuple[list[Drawn], list[BoundaryProblem], list[tuple[int, int, float]]]:
    drawn, problems = read_boundaries(data)
    return drawn, problems, overlaps(drawn)


def overlaps(drawn: Sequence[Drawn]) -> list[tuple[int, int, float]]:
    """Pairs of features (indexes into ``drawn``) whose grids are not nested in each other and
    whose shapes overlap by more than the tolerance, with the area in m². A grid's code begins
    with its parent's (:mod:`bot.services.grid_codes`), so nesting is read from the codes."""
    if not drawn:
        return []
    shapes = [d.shape for d in drawn]
    left, right = STRtree(shapes).query(shapes, predicate="intersects")
    codes = [d.code for d in drawn]
    pairs = [
        (i, j)
        for i, j in zip(left.tolist(), right.tolist(), strict=True)
        # each pair once; a grid and the grid it lies in overlap by design
        if i < j and not codes[i].startswith(codes[j]) and not codes[j].startswith(codes[i])
    ]
    # neighbours touch along every edge: only pairs whose insides meet are worth an overlay
    firsts, seconds = [shapes[i] for i, _ in pairs], [shapes[j] for _, j in pairs]
    meeting = [k for k, touching in enumerate(shapely.touches(firsts, seconds)) if not touching]
    common = shapely.intersection([firsts[k] for k in meeting], [seconds[k] for k in meeting])
    found: list[tuple[int, int, float]] = []
    for k, area in zip(meeting, common.tolist(), strict=True):
        if area.area > 0 and (metres := square_metres(area)) > OVERLAP_TOLERANCE_M2:
            found.append((*pairs[k], metres))
    return found


# --- loading ------------------------------------------------------------------------------------


async def load_boundaries(
    session: AsyncSession,
    actor: Person,
    roles: Sequence[RoleInGrid],
    data: bytes,
    *,
    now: datetime,
) -> BoundaryReport:
    """Check an admin's GeoJSON file and, if nothing is wrong, replace the boundaries of every
    grid they manage with the file's, in the caller's transaction (the caller commits only
    when ``report.ok``)."""
    paths = scope_paths(roles, Action.MANAGE)
    if not actor.active or not paths:
        refusal = AuditLog(
            at=now, actor_id=actor.id, action="refused:manage", object_type="boundaries"
        )
        raise NotAllowed(NOT_AN_ADMIN, audit=refusal)
    # everything that needs no database first: on SQLite a writing session holds the lock
    # from its first statement
    drawn, problems, pairs = await asyncio.to_thread(_check_file, data)
    report = BoundaryReport(problems=problems, more_problems=len(problems) >= MAX_PROBLEMS)
    grids = await _grids_by_code(session, [d.code for d in drawn])
    placed: list[tuple[Drawn, Grid]] = []
    for item in drawn:
        grid = grids.get(item.code)
        if grid is None:
            report.problems.append(BoundaryProblem(item.number, UNKNOWN_GRID, {"code": item.code}))
        elif not any(grid.path.startswith(path) for path in paths):
            report.problems.append(BoundaryProblem(item.number, OUT_OF_SCOPE, {"code": item.code}))
        else:
            placed.append((item, grid))
    known = {item.code for item, _ in placed}  # an unknown grid's overlaps say nothing more
    pairs = [(i, j, area) for i, j, area in pairs if {drawn[i].code, drawn[j].code} <= known]
    for i, j, area in pairs[:MAX_PROBLEMS]:
        report.problems.append(
            BoundaryProblem(
                drawn[j].number,
                OVERLAP,
                {"first": drawn[i].code, "second": drawn[j].code, "area": f"{area:,.0f}"},
            )
        )
    report.more_problems = report.more_problems or len(pairs) > MAX_PROBLEMS
    if report.problems:
        report.problems.sort(key=lambda problem: problem.number)
        return report

    in_scope = await _grids_in(session, paths)
    scope_ids = [g.id for g in in_scope if g.id is not None]
    for chunk in _chunks(scope_ids):
        report.replaced += len(
            (
                await session.exec(
                    select(GridBoundary.id).where(col(GridBoundary.grid_id).in_(chunk))
                )
            ).all()
        )
        await session.exec(delete(GridBoundary).where(col(GridBoundary.grid_id).in_(chunk)))
    session.add_all(
        GridBoundary(
            grid_id=grid.id or 0,
            geometry=json.dumps(item.geometry, separators=(",", ":")),
            loaded_at=now,
            loaded_by=actor.id,
        )
        for item, grid in placed
    )
    report.loaded = len(placed)
    mapped = {grid.id for _, grid in placed}
    parents = {g.parent_id for g in in_scope}
    report.missing = sorted(
        g.code for g in in_scope if g.tier >= 1 and g.id not in parents and g.id not in mapped
    )
    await new_version(session)
    session.add(
        AuditLog(
            at=now,
            actor_id=actor.id,
            action="boundaries_loaded",
            object_type="boundaries",
            data={
                "loaded": report.loaded,
                "replaced": report.replaced,
                "missing": len(report.missing),
            },
        )
    )
    await session.flush()
    return report


async def _grids_by_code(session: AsyncSession, codes: Iterable[str]) -> dict[str, Grid]:
    found: dict[str, Grid] = {}
    for chunk in _chunks(sorted(set(codes))):
        for grid in (await session.exec(select(Grid).where(col(Grid.code).in_(chunk)))).all():
            found[grid.code] = grid
    return found


async def _grids_in(session: AsyncSession, paths: Sequence[str]) -> list[Grid]:
    return list(
        (
            await session.exec(
                select(Grid).where(or_(*(col(Grid.path).startswith(p) for p in paths)))
            )
        ).all()
    )


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), LOOKUP_CHUNK):
        yield values[start : start + LOOKUP_CHUNK]


async def new_version(session: AsyncSession) -> None:
    """A new version number for the boundaries: drawn at random, not counted up, so that a
    process's index is never taken for another load's (a load rolled back, a database emptied
    and filled again)."""
    value = secrets.randbelow(2**31 - 2) + 1
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    await session.exec(
        insert(Counter)
        .values(name=VERSION_COUNTER, value=value)
        .on_conflict_do_update(index_elements=["name"], set_={"value": value})
    )


# --- which grid a point is in -------------------------------------------------------------------


@dataclass(frozen=True)
class BoundaryIndex:
    """The loaded boundaries of one version, in a spatial index."""

    version: int
    tree: STRtree
    grid_ids: tuple[int, ...]  # of each shape in the tree
    tiers: tuple[int, ...]

    def grids_at(self, latitude: float, longitude: float) -> list[int]:
        """The grids whose boundary holds the point (or passes through it), deepest first."""
        hits = self.tree.query(Point(longitude, latitude), predicate="intersects").tolist()
        hits.sort(key=lambda i: (-self.tiers[i], self.grid_ids[i]))
        return [self.grid_ids[i] for i in hits]


_indexes: OrderedDict[str, BoundaryIndex] = OrderedDict()
"""The index each database's boundaries were last read into, by database URL (a process
serves one database; tests and the sandbox, a few): read again when the version changes."""


async def boundary_index(session: AsyncSession) -> BoundaryIndex | None:
    """The boundaries as loaded now, or None when none were ever loaded."""
    version = (
        await session.exec(select(Counter.value).where(Counter.name == VERSION_COUNTER))
    ).first()
    if version is None:
        return None
    key = session.get_bind().engine.url.render_as_string(hide_password=True)
    cached = _indexes.get(key)
    if cached is not None and cached.version == version:
        _indexes.move_to_end(key)
        return cached
    rows = (
        await session.exec(
            select(GridBoundary.grid_id, GridBoundary.geometry, Grid.tier).join(
                Grid, col(Grid.id) == GridBoundary.grid_id
            )
        )
    ).all()
    index = await asyncio.to_thread(_build_index, version, rows)
    _indexes[key] = index
    _indexes.move_to_end(key)
    while len(_indexes) > CACHED_DATABASES:
        _indexes.popitem(last=False)
    return index


def _build_index(version: int, rows: Sequence[tuple[int, str, int]]) -> BoundaryIndex:
    shapes = shapely.from_geojson([geometry for _, geometry, _ in rows]) if rows else []
    return BoundaryIndex(
        version=version,
        tree=STRtree(list(shapes)),
        grid_ids=tuple(grid_id for grid_id, _, _ in rows),
        tiers=tuple(tier for _, _, tier in rows),
    )


@dataclass(frozen=True)
class Located:
    """Where a point is: ``mapped`` says whether any boundaries are loaded at all."""

    mapped: bool
    grid_ids: list[int]  # the grids holding the point, deepest first


async def locate(session: AsyncSession, latitude: float, longitude: float) -> Located:
    index = await boundary_index(session)
    if index is None or not index.grid_ids:
        return Located(mapped=False, grid_ids=[])
    return Located(mapped=True, grid_ids=index.grids_at(latitude, longitude))
