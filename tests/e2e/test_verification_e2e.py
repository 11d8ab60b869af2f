"""核查结案 end to end: a kind whose policy verifies waits for the on-site check after 办结;
the verifier sends it back once, then confirms with a photo; only then does the reporter rate."""

from __future__ import annotations

import copy

import pytest
from sqlmodel import col, select

from bot.routing.policy import load_default_policy, policy_to_json
from bot.services.qr import qr_png
from bot.services.ticket_numbers import shown_number
from bot.telegram.callbacks import RateCb, TicketAction, TicketCb
from models import (
    AuditLog,
    PolicyVersion,
    Rating,
    Ticket,
    TicketEvent,
    TicketPhoto,
    TicketState,
)
from tests.e2e.harness import Harness, file_ticket_for

pytestmark = pytest.mark.e2e


async def verify_general(h: Harness) -> None:
    body = copy.deepcopy(policy_to_json(load_default_policy()))
    body["kinds"]["general"]["verify"] = True
    async with h.session() as session:
        session.add(PolicyVersion(body=body, created_at=h.clock.now()))
        await session.commit()


async def reload(h: Harness, ticket: Ticket) -> Ticket:
    async with h.session() as session:
        return (await session.exec(select(Ticket).where(Ticket.id == ticket.id))).one()


async def test_verification_sends_back_once_then_confirms_and_the_resident_rates(
    h: Harness,
) -> None:
    await verify_general(h)
    resident, worker, center = (
        await h.persona("resident"),
        await h.persona("worker"),
        await h.persona("center"),
    )
    ticket = await file_ticket_for(h, "resident", "5号楼楼道灯不亮，晚上上楼很危险")
    await worker.next_message()
    await worker.press("✅ 签收")
    await h.settle()
    await worker.press("✔️ 办结")
    await h.settle()
    assert "怎么处理" in (await worker.transcript()).messages[-1].text
    await worker.send("已更换楼道灯")
    await h.settle()

    held = await reload(h, ticket)
    assert held.state == TicketState.VERIFYING and held.next_deadline_at is None
    told = [m for m in (await resident.transcript()).bot_messages if "核查" in m.text]
    assert told and not any("😞 不满意" in m.buttons for m in told)  # no rating yet
    # the worker handled it, and is the only worker of the grid: the centre checks it
    check = [m for m in (await center.transcript()).bot_messages if shown_number(ticket) in m.text]
    card = next(m for m in check if "✅ 核查通过" in m.buttons)
    assert "↩️ 退回" in card.buttons
    assert any("请到现场核查" in m.text for m in check)

    # the resident cannot rate it yet, even with a forged button
    await h.forge_press(resident, RateCb(id=ticket.id or 0, rating=Rating.SATISFIED).pack())
    toast = (await resident.transcript()).toast
    assert toast is not None and "已有新进展" in toast["text"]
    assert (await reload(h, ticket)).state == TicketState.VERIFYING

    # the handler cannot check their own work, even by a forged press
    await h.forge_press(worker, TicketCb(action=TicketAction.VERIFY, id=ticket.id or 0).pack())
    toast = (await worker.transcript()).toast
    assert toast is not None and "不能自己核查" in toast["text"]

    await center.press("↩️ 退回")
    await h.settle()
    prompt = (await center.transcript()).messages[-1]
    assert shown_number(ticket) in prompt.text and "还有哪些没办好" in prompt.text
    await center.send("灯还是不亮")
    await h.settle()
    back = await reload(h, ticket)
    assert back.state == TicketState.IN_PROGRESS and back.next_deadline_at is not None
    headline = [m for m in (await worker.transcript()).bot_messages if "退回" in m.text]
    assert headline and "灯还是不亮" in headline[-1].text and "✔️ 办结" in headline[-1].buttons

    await h.settle()
    await worker.press("✔️ 办结", message_id=headline[-1].message_id)
    await h.settle()
    assert "怎么处理" in (await worker.transcript()).messages[-1].text
    await worker.send("更换了开关，已亮")
    await h.settle()
    assert (await reload(h, ticket)).state == TicketState.VERIFYING

    await center.press("✅ 核查通过")
    await h.settle()
    await center.send("没有照片")  # a photo is needed
    await h.settle()
    refusal = (await center.transcript()).messages[-1]
    assert "现场拍摄的照片" in refusal.text
    await center.send_photo(qr_png("lamp on"), caption="现场已亮")
    await h.settle()

    done = await reload(h, ticket)
    assert done.state == TicketState.RESOLVED and done.verified_at is not None
    rate_me = [m for m in (await resident.transcript()).bot_messages if "😞 不满意" in m.buttons]
    assert len(rate_me) == 1 and "更换了开关" in rate_me[0].text
    await resident.press("😊 满意")
    await h.settle()
    final = await reload(h, ticket)
    assert final.state == TicketState.CLOSED and final.rating == Rating.SATISFIED

    async with h.session() as session:
        actions = (
            await session.exec(
                select(TicketEvent.action)
                .where(TicketEvent.ticket_id == ticket.id)
                .order_by(col(TicketEvent.id))
            )
        ).all()
        photos = (
            await session.exec(
                select(TicketPhoto).where(
                    TicketPhoto.ticket_id == ticket.id, TicketPhoto.stage == "verification"
                )
            )
        ).all()
        refused = (
            await session.exec(select(AuditLog).where(AuditLog.action == "refused:verify"))
        ).all()
    assert list(actions) == [
        "submitted",
        "dispatched",
        "accepted",
        "resolved",
        "sent_back",
        "resolved",
        "verified",
        "closed",
    ]
    assert len(photos) == 1 and len(refused) == 1


async def test_the_grid_worker_checks_what_the_head_resolved(h: Harness) -> None:
    await verify_general(h)
    resident, worker, head = (
        await h.persona("resident"),
        await h.persona("worker"),
        await h.persona("head"),
    )
    ticket = await file_ticket_for(h, "resident", "小区东门护栏断了一截")
    await worker.next_message()
    await worker.press("⬆️ 上报")
    await h.settle()
    await worker.send("需要网格长协调维修")
    await h.settle()
    await head.press("✅ 签收")
    await h.settle()
    await head.press("✔️ 办结")
    await h.settle()
    await head.send("已联系物业焊接护栏")
    await h.settle()
    assert (await reload(h, ticket)).state == TicketState.VERIFYING

    asked = [m for m in (await worker.transcript()).bot_messages if "✅ 核查通过" in m.buttons]
    assert asked and shown_number(ticket) in asked[-1].text
    await worker.press("✅ 核查通过", message_id=asked[-1].message_id)
    await h.settle()
    await worker.send_photo(qr_png("rail fixed"))
    await h.settle()
    done = await reload(h, ticket)
    assert done.state == TicketState.RESOLVED and done.verified_at is not None
    rate_me = [m for m in (await resident.transcript()).bot_messages if "😞 不满意" in m.buttons]
    assert len(rate_me) == 1 and "现场核查" in rate_me[0].text
