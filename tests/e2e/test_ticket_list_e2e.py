"""/tickets with more than a page: ◀ ▶, and a filter chosen with buttons only (nothing typed
but the command) — for someone on a small phone."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from bot.services.ticket_numbers import street_id_of
from models import Grid, Person, Ticket, TicketCategory, TicketState
from tests.e2e.harness import Harness

pytestmark = pytest.mark.e2e


async def test_pages_and_a_category_by_buttons(h: Harness) -> None:
    worker = await h.persona("worker")
    now = h.clock.now()
    async with h.session() as session:
        me = (await session.exec(select(Person).where(Person.telegram_id == worker.id))).one()
        resident_grid = (
            await session.exec(select(Grid).where(Grid.tier == 3).order_by(Grid.code))
        ).first()
        assert resident_grid is not None and me.id is not None
        for index in range(23):
            session.add(
                Ticket(
                    number=f"LIST-{index:03d}",
                    street_id=street_id_of(resident_grid),
                    short_number=5000 + index,
                    grid_id=resident_grid.id or 0,
                    category=TicketCategory.FIRE if index < 4 else TicketCategory.FACILITY,
                    description="测试工单",
                    state=TicketState.DISPATCHED,
                    next_deadline_at=now + timedelta(hours=index + 1),
                    created_at=now,
                    updated_at=now,
                )
            )
        await session.commit()

    await worker.send("/tickets")
    first = await worker.next_message()
    assert "共 23 件" in first.text and "第 1 页，共 3 页" in first.text
    assert "5000" in first.buttons and "5010" not in first.buttons
    assert "下一页 ▶" in first.buttons and "◀ 上一页" not in first.buttons
    await worker.press("下一页 ▶")
    await h.settle()
    second = (await worker.transcript()).messages[-1]
    assert second.edited and "第 2 页，共 3 页" in second.text and "5010" in second.buttons

    await worker.press("问题类别")
    await h.settle()
    menu = (await worker.transcript()).messages[-1]
    assert "哪一类" in menu.text and "消防隐患" in menu.buttons and "◀ 返回" in menu.buttons
    await worker.press("消防隐患")
    await h.settle()
    fire = (await worker.transcript()).messages[-1]
    assert "共 4 件" in fire.text and "筛选：消防隐患" in fire.text
    assert "✔ 问题类别" in fire.buttons and "清除筛选" in fire.buttons
    await worker.press("清除筛选")
    await h.settle()
    assert "共 23 件" in (await worker.transcript()).messages[-1].text

    await worker.send("/tickets 超期 你好")
    refused = await worker.next_message()
    assert "没有“你好”这个筛选条件" in refused.text
