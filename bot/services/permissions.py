"""Who may do what, where: the one policy every handler and callback goes through.

A role is held over a grid **subtree**: the grid it names and every grid below it (``Grid.path``
is ``/1/4/17/``, so "below" is a prefix test). The policy answers scope and role only; whether
a ticket's *state* allows an action is the ticket state machine's business.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.errors import NotAllowed
from bot.i18n import N_
from bot.services.people import RoleInGrid
from models import (
    AuditLog,
    Grid,
    Household,
    Meeting,
    Person,
    Role,
    Ticket,
    TicketAssist,
    Visit,
)


class Action(StrEnum):
    VIEW = "view"  # see an object and its ordinary fields
    READ_SENSITIVE = "read_sensitive"  # phones, categories (PIPL sensitive data); audited
    VISIT = "visit"  # log a visit to a household
    AMEND_VISIT = "amend_visit"  # change someone's visit after the day it was logged
    HANDLE = "handle"  # act on a ticket: accept, note, ask, resolve, escalate, transfer
    DISPATCH = "dispatch"  # send a ticket down (下派) or take it up, at the centre
    ORGANISE = "organise"  # create and run meetings
    EXPORT = "export"  # ledgers (台账)
    MANAGE = "manage"  # grids, people, households, rules, invitations
    SUPERVISE = "supervise"  # read-only inspection of records and assessments
    BROADCAST = "broadcast"  # send a notice or an emergency alert to a grid's people (宣传)


ROLE_ACTIONS: dict[Role, frozenset[Action]] = {
    Role.RESIDENT: frozenset({Action.VIEW}),
    Role.WORKER: frozenset({Action.VIEW, Action.READ_SENSITIVE, Action.VISIT, Action.HANDLE}),
    Role.HEAD: frozenset(
        {
            Action.VIEW,
            Action.READ_SENSITIVE,
            Action.VISIT,
            Action.AMEND_VISIT,
            Action.HANDLE,
            Action.ORGANISE,
            Action.EXPORT,
            Action.BROADCAST,
        }
    ),
    Role.CENTER: frozenset(
        {
            Action.VIEW,
            Action.READ_SENSITIVE,
            Action.HANDLE,
            Action.DISPATCH,
            Action.ORGANISE,
            Action.EXPORT,
            Action.BROADCAST,
        }
    ),
    Role.DEPARTMENT: frozenset({Action.VIEW, Action.HANDLE}),
    Role.SUPERVISOR: frozenset(
        {Action.VIEW, Action.READ_SENSITIVE, Action.EXPORT, Action.SUPERVISE}
    ),
    Role.ADMIN: frozenset(Action),
}

Subject = Grid | Household | Ticket | Meeting | Visit


@dataclass(frozen=True)
class Target:
    """What an action is aimed at, reduced to what the policy needs."""

    kind: str
    id: int | None
    grid_path: str
    reporter_id: int | None = None
    department_id: int | None = None
    assisting: frozenset[int] = frozenset()  # a ticket's assisting departments (协办)


GRID_PATH = re.compile(r"(?:/[0-9]+)+/")  # ``/1/4/17/``: the only shape a grid's path has


def within(scope_path: str | None, target_path: str | None) -> bool:
    """Whether ``target_path`` is the grid at ``scope_path`` or below it.

    A missing or malformed path (no grid, ``""``, ``"/"``, ``"/unknown/"``) is within nothing
    and covers nothing: an empty prefix would otherwise match every grid."""
    return (
        scope_path is not None
        and target_path is not None
        and GRID_PATH.fullmatch(scope_path) is not None
        and GRID_PATH.fullmatch(target_path) is not None
        and target_path.startswith(scope_path)
    )


def same(a: int | None, b: int | None) -> bool:
    """Two ids name the same row: both are present and equal (``None`` matches nothing)."""
    return a is not None and b is not None and a == b


def permits(
    roles: Iterable[RoleInGrid], action: Action, target: Target, person_id: int | None = None
) -> bool:
    """The pure decision: some role of this person allows ``action`` on ``target``."""
    if same(target.reporter_id, person_id) and action in {Action.VIEW, Action.READ_SENSITIVE}:
        return True  # residents always see their own tickets
    for held in roles:
        if action not in ROLE_ACTIONS[held.role]:
            continue
        if held.role == Role.DEPARTMENT:
            # a department acts only on what was transferred to it
            if target.kind == "ticket" and same(target.department_id, held.department_id):
                return True
            if (  # an assisting department (协办) reads the ticket it is asked about
                action == Action.VIEW
                and target.kind == "ticket"
                and held.department_id is not None
                and held.department_id in target.assisting
            ):
                return True
            if (
                action == Action.VIEW
                and target.kind == "grid"
                and within(held.grid_path, target.grid_path)
            ):
                return True
            continue
        if held.role == Role.RESIDENT and target.kind not in {"grid"}:
            continue
        if within(held.grid_path, target.grid_path):
            return True
    return False


async def target_of(session: AsyncSession, subject: Subject) -> Target:
    """Find the grid an object lives in."""
    if isinstance(subject, Grid):
        return Target("grid", subject.id, subject.path)
    if isinstance(subject, Household):
        return Target("household", subject.id, await _path(session, subject.grid_id))
    if isinstance(subject, Ticket):
        return Target(
            "ticket",
            subject.id,
            await _path(session, subject.grid_id),
            reporter_id=subject.reporter_id,
            department_id=subject.owner_department_id,
            assisting=frozenset(
                (
                    await session.exec(
                        select(TicketAssist.department_id).where(
                            TicketAssist.ticket_id == subject.id
                        )
                    )
                ).all()
            )
            if subject.id is not None
            else frozenset(),
        )
    if isinstance(subject, Meeting):
        return Target("meeting", subject.id, await _path(session, subject.grid_id))
    household = await session.get(Household, subject.household_id)
    path = await _path(session, household.grid_id) if household else "/unknown/"
    return Target("visit", subject.id, path)


async def _path(session: AsyncSession, grid_id: int) -> str:
    grid = await session.get(Grid, grid_id)
    return grid.path if grid is not None else "/unknown/"


async def authorize(
    session: AsyncSession,
    person: Person,
    roles: Sequence[RoleInGrid],
    action: Action,
    subject: Subject,
    now: datetime,
) -> None:
    """Raise :class:`NotAllowed` unless permitted; the refusal carries its audit record.

    Sensitive reads that are permitted are audited too (个人信息保护法: log who read them).
    """
    target = await target_of(session, subject)
    if not person.active or not permits(roles, action, target, person.id):
        refusal = AuditLog(
            at=now,
            actor_id=person.id,
            action=f"refused:{action.value}",
            object_type=target.kind,
            object_id=target.id,
            detail=target.grid_path,
        )
        raise NotAllowed(N_("Sorry, this is outside the grids you look after."), audit=refusal)
    if action == Action.READ_SENSITIVE:
        session.add(
            AuditLog(
                at=now,
                actor_id=person.id,
                action="read_sensitive",
                object_type=target.kind,
                object_id=target.id,
            )
        )


def scope_paths(roles: Iterable[RoleInGrid], action: Action) -> list[str]:
    """The grid subtrees where a person may do ``action`` (for filtering lists in SQL)."""
    paths = sorted(
        {
            r.grid_path
            for r in roles
            if action in ROLE_ACTIONS[r.role]
            and r.role != Role.DEPARTMENT
            and GRID_PATH.fullmatch(r.grid_path)
        }
    )
    # drop subtrees already covered by a wider one
    return [p for p in paths if not any(p != q and p.startswith(q) for q in paths)]
