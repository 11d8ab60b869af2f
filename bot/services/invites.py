"""Invitations: single-use, expiring deep links that give a role over a grid (邀请链接).

The token is 32 characters of ``A-Za-z0-9_-`` (192 random bits); only its SHA-256 is stored,
so the database never holds a usable link.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.errors import DomainError, InvalidInput
from bot.i18n import N_
from bot.services.people import RoleInGrid
from bot.services.permissions import Action, authorize, scope_paths
from models import AuditLog, Grid, Invite, Person, Role, RoleAssignment
from models.registry import Department

DEFAULT_TTL = timedelta(hours=72)
MAX_LISTED = 20  # pending invitations /invite lists


INVITE_ORDER: tuple[Role, ...] = (
    Role.WORKER,
    Role.HEAD,
    Role.CENTER,
    Role.DEPARTMENT,
    Role.SUPERVISOR,
    Role.ADMIN,
)
INVITABLE: frozenset[Role] = frozenset(INVITE_ORDER)


def invitable_roles(roles: Sequence[RoleInGrid]) -> list[Role]:
    """The roles this person may hand out by invitation (none without a grid to manage)."""
    return list(INVITE_ORDER) if scope_paths(roles, Action.MANAGE) else []


class InviteRefused(DomainError):
    message = N_("This invitation link is not valid. Ask for a new one.")


class InviteUsed(InviteRefused):
    message = N_("This invitation link has already been used. Ask for a new one.")


class InviteExpired(InviteRefused):
    message = N_("This invitation link has expired. Ask for a new one.")


class InviteRevoked(InviteRefused):
    message = N_("This invitation link was withdrawn. Ask for a new one.")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(24)


@dataclass(frozen=True)
class IssuedInvite:
    invite: Invite
    token: str  # shown once, in the link; never stored


async def create_invite(
    session: AsyncSession,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    role: Role,
    grid: Grid,
    now: datetime,
    department: Department | None = None,
    ttl: timedelta = DEFAULT_TTL,
) -> IssuedInvite:
    """An admin invites someone to hold ``role`` over ``grid``."""
    await authorize(session, actor, roles, Action.MANAGE, grid, now)
    if role not in INVITABLE:
        raise InvalidInput(N_("Residents join with their grid's QR code, not an invitation."))
    if role == Role.DEPARTMENT and department is None:
        raise InvalidInput(N_("Say which department the invitation is for."))
    token = new_token()
    assert grid.id is not None
    invite = Invite(
        token_hash=token_hash(token),
        role=role,
        grid_id=grid.id,
        department_id=department.id if department else None,
        created_by=actor.id,
        created_at=now,
        expires_at=now + ttl,
    )
    session.add(invite)
    session.add(
        AuditLog(
            at=now,
            actor_id=actor.id,
            action="invite",
            object_type="grid",
            object_id=grid.id,
            detail=role.value,
        )
    )
    await session.flush()
    return IssuedInvite(invite, token)


async def redeem_invite(
    session: AsyncSession, *, person: Person, token: str, now: datetime
) -> tuple[Invite, Grid]:
    """Use an invitation: the person gets its role. Each link works once, before it expires."""
    invite = (
        await session.exec(select(Invite).where(Invite.token_hash == token_hash(token)))
    ).one_or_none()
    if invite is None:
        raise InviteRefused()
    if invite.revoked_at is not None:
        raise InviteRevoked()
    if invite.used_at is not None:
        raise InviteUsed()
    if invite.expires_at <= now:
        raise InviteExpired()
    issuer = None if invite.created_by is None else await session.get(Person, invite.created_by)
    if issuer is not None and not issuer.active:  # issued before its issuer left
        raise InviteRevoked()
    claimed = await session.exec(
        update(Invite)
        .where(col(Invite.id) == invite.id, col(Invite.used_at).is_(None))
        .values(used_at=now, used_by=person.id)
    )
    if claimed.rowcount != 1:  # someone else used it a moment ago
        raise InviteUsed()
    assert person.id is not None
    existing = (
        await session.exec(
            select(RoleAssignment).where(
                RoleAssignment.person_id == person.id,
                RoleAssignment.role == invite.role,
                RoleAssignment.grid_id == invite.grid_id,
            )
        )
    ).one_or_none()
    if existing is None:
        session.add(
            RoleAssignment(
                person_id=person.id,
                role=invite.role,
                grid_id=invite.grid_id,
                department_id=invite.department_id,
                created_at=now,
            )
        )
    else:
        existing.active = True
        existing.department_id = invite.department_id
        session.add(existing)
    session.add(
        AuditLog(
            at=now,
            actor_id=person.id,
            action="invite_used",
            object_type="invite",
            object_id=invite.id,
            detail=invite.role,
        )
    )
    grid = await session.get(Grid, invite.grid_id)
    assert grid is not None
    await session.flush()
    return invite, grid


async def revoke_invite(
    session: AsyncSession,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    invite_id: int,
    now: datetime,
) -> Invite:
    """Withdraw an invitation (the link stops working); one already used stays as it was."""
    invite = await session.get(Invite, invite_id)
    if invite is None:
        raise InviteRefused()
    grid = await session.get(Grid, invite.grid_id)
    assert grid is not None
    await authorize(session, actor, roles, Action.MANAGE, grid, now)
    if invite.used_at is None and invite.revoked_at is None:
        invite.revoked_at = now
        session.add(invite)
        session.add(
            AuditLog(
                at=now,
                actor_id=actor.id,
                action="invite_revoked",
                object_type="invite",
                object_id=invite.id,
                detail=invite.role,
            )
        )
    return invite


async def revoke_issued_by(session: AsyncSession, *, issuer_id: int, now: datetime) -> int:
    """Withdraw every pending invitation a person issued (they are leaving); how many."""
    revoked = await session.exec(
        update(Invite)
        .where(
            col(Invite.created_by) == issuer_id,
            col(Invite.used_at).is_(None),
            col(Invite.revoked_at).is_(None),
            col(Invite.expires_at) > now,
        )
        .values(revoked_at=now)
    )
    return int(revoked.rowcount or 0)


@dataclass(frozen=True)
class PendingInvite:
    """An invitation still waiting to be used, as /invite lists it."""

    invite: Invite
    grid: Grid
    issuer: str | None  # the name of who issued it
    department: str | None  # the department's name, for a department role


async def pending_invites(
    session: AsyncSession, roles: Sequence[RoleInGrid], now: datetime, *, limit: int = MAX_LISTED
) -> list[PendingInvite]:
    """Invitations not used, withdrawn or expired, for grids the person manages; newest first.
    Nobody else's: without a grid to manage the list is empty."""
    paths = scope_paths(roles, Action.MANAGE)
    if not paths:
        return []
    rows = await session.exec(
        select(Invite, Grid, Person.name, Department.name)
        .join(Grid, col(Grid.id) == Invite.grid_id)
        .outerjoin(Person, col(Person.id) == Invite.created_by)
        .outerjoin(Department, col(Department.id) == Invite.department_id)
        .where(
            or_(*(col(Grid.path).startswith(p) for p in paths)),
            col(Invite.used_at).is_(None),
            col(Invite.revoked_at).is_(None),
            col(Invite.expires_at) > now,
        )
        .order_by(col(Invite.created_at).desc(), col(Invite.id).desc())
        .limit(limit)
    )
    return [
        PendingInvite(invite, grid, issuer, department)
        for invite, grid, issuer, department in rows
    ]
