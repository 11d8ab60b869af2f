"""The register of places (场所台账): import from CSV or XLSX, export as XLSX, look-ups.

Importing works like the household import (:mod:`bot.services.imports`): an administrator
sends a file (CSV in UTF-8 or GBK, or XLSX) with the caption ``/places``; every row is checked,
every bad cell of every bad row is reported, and then **nothing** is written unless all rows
are good (all or nothing). Importing the same file twice changes nothing the second time.

======================  ====================  =====================================================
场所编号 (code)          required              a known code updates that place, a new one adds it
场所名称 (name)          required
场所类型 (type)          required              a type of the place-types file, by its name
                                              (九小场所, 涉药单位 …) or its key (small_venue …)
网格编码 (grid_code)     required              an existing grid inside the grids the admin manages
地址 (address)           required
负责人 (responsible)     optional              the person responsible for the place
联系电话 (phone)         optional              stored in E.164 form; shown masked
纬度 / 经度              optional              WGS-84, both or neither
备注 (note)              optional
======================  ====================  =====================================================

The responsible person's phone is personal data: the export masks it (``138****5678``) where
the asker may not read sensitive data, like the household ledger.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import insert, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.errors import NotAllowed
from bot.i18n import N_, gettext_for
from bot.services.exports import HIDDEN, check_scope, mask_phone
from bot.services.grid_codes import normalize_code
from bot.services.imports import (
    EMPTY,
    GRID_OUT_OF_SCOPE,
    NO_GRID,
    NOT_AN_ADMIN,
    TOO_LONG,
    ImportReport,
    RowError,
    Translate,
    display_phone,
    normalise_phone,
)
from bot.services.people import RoleInGrid
from bot.services.permissions import Action, scope_paths, within
from bot.services.place_policy import PlacePolicy, current_policy, refresh_next_due
from bot.settings import LOCALES
from models import AuditLog, Grid, Person, Place

from .tabular import Column, Row, Sheet, Table, clean_text, read_table, shown, write_workbook

LOOKUP_CHUNK = 1_000
LIMITS = {"code": 32, "name": 100, "address": 200, "responsible": 50, "note": 500}

UNKNOWN_TYPE = N_("{value} is not a place type. The place types are: {types}.")
BAD_PLACE_CODE = N_("The place code {value} may hold only letters, digits and - _ . /")
DUPLICATE_PLACE = N_("The place code {value} is also in row {first}.")
BAD_PHONE = N_("{value} is not a valid phone number.")
BAD_POINT = N_("{value} is not a latitude and longitude in degrees.")
ONE_COORDINATE = N_("Give both the latitude and the longitude, or neither.")
PLACE_OUT_OF_SCOPE = N_("The place {value} is registered in a grid outside the grids you manage.")
PLACES_SHEET = N_("Place ledger")
GRID_NAME = N_("Grid name")

PLACE_COLUMNS: tuple[Column, ...] = (
    Column(
        "code", N_("Place code"), ("场所编号", "场所编码", "编号", "place_code"), required=True
    ),
    Column("name", N_("Place name"), ("场所名称", "名称", "单位名称", "店名"), required=True),
    Column("type", N_("Place type"), ("场所类型", "类型", "类别", "place_type"), required=True),
    Column(
        "grid_code",
        N_("Grid code"),
        ("网格编码", "网格编号", "所属网格编码", "所属网格", "grid"),
        required=True,
    ),
    Column("address", N_("Place address"), ("地址", "场所地址", "详细地址"), required=True),
    Column("responsible", N_("Responsible person"), ("负责人", "责任人", "法人", "店主")),
    Column("phone", N_("Contact phone"), ("联系电话", "电话", "手机号", "负责人电话", "tel")),
    Column("latitude", N_("Latitude"), ("纬度", "lat")),
    Column("longitude", N_("Longitude"), ("经度", "lon", "lng")),
    Column("note", N_("Remarks"), ("备注", "说明", "remark")),
)
_FIELDS = (
    "name",
    "type_key",
    "grid_id",
    "address",
    "responsible_name",
    "responsible_phone",
    "latitude",
    "longitude",
    "note",
)


class _CellProblem(Exception):
    def __init__(self, reason: str, **params: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.params = params


@cache
def _catalog_labels() -> dict[str, set[str]]:
    return {c.key: {gettext_for(locale, c.label) for locale in LOCALES} for c in PLACE_COLUMNS}


def read_place_file(data: bytes) -> Table:
    """The table of an uploaded place file; raises FileProblem if it cannot be used."""
    return read_table(data, PLACE_COLUMNS, _catalog_labels())


def _word(text: str) -> str:
    return "".join(clean_text(text).casefold().split())


def type_by_word(policy: PlacePolicy) -> dict[str, str]:
    """A place type's key by its key or its name, as compared (spaces and case ignored)."""
    words: dict[str, str] = {}
    for place_type in policy.types:
        words[_word(place_type.key)] = place_type.key
        words[_word(place_type.name)] = place_type.key
    return words


@dataclass(frozen=True, slots=True)
class PlaceRow:
    row: int
    code: str
    values: dict[str, Any]  # every field but grid_id; grid_code instead
    grid_code: str


def _text(table: Table, row: Row, key: str, *, required: bool = False) -> str | None:
    text = clean_text(table.cell(row, key))
    if not text:
        if required:
            raise _CellProblem(EMPTY)
        return None
    limit = LIMITS.get(key)
    if limit is not None and len(text) > limit:
        raise _CellProblem(TOO_LONG, limit=limit)
    return text


def _place_code(table: Table, row: Row) -> str:
    raw = table.cell(row, "code")
    text = "".join(clean_text(raw).split())
    if not text:
        raise _CellProblem(EMPTY)
    if len(text) > LIMITS["code"]:
        raise _CellProblem(TOO_LONG, limit=LIMITS["code"])
    if not all(ch.isalnum() or ch in "-_./" for ch in text) or not text.isascii():
        raise _CellProblem(BAD_PLACE_CODE, value=shown(raw))
    return text


def _coordinate(table: Table, row: Row, key: str, limit: float) -> float | None:
    raw = clean_text(table.cell(row, key))
    if not raw:
        return None
    try:
        value = float(raw[:32])
    except ValueError:
        raise _CellProblem(BAD_POINT, value=shown(raw)) from None
    if not -limit <= value <= limit:
        raise _CellProblem(BAD_POINT, value=shown(raw))
    return value


def parse_places(table: Table, policy: PlacePolicy) -> tuple[list[PlaceRow], list[RowError]]:
    """Every row of a place file read and checked on its own (pure: no database)."""
    types = type_by_word(policy)
    type_names = "、".join(t.name for t in policy.types)
    first: dict[str, int] = {}
    good: list[PlaceRow] = []
    errors: list[RowError] = []
    for row in table.rows:
        result = _read_place(table, row, types, type_names)
        if isinstance(result, list):
            errors.extend(result)
            continue
        seen = first.setdefault(result.code, row.number)
        if seen != row.number:
            errors.append(
                RowError(
                    row.number,
                    table.headers["code"],
                    DUPLICATE_PLACE,
                    {"value": result.code, "first": seen},
                )
            )
            continue
        good.append(result)
    return good, errors


def _read_place(
    table: Table, row: Row, types: dict[str, str], type_names: str
) -> PlaceRow | list[RowError]:
    problems: list[RowError] = []

    def cell(key: str, read: Callable[[], Any]) -> Any:
        try:
            return read()
        except _CellProblem as problem:
            column = table.headers.get(key, key)
            problems.append(RowError(row.number, column, problem.reason, problem.params))
            return None

    def place_type() -> str:
        raw = table.cell(row, "type")
        if not clean_text(raw):
            raise _CellProblem(EMPTY)
        found = types.get(_word(raw[:80]))
        if found is None:
            raise _CellProblem(UNKNOWN_TYPE, value=shown(raw), types=type_names)
        return found

    code = cell("code", lambda: _place_code(table, row))
    name = cell("name", lambda: _text(table, row, "name", required=True))
    type_key = cell("type", place_type)
    grid_code = cell("grid_code", lambda: _grid_code(table, row))
    address = cell("address", lambda: _text(table, row, "address", required=True))
    responsible = cell("responsible", lambda: _text(table, row, "responsible"))
    phone = cell("phone", lambda: _phone(table, row))
    latitude = cell("latitude", lambda: _coordinate(table, row, "latitude", 90.0))
    longitude = cell("longitude", lambda: _coordinate(table, row, "longitude", 180.0))
    if (latitude is None) != (longitude is None) and not problems:
        key = "longitude" if longitude is None else "latitude"
        problems.append(RowError(row.number, table.headers.get(key, key), ONE_COORDINATE))
    note = cell("note", lambda: _text(table, row, "note"))
    if problems:
        return problems
    return PlaceRow(
        row=row.number,
        code=code,
        grid_code=grid_code,
        values={
            "name": name,
            "type_key": type_key,
            "address": address,
            "responsible_name": responsible,
            "responsible_phone": phone,
            "latitude": latitude,
            "longitude": longitude,
            "note": note,
        },
    )


def _grid_code(table: Table, row: Row) -> str:
    code = normalize_code(table.cell(row, "grid_code"))
    if not code:
        raise _CellProblem(EMPTY)
    if len(code) > 32:
        raise _CellProblem(TOO_LONG, limit=32)
    return code


def _phone(table: Table, row: Row) -> str | None:
    raw = table.cell(row, "phone")
    if not raw.strip():
        return None
    phone = normalise_phone(raw)
    if phone is None:
        raise _CellProblem(BAD_PHONE, value=shown(raw))
    return phone


async def import_places(
    session: AsyncSession,
    actor: Person,
    roles: Sequence[RoleInGrid],
    data: bytes,
    *,
    now: datetime,
) -> ImportReport:
    """Import a place file in the caller's transaction (the caller commits): all or nothing.

    Only an administrator may, and only into the grids they manage (NotAllowed). A file that
    cannot be read raises FileProblem; bad rows come back in the report, and nothing is
    written."""
    scope = scope_paths(roles, Action.MANAGE)
    if not actor.active or not scope:
        refusal = AuditLog(
            at=now, actor_id=actor.id, action="refused:manage", object_type="import"
        )
        raise NotAllowed(NOT_AN_ADMIN, audit=refusal)
    policy = await current_policy(session)
    table = await asyncio.to_thread(read_place_file, data)
    rows, errors = parse_places(table, policy)
    grids = await _grids(session, {r.grid_code for r in rows})
    stored = await _stored(session, [r.code for r in rows])
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    stored_types: dict[int, Any] = {}  # a place updated -> its type before
    unchanged = 0
    for place in rows:
        grid = grids.get(place.grid_code)
        column = table.headers["grid_code"]
        if grid is None:
            errors.append(RowError(place.row, column, NO_GRID, {"value": shown(place.grid_code)}))
            continue
        grid_id, path, tier = grid
        if tier < 1 or not any(within(p, path) for p in scope):
            errors.append(
                RowError(place.row, column, GRID_OUT_OF_SCOPE, {"value": place.grid_code})
            )
            continue
        values = {**place.values, "grid_id": grid_id}
        before = stored.get(place.code)
        if before is None:
            inserts.append(
                {
                    "code": place.code,
                    **values,
                    "next_due_at": now,  # never inspected: due from when it was added
                    "created_at": now,
                    "updated_at": now,
                }
            )
            continue
        place_id, old, old_path = before
        if not any(within(p, old_path) for p in scope):
            errors.append(
                RowError(
                    place.row, table.headers["code"], PLACE_OUT_OF_SCOPE, {"value": place.code}
                )
            )
        elif old == values:
            unchanged += 1
        else:
            updates.append({"id": place_id, **values, "updated_at": now})
            stored_types[place_id] = old.get("type_key")
    if errors:
        return ImportReport(errors=tuple(sorted(errors, key=lambda e: (e.row, e.column))))
    if inserts:
        await session.exec(insert(Place), params=inserts)
    if updates:
        await session.exec(update(Place), params=updates)
        retyped = [u["id"] for u in updates if u["type_key"] != stored_types[u["id"]]]
        if retyped:
            await refresh_next_due(session, policy, place_ids=retyped)
    report = ImportReport(created=len(inserts), updated=len(updates), unchanged=unchanged)
    session.add(
        AuditLog(
            at=now,
            actor_id=actor.id,
            action="import:places",
            data={"created": report.created, "updated": report.updated, "unchanged": unchanged},
        )
    )
    return report


def _chunks(items: Sequence[Any], size: int = LOOKUP_CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def _grids(session: AsyncSession, codes: Iterable[str]) -> dict[str, tuple[int, str, int]]:
    found: dict[str, tuple[int, str, int]] = {}
    for part in _chunks(sorted(set(codes))):
        rows = await session.exec(
            select(col(Grid.id), col(Grid.code), col(Grid.path), col(Grid.tier)).where(
                col(Grid.code).in_(part)
            )
        )
        for grid_id, code, path, tier in rows:
            assert grid_id is not None
            found[code] = (grid_id, path, tier)
    return found


async def _stored(
    session: AsyncSession, codes: Sequence[str]
) -> dict[str, tuple[int, dict[str, Any], str]]:
    stored: dict[str, tuple[int, dict[str, Any], str]] = {}
    columns = [getattr(Place, name) for name in _FIELDS]
    for part in _chunks(codes):
        rows = await session.exec(
            select(col(Place.id), col(Place.code), col(Grid.path), *columns)
            .join(Grid, col(Grid.id) == col(Place.grid_id))
            .where(col(Place.code).in_(part))
        )
        for found in rows:
            assert found[0] is not None
            stored[found[1]] = (found[0], dict(zip(_FIELDS, found[3:], strict=True)), found[2])
    return stored


async def export_places(
    session: AsyncSession,
    actor: Person,
    roles: Sequence[RoleInGrid],
    *,
    now: datetime,
    translate: Translate,
    grid_code: str | None = None,
) -> bytes:
    """The place ledger (场所台账) of the asker's grids as XLSX, in the import's columns so it
    reads back; the responsible person's phone masked where the asker may not read sensitive
    data."""
    await check_scope(session, actor, roles, grid_code, now)
    paths = scope_paths(roles, Action.EXPORT)
    if grid_code is not None:
        grid = (
            await session.exec(select(Grid).where(Grid.code == normalize_code(grid_code)))
        ).one()
        paths = (
            [grid.path]
            if any(within(p, grid.path) for p in paths)
            else [p for p in paths if within(grid.path, p)]
        )
    sensitive = scope_paths(roles, Action.READ_SENSITIVE)
    policy = await current_policy(session)
    names = {t.key: t.name for t in policy.types}
    rows = await session.exec(
        select(Place, Grid.code, Grid.name, Grid.path)
        .join(Grid, col(Grid.id) == col(Place.grid_id))
        .where(col(Place.active).is_(True))
        .order_by(col(Grid.code), col(Place.code))
    )
    lines: list[list[Any]] = []
    unmasked = 0
    for place, code, grid_name, path in rows:
        if not any(within(p, path) for p in paths):
            continue
        open_ = any(within(p, path) for p in sensitive)
        unmasked += open_ and place.responsible_phone is not None
        phone = place.responsible_phone
        lines.append(
            [
                place.code,
                place.name,
                names.get(place.type_key, place.type_key),
                code,
                grid_name,
                place.address,
                place.responsible_name,
                (display_phone(phone) if open_ else mask_phone(phone)) if phone else None,
                place.latitude,
                place.longitude,
                place.note,
            ]
        )
    labels = {c.key: c.label for c in PLACE_COLUMNS}
    headers = [
        labels["code"],
        labels["name"],
        labels["type"],
        labels["grid_code"],
        GRID_NAME,
        labels["address"],
        labels["responsible"],
        labels["phone"],
        labels["latitude"],
        labels["longitude"],
        labels["note"],
    ]
    data = write_workbook(
        [
            Sheet(
                title=translate(PLACES_SHEET),
                headers=[translate(h) for h in headers],
                rows=lines,
                widths=[16, 24, 12, 18, 20, 36, 10, 14, 10, 10, 30],
                text_columns=frozenset({0, 3, 7}),
                auto_filter=True,
            )
        ]
    )
    session.add(
        AuditLog(
            at=now,
            actor_id=actor.id,
            action="export:places",
            data={"rows": len(lines), "unmasked": unmasked},
        )
    )
    return data


def masked_phone(phone: str | None) -> str:
    """The responsible person's phone as shown in a chat: always masked."""
    return mask_phone(phone) if phone else HIDDEN


def place_template(policy: PlacePolicy, translate: Translate) -> bytes:
    """An empty place list to fill in, with the place types listed on a second sheet."""
    return write_workbook(
        [
            Sheet(
                title=translate(N_("Places")),
                headers=[translate(c.label) for c in PLACE_COLUMNS],
                rows=(),
                widths=[16, 24, 12, 18, 36, 10, 14, 10, 10, 30],
                text_columns=frozenset({0, 3, 6}),
                choices={2: [t.name for t in policy.types]},
            ),
            Sheet(
                title=translate(N_("Place types")),
                headers=[translate(N_("Place type")), translate(N_("Key"))],
                rows=[[t.name, t.key] for t in policy.types],
                widths=[20, 20],
            ),
        ]
    )
