"""下派 / 上收 end to end: the street centre places a ticket on a tier of its chain."""

from __future__ import annotations

import copy

import pytest
from sqlmodel import col, select

from bot.routing.policy import load_default_policy, policy_to_json
from bot.services.ticket_numbers import shown_number
from bot.telegram.callbacks import DispatchCb, DispatchStep
from models import (
    AuditLog,
    HandlingKind,
    PolicyVersion,
    Role,
    Ticket,
    TicketCategory,
    TicketEvent,
    TicketState,
)
from tests.e2e.harness import Harness, file_ticket_for

pytestmark = pytest.mark.e2e

DISPATCH = "🔀 下派/上收"


async def major_ticket_at_the_centre(h: Harness) -> Ticket:
    """A fire hazard routed to the street centre (an admin's rule), classified major (重大):
    nothing in the bot files a major ticket by itself yet, so the test sets the kind."""
    body = copy.deepcopy(policy_to_json(load_default_policy()))
    body["routes"].insert(
        0,
        {
            "name": "fire-to-centre",
            "categories": ["fire"],
            "to": {"tier": 0, "role": "center"},
            "inform": "all",
        },
    )
    async with h.session() as session:
        session.add(PolicyVersion(body=body, created_at=h.clock.now()))
        await session.commit()
    ticket = await file_ticket_for(
        h, "resident", "地下车库电动车集中飞线充电，随时可能起火", category=TicketCategory.FIRE
    )
    async with h.session() as session:
        row = (await session.exec(select(Ticket).where(Ticket.id == ticket.id))).one()
        row.kind = HandlingKind.MAJOR
        session.add(row)
        await session.commit()
    return ticket


async def test_the_centre_sends_a_major_ticket_down_to_the_grid_workers(h: Harness) -> None:
    resident, worker = await h.persona("resident"), await h.persona("worker")
    center = await h.persona("center")
    ticket = await major_ticket_at_the_centre(h)
    card = await center.next_message()
    assert shown_number(ticket) in card.text and DISPATCH in card.buttons
    informed = await worker.next_message()  # told at once, without buttons
    assert shown_number(ticket) in informed.text and informed.buttons == []

    await center.press(DISPATCH)
    picker = await center.next_message()
    assert shown_number(ticket) in picker.text and "下派" in picker.text
    assert "🏢 转部门" in picker.buttons
    assert not any("综合调处中心" in b for b in picker.buttons)  # where it is now: left out
    (to_workers,) = [b for b in picker.buttons if "网格员" in b]
    assert to_workers.startswith("⬇️")
    await center.press(to_workers)
    await h.settle()
    why = (await center.transcript()).messages[-1]  # the list of tiers became the question
    assert why.edited and why.message_id == picker.message_id
    assert "理由" in why.text and "不写理由，直接派出" in why.buttons
    await center.send("属地先处置，请网格员到现场核实<楼道>")
    done = await center.next_message()
    assert "已下派" in done.text and "网格员" in done.text

    new_card = await worker.next_message()
    assert shown_number(ticket) in new_card.text and "✅ 签收" in new_card.buttons
    assert DISPATCH not in new_card.buttons  # workers do not dispatch
    sent_to_me = await worker.next_message()
    assert "下派给您" in sent_to_me.text and "理由：属地先处置" in sent_to_me.text
    assert "<楼道>" in sent_to_me.text  # the reason is shown as written (escaped for HTML)

    told = [m.text for m in (await resident.transcript()).bot_messages if "已下派至" in m.text]
    assert len(told) == 1 and shown_number(ticket) in told[0]
    await h.settle()
    old_card = (await center.transcript()).messages[0]
    assert old_card.edited and old_card.buttons == []  # it moved on from the centre

    await worker.press("✅ 签收")
    await h.settle()
    async with h.session() as session:
        final = (await session.exec(select(Ticket).where(Ticket.id == ticket.id))).one()
        actions = (
            await session.exec(
                select(TicketEvent.action)
                .where(TicketEvent.ticket_id == ticket.id)
                .order_by(col(TicketEvent.id))
            )
        ).all()
    assert final.state == TicketState.ACCEPTED and final.owner_role == Role.WORKER
    assert actions == ["submitted", "dispatched", "dispatched", "accepted"]

    await resident.send("/my")
    await resident.next_message()
    await resident.press(f"查看 {shown_number(ticket)} 的办理记录")
    history = await resident.next_message()
    assert "中心下派" in history.text and "属地先处置" in history.text


async def test_an_admin_takes_a_ticket_up_to_the_community_without_a_reason(h: Harness) -> None:
    resident, worker = await h.persona("resident"), await h.persona("worker")
    community_head, admin = await h.persona("community_head"), await h.persona("admin")
    ticket = await file_ticket_for(h, "resident", "小区围墙被私自开了一个口子，外人随便进出")
    await worker.next_message()

    await admin.send("/tickets")
    await admin.next_message()
    await admin.press(shown_number(ticket))
    card = await admin.next_message()
    assert DISPATCH in card.buttons
    await admin.press(DISPATCH)
    picker = await admin.next_message()
    assert not any("网格员" in b for b in picker.buttons)  # the workers have it now
    (to_community,) = [b for b in picker.buttons if b.startswith("⬆️") and "社区" in b]
    await admin.press(to_community)
    await h.settle()
    await admin.press("不写理由，直接派出")
    await h.settle()
    answer = (await admin.transcript()).messages[-1]
    assert answer.edited and "已上收" in answer.text and answer.buttons == []

    came = await community_head.next_message()
    assert shown_number(ticket) in came.text and "✅ 签收" in came.buttons
    assert "上收给您" in (await community_head.next_message()).text
    moved = [m.text for m in (await worker.transcript()).bot_messages if "不再由您处理" in m.text]
    assert len(moved) == 1
    assert any("上收办理" in m.text for m in (await resident.transcript()).bot_messages)


async def test_a_worker_pressing_forged_dispatch_buttons_is_refused(h: Harness) -> None:
    worker = await h.persona("worker")
    ticket = await file_ticket_for(h, "resident", "路口的红绿灯坏了，车辆乱行很危险")
    await worker.next_message()
    forged = [
        DispatchCb(id=ticket.id or 0, tier=0, role=Role.CENTER, step=DispatchStep.GO).pack(),
        DispatchCb(id=ticket.id or 0, tier=2, role=Role.HEAD, step=DispatchStep.ASK).pack(),
        f"tk:s:{ticket.id}",
    ]
    for data in forged:
        await h.forge_press(worker, data)
        toast = (await worker.transcript()).toast
        assert toast is not None and "不在您负责的网格范围内" in toast["text"], data
    await h.forge_press(worker, f"dp:{ticket.id}:+0:center:g")  # not a form we ever write
    toast = (await worker.transcript()).toast
    assert toast is not None and "按钮无效" in toast["text"]

    async with h.session() as session:
        final = (await session.exec(select(Ticket).where(Ticket.id == ticket.id))).one()
        refusals = (
            await session.exec(select(AuditLog).where(AuditLog.action == "refused:dispatch"))
        ).all()
    assert final.owner_role == Role.WORKER and final.state == TicketState.DISPATCHED
    assert len(refusals) == 4  # every forged press is on record


async def test_a_centre_operator_forging_a_tier_outside_the_chain_is_refused(h: Harness) -> None:
    center = await h.persona("center")
    ticket = await major_ticket_at_the_centre(h)
    await center.next_message()
    for tier, role in ((5, Role.WORKER), (0, Role.ADMIN), (3, Role.HEAD)):
        data = DispatchCb(id=ticket.id or 0, tier=tier, role=role, step=DispatchStep.GO)
        await h.forge_press(center, data.pack())
        toast = (await center.transcript()).toast
        assert toast is not None and "层级链" in toast["text"]
    async with h.session() as session:
        final = (await session.exec(select(Ticket).where(Ticket.id == ticket.id))).one()
        refusals = (
            await session.exec(select(AuditLog).where(AuditLog.action == "refused:dispatch"))
        ).all()
    assert final.owner_role == Role.CENTER and len(refusals) == 3
