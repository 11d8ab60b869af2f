"""People and their roles (人员与角色)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from bot.errors import InvalidInput
from bot.i18n import N_
from bot.settings import LOCALES
from models import Grid, Person, Role, RoleAssignment


@dataclass(frozen=True)
class RoleInGrid:
    """One role a person holds, with the grid it covers."""

    role: Role
    grid_id: int
    grid_name: str
    grid_code: str
    grid_tier: int
    grid_path: str = "/"
    department_id: int | None = None


async def get_or_create_by_telegram(
    session: AsyncSession,
    *,
    telegram_id: int,
    name: str,
    language_code: str | None,
    now: datetime,
) -> Person:
    """The person behind a Telegram account, created on first contact."""
    person = (
        await session.exec(select(Person).where(Person.telegram_id == telegram_id))
    ).one_or_none()
    if person is None:
        return await _first_contact(session, telegram_id, name, language_code, now)
    _heard_from(session, person, language_code, now)
    return person


# Han (with its extensions and compatibility forms), kana and Hangul: scripts whose names put
# the family name first and join the parts without a space
_EAST_ASIAN = re.compile(
    "[\u1100-\u11ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
    "\U00020000-\U0003134f]"
)


def full_name(given: str | None, family: str | None) -> str:
    """A person's name as people write it, from its two parts (Telegram's first and last name).

    Chinese, Japanese and Korean names put the family name first with no space between
    (姓 李, 名 四 → "李四"); names in other scripts keep "Given Family" ("Ada Lovelace"). One
    part alone is the name; every place that composes a name from its parts calls this.
    """
    given, family = (given or "").strip(), (family or "").strip()
    if not given or not family:
        return given or family
    if _EAST_ASIAN.search(given) or _EAST_ASIAN.search(family):
        whole = _EAST_ASIAN.fullmatch
        joined = all(whole(c) for c in family + given)
        return family + ("" if joined else " ") + given
    return f"{given} {family}"


@dataclass
class Caller:
    """Whoever an update comes from: the person and their active roles."""

    person: Person
    roles: list[RoleInGrid]


_CALLER = (
    select(Person, RoleAssignment, Grid)
    .outerjoin(
        RoleAssignment,
        and_(col(RoleAssignment.person_id) == Person.id, col(RoleAssignment.active).is_(True)),
    )
    .outerjoin(Grid, col(Grid.id) == RoleAssignment.grid_id)
    .where(col(Person.telegram_id) == bindparam("telegram_id"))
    .order_by(col(Grid.tier), col(RoleAssignment.id))
)
"""The person by Telegram id, with each active role and its grid: one row per role (built once:
this runs for every update)."""


async def get_or_create_with_roles(
    session: AsyncSession,
    *,
    telegram_id: int,
    name: str,
    language_code: str | None,
    now: datetime,
) -> Caller:
    """:func:`get_or_create_by_telegram` and :func:`roles_of` in one query (once per update)."""
    rows = (await session.exec(_CALLER, params={"telegram_id": telegram_id})).all()
    if not rows:
        return Caller(await _first_contact(session, telegram_id, name, language_code, now), [])
    person, _, _ = rows[0]
    _heard_from(session, person, language_code, now)
    roles = [
        _role_in_grid(assignment, grid)
        for _, assignment, grid in rows
        if assignment is not None and grid is not None  # a person with no role: one row
    ]
    return Caller(person, roles)


async def _first_contact(
    session: AsyncSession, telegram_id: int, name: str, language_code: str | None, now: datetime
) -> Person:
    person = Person(
        telegram_id=telegram_id,
        name=name[:100] or str(telegram_id),
        telegram_language=(language_code or None) and language_code[:16],
        created_at=now,
        updated_at=now,
    )
    session.add(person)
    await session.flush()
    return person


def _heard_from(
    session: AsyncSession, person: Person, language_code: str | None, now: datetime
) -> None:
    """They wrote to us: keep their Telegram language, and they can be written to again."""
    changed = False
    if language_code and person.telegram_language != language_code[:16]:
        person.telegram_language = language_code[:16]
        changed = True
    if not person.reachable:
        person.reachable = True  # they wrote to us, so we can write to them again
        changed = True
    if changed:
        person.updated_at = now
        session.add(person)


async def roles_of(session: AsyncSession, person_id: int) -> list[RoleInGrid]:
    """Active roles of a person, with their grids, most senior tier first."""
    return (await roles_of_many(session, [person_id])).get(person_id, [])


async def roles_of_many(
    session: AsyncSession, person_ids: SelectOfScalar[Any] | Sequence[int]
) -> dict[int, list[RoleInGrid]]:
    """:func:`roles_of` for everyone in ``person_ids`` (ids, or a query selecting them), in
    one query: for set-based sweeps."""
    rows = await session.exec(
        select(RoleAssignment, Grid)
        .join(Grid, col(Grid.id) == RoleAssignment.grid_id)
        .where(col(RoleAssignment.person_id).in_(person_ids), col(RoleAssignment.active).is_(True))
        .order_by(col(RoleAssignment.person_id), col(Grid.tier), col(RoleAssignment.id))
    )
    found: dict[int, list[RoleInGrid]] = {}
    for assignment, grid in rows:
        found.setdefault(assignment.person_id, []).append(_role_in_grid(assignment, grid))
    return found


def _role_in_grid(assignment: RoleAssignment, grid: Grid) -> RoleInGrid:
    return RoleInGrid(
        role=Role(assignment.role),
        grid_id=assignment.grid_id,
        grid_name=grid.name,
        grid_code=grid.code,
        grid_tier=grid.tier,
        grid_path=grid.path,
        department_id=assignment.department_id,
    )


def role_set(roles: Sequence[RoleInGrid]) -> frozenset[Role]:
    return frozenset(r.role for r in roles)


async def set_locale(session: AsyncSession, person: Person, locale: str, now: datetime) -> None:
    """Remember the language a person chose with /language."""
    if locale not in LOCALES:
        raise InvalidInput(N_("Sorry, that language is not available."))
    person.locale = locale
    person.updated_at = now
    session.add(person)
