"""What every register import shares: its report (every bad cell of every bad row), the
reasons a row is refused, the admin's scope and the audit record of an import.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.errors import NotAllowed
from bot.i18n import N_, gettext_for
from bot.services.permissions import Action, scope_paths
from models import AuditLog, Person

from .people import RoleInGrid
from .tabular import Row, Table

Translate = Callable[[str], str]
"""A gettext-like callable: msgid in, text in the reader's language out."""

Progress = Callable[[int, int], Awaitable[None]]
"""Called with (rows done, rows in the file) every :data:`CHUNK_ROWS` rows."""


class Importer(Protocol):
    """An import as a handler runs it: (session, actor, roles, data, now=, progress=)."""

    def __call__(
        self,
        session: AsyncSession,
        actor: Person,
        roles: Sequence[RoleInGrid],
        data: bytes,
        *,
        now: datetime,
        progress: Progress | None = None,
    ) -> Awaitable[ImportReport]: ...


CHUNK_ROWS = 2_000  # rows checked and written per step, and how often progress is told
LOOKUP_CHUNK = 1_000  # values in one SQL ``IN (...)``

ROW_ERROR = N_("Row {row}, column {column}: {reason}")

# reasons a row is refused; ``value`` is the cell as written, cut short
EMPTY = N_("This cell must not be empty.")
TOO_LONG = N_("This is too long: at most {limit} characters.")
BAD_CODE = N_("The household code {value} may hold only letters, digits and - _ . /")
EXCEL_ROUNDED = N_(
    "Excel has stored {value} as a number and may have changed its last digits. "
    "Format the column as text and type the code again."
)
DUPLICATE_CODE = N_("The household code {value} is also in row {first}.")
BAD_PHONE = N_("{value} is not a valid phone number.")
NOT_MOBILE = N_("{value} is not a mobile phone number.")
BAD_MEMBERS = N_("{value} is not a number of people from 0 to 99.")
BAD_CATEGORY = N_("{value} is not one of the six household categories.")
BAD_YES_NO = N_("{value} is neither yes nor no.")
NO_GRID = N_("There is no grid with the code {value}.")
NOT_LOWEST_GRID = N_("The grid {value} has grids below it; households belong to the lowest ones.")
GRID_OUT_OF_SCOPE = N_("The grid {value} is outside the grids you manage.")
HOUSEHOLD_OUT_OF_SCOPE = N_(
    "The household {value} is registered in a grid outside the grids you manage."
)
NO_WORKER_PHONE = N_("No grid worker has the phone number {value}.")
WORKER_ELSEWHERE = N_(
    "The grid worker with the phone number {value} does not work in grid {grid}."
)
NO_WORKER_NAME = N_("No grid worker named {value} works in grid {grid}.")
AMBIGUOUS_WORKER = N_(
    "Several grid workers named {value} work in grid {grid}; give the phone number instead."
)
BAD_ROLE = N_(
    "{value} is not a role. Use grid worker, grid head, centre, department or supervisor."
)
ROLE_NOT_BY_FILE = N_(
    "The role {value} cannot be given by file; a file may list it only for someone who "
    "already holds it."
)
NEED_DEPARTMENT = N_("Department staff need the department's code or name.")
NO_DEPARTMENT = N_("There is no department {value}.")
AMBIGUOUS_DEPARTMENT = N_("Several departments are named {value}; use the department's code.")
PHONE_OTHER_NAME = N_("The phone number {value} belongs to {name} in row {first}.")
DUPLICATE_ROLE = N_("The same person, role and grid are already in row {first}.")
SHARED_PHONE = N_("Several people are registered with the phone number {value}.")
NOT_AN_ADMIN = N_("Only an administrator can import households and people.")


# --- results ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowError:
    """A bad cell: the row as the admin sees it in Excel (header = row 1 of a plain file),
    the column's header as written in the file, and why (a msgid with ``params``)."""

    row: int
    column: str
    reason: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def render(self, locale: str) -> str:
        """One line in the admin's language (plain text: escape it before sending as HTML)."""
        reason = gettext_for(locale, self.reason, **self.params)
        return gettext_for(locale, ROW_ERROR, row=self.row, column=self.column, reason=reason)


@dataclass(frozen=True)
class ImportReport:
    """What an import did; with errors it did nothing (created = updated = unchanged = 0)."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: tuple[RowError, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def bad_rows(self) -> tuple[int, ...]:
        """The numbers of the rows to fix, in order."""
        return tuple(sorted({e.row for e in self.errors}))


class CellProblem(Exception):
    """What is wrong with one cell: a msgid and its parameters."""

    def __init__(self, reason: str, **params: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.params = params


def manage_scope(actor: Person, roles: Sequence[RoleInGrid], now: datetime) -> list[str]:
    """The grid subtrees the actor manages; NotAllowed (with its audit record) if none."""
    paths = scope_paths(roles, Action.MANAGE)
    if not actor.active or not paths:
        refusal = AuditLog(
            at=now, actor_id=actor.id, action="refused:manage", object_type="import"
        )
        raise NotAllowed(NOT_AN_ADMIN, audit=refusal)
    return paths


def audit_import(
    session: AsyncSession, actor: Person, action: str, report: ImportReport, now: datetime
) -> None:
    session.add(
        AuditLog(
            at=now,
            actor_id=actor.id,
            action=action,
            data={
                "created": report.created,
                "updated": report.updated,
                "unchanged": report.unchanged,
            },
        )
    )


def row_error(table: Table, row: int, key: str, problem: CellProblem) -> RowError:
    column = table.headers.get(key, key)
    return RowError(row, column, problem.reason, problem.params)


def error_order(error: RowError) -> tuple[int, str]:
    return error.row, error.column


RowT = TypeVar("RowT", covariant=True)
T = TypeVar("T")


class RowReader(Protocol[RowT]):
    """Reads one row of a file: what it holds, or every problem of its cells."""

    def read(self, row: Row) -> RowT | list[RowError]: ...


def read_rows(reader: RowReader[T], rows: Iterable[Row]) -> tuple[list[T], list[RowError]]:
    """Each row read and checked on its own: the good ones, and every problem found."""
    good: list[T] = []
    errors: list[RowError] = []
    for row in rows:
        result = reader.read(row)
        if isinstance(result, list):
            errors.extend(result)
        else:
            good.append(result)
    return good, errors


def chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
