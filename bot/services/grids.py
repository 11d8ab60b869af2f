"""The grid tree (网格): look-ups, the paginated registry view, changes and span warnings."""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.errors import InvalidInput, NotAllowed, NotFound
from bot.i18n import N_
from bot.services import grid_codes
from bot.services.people import RoleInGrid
from bot.services.permissions import Action, authorize, scope_paths, within
from bot.services.phones import normalize_phone
from bot.services.tabular import clean_text
from models import AuditLog, Grid, Household, Person, Role, RoleAssignment

MAX_WORKER_HOUSEHOLDS = 30  # 方案1 §1: a tier-3 worker links 20–30 households
MAX_HEAD_WORKERS = 10  # a tier-2 head links 8–10 tier-3 workers
NOTICE_FIELDS = {
    "area": "area_desc",
    "services": "services",
    "process": "complaint_process",
    "phone": "complaint_phone",
}
NOTICE_LIMITS = {"area_desc": 500, "services": 1000, "complaint_process": 1000}


class GridNotFound(NotFound):
    message = N_("There is no grid with the code or name {query}.")


async def find_grid(session: AsyncSession, query: str) -> Grid:
    """A grid by its code (full-width digits and spaces forgiven) or its exact name."""
    text = query.strip()[:100]
    code = grid_codes.normalize_code(text)
    grid = None
    if code.isdigit():
        grid = (await session.exec(select(Grid).where(Grid.code == code))).one_or_none()
    if grid is None and text:
        matches = (await session.exec(select(Grid).where(Grid.name == text).limit(2))).all()
        grid = matches[0] if len(matches) == 1 else None
    if grid is None:
        raise GridNotFound(query=text or "—")
    return grid


@dataclass
class GridRow:
    grid: Grid
    heads: list[str] = field(default_factory=list)
    workers: list[str] = field(default_factory=list)
    households: int = 0  # in the whole subtree
    residents: int = 0  # household members in the subtree
    warnings: list[str] = field(default_factory=list)  # msgids with {placeholders} filled later
    warning_params: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class GridPage:
    rows: list[GridRow]
    page: int
    pages: int
    total: int


async def grid_tree(
    session: AsyncSession, root: Grid, *, page: int = 0, per_page: int = 8
) -> GridPage:
    """The subtree under ``root`` in tree order, one page at a time, with its people and counts.

    Three set-based queries for the whole subtree, whatever its size.
    """
    grids = (
        await session.exec(
            select(Grid).where(col(Grid.path).startswith(root.path)).order_by(col(Grid.code))
        )
    ).all()
    rows = {g.path: GridRow(g) for g in grids}
    by_id = {g.id: g for g in grids}
    people = await session.exec(
        select(RoleAssignment.grid_id, RoleAssignment.role, Person.name)
        .join(Person, col(Person.id) == RoleAssignment.person_id)
        .where(
            col(RoleAssignment.grid_id).in_(list(by_id)),
            col(RoleAssignment.active).is_(True),
            col(RoleAssignment.role).in_([Role.HEAD, Role.WORKER]),
        )
        .order_by(col(RoleAssignment.id))
    )
    for grid_id, role, name in people:
        row = rows[by_id[grid_id].path]
        (row.heads if role == Role.HEAD else row.workers).append(name)
    counts = await session.exec(
        select(Household.grid_id, func.count(), func.coalesce(func.sum(Household.members), 0))
        .where(col(Household.grid_id).in_(list(by_id)))
        .group_by(col(Household.grid_id))
    )
    for grid_id, households, members in counts:
        path = by_id[grid_id].path
        for row_path, row in rows.items():  # roll up to every ancestor in the subtree
            if path.startswith(row_path):
                row.households += int(households)
                row.residents += int(members)
    for warning in await span_warnings(session, root):
        rows[warning.grid_path].warnings.append(warning.message)
        rows[warning.grid_path].warning_params.append(warning.params)
    ordered = list(rows.values())
    pages = max(1, -(-len(ordered) // per_page))
    page = min(max(page, 0), pages - 1)
    return GridPage(ordered[page * per_page : (page + 1) * per_page], page, pages, len(ordered))


CHOICES_PER_PAGE = 8  # grid buttons on one page of a picker


@dataclass(frozen=True)
class GridChoice:
    grid: Grid
    children: int  # grids directly below it


@dataclass(frozen=True)
class GridChoices:
    """One page of a grid picker: the grids directly below ``parent``, or with no parent the
    top of each subtree the person holds."""

    parent: Grid | None
    choices: list[GridChoice]
    page: int
    pages: int
    up: int | None = None  # the level above (0: the top of the scope; None: there is none)


async def grid_choices(
    session: AsyncSession,
    person: Person,
    roles: Sequence[RoleInGrid],
    action: Action | None,
    now: datetime,
    *,
    parent_id: int = 0,
    page: int = 0,
    per_page: int = CHOICES_PER_PAGE,
    paths: list[str] | None = None,
) -> GridChoices:
    """Grids a person may pick for ``action``, a level and a page at a time (a street has
    hundreds). A ``parent_id`` outside the person's scope is refused and audited; with one
    subtree held, the top level is that subtree's own grid and the grids below it. ``paths``
    (with no ``action``) gives the subtrees to pick from instead of those of an action."""
    if paths is None:
        assert action is not None
        paths = scope_paths(roles, action)
    if not paths:
        raise NotAllowed()
    if not parent_id:
        tops = (
            await session.exec(
                select(Grid).where(col(Grid.path).in_(paths)).order_by(col(Grid.code))
            )
        ).all()
        if len(tops) != 1:
            pages = max(1, -(-len(tops) // per_page))
            page = min(max(page, 0), pages - 1)
            shown = list(tops[page * per_page : (page + 1) * per_page])
            return await _with_children(session, None, shown, page, pages, None)
        parent_id = tops[0].id or 0
    parent = await session.get(Grid, parent_id)
    if parent is None:
        raise NotFound()
    if action is not None:
        await authorize(session, person, roles, action, parent, now)
    elif not person.active or not any(within(p, parent.path) for p in paths):
        refusal = AuditLog(
            at=now,
            actor_id=person.id,
            action="refused:pick",
            object_type="grid",
            object_id=parent.id,
            detail=parent.path,
        )
        raise NotAllowed(N_("Sorry, this is outside the grids you look after."), audit=refusal)
    below = select(Grid).where(Grid.parent_id == parent.id)
    total = (await session.exec(select(func.count()).select_from(below.subquery()))).one()
    pages = max(1, -(-int(total) // per_page))
    page = min(max(page, 0), pages - 1)
    grids = (
        await session.exec(below.order_by(col(Grid.code)).offset(page * per_page).limit(per_page))
    ).all()
    if parent.path not in paths:
        up: int | None = parent.parent_id  # still inside the subtree the person holds
    else:
        up = 0 if len(paths) > 1 else None
    return await _with_children(session, parent, list(grids), page, pages, up)


async def _with_children(
    session: AsyncSession,
    parent: Grid | None,
    grids: list[Grid],
    page: int,
    pages: int,
    up: int | None,
) -> GridChoices:
    ids = [g.id for g in grids]
    counts = dict(
        (
            await session.exec(
                select(Grid.parent_id, func.count())
                .where(col(Grid.parent_id).in_(ids))
                .group_by(col(Grid.parent_id))
            )
        ).all()
    )
    return GridChoices(
        parent, [GridChoice(g, int(counts.get(g.id, 0))) for g in grids], page, pages, up
    )


@dataclass(frozen=True)
class SpanWarning:
    grid_path: str
    grid_code: str
    message: str  # msgid
    params: dict[str, str]


async def span_warnings(session: AsyncSession, root: Grid) -> list[SpanWarning]:
    """Span-of-control problems under ``root`` (方案1 §1): a worker over 30 households, a head
    over 10 workers, a tier-3 grid without a worker."""
    grids = (await session.exec(select(Grid).where(col(Grid.path).startswith(root.path)))).all()
    by_id = {g.id: g for g in grids}
    warnings: list[SpanWarning] = []
    loads = await session.exec(
        select(Household.worker_id, Person.name, func.count())
        .join(Person, col(Person.id) == Household.worker_id)
        .where(col(Household.grid_id).in_(list(by_id)))
        .group_by(col(Household.worker_id), col(Person.name))
        .having(func.count() > MAX_WORKER_HOUSEHOLDS)
    )
    worker_grid = dict(
        (
            await session.exec(
                select(RoleAssignment.person_id, RoleAssignment.grid_id).where(
                    RoleAssignment.role == Role.WORKER,
                    col(RoleAssignment.grid_id).in_(list(by_id)),
                    col(RoleAssignment.active).is_(True),
                )
            )
        ).all()
    )
    for worker_id, name, count in loads:
        grid = by_id.get(worker_grid.get(worker_id or -1, -1)) or root
        warnings.append(
            SpanWarning(
                grid.path,
                grid.code,
                N_("{name} looks after {count} households (at most {limit})."),
                {"name": name, "count": str(count), "limit": str(MAX_WORKER_HOUSEHOLDS)},
            )
        )
    staffed = set(worker_grid.values())
    leaf_tier = max((g.tier for g in grids), default=0)
    for grid in grids:
        if grid.tier == leaf_tier and grid.tier >= 3 and grid.id not in staffed:
            warnings.append(
                SpanWarning(grid.path, grid.code, N_("This grid has no grid worker."), {})
            )
    heads = await session.exec(
        select(RoleAssignment.grid_id, Person.name)
        .join(Person, col(Person.id) == RoleAssignment.person_id)
        .where(
            RoleAssignment.role == Role.HEAD,
            col(RoleAssignment.grid_id).in_(list(by_id)),
            col(RoleAssignment.active).is_(True),
        )
    )
    workers_under: dict[str, int] = defaultdict(int)
    for grid_id in worker_grid.values():
        workers_under[by_id[grid_id].path] += 1
    for grid_id, name in heads:
        head_grid = by_id[grid_id]
        if head_grid.tier < 2:
            continue  # community heads lead heads, not workers
        count = sum(n for path, n in workers_under.items() if path.startswith(head_grid.path))
        if count > MAX_HEAD_WORKERS:
            warnings.append(
                SpanWarning(
                    head_grid.path,
                    head_grid.code,
                    N_("{name} leads {count} grid workers (at most {limit})."),
                    {"name": name, "count": str(count), "limit": str(MAX_HEAD_WORKERS)},
                )
            )
    return warnings


BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")  # Hangul fillers, Braille blank


def _clean_name(name: str) -> str:
    """A grid name as stored: invisible characters (zero-width spaces, joiners, marks of
    direction, controls) dropped and white space made single. One that shows nothing — only
    such characters, combining marks or blank-looking letters — is refused like an empty one."""
    text = clean_text(name)
    if not 1 <= len(text) <= 100 or not any(_shows(ch) for ch in text):
        raise InvalidInput(N_("A grid name must be 1 to 100 characters long."))
    return text


def _shows(ch: str) -> bool:
    """A letter, digit, punctuation mark or symbol that is not drawn blank."""
    return unicodedata.category(ch)[0] in "LNPS" and ch not in BLANK_LETTERS


async def create_grid(
    session: AsyncSession,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    parent: Grid,
    name: str,
    now: datetime,
    code: str | None = None,
) -> Grid:
    """Add a grid under ``parent``; its code is the next free one unless given."""
    await authorize(session, actor, roles, Action.MANAGE, parent, now)
    clean = _clean_name(name)
    tier = parent.tier + 1
    siblings = (await session.exec(select(Grid.code).where(Grid.parent_id == parent.id))).all()
    if code is None:
        used = {grid_codes.part_widths(tier) and c[len(parent.code) :] for c in siblings}
        index = 1
        while grid_codes.child_code(parent.code, parent.tier, index)[len(parent.code) :] in used:
            index += 1
        code = grid_codes.child_code(parent.code, parent.tier, index)
    code = grid_codes.normalize_code(code)
    grid_codes.validate_code(code, tier, parent.code)
    if (await session.exec(select(Grid.id).where(Grid.code == code))).first() is not None:
        raise InvalidInput(N_("The grid code {code} is already taken."), code=code)
    grid = Grid(code=code, name=clean, tier=tier, parent_id=parent.id, created_at=now)
    session.add(grid)
    await session.flush()
    grid.path = f"{parent.path}{grid.id}/"
    session.add(grid)
    _audit(session, actor, now, "grid_create", grid, clean)
    return grid


async def rename_grid(
    session: AsyncSession,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    grid: Grid,
    name: str,
    now: datetime,
) -> Grid:
    await authorize(session, actor, roles, Action.MANAGE, grid, now)
    old, grid.name = grid.name, _clean_name(name)
    session.add(grid)
    _audit(session, actor, now, "grid_rename", grid, f"{old} → {grid.name}")
    return grid


async def move_grid(
    session: AsyncSession,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    grid: Grid,
    new_parent: Grid,
    now: datetime,
) -> Grid:
    """Hang a grid (and its subtree) under another parent of the same tier.

    Codes are hierarchical, so the grid gets the next free code under its new parent and every
    grid below it is re-coded with the new prefix; paths follow.
    """
    await authorize(session, actor, roles, Action.MANAGE, grid, now)
    await authorize(session, actor, roles, Action.MANAGE, new_parent, now)
    if new_parent.tier != grid.tier - 1:
        raise InvalidInput(N_("A grid can only move under a grid of the same tier as its parent."))
    if new_parent.path.startswith(grid.path):
        raise InvalidInput(N_("A grid cannot move under itself."))
    new_code = await _next_child_code(session, new_parent)
    old_code, old_path = grid.code, grid.path
    new_path = f"{new_parent.path}{grid.id}/"
    subtree = (await session.exec(select(Grid).where(col(Grid.path).startswith(old_path)))).all()
    moved = {
        member.id: (
            new_code + member.code[len(old_code) :],
            new_path + member.path[len(old_path) :],
        )
        for member in subtree
    }
    # free the old codes first so the unique index never sees two grids with one code
    for member in subtree:
        await session.exec(
            update(Grid).where(col(Grid.id) == member.id).values(code=f"~{member.id}")
        )
    for member_id, (code, path) in moved.items():
        values: dict[str, object] = {"code": code, "path": path}
        if member_id == grid.id:
            values["parent_id"] = new_parent.id
        await session.exec(update(Grid).where(col(Grid.id) == member_id).values(**values))
    await session.flush()
    for member in subtree:
        await session.refresh(member)
    _audit(session, actor, now, "grid_move", grid, f"{old_code} → {grid.code}")
    return grid


async def set_notice(
    session: AsyncSession,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    grid: Grid,
    field_name: str,
    value: str,
    now: datetime,
) -> Grid:
    """Set one notice-board field (公示牌): area, services, process or phone."""
    await authorize(session, actor, roles, Action.MANAGE, grid, now)
    column = NOTICE_FIELDS.get(field_name.strip().lower())
    if column is None:
        raise InvalidInput(N_("Say which field to set: area, services, process or phone."))
    text = value.strip()
    if column == "complaint_phone":
        text = normalize_phone(text)
    elif not 1 <= len(text) <= NOTICE_LIMITS[column]:
        raise InvalidInput(
            N_("That text must be 1 to {limit} characters long."), limit=NOTICE_LIMITS[column]
        )
    setattr(grid, column, text)
    session.add(grid)
    _audit(session, actor, now, "grid_notice", grid, column)
    return grid


async def _next_child_code(session: AsyncSession, parent: Grid) -> str:
    """The first free code under ``parent`` (numbering starts at 1)."""
    taken = set((await session.exec(select(Grid.code).where(Grid.parent_id == parent.id))).all())
    index = 1
    while grid_codes.child_code(parent.code, parent.tier, index) in taken:
        index += 1
    return grid_codes.child_code(parent.code, parent.tier, index)


def _audit(
    session: AsyncSession, actor: Person, now: datetime, action: str, grid: Grid, detail: str
) -> None:
    session.add(
        AuditLog(
            at=now,
            actor_id=actor.id,
            action=action,
            object_type="grid",
            object_id=grid.id,
            detail=detail[:500],
        )
    )
