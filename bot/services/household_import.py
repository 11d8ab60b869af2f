"""Importing households (住户导入): the columns, reading and checking rows, and writing them
all or nothing (see :mod:`bot.services.imports`).
"""

from __future__ import annotations

import asyncio
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.i18n import N_
from bot.services.addresses import address_key
from bot.services.permissions import within
from models import Grid, Household, Person, Role, RoleAssignment

from .grid_codes import InvalidGridCode, tier_of
from .import_cells import (
    PHONE_SEPARATORS,
    catalog_labels,
    code_cell,
    comparable,
    display_phone,
    limited,
    members_cell,
    normalise_phone,
    optional_text,
    parse_categories,
    phone_cell,
    required_text,
    yes_cell,
)
from .import_report import (
    AMBIGUOUS_WORKER,
    BAD_PHONE,
    CHUNK_ROWS,
    DUPLICATE_CODE,
    GRID_OUT_OF_SCOPE,
    HOUSEHOLD_OUT_OF_SCOPE,
    LOOKUP_CHUNK,
    NO_GRID,
    NO_WORKER_NAME,
    NO_WORKER_PHONE,
    NOT_LOWEST_GRID,
    WORKER_ELSEWHERE,
    CellProblem,
    ImportReport,
    Progress,
    RowError,
    audit_import,
    chunks,
    error_order,
    manage_scope,
    read_rows,
    row_error,
)
from .people import RoleInGrid
from .tabular import Column, Row, Table, clean_text, read_table, shown

# --- columns ----------------------------------------------------------------------------------

HOUSEHOLD_COLUMNS: tuple[Column, ...] = (
    Column(
        "code",
        N_("Household code"),
        ("户编号", "户号", "户编码", "住户编号", "household_code"),
        required=True,
    ),
    Column(
        "grid_code",
        N_("Grid code"),
        ("网格编码", "网格编号", "网格代码", "所属网格编码", "所属网格", "grid"),
        required=True,
    ),
    Column("head_name", N_("Head of household"), ("户主姓名", "户主", "head"), required=True),
    Column(
        "phone",
        N_("Contact phone"),
        ("联系电话", "电话", "联系方式", "手机号", "手机号码", "手机", "tel", "mobile"),
    ),
    Column(
        "address",
        N_("Household address"),
        ("地址", "住址", "家庭住址", "详细地址", "address"),
        required=True,
    ),
    Column("members", N_("Household members"), ("家庭人口", "家庭人数", "人口", "人口数", "人数")),
    Column(
        "categories",
        N_("Household categories"),
        ("户类别", "类别", "户类型", "六类户", "类型", "category"),
    ),
    Column("key", N_("Key household"), ("重点户", "是否重点户", "is_key")),
    Column("business", N_("Business household"), ("工商企业户", "企业户", "is_business")),
    Column(
        "worker",
        N_("Responsible grid worker (phone)"),
        ("责任网格员", "网格员", "网格员电话", "网格员手机号", "worker_phone"),
    ),
    Column("note", N_("Remarks"), ("备注", "说明", "notes", "remark")),
)

# --- households: reading rows -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HouseholdRow:
    """One household as a row of the file says it (before the database is asked)."""

    row: int
    code: str
    grid_code: str
    head_name: str
    address: str
    phone: str | None = None
    members: int = 1
    categories: int = 0
    key: bool = False
    business: bool = False
    worker_phone: str | None = None
    worker_name: str | None = None
    note: str | None = None


class HouseholdReader:
    """Reads the rows of a household file one by one; remembers codes to catch repeats."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self._first_row: dict[str, int] = {}

    def read(self, row: Row) -> HouseholdRow | list[RowError]:
        table = self.table
        errors: list[RowError] = []

        def cell(key: str, read: Callable[[], Any]) -> Any:
            try:
                return read()
            except CellProblem as problem:
                errors.append(row_error(table, row.number, key, problem))
                return None

        code = cell("code", lambda: code_cell(table, row, "code"))
        grid_code = cell("grid_code", lambda: code_cell(table, row, "grid_code", grid=True))
        head_name = cell("head_name", lambda: required_text(table, row, "head_name"))
        address = cell("address", lambda: required_text(table, row, "address"))
        phone = (
            cell("phone", lambda: phone_cell(table, row, "phone")) if table.has("phone") else None
        )
        members = cell("members", lambda: members_cell(table, row)) if table.has("members") else 1
        categories = (
            cell("categories", lambda: parse_categories(table.cell(row, "categories")))
            if table.has("categories")
            else 0
        )
        key = cell("key", lambda: yes_cell(table, row, "key")) if table.has("key") else None
        business = (
            cell("business", lambda: yes_cell(table, row, "business"))
            if table.has("business")
            else None
        )
        worker_phone = worker_name = None
        if table.has("worker"):
            raw = table.cell(row, "worker")
            if raw.strip():
                worker_phone = normalise_phone(raw)
                if worker_phone is None:
                    worker_name = cell("worker", lambda: _worker_name(raw))
        note = (
            cell("note", lambda: optional_text(table, row, "note")) if table.has("note") else None
        )

        if code is not None:
            first = self._first_row.setdefault(code, row.number)
            if first != row.number:
                errors.append(
                    RowError(
                        row.number,
                        table.headers["code"],
                        DUPLICATE_CODE,
                        {"value": code, "first": first},
                    )
                )
        if errors:
            return errors
        return HouseholdRow(
            row=row.number,
            code=code,
            grid_code=grid_code,
            head_name=head_name,
            address=address,
            phone=phone,
            members=members,
            categories=categories or 0,
            key=bool(key),
            business=bool(business),
            worker_phone=worker_phone,
            worker_name=worker_name,
            note=note,
        )


def _worker_name(raw: str) -> str:
    """A worker given by name; digits that are no phone number are a bad number, not a name."""
    if PHONE_SEPARATORS.sub("", unicodedata.normalize("NFKC", raw[:64])).lstrip("+").isdigit():
        raise CellProblem(BAD_PHONE, value=shown(raw))
    return limited(clean_text(raw), "name")


def parse_households(table: Table) -> tuple[list[HouseholdRow], list[RowError]]:
    """Every row of a household file read and checked on its own (pure: no database)."""
    return read_rows(HouseholdReader(table), table.rows)


def read_household_file(data: bytes) -> Table:
    """The table of an uploaded household file; raises FileProblem if it cannot be used."""
    return read_table(data, HOUSEHOLD_COLUMNS, catalog_labels(HOUSEHOLD_COLUMNS))


# --- households: the database -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GridInfo:
    id: int
    code: str
    tier: int
    path: str
    has_children: bool

    @property
    def takes_households(self) -> bool:
        """Households live in tier-3 grids, or in the lowest grids of a shallower tree."""
        return self.tier >= 1 and (self.tier == 3 or not self.has_children)


_HOUSEHOLD_FIELDS = (
    "grid_id",
    "worker_id",
    "address",
    "address_key",
    "head_name",
    "phone",
    "members",
    "categories",
    "is_key",
    "is_business",
    "note",
)


@dataclass(frozen=True, slots=True)
class _Stored:
    """A household already in the database: its id, fields and the path of its grid."""

    id: int
    values: dict[str, Any]
    grid_path: str


class _Workers:
    """Active grid workers (网格员) with the grids they cover, by phone and by name."""

    def __init__(self, rows: Iterable[tuple[int, str | None, str, str]]) -> None:
        self.by_phone: dict[str, list[tuple[int, str]]] = {}
        self.by_name: dict[str, list[tuple[int, str]]] = {}
        for person_id, phone, name, path in rows:
            e164 = normalise_phone(phone) if phone else None
            if e164 is not None:
                self.by_phone.setdefault(e164, []).append((person_id, path))
            self.by_name.setdefault(comparable(name), []).append((person_id, path))

    def find(self, household: HouseholdRow, grid: GridInfo) -> int | None:
        """The worker of a household row, or raise CellProblem saying why there is none."""
        if household.worker_phone is not None:
            held = self.by_phone.get(household.worker_phone, [])
            if not held:
                raise CellProblem(NO_WORKER_PHONE, value=display_phone(household.worker_phone))
            for person_id, path in held:
                if within(path, grid.path):
                    return person_id
            raise CellProblem(
                WORKER_ELSEWHERE, value=display_phone(household.worker_phone), grid=grid.code
            )
        if household.worker_name is not None:
            named = {
                person_id
                for person_id, path in self.by_name.get(comparable(household.worker_name), [])
                if within(path, grid.path)
            }
            if not named:
                raise CellProblem(
                    NO_WORKER_NAME, value=shown(household.worker_name), grid=grid.code
                )
            if len(named) > 1:
                raise CellProblem(
                    AMBIGUOUS_WORKER, value=shown(household.worker_name), grid=grid.code
                )
            return named.pop()
        return None


async def import_households(
    session: AsyncSession,
    actor: Person,
    roles: Sequence[RoleInGrid],
    data: bytes,
    *,
    now: datetime,
    progress: Progress | None = None,
) -> ImportReport:
    """Import a household file (CSV or XLSX bytes) in the caller's transaction; the caller commits.

    Only an administrator may (``Action.MANAGE``), and only into the grids they manage: else
    NotAllowed. A file that cannot be read raises FileProblem. Otherwise the report tells what
    was created, updated and left unchanged — or, if any row is bad, every bad cell, and then
    nothing at all is written. Rows are checked and written in chunks of CHUNK_ROWS with
    set-based look-ups and bulk statements; ``progress`` hears after each chunk.
    """
    scope = manage_scope(actor, roles, now)
    table = await asyncio.to_thread(read_household_file, data)  # CPU-bound: keep the loop free
    reader = HouseholdReader(table)
    total = len(table.rows)
    workers: _Workers | None = None
    grids: dict[str, GridInfo | None] = {}
    errors: list[RowError] = []
    created = updated = unchanged = 0
    savepoint = await session.begin_nested()
    try:
        for start in range(0, total, CHUNK_ROWS):
            chunk, problems = read_rows(reader, table.rows[start : start + CHUNK_ROWS])
            errors.extend(problems)
            await load_grids(session, grids, {h.grid_code for h in chunk})
            if workers is None and any(h.worker_phone or h.worker_name for h in chunk):
                workers = await _load_workers(session)
            stored = await _stored_households(session, [h.code for h in chunk])
            inserts: list[dict[str, Any]] = []
            updates: list[dict[str, Any]] = []
            for household in chunk:
                try:
                    grid = _household_grid(household, grids, scope)
                except CellProblem as problem:
                    errors.append(row_error(table, household.row, "grid_code", problem))
                    continue
                before = stored.get(household.code)
                if before is not None and not any(within(p, before.grid_path) for p in scope):
                    errors.append(
                        RowError(
                            household.row,
                            table.headers["code"],
                            HOUSEHOLD_OUT_OF_SCOPE,
                            {"value": shown(household.code)},
                        )
                    )
                    continue
                worker_id: int | None = None
                try:
                    worker_id = workers.find(household, grid) if workers is not None else None
                except CellProblem as problem:
                    errors.append(row_error(table, household.row, "worker", problem))
                    continue
                values = _household_values(table, household, grid, worker_id, before)
                if before is None:
                    inserts.append(
                        {"code": household.code, **values, "created_at": now, "updated_at": now}
                    )
                elif values == before.values:
                    unchanged += 1
                else:
                    updates.append({"id": before.id, **values, "updated_at": now})
            if not errors:
                if inserts:
                    await session.exec(insert(Household), params=inserts)
                if updates:
                    await session.exec(update(Household), params=updates)
                created += len(inserts)
                updated += len(updates)
            if progress is not None:
                await progress(min(start + CHUNK_ROWS, total), total)
    except BaseException:
        await savepoint.rollback()
        raise
    if errors:
        await savepoint.rollback()
        return ImportReport(errors=tuple(sorted(errors, key=error_order)))
    await savepoint.commit()
    report = ImportReport(created=created, updated=updated, unchanged=unchanged)
    audit_import(session, actor, "import:households", report, now)
    return report


def _household_grid(
    household: HouseholdRow, grids: Mapping[str, GridInfo | None], scope: Sequence[str]
) -> GridInfo:
    grid = grids.get(household.grid_code)
    if grid is None:
        raise grid_not_found(household.grid_code)
    if not any(within(p, grid.path) for p in scope):
        raise CellProblem(GRID_OUT_OF_SCOPE, value=grid.code)
    if not grid.takes_households:
        raise CellProblem(NOT_LOWEST_GRID, value=grid.code)
    return grid


def grid_not_found(code: str) -> CellProblem:
    """Why a grid code is unknown: its shape if it is malformed, else that it does not exist."""
    try:
        tier_of(code)
    except InvalidGridCode as problem:
        return CellProblem(problem.message, **problem.params)
    return CellProblem(NO_GRID, value=shown(code))


def _household_values(
    table: Table,
    household: HouseholdRow,
    grid: GridInfo,
    worker_id: int | None,
    before: _Stored | None,
) -> dict[str, Any]:
    """The household's fields after the import: the file's columns over what is stored."""
    old: dict[str, Any] = (
        before.values
        if before is not None
        else {
            "worker_id": None,
            "phone": None,
            "members": 1,
            "categories": 0,
            "is_key": False,
            "is_business": False,
            "note": None,
        }
    )
    categories = household.categories if table.has("categories") else old["categories"]
    if table.has("key"):
        marked_key = household.key
    else:  # keep a key mark made by hand, not one that only followed from the categories
        marked_key = bool(old["is_key"]) and not old["categories"]
    return {
        "grid_id": grid.id,
        "worker_id": worker_id if table.has("worker") else old["worker_id"],
        "address": household.address,
        "address_key": address_key(household.address),
        "head_name": household.head_name,
        "phone": household.phone if table.has("phone") else old["phone"],
        "members": household.members if table.has("members") else old["members"],
        "categories": categories,
        "is_key": marked_key or categories != 0,
        "is_business": household.business if table.has("business") else old["is_business"],
        "note": household.note if table.has("note") else old["note"],
    }


async def load_grids(
    session: AsyncSession, known: dict[str, GridInfo | None], codes: Iterable[str]
) -> None:
    """Add the grids of ``codes`` not yet looked up to ``known`` (None: no such grid)."""
    wanted = sorted(set(codes) - known.keys())
    found: dict[str, tuple[int, int, str]] = {}
    for part in chunks(wanted, LOOKUP_CHUNK):
        rows = await session.exec(
            select(col(Grid.id), col(Grid.code), col(Grid.tier), col(Grid.path)).where(
                col(Grid.code).in_(part)
            )
        )
        for grid_id, code, tier, path in rows:
            assert grid_id is not None
            found[code] = (grid_id, tier, path)
    parents: set[int] = set()
    for ids in chunks(sorted(g[0] for g in found.values()), LOOKUP_CHUNK):
        rows_ = await session.exec(
            select(col(Grid.parent_id)).where(col(Grid.parent_id).in_(ids)).distinct()
        )
        parents.update(p for p in rows_ if p is not None)
    for code in wanted:
        hit = found.get(code)
        known[code] = (
            None
            if hit is None
            else GridInfo(hit[0], code, hit[1], hit[2], has_children=hit[0] in parents)
        )


async def _load_workers(session: AsyncSession) -> _Workers:
    rows = await session.exec(
        select(col(Person.id), col(Person.phone), col(Person.name), col(Grid.path))
        .join(RoleAssignment, col(RoleAssignment.person_id) == col(Person.id))
        .join(Grid, col(Grid.id) == col(RoleAssignment.grid_id))
        .where(
            col(RoleAssignment.role) == Role.WORKER,
            col(RoleAssignment.active).is_(True),
            col(Person.active).is_(True),
        )
    )
    return _Workers(
        (person_id, phone, name, path)
        for person_id, phone, name, path in rows
        if person_id is not None
    )


async def _stored_households(session: AsyncSession, codes: Sequence[str]) -> dict[str, _Stored]:
    stored: dict[str, _Stored] = {}
    columns = [getattr(Household, name) for name in _HOUSEHOLD_FIELDS]
    for part in chunks(codes, LOOKUP_CHUNK):
        rows = await session.exec(
            select(col(Household.id), col(Household.code), col(Grid.path), *columns)
            .join(Grid, col(Grid.id) == col(Household.grid_id))
            .where(col(Household.code).in_(part))
        )
        for found in rows:
            household_id, code, path = found[0], found[1], found[2]
            assert household_id is not None
            values: dict[str, Any] = dict(zip(_HOUSEHOLD_FIELDS, found[3:], strict=True))
            stored[code] = _Stored(household_id, values, path)
    return stored
