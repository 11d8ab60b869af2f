"""Admins change the deadline policy (/sla) and the working-day calendar (/holidays)."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from datetime import date, datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.errors import InvalidInput, NotAllowed
from bot.i18n import N_
from bot.routing.policy import Policy, parse_policy, policy_to_json
from bot.services.people import RoleInGrid
from bot.services.permissions import Action, authorize
from models import AuditLog, CalendarDay, Grid, Person, PolicyVersion

MAX_NOTE = 200


async def _root_grid(session: AsyncSession) -> Grid:
    root = (await session.exec(select(Grid).where(Grid.tier == 0).order_by(col(Grid.id)))).first()
    if root is None:
        raise NotAllowed(N_("Set up the street centre grid first."))
    return root


async def _manage_all(
    session: AsyncSession, actor: Person, roles: Sequence[RoleInGrid], now: datetime
) -> None:
    """Policy and calendar are street-wide: only an admin of the street centre may change them."""
    await authorize(session, actor, roles, Action.MANAGE, await _root_grid(session), now)


async def set_policy(
    session: AsyncSession,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    raw: bytes | str,
    now: datetime,
) -> Policy:
    """Store a new policy version; new tickets use it, open tickets keep theirs."""
    await _manage_all(session, actor, roles, now)
    policy = parse_policy(raw)
    session.add(PolicyVersion(body=policy_to_json(policy), created_by=actor.id, created_at=now))
    session.add(AuditLog(at=now, actor_id=actor.id, action="policy_set", object_type="policy"))
    return policy


async def list_overrides(session: AsyncSession, since: date) -> list[CalendarDay]:
    return list(
        (
            await session.exec(
                select(CalendarDay)
                .where(col(CalendarDay.day) >= since)
                .order_by(col(CalendarDay.day))
            )
        ).all()
    )


def parse_day(text: str) -> date:
    """``2027-02-10`` (also with / or . and full-width digits)."""
    cleaned = unicodedata.normalize("NFKC", text or "").strip().replace("/", "-").replace(".", "-")
    try:
        return date.fromisoformat(cleaned)
    except ValueError:
        raise InvalidInput(
            N_("{value} is not a date; write it like 2027-02-10."), value=cleaned[:20] or "—"
        ) from None


async def set_override(
    session: AsyncSession,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    day: date,
    is_workday: bool,
    note: str | None,
    now: datetime,
) -> CalendarDay:
    """A holiday (or a make-up working day, 调休) the official calendar does not know yet."""
    await _manage_all(session, actor, roles, now)
    text = (note or "").strip()[:MAX_NOTE] or None
    existing = await session.get(CalendarDay, day)
    if existing is None:
        existing = CalendarDay(day=day, is_workday=is_workday, created_at=now)
    existing.is_workday = is_workday
    existing.note = text
    existing.created_by = actor.id
    session.add(existing)
    session.add(
        AuditLog(
            at=now,
            actor_id=actor.id,
            action="calendar_set",
            object_type="day",
            detail=f"{day.isoformat()} {'work' if is_workday else 'off'}",
        )
    )
    return existing


async def remove_override(
    session: AsyncSession,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    day: date,
    now: datetime,
) -> bool:
    await _manage_all(session, actor, roles, now)
    existing = await session.get(CalendarDay, day)
    if existing is None:
        return False
    await session.delete(existing)
    session.add(
        AuditLog(
            at=now,
            actor_id=actor.id,
            action="calendar_remove",
            object_type="day",
            detail=day.isoformat(),
        )
    )
    return True
