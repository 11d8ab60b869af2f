"""A duty rota (值班表) for the demo centre, so that ``/duty`` shows someone in the sandbox.

Opt-in: ``gridbot sandbox`` loads it with the demo community (:mod:`bot.trial`);
``gridbot demo-data`` and the test harness do not — their scenarios page the whole centre at
once and add shifts of their own, which a rota already in place would overlap.

The demo centre has one operator, so the rota is one 24-hour shift a day for ``days`` days,
from the local day's change of shift (08:30) before ``now``. When it runs out, the gap sweep
warns the centre a day ahead, as it would for a real rota.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta, tzinfo

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services.demo import DEMO_PERSONAS
from models import DutyShift, Person, Role, RoleAssignment

CHANGE_OF_SHIFT = time(8, 30)
DAYS = 14


async def load_demo_rota(
    session: AsyncSession, now: datetime, tz: tzinfo, *, days: int = DAYS
) -> int:
    """Add the demo centre operator's shifts (the caller commits); returns how many."""
    operator = (
        await session.exec(select(Person).where(Person.telegram_id == DEMO_PERSONAS["center"]))
    ).first()
    if operator is None or operator.id is None:
        return 0
    centre = (
        await session.exec(
            select(RoleAssignment.grid_id).where(
                RoleAssignment.person_id == operator.id,
                RoleAssignment.role == Role.CENTER,
                col(RoleAssignment.active).is_(True),
            )
        )
    ).first()
    if centre is None:
        return 0
    local = now.astimezone(tz)
    first = datetime.combine(local.date(), CHANGE_OF_SHIFT, tzinfo=tz)
    if first > local:
        first -= timedelta(days=1)
    for day in range(days):
        starts = first + timedelta(days=day)
        session.add(
            DutyShift(
                grid_id=centre,
                person_id=operator.id,
                starts_at=starts.astimezone(now.tzinfo),
                ends_at=(starts + timedelta(days=1)).astimezone(now.tzinfo),
                source="sheet",
                created_at=now,
            )
        )
    return days
