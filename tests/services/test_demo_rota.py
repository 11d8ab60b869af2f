"""The sandbox's demo rota: /duty shows the demo operator, every day for two weeks, with no
gap and no overlap; the plain demo (tests, ``gridbot demo-data``) has no rota."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services.demo import DEMO_PERSONAS, load_demo_data
from bot.services.demo_rota import DAYS, load_demo_rota
from bot.services.duty.gaps import gaps_in
from bot.services.duty.rota import on_duty, shifts_between
from models import DutyShift, Grid
from tests.conftest import T0

SHANGHAI = ZoneInfo("Asia/Shanghai")


async def test_the_sandbox_demo_has_someone_on_duty_for_two_weeks(session: AsyncSession) -> None:
    await load_demo_data(session, T0)
    await session.flush()
    assert (await session.exec(select(func.count()).select_from(DutyShift))).one() == 0
    assert await load_demo_rota(session, T0, SHANGHAI) == DAYS
    await session.flush()
    centre = (await session.exec(select(Grid).where(col(Grid.parent_id).is_(None)))).one()
    assert centre.id is not None
    for hours in (0, 13, 24 * 7, 24 * DAYS - 24):
        operator = await on_duty(session, centre.id, T0 + timedelta(hours=hours))
        assert operator is not None and operator.telegram_id == DEMO_PERSONAS["center"]
    end = T0 + timedelta(days=DAYS - 1)
    shifts = await shifts_between(session, centre.id, T0, end)
    assert gaps_in(list(shifts), T0, end) == []
    assert await on_duty(session, centre.id, T0 + timedelta(days=DAYS + 1)) is None
