"""Supervisors (督查) end to end: a read-only /tickets over their scope with filter buttons,
催办 of an overdue ticket (its handler pinged, the urge an event), and a spot check (抽查)
that marks one visit false on the worker's record. Forged presses are refused and audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import col, select

from bot.services.ticket_numbers import shown_number
from bot.telegram.callbacks import ListMenu, SpotCheckCb, TicketAction, TicketCb, TicketListCb
from models import (
    AuditLog,
    Household,
    Person,
    SpotCheck,
    SpotCheckKind,
    SpotCheckResult,
    Ticket,
    TicketEvent,
    Visit,
    VisitKind,
)
from tests.e2e.harness import Harness, file_ticket_for

pytestmark = pytest.mark.e2e


async def person_of(h: Harness, telegram_id: int) -> Person:
    async with h.session() as session:
        return (await session.exec(select(Person).where(Person.telegram_id == telegram_id))).one()


async def make_overdue(h: Harness, ticket: Ticket) -> None:
    async with h.session() as session:
        row = (await session.exec(select(Ticket).where(Ticket.id == ticket.id))).one()
        row.next_deadline_at = h.clock.now() - timedelta(hours=2)
        session.add(row)
        await session.commit()


async def test_a_supervisor_urges_an_overdue_ticket(h: Harness) -> None:
    supervisor, worker = await h.persona("supervisor"), await h.persona("worker")
    late = await file_ticket_for(h, "resident", "2号楼垃圾桶满了三天没人清")
    await file_ticket_for(h, "resident", "小区门口路灯不亮")
    await make_overdue(h, late)
    await worker.next_message()
    await worker.next_message()

    await supervisor.send("/tickets")
    listing = await supervisor.next_message()
    assert "此命令仅供" not in listing.text
    assert shown_number(late) in listing.text and "⏰ 超期" in listing.buttons
    await supervisor.press("⏰ 超期")
    await h.settle()
    overdue = (await supervisor.transcript()).messages[-1]
    assert overdue.edited and "超期" in overdue.text
    assert (
        shown_number(late) in overdue.buttons
        and len([b for b in overdue.buttons if b[:1].isdigit()]) == 1
    )

    await supervisor.press(shown_number(late))
    card = await supervisor.next_message()
    assert card.buttons == ["📣 催办", "📜 办理记录"]  # read-only: no 签收, no 办结
    await supervisor.press("📣 催办")
    await h.settle()
    toast = (await supervisor.transcript()).toast
    assert toast is not None and "已催办" in toast["text"]
    pinged = [m for m in (await worker.transcript()).bot_messages if "督查催办" in m.text]
    assert len(pinged) == 1 and shown_number(late) in pinged[0].text
    assert "✅ 签收" in pinged[0].buttons  # the card anew, to act on at once

    await supervisor.press("📣 催办", message_id=card.message_id)  # again at once: refused
    await h.settle()
    toast = (await supervisor.transcript()).toast
    assert toast is not None and "一小时内已催办" in toast["text"]

    # /ticket finds it by either number, read-only; its history shows the urge
    for typed in (shown_number(late), late.number, "abc", "9" * 60):
        await supervisor.send(f"/ticket {typed}")
        found = await supervisor.next_message()
        if typed.isdigit() and len(typed) < 10 or typed == late.number:
            assert found.buttons == ["📣 催办", "📜 办理记录"], typed
        else:
            assert "不是工单编号" in found.text, typed
    await supervisor.press("📜 办理记录")
    history = await supervisor.next_message()
    assert "督查催办" in history.text

    # a supervisor may not handle the ticket, even by forging the button
    await h.forge_press(supervisor, TicketCb(action=TicketAction.ACCEPT, id=late.id or 0).pack())
    async with h.session() as session:
        urges = (
            await session.exec(
                select(TicketEvent).where(
                    TicketEvent.ticket_id == late.id, TicketEvent.action == "urged"
                )
            )
        ).all()
        refused = (
            await session.exec(select(AuditLog).where(AuditLog.action == "refused:handle"))
        ).all()
    assert len(urges) == 1 and urges[0].data["overdue"] is True
    assert len(refused) == 1


async def test_a_worker_cannot_urge_or_filter_another_scope(h: Harness) -> None:
    other_worker = await h.persona("other_worker")
    ticket = await file_ticket_for(h, "resident", "楼道堆放杂物")
    await other_worker.send("/tickets")
    listing = await other_worker.next_message()
    assert shown_number(ticket) not in listing.text  # another grid's ticket
    await h.forge_press(other_worker, TicketCb(action=TicketAction.URGE, id=ticket.id or 0).pack())
    toast = (await other_worker.transcript()).toast
    assert toast is not None and "不在您负责的网格范围内" in toast["text"]
    async with h.session() as session:
        grid_id = (await session.exec(select(Ticket.grid_id).where(Ticket.id == ticket.id))).one()
    forged = TicketListCb(
        state=0,
        overdue=0,
        category=0,
        source=0,
        grid=grid_id,
        department=0,
        page=0,
        menu=ListMenu.LIST,
    )
    await h.forge_press(other_worker, forged.pack())
    toast = (await other_worker.transcript()).toast
    assert toast is not None and "不在您负责的网格范围内" in toast["text"]
    out_of_range = forged.model_copy(update={"grid": 0, "state": 99})
    await h.forge_press(other_worker, out_of_range.pack())
    toast = (await other_worker.transcript()).toast
    assert toast is not None and "已失效" in toast["text"]
    async with h.session() as session:
        refused = (
            await session.exec(
                select(AuditLog).where(
                    col(AuditLog.action).in_(["refused:supervise", "refused:view"])
                )
            )
        ).all()
    assert len(refused) == 2


async def test_a_spot_check_marks_one_visit_false(h: Harness) -> None:
    supervisor, worker = await h.persona("supervisor"), await h.persona("worker")
    worker_row = await person_of(h, worker.id)
    now = h.clock.now()
    async with h.session() as session:
        homes = (
            await session.exec(
                select(Household).where(Household.worker_id == worker_row.id).limit(2)
            )
        ).all()
        for index, home in enumerate(homes):
            session.add(
                Visit(
                    household_id=home.id or 0,
                    worker_id=worker_row.id or 0,
                    kind=VisitKind.IN_PERSON,
                    visited_at=now - timedelta(hours=index + 1),
                    note=f"了解老人近况 {index}",
                    created_at=now,
                    updated_at=now,
                )
            )
        await session.commit()

    await supervisor.send("/spotcheck")
    summary = await supervisor.next_message()
    assert "督查抽查" in summary.text and "走访 2 次" in summary.text
    items = [await supervisor.next_message(), await supervisor.next_message()]
    assert all(m.buttons == ["✅ 属实", "❌ 不属实"] for m in items)
    assert any(worker_row.name in m.text for m in items)
    await supervisor.press("❌ 不属实", message_id=items[0].message_id)
    await h.settle()
    marked = next(
        m for m in (await supervisor.transcript()).messages if m.message_id == items[0].message_id
    )
    assert marked.edited and "不属实" in marked.text and marked.buttons == []

    async with h.session() as session:
        checks = (await session.exec(select(SpotCheck).order_by(col(SpotCheck.id)))).all()
    assert len(checks) == 2 and all(c.kind == SpotCheckKind.VISIT for c in checks)
    assert [c.result for c in checks] == [SpotCheckResult.FALSE, None]
    assert checks[0].worker_id == worker_row.id and checks[0].checked_at is not None

    # on the worker's record: their own scorecard counts it
    await worker.send("/score")
    card = await worker.next_message()
    assert "抽查不属实" in card.text and "1/1" in card.text

    # marked once only; a forged press on it, or by a worker, is refused
    await h.forge_press(
        supervisor, SpotCheckCb(id=checks[0].id or 0, result=SpotCheckResult.CONFIRMED).pack()
    )
    toast = (await supervisor.transcript()).toast
    assert toast is not None and "已经记录过" in toast["text"]
    await worker.send("/spotcheck")
    refused = await worker.next_message()
    assert "仅供督查" in refused.text
    await h.forge_press(
        worker, SpotCheckCb(id=checks[1].id or 0, result=SpotCheckResult.CONFIRMED).pack()
    )
    toast = (await worker.transcript()).toast
    assert toast is not None and "不在您负责的网格范围内" in toast["text"]
    async with h.session() as session:
        refused = (
            await session.exec(select(AuditLog).where(AuditLog.action == "refused:supervise"))
        ).all()
    assert len(refused) == 2  # the /spotcheck and the forged mark

    await supervisor.send("/spotcheck")  # the two were drawn: nothing left this month
    assert "没有可抽查" in (await supervisor.next_message()).text
    for bad in ("/spotcheck 2026-02-30", "/spotcheck 明年", "/spotcheck 2099-01"):
        await supervisor.send(bad)
        answer = await supervisor.next_message()
        assert (
            "没有这一天" in answer.text or "看不懂时段" in answer.text or "还没开始" in answer.text
        )
