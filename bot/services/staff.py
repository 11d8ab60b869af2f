"""People in an admin's scope: list, search, deactivate, re-scope (/people)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.errors import InvalidInput, NotAllowed, NotFound
from bot.i18n import N_
from bot.services import invites
from bot.services.people import RoleInGrid
from bot.services.permissions import Action, authorize, scope_paths
from bot.services.phones import normalize_phone
from models import AuditLog, Department, Grid, Person, Role, RoleAssignment

PAGE_SIZE = 10


@dataclass(frozen=True)
class PersonRow:
    person: Person
    roles: list[tuple[Role, str]]  # (role, grid name)


@dataclass(frozen=True)
class PeoplePage:
    rows: list[PersonRow]
    page: int
    pages: int
    total: int


async def list_people(
    session: AsyncSession,
    roles: Sequence[RoleInGrid],
    *,
    query: str = "",
    page: int = 0,
) -> PeoplePage:
    """People holding a role anywhere in the asker's MANAGE scope, by name or phone."""
    paths = scope_paths(roles, Action.MANAGE)
    if not paths:
        raise NotAllowed(N_("This command is for administrators."))
    in_scope = or_(*(col(Grid.path).startswith(p) for p in paths))
    ids = (
        select(RoleAssignment.person_id)
        .join(Grid, col(Grid.id) == RoleAssignment.grid_id)
        .where(in_scope)
    )
    where: list[ColumnElement[bool]] = [col(Person.id).in_(ids)]
    text = query.strip()[:50]
    if text:
        digits = "".join(ch for ch in text if ch.isdigit())
        match: list[ColumnElement[bool]] = [col(Person.name).contains(text)]
        if len(digits) >= 4:
            match.append(col(Person.phone).contains(digits))
        where.append(or_(*match))
    total = int((await session.exec(select(func.count()).where(*where))).one())
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(page, 0), pages - 1)
    persons = (
        await session.exec(
            select(Person)
            .where(*where)
            .order_by(col(Person.name), col(Person.id))
            .offset(page * PAGE_SIZE)
            .limit(PAGE_SIZE)
        )
    ).all()
    held: dict[int, list[tuple[Role, str]]] = {p.id or 0: [] for p in persons}
    rows = await session.exec(
        select(RoleAssignment.person_id, RoleAssignment.role, Grid.name)
        .join(Grid, col(Grid.id) == RoleAssignment.grid_id)
        .where(col(RoleAssignment.person_id).in_(list(held)), col(RoleAssignment.active).is_(True))
        .order_by(col(Grid.tier))
    )
    for person_id, role, grid_name in rows:
        held[person_id].append((Role(role), grid_name))
    return PeoplePage([PersonRow(p, held[p.id or 0]) for p in persons], page, pages, total)


NOT_MANAGED = N_("Nobody with the phone number {phone} is registered in the grids you manage.")


async def find_managed(
    session: AsyncSession,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    phone: str,
    now: datetime,
) -> Person:
    """The person with this phone, if the actor manages every grid they hold a role in.

    The answer tells nobody who is registered: someone who manages no grid hears that the
    command is for administrators whatever the phone; an administrator hears the same
    "nobody … in the grids you manage" for an unknown phone and for a person outside their
    grids (that refusal is audited). Raises :class:`InvalidPhone` for what is no phone.
    """
    if not actor.active or not scope_paths(roles, Action.MANAGE):
        raise NotAllowed(N_("This command is for administrators."))
    number = normalize_phone(phone)
    person = (await session.exec(select(Person).where(Person.phone == number))).first()
    if person is None:
        raise NotFound(NOT_MANAGED, phone=phone)
    try:
        if not await _check_manages(session, actor, roles, person, now):
            raise NotFound(NOT_MANAGED, phone=phone)  # in nobody's grid
    except NotAllowed as refused:
        raise NotFound(NOT_MANAGED, phone=phone, audit=refused.audit) from None
    return person


async def managed_person(
    session: AsyncSession,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    person_id: int,
    now: datetime,
) -> Person:
    """A person picked with a button: refused (and audited) unless the actor manages every
    grid they hold a role in."""
    if not actor.active or not scope_paths(roles, Action.MANAGE):
        raise NotAllowed(N_("This command is for administrators."))
    person = await session.get(Person, person_id)
    if person is None:
        raise NotFound()
    if not await _check_manages(session, actor, roles, person, now):
        raise NotAllowed(N_("This person is in none of the grids you manage."))
    return person


async def _check_manages(
    session: AsyncSession,
    actor: Person,
    roles: Sequence[RoleInGrid],
    person: Person,
    now: datetime,
) -> list[RoleAssignment]:
    assignments = (
        await session.exec(select(RoleAssignment).where(RoleAssignment.person_id == person.id))
    ).all()
    for assignment in assignments:
        grid = await session.get(Grid, assignment.grid_id)
        assert grid is not None
        await authorize(session, actor, roles, Action.MANAGE, grid, now)
    return list(assignments)


async def deactivate(
    session: AsyncSession,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    person: Person,
    now: datetime,
) -> Person:
    """Someone leaves: their roles end, the invitations they issued and nobody used yet stop
    working, and they can no longer act (their records stay)."""
    if person.id == actor.id:
        raise InvalidInput(N_("You cannot deactivate yourself."))
    await _check_manages(session, actor, roles, person, now)
    person.active = False
    person.updated_at = now
    session.add(person)
    await session.exec(
        update(RoleAssignment)
        .where(col(RoleAssignment.person_id) == person.id)
        .values(active=False)
    )
    assert person.id is not None
    withdrawn = await invites.revoke_issued_by(session, issuer_id=person.id, now=now)
    session.add(
        AuditLog(
            at=now,
            actor_id=actor.id,
            action="person_deactivate",
            object_type="person",
            object_id=person.id,
            detail=f"invites revoked: {withdrawn}" if withdrawn else None,
        )
    )
    return person


async def rescope(
    session: AsyncSession,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    person: Person,
    role: Role,
    grid: Grid,
    now: datetime,
    department: Department | None = None,
) -> RoleAssignment:
    """Give a person ``role`` over ``grid`` instead of where they held it before.

    A department role names its department (职能部门): without one it would act on nothing,
    or — were a check ever to compare two missing ids — on everything."""
    if role == Role.RESIDENT:
        raise InvalidInput(N_("Residents choose their grid themselves with its QR code."))
    if role != Role.DEPARTMENT:
        department = None
    elif department is None or department.id is None:
        raise InvalidInput(N_("Department staff need the department's code or name."))
    await authorize(session, actor, roles, Action.MANAGE, grid, now)
    assignments = await _check_manages(session, actor, roles, person, now)
    for assignment in assignments:
        if assignment.role == role:
            await session.delete(assignment)
    await session.flush()
    assert person.id is not None and grid.id is not None
    new = RoleAssignment(
        person_id=person.id,
        role=role,
        grid_id=grid.id,
        department_id=department.id if department is not None else None,
        created_at=now,
    )
    session.add(new)
    person.active = True
    session.add(person)
    session.add(
        AuditLog(
            at=now,
            actor_id=actor.id,
            action="person_rescope",
            object_type="person",
            object_id=person.id,
            detail=f"{role.value}@{grid.code}" + (f" {department.code}" if department else ""),
        )
    )
    return new


DEPARTMENTS_PER_PAGE = 8


@dataclass(frozen=True)
class DepartmentPage:
    departments: list[Department]
    page: int
    pages: int


async def department_page(
    session: AsyncSession, page: int = 0, per_page: int = DEPARTMENTS_PER_PAGE
) -> DepartmentPage:
    """Active departments by code, a page at a time (for picking one with buttons)."""
    active = select(Department).where(col(Department.active).is_(True))
    total = int((await session.exec(select(func.count()).select_from(active.subquery()))).one())
    pages = max(1, -(-total // per_page))
    page = min(max(page, 0), pages - 1)
    rows = await session.exec(
        active.order_by(col(Department.code)).offset(page * per_page).limit(per_page)
    )
    return DepartmentPage(list(rows.all()), page, pages)


async def find_department(session: AsyncSession, word: str) -> Department:
    """A department by its code or name; the error lists the codes there are."""
    text = word.strip()[:100]
    if text:
        found = (
            await session.exec(
                select(Department).where(
                    or_(col(Department.code) == text, col(Department.name) == text)
                )
            )
        ).first()
        if found is not None:
            return found
    codes = (await session.exec(select(Department.code).order_by(col(Department.code)))).all()
    raise InvalidInput(N_("Say which department: {codes}."), codes=", ".join(codes) or "—")


MAX_MUTE_HOURS = 24 * 90


async def mute(
    session: AsyncSession,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    person: Person,
    hours: int,
    reason: str,
    now: datetime,
) -> Person:
    """Stop someone from filing tickets for a while (abuse, 恶意反映), with a reason, audited.

    ``hours`` 0 lifts a mute. The muted person is told politely when they try to report.
    """
    if not 0 <= hours <= MAX_MUTE_HOURS:
        raise InvalidInput(
            N_("Give the hours as a whole number from 0 to {limit}."), limit=MAX_MUTE_HOURS
        )
    text = " ".join(reason.split())[:500]
    if hours and not text:
        raise InvalidInput(N_("Please give a reason; it is shown to the person."))
    residences = (
        await session.exec(select(RoleAssignment).where(RoleAssignment.person_id == person.id))
    ).all()
    for assignment in residences:
        grid = await session.get(Grid, assignment.grid_id)
        assert grid is not None
        await authorize(session, actor, roles, Action.MANAGE, grid, now)
    if not residences:
        raise NotAllowed(N_("This person is in none of the grids you manage."))
    person.muted_until = now + timedelta(hours=hours) if hours else None
    person.muted_reason = text or None
    person.updated_at = now
    session.add(person)
    session.add(
        AuditLog(
            at=now,
            actor_id=actor.id,
            action="person_mute" if hours else "person_unmute",
            object_type="person",
            object_id=person.id,
            detail=f"{hours}h {text}"[:500],
        )
    )
    return person
