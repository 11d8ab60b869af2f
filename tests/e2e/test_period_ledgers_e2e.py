"""Ledgers of a period end to end: /export tickets|visits|meetings for this month, last month or
typed dates, by command and by buttons; each opens in openpyxl with Chinese headers and the
period's rows only; bad periods, unknown ledgers and foreign grids get a clear answer."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlmodel import col, select

from bot.services.periods import local_day
from bot.services.ticket_numbers import shown_number
from bot.telegram.callbacks import ExportPeriodCb, Ledger, SpanChoice
from models import AuditLog, Grid, Household, Meeting, Person, Ticket, Visit, VisitKind
from tests.e2e.harness import Harness, file_ticket_for

pytestmark = pytest.mark.e2e


async def rows_of(h: Harness, message: Any) -> list[list[Any]]:
    assert message.document is not None, message.text
    data = await h.client.download(message.document["file_id"])
    book = load_workbook(io.BytesIO(data))
    return [list(row) for row in book.active.iter_rows(values_only=True)]


async def setup(h: Harness) -> dict[str, Any]:
    """Two tickets this month and one last month; a visit and a meeting in each month."""
    worker_chat = await h.persona("worker")
    now = h.clock.now()
    day = local_day(now, h.settings.tz)
    last_month = now - timedelta(days=day.day + 3)
    this_one = await file_ticket_for(h, "resident", "楼下商铺油烟很大，电话 13912345678")
    second = await file_ticket_for(h, "resident", "小区门禁坏了")
    old = await file_ticket_for(h, "resident", "上个月的路面坑洼")
    async with h.session() as session:
        row = (await session.exec(select(Ticket).where(Ticket.id == old.id))).one()
        row.created_at = last_month
        session.add(row)
        worker = (
            await session.exec(select(Person).where(Person.telegram_id == worker_chat.id))
        ).one()
        homes = (
            await session.exec(select(Household).where(Household.worker_id == worker.id).limit(2))
        ).all()
        grid = (await session.exec(select(Grid).where(Grid.id == homes[0].grid_id))).one()
        for home, when, note in (
            (homes[0], now, "=1+1 本月走访"),
            (homes[1], last_month, "上月走访"),
        ):
            session.add(
                Visit(
                    household_id=home.id or 0,
                    worker_id=worker.id or 0,
                    kind=VisitKind.IN_PERSON,
                    visited_at=when,
                    note=note,
                    created_at=when,
                    updated_at=when,
                )
            )
        for when, title in ((now, '=HYPERLINK("http://x")本月例会'), (last_month, "上月例会")):
            session.add(
                Meeting(
                    organiser_id=worker.id or 0,
                    grid_id=grid.id or 0,
                    title=title,
                    starts_at=when,
                    minutes="联系人电话 13800001111",
                    created_at=when,
                    updated_at=when,
                )
            )
        await session.commit()
    return {"this": [this_one, second], "old": old, "grid": grid, "homes": homes}


async def test_each_ledger_of_a_period_opens_with_the_right_rows(h: Harness) -> None:
    made = await setup(h)
    head = await h.persona("head")

    await head.send("/export tickets")
    assert "正在生成台账" in (await head.next_message()).text
    rows = await rows_of(h, await head.next_message())
    assert rows[0][:4] == ["工单号", "完整编号", "网格编码", "网格名称"] and "催办次数" in rows[0]
    assert sorted(r[0] for r in rows[1:]) == sorted(shown_number(t) for t in made["this"])
    assert any("13912345678" in str(r[11]) for r in rows[1:])  # a head may read phones

    await head.send("/export tickets 上月")
    await head.next_message()
    rows = await rows_of(h, await head.next_message())
    assert [r[0] for r in rows[1:]] == [shown_number(made["old"])]

    await head.send(f"/export visits {made['grid'].code} 本月")
    await head.next_message()
    rows = await rows_of(h, await head.next_message())
    assert rows[0][0] == "走访时间" and "户主姓名" in rows[0] or "户主" in rows[0][4]
    assert len(rows) == 2 and rows[1][9] == "'=1+1 本月走访"  # never a formula

    await head.send("/export meetings")
    await head.next_message()
    rows = await rows_of(h, await head.next_message())
    assert rows[0][3] == "会议名称" and len(rows) == 2
    assert str(rows[1][3]).startswith("'=HYPERLINK")

    # by buttons only: /export, the visit ledger, last month
    await head.send("/export")
    menu = await head.next_message()
    assert "🚶 走访台账" in menu.buttons and "📋 工单台账" in menu.buttons
    await head.press("🚶 走访台账")
    await h.settle()
    asked = (await head.transcript()).messages[-1]
    assert "哪个时段" in asked.text and "上月" in asked.buttons
    await head.press("上月")
    await h.settle()
    document = (await head.transcript()).messages[-1]
    rows = await rows_of(h, document)
    assert len(rows) == 2 and rows[1][9] == "上月走访"

    async with h.session() as session:
        audits = (
            await session.exec(
                select(AuditLog.action).where(col(AuditLog.action).startswith("export:"))
            )
        ).all()
    assert sorted(set(audits)) == ["export:meetings", "export:tickets", "export:visits"]


async def test_bad_periods_ledgers_and_grids_are_answered(h: Harness) -> None:
    head, worker = await h.persona("head"), await h.persona("worker")
    for typed, expected in (
        ("/export visits 2026-02-30", "没有这一天"),
        ("/export visits 2026-13", "没有这一天"),
        ("/export tickets 明年", "看不懂时段"),
        ("/export tickets 2026-10-31 2026-10-01", "结束日期早于开始日期"),
        ("/export meetings 2020-01-01 2026-01-01", "最长 366 天"),
        ("/export 你好", "没有叫“你好”的台账"),
        ("/export visits 999999999999 本月", "没有编码为 999999999999 的网格"),
        ("/export tickets =cmd|' /C calc'!A0", "看不懂时段"),
    ):
        await head.send(typed)
        answer = await head.next_message()
        assert expected in answer.text, (typed, answer.text)
        assert answer.document is None
    # a forged period button for another community's grid: refused and audited
    async with h.session() as session:
        foreign = (
            await session.exec(select(Grid).where(Grid.tier == 1).order_by(col(Grid.code).desc()))
        ).first()
    assert foreign is not None
    forged = ExportPeriodCb(ledger=Ledger.VISITS, grid=foreign.id or 0, span=SpanChoice.LAST_MONTH)
    await head.forge_press(forged.pack())
    await h.settle()
    toast = (await head.transcript()).toast
    assert toast is not None and f"网格 {foreign.code} 不在您负责的范围内" in toast["text"]
    for data in ("ep:v:1:xx", "ep:h:0:tm", f"ep:v:+{foreign.id}:tm"):
        await head.forge_press(data)
        await h.settle()
        toast = (await head.transcript()).toast
        assert toast is not None and "已失效" in toast["text"], data
    async with h.session() as session:
        refusals = (
            await session.exec(select(AuditLog).where(AuditLog.action == "refused:export"))
        ).all()
    assert len(refusals) == 1 and refusals[0].object_id == foreign.id
    assert not any(m.document for m in (await head.transcript()).bot_messages)

    await worker.send("/export visits")  # a worker keeps no ledgers
    assert "没有导出台账的权限" in (await worker.next_message()).text
