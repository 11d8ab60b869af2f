"""定性 and 公示 end to end: handlers classify tickets on their card, the policy's rules route
them again, and an approval item's outcome reaches the residents' notice board."""

from __future__ import annotations

import pytest
from sqlmodel import col, select

from bot.services.ticket_numbers import shown_number
from bot.telegram.callbacks import ClassifyCb, ClassifyStep
from models import AuditLog, HandlingKind, Role, Ticket, TicketEvent, TicketState
from tests.e2e.harness import Harness, file_ticket_for

pytestmark = pytest.mark.e2e

CLASSIFY = "🏷 定性"


async def events_of(h: Harness, ticket: Ticket) -> list[TicketEvent]:
    async with h.session() as session:
        return list(
            (
                await session.exec(
                    select(TicketEvent)
                    .where(TicketEvent.ticket_id == ticket.id)
                    .order_by(col(TicketEvent.id))
                )
            ).all()
        )


async def reload(h: Harness, ticket: Ticket) -> Ticket:
    async with h.session() as session:
        return (await session.exec(select(Ticket).where(Ticket.id == ticket.id))).one()


async def test_a_worker_classifies_a_ticket_as_major_and_the_centre_takes_it(
    h: Harness,
) -> None:
    resident, worker = await h.persona("resident"), await h.persona("worker")
    head, community_head = await h.persona("head"), await h.persona("community_head")
    center = await h.persona("center")
    ticket = await file_ticket_for(h, "resident", "3号楼外墙瓷砖大面积松动，随时可能砸到行人")
    card = await worker.next_message()
    assert shown_number(ticket) in card.text and CLASSIFY in card.buttons

    await worker.press(CLASSIFY)
    picker = await worker.next_message()
    assert shown_number(ticket) in picker.text and "一般事项" in picker.text  # the kind it has now
    assert "立即上报街道综合调处中心" in picker.text  # what major means, in one line
    assert picker.buttons == ["需协调事项", "紧急事项", "需审批事项", "重大事项", "取消"]
    await worker.press("重大事项")
    await h.settle()
    why = (await worker.transcript()).messages[-1]  # the list of kinds became the question
    assert why.edited and why.message_id == picker.message_id
    assert "理由" in why.text and "不写理由，直接定性" in why.buttons
    await worker.send("外墙脱落涉及整栋楼<安全>")
    done = await worker.next_message()
    assert "已定性" in done.text and "重大事项" in done.text and "综合调处中心" in done.text

    new_card = await center.next_message()
    assert shown_number(ticket) in new_card.text and "重大事项" in new_card.text
    assert "✅ 签收" in new_card.buttons and "🔀 下派/上收" in new_card.buttons
    told_centre = await center.next_message()
    assert "定性为重大事项" in told_centre.text
    assert "理由：外墙脱落涉及整栋楼<安全>" in told_centre.text  # as written, escaped for HTML
    for above in (head, community_head):  # the chain is informed at once, without buttons
        informed = await above.next_message()
        assert shown_number(ticket) in informed.text and "重大事项" in informed.text
        assert informed.buttons == []
    await h.settle()
    old_card = (await worker.transcript()).messages[0]
    assert old_card.edited and old_card.buttons == []  # it moved on from the worker
    told = [m.text for m in (await resident.transcript()).bot_messages if "已定性为" in m.text]
    assert len(told) == 1 and "重大事项" in told[0] and "综合调处中心" in told[0]

    final = await reload(h, ticket)
    assert final.kind == HandlingKind.MAJOR and final.owner_role == Role.CENTER
    assert final.routing_rule == "major-to-centre" and final.state == TicketState.DISPATCHED
    (event,) = [e for e in await events_of(h, ticket) if e.action == "reclassified"]
    assert event.data["from_kind"] == "general" and event.data["to_kind"] == "major"
    assert event.note == "外墙脱落涉及整栋楼<安全>"

    await resident.send("/my")
    await resident.next_message()
    await resident.press(f"查看 {shown_number(ticket)} 的办理记录")
    history = await resident.next_message()
    assert "定性为重大事项" in history.text


async def test_a_head_classifies_an_approval_item_and_its_outcome_is_publicly_noticed(
    h: Harness,
) -> None:
    resident, worker = await h.persona("resident"), await h.persona("worker")
    head, community_head = await h.persona("head"), await h.persona("community_head")
    ticket = await file_ticket_for(h, "resident", "想在单元门口加装无障碍坡道，需要审批吗")
    await worker.next_message()
    await worker.press("⬆️ 上报")
    await worker.next_message()
    await worker.send("涉及公共部位改造，需网格长处理")
    await worker.next_message()
    assert shown_number(ticket) in (await head.next_message()).text  # the card came up
    await head.next_message()

    await head.press(CLASSIFY)
    picker = await head.next_message()
    assert "需审批事项" in picker.buttons and "结果公示" in picker.text
    await head.press("需审批事项")
    await h.settle()
    await head.press("不写理由，直接定性")
    await h.settle()
    answer = (await head.transcript()).messages[-1]
    assert answer.edited and "已定性" in answer.text and "网格长" in answer.text

    card = await community_head.next_message()
    assert shown_number(ticket) in card.text and "需审批事项" in card.text
    assert "✅ 签收" in card.buttons
    await community_head.next_message()
    assert any("需审批事项" in m.text for m in (await worker.transcript()).bot_messages)
    await community_head.press("✅ 签收")
    await h.settle()
    await community_head.press("✔️ 办结")
    await community_head.next_message()
    resident_name = (await reload(h, ticket)).reporter_id
    assert resident_name is not None
    await community_head.send("经社区审核同意加装坡道，施工联系 138 1234 5678，方案已报街道备案")
    await community_head.next_message()
    await h.settle()  # the resident's notices follow the head's reply

    messages = [m.text for m in (await resident.transcript()).bot_messages]
    assert any("已办结" in text or "办结" in text for text in messages)
    posted = [text for text in messages if "公示" in text and shown_number(ticket) in text]
    assert len(posted) == 1 and "/mygrid" in posted[0]

    await resident.send("/mygrid")
    board = await resident.next_message()
    assert "网格公示" in board.text and shown_number(ticket) in board.text
    assert "经社区审核同意加装坡道" in board.text
    assert "138 1234 5678" not in board.text and "***" in board.text  # no phone on the board
    assert "需审批事项" in board.text

    events = [e.action for e in await events_of(h, ticket)]
    assert events[-2:] == ["resolved", "public_notice"]
    assert "reclassified" in events


async def test_forged_classify_buttons_are_refused_and_audited(h: Harness) -> None:
    resident, worker = await h.persona("resident"), await h.persona("worker")
    head = await h.persona("head")
    ticket = await file_ticket_for(h, "resident", "小区路灯坏了一周，晚上很黑")
    await worker.next_message()
    for someone, command in ((resident, "/my"), (head, "/tickets")):  # a message to press on
        await someone.send(command)
        await someone.next_message()

    major = ClassifyCb(id=ticket.id or 0, kind=HandlingKind.MAJOR, step=ClassifyStep.GO).pack()
    await h.forge_press(resident, major)  # not a handler of this grid at all
    toast = (await resident.transcript()).toast
    assert toast is not None and "不在您负责的网格范围内" in toast["text"]
    await h.forge_press(head, major)  # in scope, but the workers are handling it
    toast = (await head.transcript()).toast
    assert toast is not None and "已有新进展" in toast["text"]
    same = ClassifyCb(id=ticket.id or 0, kind=HandlingKind.GENERAL, step=ClassifyStep.GO)
    await h.forge_press(worker, same.pack())
    toast = (await worker.transcript()).toast
    assert toast is not None and "已经是" in toast["text"]
    for data in (f"cl:{ticket.id}:huge:g", f"cl:+{ticket.id}:major:g", f"cl:{ticket.id}:major"):
        await h.forge_press(worker, data)
        toast = (await worker.transcript()).toast
        assert toast is not None and "按钮无效" in toast["text"], data

    final = await reload(h, ticket)
    assert final.kind == HandlingKind.GENERAL and final.owner_role == Role.WORKER
    async with h.session() as session:
        forged = (
            await session.exec(select(AuditLog).where(AuditLog.action == "refused:classify"))
        ).all()
        outside = (
            await session.exec(select(AuditLog).where(AuditLog.action == "refused:handle"))
        ).all()
    assert len(forged) == 3 and len(outside) == 1
    assert [e.action for e in await events_of(h, ticket)] == ["submitted", "dispatched"]
