"""Gaps in the duty rota, warned to the centre a day ahead (值班空档提醒).

A centre that keeps a rota (it has a shift still to come) is checked by a sweep: every stretch
of the next :data:`AHEAD` that no shift covers, starting after now, is told to the centre's
operators once (:class:`~models.DutyGapWarning` remembers it, so a sweep run twice or late
warns nobody twice). A centre with no rota at all is not nagged.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.i18n import N_, gettext_for, resolve_locale
from bot.services import outbox
from bot.services.duty.rota import operators, shifts_between
from bot.settings import Settings
from models import DutyGapWarning, DutyShift

AHEAD = timedelta(hours=24)
GAP_TEXT = N_(
    "⚠️ Nobody is on duty (值班) from {start} to {end}. Please add a shift with /duty, or ask "
    "a colleague to take one."
)

Gap = tuple[datetime, datetime]


def gaps_in(shifts: list[DutyShift], since: datetime, until: datetime) -> list[Gap]:
    """The stretches of ``(since, until]`` that no shift covers and that start after
    ``since``: each starts where a shift ends (pure)."""
    found: list[Gap] = []
    covered_until: datetime | None = None
    for shift in sorted(shifts, key=lambda s: s.starts_at):
        if covered_until is not None and shift.starts_at > covered_until > since:
            found.append((covered_until, min(shift.starts_at, until)))
        if covered_until is None or shift.ends_at > covered_until:
            covered_until = shift.ends_at
    if covered_until is not None and since < covered_until < until:
        found.append((covered_until, until))
    return [(start, end) for start, end in found if start < until]


async def warn_gaps(session: AsyncSession, now: datetime, settings: Settings) -> int:
    """Warn every centre with a rota of the gaps in its next day; returns warnings sent."""
    grids = (
        await session.exec(
            select(DutyShift.grid_id).where(col(DutyShift.ends_at) > now).distinct()
        )
    ).all()
    sent = 0
    for grid_id in grids:
        shifts = await shifts_between(session, grid_id, now - AHEAD, now + AHEAD)
        for start, end in gaps_in(shifts, now, now + AHEAD):
            if await _claim(session, grid_id, start, end, now):
                sent += await _tell(session, grid_id, start, end, now, settings)
    return sent


async def _claim(
    session: AsyncSession, grid_id: int, start: datetime, end: datetime, now: datetime
) -> bool:
    known = (
        await session.exec(
            select(DutyGapWarning.id).where(
                DutyGapWarning.grid_id == grid_id, DutyGapWarning.starts_at == start
            )
        )
    ).first()
    if known is not None:
        return False
    try:
        async with session.begin_nested():
            session.add(
                DutyGapWarning(grid_id=grid_id, starts_at=start, ends_at=end, warned_at=now)
            )
    except IntegrityError:  # another sweep warned it meanwhile
        return False
    return True


async def _tell(
    session: AsyncSession,
    grid_id: int,
    start: datetime,
    end: datetime,
    now: datetime,
    settings: Settings,
) -> int:
    def local(moment: datetime) -> str:
        return moment.astimezone(settings.tz).strftime("%Y-%m-%d %H:%M")

    sent = 0
    for person in await operators(session, grid_id):
        if person.telegram_id is None or not person.reachable:
            continue
        locale = resolve_locale(person.locale, person.telegram_language, settings.default_locale)
        outbox.send_text(
            session,
            chat_id=person.telegram_id,
            text=gettext_for(locale, GAP_TEXT, start=local(start), end=local(end)),
            now=now,
            person_id=person.id,
        )
        sent += 1
    return sent
