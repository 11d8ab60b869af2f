"""Ledgers (台账): the households and the people of the asker's grids, as XLSX workbooks.

A handler parses ``/export`` (which ledger, which grid), refuses at once what the asker may
not have (:func:`check_scope`), and hands the export to the background: it reads in a
read-only session — no write lock held while the workbook is built — and the audit record
goes into the short transaction that queues the document (``audit_into``)::

    data = await export_households(
        reading, person, roles, now=now, translate=lambda m: gettext_for(locale, m),
        grid_code=code_or_none, audit_into=writing,
    )

What a ledger holds:

- only the grids where the asker may export (``scope_paths(roles, Action.EXPORT)``),
  narrowed to one grid's subtree when ``grid_code`` is given (as typed: full-width digits and
  spaces are fine); NotAllowed if there is none, NotFound for an unknown grid code;
- the columns of the import files (:mod:`bot.services.imports`) with their headers in the
  asker's language, plus a few read-only ones (grid name, worker's name), so an exported
  ledger can be edited and imported again;
- phone numbers masked (``138****5678``) and the household categories and key mark hidden
  (``***``) in grids where the asker has no ``Action.READ_SENSITIVE`` (个人信息保护法), and
  everywhere with ``masked=True`` — a ledger to print or pass on;
- no formulas: every text cell that a spreadsheet would evaluate is prefixed with ``'``.

Every export writes an AuditLog row (who, what, how many rows, how many shown unmasked).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, Protocol

from sqlalchemy import ColumnElement, or_
from sqlalchemy.ext.asyncio import AsyncResult
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.errors import NotAllowed, NotFound
from bot.i18n import LIST_SEPARATOR, N_
from bot.labels import HOUSEHOLD_CATEGORY, ROLE
from bot.services.permissions import Action, scope_paths, within
from models import AuditLog, Grid, Household, Person, Role, RoleAssignment
from models.registry import Department

from .grid_codes import normalize_code
from .imports import (
    HOUSEHOLD_COLUMNS,
    NO,
    NO_GRID,
    PEOPLE_COLUMNS,
    YES,
    Translate,
    display_phone,
)
from .people import RoleInGrid
from .tabular import CellValue, Sheet, WorkbookWriter, shown


class Exporter(Protocol):
    """A ledger export as a handler runs it."""

    def __call__(
        self,
        session: AsyncSession,
        actor: Person,
        roles: Sequence[RoleInGrid],
        *,
        now: datetime,
        translate: Translate,
        grid_code: str | None = None,
        masked: bool = False,
        audit_into: AsyncSession | None = None,
    ) -> Awaitable[bytes]: ...


HIDDEN = "***"  # in place of what the asker may not read
EXPORT_BATCH = 2_000  # rows read, turned into cells and written at a time

GRID_NAME = N_("Grid name")
WORKER_NAME = N_("Grid worker's name")
USES_BOT = N_("Uses the bot")
HOUSEHOLDS_SHEET = N_("Household ledger")
PEOPLE_SHEET = N_("People ledger")
NO_EXPORT_SCOPE = N_("Sorry, you cannot export ledgers.")
OUTSIDE_SCOPE = N_("Sorry, the grid {code} is outside the grids you look after.")


def mask_phone(stored: str) -> str:
    """A phone number with its middle hidden, as Chinese ledgers do: ``138****5678``."""
    digits = "".join(ch for ch in display_phone(stored) if ch.isdigit())
    if len(digits) < 8:
        return HIDDEN
    return f"{digits[:3]}****{digits[-4:]}"


@dataclass(frozen=True)
class LedgerScope:
    """The subtrees a ledger covers, the subtrees shown unmasked, and the grid asked for."""

    paths: list[str]
    sensitive: list[str]
    grid: Grid | None

    def unmasked(self, path: str) -> bool:
        return any(within(p, path) for p in self.sensitive)


async def check_scope(
    session: AsyncSession,
    actor: Person,
    roles: Sequence[RoleInGrid],
    grid_code: str | None,
    now: datetime,
) -> None:
    """Refuse at once (``NotAllowed``, ``NotFound``) an export the asker may not have, before
    it is started in the background."""
    await ledger_scope(session, actor, roles, grid_code, False, now)


async def ledger_scope(
    session: AsyncSession,
    actor: Person,
    roles: Sequence[RoleInGrid],
    grid_code: str | None,
    masked: bool,
    now: datetime,
) -> LedgerScope:
    paths = scope_paths(roles, Action.EXPORT)
    if not actor.active or not paths:
        refusal = AuditLog(at=now, actor_id=actor.id, action="refused:export")
        raise NotAllowed(NO_EXPORT_SCOPE, audit=refusal)
    sensitive = [] if masked else scope_paths(roles, Action.READ_SENSITIVE)
    if grid_code is None:
        return LedgerScope(paths, sensitive, None)
    code = normalize_code(grid_code)
    grid = (await session.exec(select(Grid).where(Grid.code == code))).one_or_none()
    if grid is None:
        raise NotFound(NO_GRID, value=shown(grid_code))
    if any(within(p, grid.path) for p in paths):
        return LedgerScope([grid.path], sensitive, grid)
    below = [p for p in paths if within(grid.path, p)]  # the parts of it the asker holds
    if not below:
        refusal = AuditLog(
            at=now,
            actor_id=actor.id,
            action="refused:export",
            object_type="grid",
            object_id=grid.id,
            detail=grid.path,
        )
        raise NotAllowed(OUTSIDE_SCOPE, audit=refusal, code=grid.code)
    return LedgerScope(below, sensitive, grid)


def under_paths(paths: Sequence[str]) -> ColumnElement[bool]:
    """SQL: the grid's path lies in one of the subtrees (paths hold only digits and ``/``)."""
    return or_(*(col(Grid.path).startswith(p) for p in paths))


async def export_households(
    session: AsyncSession,
    actor: Person,
    roles: Sequence[RoleInGrid],
    *,
    now: datetime,
    translate: Translate,
    grid_code: str | None = None,
    masked: bool = False,
    audit_into: AsyncSession | None = None,
) -> bytes:
    """The household ledger (住户台账) of the asker's grids as XLSX bytes; see the module."""
    scope = await ledger_scope(session, actor, roles, grid_code, masked, now)
    columns: list[Any] = [
        Household.code,
        Grid.code,
        Grid.name,
        Grid.path,
        Household.head_name,
        Household.phone,
        Household.address,
        Household.members,
        Household.categories,
        Household.is_key,
        Household.is_business,
        Household.worker_id,
        Household.note,
    ]
    statement = (
        select(*columns)
        .join(Grid, col(Grid.id) == col(Household.grid_id))
        .where(under_paths(scope.paths))
        .order_by(col(Grid.code), col(Household.code))
    )
    worker_ids = await session.exec(
        select(col(Household.worker_id))
        .join(Grid, col(Grid.id) == col(Household.grid_id))
        .where(under_paths(scope.paths), col(Household.worker_id).is_not(None))
        .distinct()
    )
    workers = await _people(session, {w for w in worker_ids if w is not None})
    yes, no = translate(YES), translate(NO)
    labels_of = _category_labels(translate)

    def line(record: Any) -> list[CellValue]:
        (
            code,
            grid_code_,
            grid_name,
            path,
            head_name,
            phone,
            address,
            members,
            categories,
            is_key,
            is_business,
            worker_id,
            note,
        ) = record
        open_ = scope.unmasked(path)
        worker_phone, worker_name = workers.get(worker_id, (None, None))
        return [
            code,
            grid_code_,
            grid_name,
            head_name,
            (display_phone(phone) if open_ else mask_phone(phone)) if phone else None,
            address,
            members,
            labels_of(categories) if open_ else HIDDEN,
            (yes if is_key else no) if open_ else HIDDEN,
            yes if is_business else no,
            display_phone(worker_phone) if worker_phone else None,
            worker_name,
            note,
        ]

    labels = {c.key: c.label for c in HOUSEHOLD_COLUMNS}
    headers = [
        labels["code"],
        labels["grid_code"],
        GRID_NAME,
        labels["head_name"],
        labels["phone"],
        labels["address"],
        labels["members"],
        labels["categories"],
        labels["key"],
        labels["business"],
        labels["worker"],
        WORKER_NAME,
        labels["note"],
    ]
    sheet = Sheet(
        title=translate(HOUSEHOLDS_SHEET),
        headers=[translate(h) for h in headers],
        rows=(),
        widths=[20, 18, 20, 12, 14, 36, 8, 24, 8, 8, 14, 10, 30],
        text_columns=frozenset({0, 1, 4, 10}),
        auto_filter=True,
    )
    connection = await session.connection()  # plain rows: nothing here needs ORM objects
    rows = await connection.stream(statement.execution_options(yield_per=EXPORT_BATCH))
    data, count, unmasked = await stream_ledger(
        rows, sheet, line, lambda record: scope.unmasked(record[3])
    )
    audit_export(audit_into or session, actor, "export:households", scope, count, unmasked, now)
    return data


async def export_people(
    session: AsyncSession,
    actor: Person,
    roles: Sequence[RoleInGrid],
    *,
    now: datetime,
    translate: Translate,
    grid_code: str | None = None,
    masked: bool = False,
    audit_into: AsyncSession | None = None,
) -> bytes:
    """The people ledger (人员台账): every active staff role over the asker's grids — one row
    per role, as the people import reads it — as XLSX bytes. Residents are in the household
    ledger, not here."""
    scope = await ledger_scope(session, actor, roles, grid_code, masked, now)
    statement = (
        select(RoleAssignment, Person, Grid, Department)
        .join(Person, col(Person.id) == col(RoleAssignment.person_id))
        .join(Grid, col(Grid.id) == col(RoleAssignment.grid_id))
        .outerjoin(Department, col(Department.id) == col(RoleAssignment.department_id))
        .where(
            under_paths(scope.paths),
            col(RoleAssignment.active).is_(True),
            col(Person.active).is_(True),
            col(RoleAssignment.role) != Role.RESIDENT,
        )
        .order_by(col(Grid.code), col(RoleAssignment.role), col(Person.name))
    )
    yes, no = translate(YES), translate(NO)

    def line(record: Any) -> list[CellValue]:
        assignment, person, grid, found = record
        department: Department | None = found  # None for everyone but department staff
        phone = person.phone
        open_ = scope.unmasked(grid.path)
        return [
            person.name,
            (display_phone(phone) if open_ else mask_phone(phone)) if phone else None,
            translate(ROLE[Role(assignment.role)]),
            grid.code,
            grid.name,
            department.code if department is not None else None,
            yes if person.telegram_id is not None else no,
        ]

    labels = {c.key: c.label for c in PEOPLE_COLUMNS}
    headers = [
        labels["name"],
        labels["phone"],
        labels["role"],
        labels["grid_code"],
        GRID_NAME,
        labels["department"],
        USES_BOT,
    ]
    sheet = Sheet(
        title=translate(PEOPLE_SHEET),
        headers=[translate(h) for h in headers],
        rows=(),
        widths=[14, 14, 12, 18, 24, 16, 10],
        text_columns=frozenset({1, 3}),
        auto_filter=True,
    )
    rows = await session.stream(statement.execution_options(yield_per=EXPORT_BATCH))
    data, count, unmasked = await stream_ledger(
        rows, sheet, line, lambda record: scope.unmasked(record[2].path)
    )
    audit_export(audit_into or session, actor, "export:people", scope, count, unmasked, now)
    return data


async def stream_ledger(
    rows: AsyncResult[*tuple[Any, ...]],
    sheet: Sheet,
    line: Callable[[Any], list[CellValue]],
    unmasked: Callable[[Any], bool],
    tail: Sequence[Sheet] = (),
) -> tuple[bytes, int, int]:
    """Write ``rows`` (read from a server-side cursor, ``EXPORT_BATCH`` at a time) into a
    one-sheet workbook a batch at a time — each batch turned into cells, counted and written
    in a worker thread — so neither the rows nor the workbook are ever held whole and the
    event loop stays free. Returns the workbook's bytes, the rows written and how many of
    them were shown unmasked."""
    writer = WorkbookWriter()
    await asyncio.to_thread(writer.begin, sheet)
    count = shown_unmasked = 0
    async for batch in rows.partitions():
        count += len(batch)
        shown_unmasked += await asyncio.to_thread(_write_batch, writer, batch, line, unmasked)
    for spec in tail:  # short sheets after the ledger's (what the export leaves out, say)
        writer.begin(spec)
        writer.append(spec.rows)
    return await asyncio.to_thread(writer.save), count, shown_unmasked


def _write_batch(
    writer: WorkbookWriter,
    batch: Sequence[Any],
    line: Callable[[Any], list[CellValue]],
    unmasked: Callable[[Any], bool],
) -> int:
    """One batch into the workbook (in a worker thread); how many of its rows are unmasked."""
    writer.append(map(line, batch))
    return sum(1 for record in batch if unmasked(record))


def _category_labels(translate: Translate) -> Callable[[int], str]:
    """HouseholdCategory flags -> their names in the asker's language (memoised: 64 values)."""
    names = [(category, translate(label)) for category, label in HOUSEHOLD_CATEGORY.items()]
    separator = translate(LIST_SEPARATOR)

    @cache
    def labels(flags: int) -> str:
        return separator.join(name for category, name in names if flags & category)

    return labels


async def _people(
    session: AsyncSession, ids: set[int]
) -> dict[int | None, tuple[str | None, str | None]]:
    """Phone and name of each person in ``ids`` (the workers named in a ledger)."""
    found: dict[int | None, tuple[str | None, str | None]] = {}
    ordered = sorted(ids)
    for start in range(0, len(ordered), 1_000):
        rows = await session.exec(
            select(col(Person.id), col(Person.phone), col(Person.name)).where(
                col(Person.id).in_(ordered[start : start + 1_000])
            )
        )
        for person_id, phone, name in rows:
            found[person_id] = (phone, name)
    return found


def audit_export(
    session: AsyncSession,
    actor: Person,
    action: str,
    scope: LedgerScope,
    rows: int,
    unmasked: int,
    now: datetime,
) -> None:
    """Record the export (个人信息保护法: who took which personal data, and how much)."""
    session.add(
        AuditLog(
            at=now,
            actor_id=actor.id,
            action=action,
            object_type="grid" if scope.grid is not None else None,
            object_id=scope.grid.id if scope.grid is not None else None,
            detail=",".join(scope.paths),
            data={"rows": rows, "unmasked_rows": unmasked, "sensitive": unmasked > 0},
        )
    )
