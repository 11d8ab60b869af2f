"""Importing people (人员导入): the columns, reading and checking rows, and adding people and
their roles all or nothing (see :mod:`bot.services.imports`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.i18n import N_
from bot.services.permissions import within
from models import Person, Role, RoleAssignment
from models.registry import Department

from .household_import import GridInfo, grid_not_found, load_grids
from .import_cells import (
    ROLES_BY_FILE,
    catalog_labels,
    code_cell,
    comparable,
    display_phone,
    phone_cell,
    required_text,
    role_words,
)
from .import_report import (
    AMBIGUOUS_DEPARTMENT,
    BAD_ROLE,
    CHUNK_ROWS,
    DUPLICATE_ROLE,
    EMPTY,
    GRID_OUT_OF_SCOPE,
    LOOKUP_CHUNK,
    NEED_DEPARTMENT,
    NO_DEPARTMENT,
    PHONE_OTHER_NAME,
    ROLE_NOT_BY_FILE,
    SHARED_PHONE,
    TOO_LONG,
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

PEOPLE_COLUMNS: tuple[Column, ...] = (
    Column("name", N_("Full name"), ("姓名", "名字", "人员姓名"), required=True),
    Column(
        "phone",
        N_("Mobile number"),
        ("手机号", "手机号码", "手机", "联系电话", "电话", "mobile"),
        required=True,
    ),
    Column("role", N_("Role"), ("角色", "职务", "岗位", "身份"), required=True),
    Column(
        "grid_code",
        N_("Grid code"),
        ("网格编码", "网格编号", "网格代码", "所属网格编码", "所属网格", "grid"),
        required=True,
    ),
    Column(
        "department",
        N_("Department (code or name)"),
        ("部门", "所属部门", "职能部门", "部门编码", "department_code"),
    ),
)


def read_people_file(data: bytes) -> Table:
    """The table of an uploaded people file; raises FileProblem if it cannot be used."""
    return read_table(data, PEOPLE_COLUMNS, catalog_labels(PEOPLE_COLUMNS))


# --- people -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PersonRow:
    """One role of one person as a row of the file says it."""

    row: int
    name: str
    phone: str  # E.164
    role: Role
    grid_code: str
    department: str | None = None
    role_text: str = ""  # the role as written, to quote back


def parse_role(text: str) -> Role:
    """A role as people write it (网格员, 网格长, 中心, 部门, 督查 … or the English names)."""
    role = role_words().get(comparable(text[:80]))
    if role is None:
        raise CellProblem(BAD_ROLE, value=shown(text))
    return role


class PeopleReader:
    """Reads the rows of a people file one by one; catches a phone number given two names
    and the same role given twice."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self._names: dict[str, tuple[str, int]] = {}
        self._roles: dict[tuple[str, Role, str], int] = {}

    def read(self, row: Row) -> PersonRow | list[RowError]:
        table = self.table
        errors: list[RowError] = []

        def cell(key: str, read: Callable[[], Any]) -> Any:
            try:
                return read()
            except CellProblem as problem:
                errors.append(row_error(table, row.number, key, problem))
                return None

        name = cell("name", lambda: required_text(table, row, "name"))
        phone = cell("phone", lambda: _required(phone_cell(table, row, "phone", mobile=True)))
        role = cell("role", lambda: parse_role(table.cell(row, "role")))
        grid_code = cell("grid_code", lambda: code_cell(table, row, "grid_code", grid=True))
        department = cell("department", lambda: _department_text(table, row))
        if role == Role.DEPARTMENT and department is None and not table.has("department"):
            errors.append(row_error(table, row.number, "role", CellProblem(NEED_DEPARTMENT)))
        if phone is not None and name is not None:
            first_name, first_row = self._names.setdefault(phone, (name, row.number))
            if comparable(first_name) != comparable(name):
                problem = CellProblem(
                    PHONE_OTHER_NAME,
                    value=display_phone(phone),
                    name=shown(first_name),
                    first=first_row,
                )
                errors.append(row_error(table, row.number, "phone", problem))
            if role is not None and grid_code is not None:
                first = self._roles.setdefault((phone, role, grid_code), row.number)
                if first != row.number:
                    problem = CellProblem(DUPLICATE_ROLE, first=first)
                    errors.append(row_error(table, row.number, "role", problem))
        if errors:
            return errors
        role_text = shown(table.cell(row, "role"))
        return PersonRow(row.number, name, phone, role, grid_code, department, role_text)


def _required(value: str | None) -> str:
    if value is None:
        raise CellProblem(EMPTY)
    return value


def _department_text(table: Table, row: Row) -> str | None:
    text = clean_text(table.cell(row, "department"))
    if len(text) > 100:
        raise CellProblem(TOO_LONG, limit=100)
    return text or None


def parse_people(table: Table) -> tuple[list[PersonRow], list[RowError]]:
    """Every row of a people file read and checked on its own (pure: no database)."""
    return read_rows(PeopleReader(table), table.rows)


@dataclass
class _PeoplePlan:
    """What a people import will write."""

    new_people: dict[str, str] = field(default_factory=dict)  # phone -> name
    renames: dict[int, str] = field(default_factory=dict)  # person id -> name
    new_roles: dict[tuple[str, Role, int], int | None] = field(default_factory=dict)
    revived_roles: dict[int, int | None] = field(default_factory=dict)  # assignment -> dept


async def import_people(
    session: AsyncSession,
    actor: Person,
    roles: Sequence[RoleInGrid],
    data: bytes,
    *,
    now: datetime,
    progress: Progress | None = None,
) -> ImportReport:
    """Import a people file (workers, heads, centre, department and supervisor staff).

    A person is matched by phone number among active people and created if new (they link
    their Telegram account later, by invitation); a changed name is updated; each row's role
    over its grid is added, or re-activated if it had ended. Roles missing from the file are
    left alone. A row counts as created if it adds a person or a role, as updated if it
    renames a person or re-activates a role. Refusals, errors and all-or-nothing as in
    :func:`import_households`; the caller commits.
    """
    scope = manage_scope(actor, roles, now)
    table = await asyncio.to_thread(read_people_file, data)
    rows, errors = parse_people(table)
    grids: dict[str, GridInfo | None] = {}
    await load_grids(session, grids, {p.grid_code for p in rows})
    departments = await _load_departments(session)
    people = await _people_by_phone(session, {p.phone for p in rows})
    held = await _assignments_of(session, [m[0][0] for m in people.values() if len(m) == 1])
    plan = _PeoplePlan()
    created = updated = unchanged = 0
    for person in rows:
        try:
            grid_id, department_id = _role_target(person, grids, scope, departments)
        except _RowProblem as problem:
            errors.append(row_error(table, person.row, problem.key, problem.cell))
            continue
        matches = people.get(person.phone, [])
        if len(matches) > 1:
            shared = CellProblem(SHARED_PHONE, value=display_phone(person.phone))
            errors.append(row_error(table, person.row, "phone", shared))
            continue
        target = (person.phone, person.role, grid_id)
        person_id, name = matches[0] if matches else (None, person.name)
        assignment = held.get((person_id, person.role, grid_id)) if person_id else None
        confirmed = assignment is not None and assignment[1] and assignment[2] == department_id
        if not confirmed and person.role not in ROLES_BY_FILE:
            refused = CellProblem(ROLE_NOT_BY_FILE, value=person.role_text)
            errors.append(row_error(table, person.row, "role", refused))
            continue
        if person_id is None:
            plan.new_people.setdefault(person.phone, person.name)
            plan.new_roles[target] = department_id
            created += 1
            continue
        renamed = name != person.name and person_id not in plan.renames
        if renamed:
            plan.renames[person_id] = person.name
        if assignment is None:
            plan.new_roles[target] = department_id
            created += 1
        elif not confirmed:
            plan.revived_roles[assignment[0]] = department_id
            updated += 1
        elif renamed:
            updated += 1
        else:
            unchanged += 1
    if progress is not None:
        await progress(len(table.rows), len(table.rows))
    if errors:
        return ImportReport(errors=tuple(sorted(errors, key=error_order)))
    await _write_people(session, plan, now)
    report = ImportReport(created=created, updated=updated, unchanged=unchanged)
    audit_import(session, actor, "import:people", report, now)
    return report


class _RowProblem(Exception):
    def __init__(self, key: str, cell: CellProblem) -> None:
        super().__init__(key)
        self.key = key
        self.cell = cell


def _role_target(
    person: PersonRow,
    grids: Mapping[str, GridInfo | None],
    scope: Sequence[str],
    departments: Sequence[Department],
) -> tuple[int, int | None]:
    """The grid id and department id of a person's row, or _RowProblem saying what is wrong."""
    grid = grids.get(person.grid_code)
    if grid is None:
        raise _RowProblem("grid_code", grid_not_found(person.grid_code))
    if not any(within(p, grid.path) for p in scope):
        raise _RowProblem("grid_code", CellProblem(GRID_OUT_OF_SCOPE, value=grid.code))
    if person.role != Role.DEPARTMENT:
        return grid.id, None
    try:
        return grid.id, _department(departments, person.department or "")
    except CellProblem as problem:
        raise _RowProblem("department", problem) from None


async def _write_people(session: AsyncSession, plan: _PeoplePlan, now: datetime) -> None:
    phones = sorted(plan.new_people)
    for part in chunks(phones, CHUNK_ROWS):
        await session.exec(
            insert(Person),
            params=[
                {"name": plan.new_people[p], "phone": p, "created_at": now, "updated_at": now}
                for p in part
            ],
        )
    ids = {
        phone: matches[0][0]
        for phone, matches in (
            await _people_by_phone(session, {k[0] for k in plan.new_roles})
        ).items()
        if matches
    }
    if plan.renames:
        await session.exec(
            update(Person),
            params=[{"id": i, "name": n, "updated_at": now} for i, n in plan.renames.items()],
        )
    if plan.new_roles:
        await session.exec(
            insert(RoleAssignment),
            params=[
                {
                    "person_id": ids[phone],
                    "role": role,
                    "grid_id": grid_id,
                    "department_id": department_id,
                    "active": True,
                    "created_at": now,
                }
                for (phone, role, grid_id), department_id in plan.new_roles.items()
            ],
        )
    if plan.revived_roles:
        await session.exec(
            update(RoleAssignment),
            params=[
                {"id": i, "active": True, "department_id": d}
                for i, d in plan.revived_roles.items()
            ],
        )


async def _people_by_phone(
    session: AsyncSession, phones: Iterable[str]
) -> dict[str, list[tuple[int, str]]]:
    """Active people by E.164 phone number: (id, name) of each (several if shared).

    Numbers stored the national way (``13812345678``) are found too.
    """
    wanted = {phone: phone for phone in phones}
    wanted.update({display_phone(phone): phone for phone in list(wanted)})
    found: dict[str, list[tuple[int, str]]] = {}
    for part in chunks(sorted(wanted), LOOKUP_CHUNK):
        rows = await session.exec(
            select(col(Person.id), col(Person.phone), col(Person.name)).where(
                col(Person.phone).in_(part), col(Person.active).is_(True)
            )
        )
        for person_id, phone, name in rows:
            assert person_id is not None and phone is not None
            found.setdefault(wanted[phone], []).append((person_id, name))
    return found


async def _assignments_of(
    session: AsyncSession, person_ids: Sequence[int]
) -> dict[tuple[int, Role, int], tuple[int, bool, int | None]]:
    """(person, role, grid) -> (assignment id, active, department) for these people."""
    held: dict[tuple[int, Role, int], tuple[int, bool, int | None]] = {}
    for part in chunks(sorted(set(person_ids)), LOOKUP_CHUNK):
        rows = await session.exec(
            select(RoleAssignment).where(col(RoleAssignment.person_id).in_(part))
        )
        for a in rows:
            assert a.id is not None
            held[(a.person_id, Role(a.role), a.grid_id)] = (a.id, a.active, a.department_id)
    return held


async def _load_departments(session: AsyncSession) -> list[Department]:
    return list(await session.exec(select(Department).where(col(Department.active).is_(True))))


def _department(departments: Sequence[Department], text: str) -> int:
    """A department by code (exact) or by name (when only one has it)."""
    if not text:
        raise CellProblem(NEED_DEPARTMENT)
    word = comparable(text)
    by_code = [d for d in departments if comparable(d.code) == word]
    if by_code:
        assert by_code[0].id is not None
        return by_code[0].id
    by_name = [d for d in departments if comparable(d.name) == word]
    if not by_name:
        raise CellProblem(NO_DEPARTMENT, value=shown(text))
    if len(by_name) > 1:
        raise CellProblem(AMBIGUOUS_DEPARTMENT, value=shown(text))
    assert by_name[0].id is not None
    return by_name[0].id
