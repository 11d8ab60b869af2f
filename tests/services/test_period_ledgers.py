"""Ledgers of a period: the span's rows only, the asker's scope only (refusals audited),
phones masked in cells and in free text where the asker may not read them, no formulas."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import FrozenClock
from bot.errors import NotAllowed
from bot.services.period_ledgers import export_meetings, export_tickets, export_visits
from bot.services.spans import Span
from models import AuditLog, Household, Meeting, Ticket, TicketCategory, Visit, VisitKind

from .test_exports import in_, loaded, read_back
from .test_imports import EAST_A, WEST_A, WORKER_A, Community

TZ = ZoneInfo("Asia/Shanghai")


async def fill(session: AsyncSession, clock: FrozenClock) -> tuple[Community, Span, Span]:
    community = await loaded(session, clock)
    now = community.now
    today = now.astimezone(TZ).date()
    this = Span(today.replace(day=1), today + timedelta(days=1))
    before = Span(date(2000, 1, 1), this.start)
    worker = community.workers[WORKER_A]
    homes = (
        await session.exec(
            select(Household).where(Household.grid_id == community.grids[EAST_A].id)
        )
    ).all()
    west = (
        await session.exec(
            select(Household).where(Household.grid_id == community.grids[WEST_A].id)
        )
    ).all()
    long_ago = now - timedelta(days=400)
    for home, when, note in (
        (homes[0], now, "=SUM(A1:A9) 老人电话 13912345678"),
        (homes[1], long_ago, "早就走访过"),
        (west[0], now, "西区走访"),
    ):
        session.add(
            Visit(
                household_id=home.id or 0,
                worker_id=worker.id or 0,
                kind=VisitKind.PHONE,
                visited_at=when,
                note=note,
                created_at=when,
                updated_at=when,
            )
        )
    for grid, when, title in ((EAST_A, now, "@月度例会"), (EAST_A, long_ago, "旧例会")):
        session.add(
            Meeting(
                organiser_id=worker.id or 0,
                grid_id=community.grids[grid].id or 0,
                title=title,
                starts_at=when,
                minutes="联系 13800001111",
                created_at=when,
                updated_at=when,
            )
        )
    street = community.grids["350211001"]
    for number, grid, when in ((1, EAST_A, now), (2, WEST_A, now), (3, EAST_A, long_ago)):
        session.add(
            Ticket(
                number=f"T{number}",
                street_id=street.id or 0,
                short_number=number,
                grid_id=community.grids[grid].id or 0,
                category=TicketCategory.FACILITY,
                description="+1 电话 13912340000 路灯坏了",
                created_at=when,
                updated_at=when,
            )
        )
    await session.commit()
    return community, this, before


@pytest.mark.parametrize("masked", [False, True])
async def test_visits_of_the_period_in_scope_masked_or_not(
    session: AsyncSession, clock: FrozenClock, masked: bool
) -> None:
    community, this, _ = await fill(session, clock)
    head = community.head
    roles = await community.roles(session, head)
    data = await export_visits(
        session,
        head,
        roles,
        span=this,
        tz=TZ,
        now=community.now,
        translate=in_("zh_Hans"),
        masked=masked,
    )
    rows = read_back(data)
    assert len(rows) == 1  # this month, in EAST_2 only (not WEST_A, not last year)
    (row,) = rows
    assert row["走访方式"] == "电话联系" or row["走访方式"]
    assert str(row["记录"]).startswith("'=SUM")  # neutralised
    if masked:
        assert "13912345678" not in str(row["记录"]) and "***" in str(row["记录"])
        assert "****" in str(row["电话"])
    else:
        assert "13912345678" in str(row["记录"])
    audit = (await session.exec(select(AuditLog).where(AuditLog.action == "export:visits"))).one()
    assert audit.data["rows"] == 1


async def test_tickets_and_meetings_of_the_period(
    session: AsyncSession, clock: FrozenClock
) -> None:
    community, this, before = await fill(session, clock)
    admin = community.admin
    roles = await community.roles(session, admin)
    options: dict[str, Any] = {"tz": TZ, "now": community.now, "translate": in_("zh_Hans")}
    tickets = read_back(await export_tickets(session, admin, roles, span=this, **options))
    assert sorted(r["完整编号"] for r in tickets) == ["T1", "T2"]
    assert all(str(r["问题描述"]).startswith("'+1") for r in tickets)
    old = read_back(await export_tickets(session, admin, roles, span=before, **options))
    assert [r["完整编号"] for r in old] == ["T3"]
    masked = read_back(
        await export_tickets(session, admin, roles, span=this, masked=True, **options)
    )
    assert all("13912340000" not in str(r["问题描述"]) for r in masked)
    meetings = read_back(await export_meetings(session, admin, roles, span=this, **options))
    assert [r["会议名称"] for r in meetings] == ["'@月度例会"]


async def test_a_grid_outside_scope_is_refused_and_audited(
    session: AsyncSession, clock: FrozenClock
) -> None:
    community, this, _ = await fill(session, clock)
    head = community.head
    roles = await community.roles(session, head)
    with pytest.raises(NotAllowed) as refused:
        await export_visits(
            session,
            head,
            roles,
            span=this,
            tz=TZ,
            now=community.now,
            translate=in_("en"),
            grid_code=WEST_A,
        )
    assert refused.value.audit is not None and refused.value.audit.action == "refused:export"
