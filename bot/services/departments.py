"""Departments (职能部门) as admins run them: create, rename, retire, the categories each
handles, the routing rule that sends those categories straight to it, and a sheet of them
imported all or nothing.

A department serves the street (its ``grid_id`` is the street centre's grid): only an admin
of the street centre (``Action.MANAGE`` over it) changes departments. Its staff join with the
existing invite links (:mod:`bot.services.invites`, role ``department``).

The routing rule is part of the policy file (:mod:`bot.routing.policy`): :func:`route_here`
writes a new policy version whose first rule, ``dept:<code>``, sends the department's
categories to it (主办), so a resident's fire report reaches the fire station directly and the
ticket records the rule like every routing decision. An admin may write such rules by hand in
the file too; this is the button for it.
"""

from __future__ import annotations

import asyncio
import re
import unicodedata
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Final

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import labels
from bot.errors import InvalidInput, NotAllowed, NotFound
from bot.i18n import N_, in_every_locale
from bot.routing.policy import (
    DEPARTMENT_CODE,
    MAX_ROUTES,
    ChainLink,
    Policy,
    RouteRule,
    policy_to_json,
)
from bot.services.imports import ImportReport, RowError
from bot.services.people import RoleInGrid
from bot.services.permissions import Action, authorize
from bot.services.tabular import Column, Table, clean_text, read_table, shown
from bot.services.tickets.deadlines import current_policy
from models import (
    OPEN_TICKET_STATES,
    AuditLog,
    Department,
    Grid,
    Person,
    PolicyVersion,
    Role,
    RoleAssignment,
    Ticket,
    TicketCategory,
)

MAX_NAME: Final = 100
MAX_PHONE: Final = 32
RULE_PREFIX: Final = "dept:"
CATEGORY_VALUES: Final = frozenset(c.value for c in TicketCategory)

BAD_NAME = N_("A department's name must be 2 to {limit} characters.")
BAD_CODE = N_(
    "{value} is not a department code: use 1 to 32 lowercase letters, digits or underscores."
)
CODE_TAKEN = N_("The department code {value} is taken.")
NAME_TAKEN = N_("There is already a department named {value}.")
STILL_OPEN = N_(
    "{name} still leads {count} open tickets. Have the centre take them back first, then "
    "retire it."
)
NO_CATEGORIES = N_("Choose at least one category {name} handles first.")
NOT_A_CATEGORY = N_("{value} is not a ticket category.")
NAME_TWICE = N_("The department {value} is also in row {first}.")
BAD_PHONE = N_("{value} is not a phone number.")
TOO_MANY_RULES = N_("The policy has too many routing rules to add another.")

_PHONE: Final = re.compile(r"\+?[0-9][0-9 \-]{1,18}[0-9]")


@dataclass(frozen=True)
class DepartmentView:
    """A department as its admin card shows it."""

    department: Department
    staff: int
    open_tickets: int
    routed: bool  # the policy's rule sends its categories straight to it


async def _street(session: AsyncSession) -> Grid:
    root = (await session.exec(select(Grid).where(Grid.tier == 0).order_by(col(Grid.id)))).first()
    if root is None:
        raise NotAllowed(N_("Set up the street centre grid first."))
    return root


async def _manage(
    session: AsyncSession, actor: Person, roles: Sequence[RoleInGrid], now: datetime
) -> Grid:
    street = await _street(session)
    await authorize(session, actor, roles, Action.MANAGE, street, now)
    return street


def clean_name(text: str) -> str:
    name = " ".join(unicodedata.normalize("NFKC", text or "").split())
    name = "".join(ch for ch in name if ch.isprintable())
    if not 2 <= len(name) <= MAX_NAME:
        raise InvalidInput(BAD_NAME, limit=MAX_NAME)
    return name


def clean_code(text: str) -> str:
    code = unicodedata.normalize("NFKC", text or "").strip().lower()
    if DEPARTMENT_CODE.fullmatch(code) is None:
        raise InvalidInput(BAD_CODE, value=shown(code or "—"))
    return code


async def _load(session: AsyncSession, department_id: int) -> Department:
    department = await session.get(Department, department_id)
    if department is None:
        raise NotFound()
    return department


async def _code_taken(session: AsyncSession, code: str) -> bool:
    found = (await session.exec(select(Department.id).where(Department.code == code))).first()
    return found is not None


async def _name_taken(session: AsyncSession, name: str, other_than: int | None = None) -> bool:
    found = (
        await session.exec(
            select(Department.id).where(
                Department.name == name,
                col(Department.active).is_(True),
                Department.id != (other_than or 0),
            )
        )
    ).first()
    return found is not None


async def _free_code(session: AsyncSession) -> str:
    count = (await session.exec(select(func.count()).select_from(Department))).one()
    number = int(count) + 1
    while await _code_taken(session, f"dept{number}"):
        number += 1
    return f"dept{number}"


async def create(
    session: AsyncSession,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    text: str,
    now: datetime,
) -> Department:
    """``消防站`` or ``消防站 xfz``: the name, and optionally its code (else one is made)."""
    street = await _manage(session, actor, roles, now)
    words = unicodedata.normalize("NFKC", text or "").split()
    code: str | None = None
    if len(words) >= 2 and DEPARTMENT_CODE.fullmatch(words[-1].lower()):
        code = clean_code(words[-1])
        words = words[:-1]
    name = clean_name(" ".join(words))
    if await _name_taken(session, name):
        raise InvalidInput(NAME_TAKEN, value=name)
    if code is None:
        code = await _free_code(session)
    elif await _code_taken(session, code):
        raise InvalidInput(CODE_TAKEN, value=code)
    department = Department(
        name=name, code=code, grid_id=street.id or 0, categories=[], created_at=now
    )
    session.add(department)
    await session.flush()
    _audit(session, actor, now, "department_create", department)
    return department


async def rename(
    session: AsyncSession,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    department_id: int,
    text: str,
    now: datetime,
) -> Department:
    await _manage(session, actor, roles, now)
    department = await _load(session, department_id)
    name = clean_name(text)
    if await _name_taken(session, name, other_than=department.id):
        raise InvalidInput(NAME_TAKEN, value=name)
    department.name = name
    session.add(department)
    _audit(session, actor, now, "department_rename", department)
    return department


async def retire(
    session: AsyncSession,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    department_id: int,
    now: datetime,
) -> Department:
    """Retire a department that leads no open ticket; its routing rule goes with it."""
    await _manage(session, actor, roles, now)
    department = await _load(session, department_id)
    open_count = await _open_tickets(session, department)
    if open_count:
        raise InvalidInput(STILL_OPEN, name=department.name, count=open_count)
    department.active = False
    session.add(department)
    if await _rule_of(session, department) is not None:
        await _write_rules(session, actor, department, None, now)
    _audit(session, actor, now, "department_retire", department)
    return department


async def toggle_category(
    session: AsyncSession,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    department_id: int,
    category: TicketCategory,
    now: datetime,
) -> Department:
    """Add ``category`` to what the department handles, or take it away. A routing rule the
    department has follows its categories (none left: the rule goes)."""
    await _manage(session, actor, roles, now)
    department = await _load(session, department_id)
    if not department.active:
        raise NotFound()
    have = [c for c in department.categories if c != category.value]
    if len(have) == len(department.categories):
        have.append(category.value)
    department.categories = [c.value for c in TicketCategory if c.value in have]
    session.add(department)
    if await _rule_of(session, department) is not None:
        await _write_rules(session, actor, department, _rule_for(department), now)
    _audit(session, actor, now, "department_categories", department)
    return department


async def route_here(
    session: AsyncSession,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    department_id: int,
    on: bool,
    now: datetime,
) -> Policy:
    """Send the department's categories straight to it (``on``), or stop: a new policy
    version, its rule ``dept:<code>`` first."""
    await _manage(session, actor, roles, now)
    department = await _load(session, department_id)
    if not department.active:
        raise NotFound()
    rule = _rule_for(department) if on else None
    if on and rule is None:
        raise InvalidInput(NO_CATEGORIES, name=department.name)
    return await _write_rules(session, actor, department, rule, now)


def _rule_for(department: Department) -> RouteRule | None:
    categories = frozenset(
        TicketCategory(c) for c in department.categories if c in CATEGORY_VALUES
    )
    if not categories:
        return None
    return RouteRule(
        name=f"{RULE_PREFIX}{department.code}"[:64],
        to=ChainLink(0, Role.CENTER),  # the policy's top, put in by _write_rules
        categories=categories,
        department=department.code,
    )


async def _write_rules(
    session: AsyncSession,
    actor: Person,
    department: Department,
    rule: RouteRule | None,
    now: datetime,
) -> Policy:
    policy = await current_policy(session)
    name = f"{RULE_PREFIX}{department.code}"[:64]
    kept = [r for r in policy.routes if r.name != name]
    if rule is not None:
        if len(kept) >= MAX_ROUTES:
            raise InvalidInput(TOO_MANY_RULES)
        kept.insert(0, replace(rule, to=policy.top))
    new = replace(policy, routes=tuple(kept))
    session.add(PolicyVersion(body=policy_to_json(new), created_by=actor.id, created_at=now))
    session.add(
        AuditLog(
            at=now,
            actor_id=actor.id,
            action="policy_set",
            object_type="policy",
            detail=f"{name} {'on' if rule else 'off'}",
        )
    )
    return new


async def _rule_of(session: AsyncSession, department: Department) -> RouteRule | None:
    name = f"{RULE_PREFIX}{department.code}"[:64]
    policy = await current_policy(session)
    return next((r for r in policy.routes if r.name == name), None)


async def _open_tickets(session: AsyncSession, department: Department) -> int:
    count = (
        await session.exec(
            select(func.count()).where(
                Ticket.owner_department_id == department.id,
                col(Ticket.state).in_(list(OPEN_TICKET_STATES)),
            )
        )
    ).one()
    return int(count)


async def view(
    session: AsyncSession,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    department_id: int,
    now: datetime,
) -> DepartmentView:
    """The department's admin card: staff, open tickets, categories, whether routed to it."""
    await _manage(session, actor, roles, now)
    department = await _load(session, department_id)
    staff = (
        await session.exec(
            select(func.count()).where(
                RoleAssignment.department_id == department.id,
                col(RoleAssignment.active).is_(True),
            )
        )
    ).one()
    policy = await current_policy(session)
    routed = any(r.department == department.code for r in policy.routes)
    return DepartmentView(department, int(staff), await _open_tickets(session, department), routed)


async def check_manager(
    session: AsyncSession, actor: Person, roles: Sequence[RoleInGrid], now: datetime
) -> None:
    """Refuse (and audit) anyone but an admin of the street centre, before showing buttons."""
    await _manage(session, actor, roles, now)


def _audit(
    session: AsyncSession, actor: Person, now: datetime, action: str, department: Department
) -> None:
    session.add(
        AuditLog(
            at=now,
            actor_id=actor.id,
            action=action,
            object_type="department",
            object_id=department.id,
            detail=f"{department.code} {department.name}"[:500],
        )
    )


# --- a sheet of departments -----------------------------------------------------------------

DEPARTMENT_COLUMNS: Final = (
    Column("name", N_("Department name"), ("部门名称", "名称", "部门", "单位名称"), required=True),
    Column("code", N_("Department code"), ("部门编码", "编码", "代码")),
    Column("categories", N_("Categories handled"), ("负责类别", "类别", "受理类别", "事项类别")),
    Column("phone", N_("Phone"), ("电话", "联系电话", "值班电话")),
)
_CATEGORY_SPLIT: Final = re.compile(r"[、，,;；|/\s]+")


def _category_words() -> dict[str, TicketCategory]:
    words: dict[str, TicketCategory] = {}
    for category in TicketCategory:
        words[category.value] = category
        for label in in_every_locale(labels.TICKET_CATEGORY[category]):
            words[label.lower()] = category
            for part in _CATEGORY_SPLIT.split(label.lower()):  # "环境卫生 / 市容环境"
                if part:
                    words.setdefault(part, category)
    return words


def read_department_file(data: bytes) -> Table:
    """The table of an uploaded department sheet; raises FileProblem if it cannot be used."""
    labels_in_catalogs = {
        column.key: set(in_every_locale(column.label)) for column in DEPARTMENT_COLUMNS
    }
    return read_table(data, DEPARTMENT_COLUMNS, labels_in_catalogs)


@dataclass(frozen=True)
class _SheetRow:
    number: int
    name: str
    code: str | None
    categories: list[str]
    phone: str | None


def parse_department_rows(table: Table) -> tuple[list[_SheetRow], list[RowError]]:
    """Every row checked; the errors name the row and the column as the file has them."""
    words = _category_words()
    rows: list[_SheetRow] = []
    errors: list[RowError] = []
    seen: dict[str, int] = {}

    def error(row: int, key: str, reason: str, **params: str | int) -> None:
        errors.append(RowError(row, table.headers.get(key, key), reason, params))

    for row in table.rows:
        raw_name = clean_text(table.cell(row, "name"))
        try:
            name = clean_name(raw_name)
        except InvalidInput:
            error(row.number, "name", BAD_NAME, limit=MAX_NAME)
            continue
        if name in seen:
            error(row.number, "name", NAME_TWICE, value=shown(name), first=seen[name])
            continue
        seen[name] = row.number
        code: str | None = None
        raw_code = clean_text(table.cell(row, "code"))
        if raw_code:
            try:
                code = clean_code(raw_code)
            except InvalidInput:
                error(row.number, "code", BAD_CODE, value=shown(raw_code))
                continue
        categories: list[str] = []
        bad = False
        for word in _CATEGORY_SPLIT.split(clean_text(table.cell(row, "categories"))):
            if not word:
                continue
            category = words.get(word.lower())
            if category is None:
                error(row.number, "categories", NOT_A_CATEGORY, value=shown(word))
                bad = True
                break
            categories.append(category.value)
        if bad:
            continue
        phone = clean_text(table.cell(row, "phone")) or None
        if phone is not None and (len(phone) > MAX_PHONE or _PHONE.fullmatch(phone) is None):
            error(row.number, "phone", BAD_PHONE, value=shown(phone))
            continue
        ordered: list[str] = [c.value for c in TicketCategory if c.value in categories]
        rows.append(_SheetRow(row.number, name, code, ordered, phone))
    return rows, errors


async def import_departments(
    session: AsyncSession,
    actor: Person,
    roles: Sequence[RoleInGrid],
    data: bytes,
    *,
    now: datetime,
    progress: Callable[[int, int], Awaitable[None]] | None = None,
) -> ImportReport:
    """A sheet of departments (名称, 编码, 负责类别, 电话), all or nothing: a row whose code (or,
    without one, whose name) is a department's already updates it; any bad row, nothing."""
    street = await _manage(session, actor, roles, now)
    table = await asyncio.to_thread(read_department_file, data)
    rows, errors = parse_department_rows(table)
    existing = list((await session.exec(select(Department))).all())
    by_code = {d.code: d for d in existing}
    by_name = {d.name: d for d in existing if d.active}
    codes_in_file: dict[str, int] = {}
    for row in rows:
        if row.code is None:
            continue
        if row.code in codes_in_file:
            errors.append(
                RowError(
                    row.number,
                    table.headers.get("code", "code"),
                    CODE_TAKEN,
                    {"value": row.code},
                )
            )
        codes_in_file[row.code] = row.number
        named = by_name.get(row.name)
        if named is not None and named.code != row.code:
            errors.append(
                RowError(
                    row.number, table.headers.get("name", "name"), NAME_TAKEN, {"value": row.name}
                )
            )
    if errors:
        return ImportReport(errors=tuple(sorted(errors, key=lambda e: e.row)))
    created = updated = unchanged = 0
    for row in rows:
        department = by_code.get(row.code) if row.code else by_name.get(row.name)
        if department is None:
            department = Department(
                name=row.name,
                code=row.code or await _free_code(session),
                grid_id=street.id or 0,
                phone=row.phone,
                categories=row.categories,
                created_at=now,
            )
            session.add(department)
            await session.flush()
            created += 1
            continue
        same = (
            department.name == row.name
            and department.active
            and list(department.categories) == row.categories
            and (row.phone is None or department.phone == row.phone)
        )
        if same:
            unchanged += 1
            continue
        department.name = row.name
        department.active = True
        department.categories = row.categories
        department.phone = row.phone or department.phone
        session.add(department)
        updated += 1
    if progress is not None:
        await progress(len(rows), len(rows))
    session.add(
        AuditLog(
            at=now,
            actor_id=actor.id,
            action="department_import",
            object_type="department",
            detail=f"{created} new, {updated} updated",
        )
    )
    return ImportReport(created=created, updated=updated, unchanged=unchanged)


async def active_departments(session: AsyncSession) -> list[Department]:
    return list(
        (
            await session.exec(
                select(Department)
                .where(col(Department.active).is_(True))
                .order_by(col(Department.code))
            )
        ).all()
    )
