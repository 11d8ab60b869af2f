"""``/tickets``: the tickets in a person's scope, a page at a time, narrowed by filters.

Who sees what: the grids where the person handles tickets (``Action.HANDLE``) or oversees
them (督查, ``Action.SUPERVISE``), and a department's staff the tickets with their
department. A filter on a grid outside that scope is refused (and audited).

The filters are data (:data:`FILTERS`): each names the field of :class:`TicketFilter` it
sets, and its choices come from the enum or the rows behind it — so a new ticket source,
category or state slots in without touching the chat. A filter's choice travels in button
data as a small number (:func:`choice_index`), checked against the list here.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import TypeVar

from sqlalchemy import ColumnElement, and_, func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import labels
from bot.errors import InvalidInput, NotAllowed
from bot.i18n import N_, in_every_locale
from bot.services.grids import GridNotFound, find_grid
from bot.services.people import RoleInGrid
from bot.services.permissions import Action, scope_paths, within
from models import (
    OPEN_TICKET_STATES,
    AuditLog,
    Department,
    Grid,
    Person,
    Ticket,
    TicketCategory,
    TicketSource,
    TicketState,
)

E = TypeVar("E", bound=StrEnum)

PAGE_SIZE = 10
MAX_GRID_CHOICES = 12
NOT_STAFF = N_("This command is for grid staff.")
BAD_CHOICE = N_("This button is out of date. Send /tickets to begin again.")

# the order of the choices in button data: append only, never reorder
STATES: tuple[TicketState, ...] = tuple(TicketState)
CATEGORIES: tuple[TicketCategory, ...] = tuple(TicketCategory)
SOURCES: tuple[TicketSource, ...] = tuple(TicketSource)


class FilterName(StrEnum):
    STATE = "state"
    OVERDUE = "overdue"
    CATEGORY = "category"
    SOURCE = "source"
    GRID = "grid"
    DEPARTMENT = "department"


@dataclass(frozen=True)
class TicketFilter:
    """What ``/tickets`` narrows to; ``None`` (or ``False``) everywhere: every open ticket."""

    state: TicketState | None = None  # None: every open state
    overdue: bool = False
    category: TicketCategory | None = None
    source: TicketSource | None = None
    grid_id: int | None = None
    department_id: int | None = None

    @property
    def any(self) -> bool:
        return self != TicketFilter()


@dataclass(frozen=True)
class FilterSpec:
    """One filter of the list: its name, the button that opens its choices, and the enum
    its choices are (``None``: rows — grids, departments — read when asked)."""

    name: FilterName
    button: str
    choices: tuple[StrEnum, ...] | None


FILTERS: tuple[FilterSpec, ...] = (
    FilterSpec(FilterName.STATE, N_("State"), STATES),
    FilterSpec(FilterName.OVERDUE, N_("⏰ Overdue"), None),
    FilterSpec(FilterName.CATEGORY, N_("Category"), CATEGORIES),
    FilterSpec(FilterName.SOURCE, N_("Source"), SOURCES),
    FilterSpec(FilterName.GRID, N_("Grid"), None),
    FilterSpec(FilterName.DEPARTMENT, N_("Department"), None),
)


def choice_index(values: Sequence[StrEnum], value: StrEnum | None) -> int:
    """A choice as button data: 0 for none, else its place in ``values`` plus one."""
    return 0 if value is None else values.index(value) + 1


def choice_at(values: Sequence[E], index: int) -> E | None:
    """The choice button data names; a number past the list is refused as out of date."""
    if index == 0:
        return None
    if not 0 < index <= len(values):
        raise InvalidInput(BAD_CHOICE)
    return values[index - 1]


@dataclass(frozen=True)
class TicketPage:
    tickets: list[Ticket]
    page: int
    pages: int
    total: int
    filter: TicketFilter
    grid_names: dict[int, str]
    overdue_ids: frozenset[int]


@dataclass(frozen=True)
class _Scope:
    paths: list[str]
    departments: list[int]


def _scope(person: Person, roles: Sequence[RoleInGrid]) -> _Scope:
    paths = scope_paths(roles, Action.HANDLE) + scope_paths(roles, Action.SUPERVISE)
    paths = sorted(set(paths))
    paths = [p for p in paths if not any(p != q and p.startswith(q) for q in paths)]
    departments = [r.department_id for r in roles if r.department_id is not None]
    if not person.active or not (paths or departments):
        raise NotAllowed(NOT_STAFF)
    return _Scope(paths, departments)


def _in_scope(scope: _Scope) -> ColumnElement[bool]:
    conditions: list[ColumnElement[bool]] = []
    if scope.paths:
        conditions.append(
            col(Ticket.grid_id).in_(
                select(Grid.id).where(or_(*(col(Grid.path).startswith(p) for p in scope.paths)))
            )
        )
    if scope.departments:
        conditions.append(col(Ticket.owner_department_id).in_(scope.departments))
    return or_(*conditions)


async def check_grid(
    session: AsyncSession,
    person: Person,
    roles: Sequence[RoleInGrid],
    grid_id: int,
    now: datetime,
) -> Grid:
    """A grid to filter by: in the person's scope, else refused and audited."""
    scope = _scope(person, roles)
    grid = await session.get(Grid, grid_id)
    if grid is None or not any(within(p, grid.path) for p in scope.paths):
        refusal = AuditLog(
            at=now,
            actor_id=person.id,
            action="refused:view",
            object_type="grid",
            object_id=grid_id,
            detail=grid.path if grid is not None else None,
        )
        raise NotAllowed(N_("Sorry, this is outside the grids you look after."), audit=refusal)
    return grid


def _conditions(wanted: TicketFilter, now: datetime) -> list[ColumnElement[bool]]:
    found: list[ColumnElement[bool]] = []
    if wanted.state is None:
        found.append(col(Ticket.state).in_(sorted(OPEN_TICKET_STATES)))
    else:
        found.append(col(Ticket.state) == wanted.state)
    if wanted.overdue:
        found.append(
            and_(col(Ticket.next_deadline_at).is_not(None), col(Ticket.next_deadline_at) <= now)
        )
    if wanted.category is not None:
        found.append(col(Ticket.category) == wanted.category)
    if wanted.source is not None:
        found.append(col(Ticket.source) == wanted.source)
    if wanted.department_id is not None:
        found.append(col(Ticket.owner_department_id) == wanted.department_id)
    return found


async def list_tickets(
    session: AsyncSession,
    person: Person,
    roles: Sequence[RoleInGrid],
    wanted: TicketFilter,
    *,
    page: int,
    now: datetime,
) -> TicketPage:
    """A page of the tickets in scope that match ``wanted``: soonest deadline first, then
    newest. A page past the end shows the last one."""
    scope = _scope(person, roles)
    where = [_in_scope(scope), *_conditions(wanted, now)]
    if wanted.grid_id is not None:
        grid = await check_grid(session, person, roles, wanted.grid_id, now)
        where.append(
            col(Ticket.grid_id).in_(select(Grid.id).where(col(Grid.path).startswith(grid.path)))
        )
    total = (await session.exec(select(func.count()).select_from(Ticket).where(*where))).one()
    pages = max(1, -(-int(total) // PAGE_SIZE))
    page = min(max(page, 0), pages - 1)
    rows = list(
        (
            await session.exec(
                select(Ticket)
                .where(*where)
                .order_by(
                    col(Ticket.next_deadline_at).is_(None),
                    col(Ticket.next_deadline_at),
                    col(Ticket.created_at).desc(),
                    col(Ticket.id).desc(),
                )
                .offset(page * PAGE_SIZE)
                .limit(PAGE_SIZE)
            )
        ).all()
    )
    grid_ids = {t.grid_id for t in rows}
    names = {
        g.id or 0: g.name
        for g in (await session.exec(select(Grid).where(col(Grid.id).in_(grid_ids)))).all()
    }
    overdue = frozenset(
        t.id or 0 for t in rows if t.next_deadline_at is not None and t.next_deadline_at <= now
    )
    return TicketPage(rows, page, pages, int(total), wanted, names, overdue)


async def grid_choices(
    session: AsyncSession,
    person: Person,
    roles: Sequence[RoleInGrid],
    wanted: TicketFilter,
    now: datetime,
) -> list[tuple[Grid, int]]:
    """The grids the listed tickets are in, busiest first (at most a keyboard's worth)."""
    scope = _scope(person, roles)
    where = [_in_scope(scope), *_conditions(replace(wanted, grid_id=None), now)]
    rows = await session.exec(
        select(Grid, func.count(col(Ticket.id)))
        .join(Ticket, col(Ticket.grid_id) == col(Grid.id))
        .where(*where)
        .group_by(col(Grid.id))
        .order_by(func.count(col(Ticket.id)).desc(), col(Grid.code))
        .limit(MAX_GRID_CHOICES)
    )
    return [(grid, int(count)) for grid, count in rows.all()]


async def department_choices(session: AsyncSession) -> list[Department]:
    return list(
        (
            await session.exec(
                select(Department)
                .where(col(Department.active).is_(True))
                .order_by(col(Department.id))
            )
        ).all()
    )


UNKNOWN_FILTER = N_(
    "I do not know the filter “{value}”. Write a state, “overdue”, a category, a source, a "
    "department or a grid code — or use the buttons under /tickets."
)
OVERDUE_WORDS = frozenset({"overdue", "late", "超期", "逾期", "已超期", "已逾期"})
MAX_WORDS = 6


def _words_for(values: dict[E, str]) -> dict[str, E]:
    """Each value's own name and its label in every language, folded, to the value."""
    found: dict[str, E] = {}
    for value, label in values.items():
        found[value.value.lower()] = value
        for shown in in_every_locale(label):
            found[_fold(shown)] = value
    return found


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip().lower()


async def parse_filter(
    session: AsyncSession,
    person: Person,
    roles: Sequence[RoleInGrid],
    text: str | None,
    now: datetime,
) -> TicketFilter:
    """``/tickets overdue 消防隐患 350211001003``: the words after the command as a filter —
    a state, 超期, a category, a source, a department's name or code, a grid's code or name.
    A word that is none of these is refused, repeated back cut short."""
    wanted = TicketFilter()
    words = (text or "").split()
    if len(words) > MAX_WORDS:
        raise InvalidInput(UNKNOWN_FILTER, value=" ".join(words[MAX_WORDS:])[:30])
    states = _words_for(labels.TICKET_STATE)
    categories = _words_for(labels.TICKET_CATEGORY)
    sources = _words_for(labels.TICKET_SOURCE)
    for word in words:
        folded = _fold(word)
        if folded in OVERDUE_WORDS:
            wanted = replace(wanted, overdue=True)
        elif folded in states:
            wanted = replace(wanted, state=states[folded])
        elif folded in categories:
            wanted = replace(wanted, category=categories[folded])
        elif folded in sources:
            wanted = replace(wanted, source=sources[folded])
        else:
            department = await _department_named(session, folded)
            if department is not None:
                wanted = replace(wanted, department_id=department.id)
                continue
            try:
                grid = await find_grid(session, word)
            except GridNotFound:  # not a grid either
                shown = "".join(ch for ch in word if ch.isprintable())[:30]
                raise InvalidInput(UNKNOWN_FILTER, value=shown) from None
            assert grid.id is not None
            await check_grid(session, person, roles, grid.id, now)
            wanted = replace(wanted, grid_id=grid.id)
    return wanted


async def _department_named(session: AsyncSession, folded: str) -> Department | None:
    for department in await department_choices(session):
        if folded in {_fold(department.name), _fold(department.code)}:
            return department
    return None
