"""The ticket loop end to end: accept, ask, answer, resolve, rate, reopen, close — and races."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlmodel import col, select

from bot.services.qr import qr_png
from bot.services.ticket_numbers import shown_number
from models import (
    FsmRecord,
    Person,
    Rating,
    ReturnVisit,
    Role,
    RoleAssignment,
    Ticket,
    TicketEvent,
    TicketState,
)
from tests.e2e.harness import Harness, file_ticket_for

pytestmark = pytest.mark.e2e


async def test_the_full_loop_with_a_redo(h: Harness) -> None:
    resident = await h.persona("resident")
    worker = await h.persona("worker")
    ticket = await file_ticket_for(h, "resident", "3号楼门口的路灯坏了一个星期，晚上很黑")

    card = await worker.next_message()
    assert shown_number(ticket) in card.text and "路灯" in card.text
    assert "✅ 签收" in card.buttons

    await worker.press("✅ 签收")
    accepted = await resident.next_message()
    assert shown_number(ticket) in accepted.text and "签收" in accepted.text
    await h.settle()
    card = (await worker.transcript()).messages[0]
    assert card.edited and "📝 进展" in card.buttons and "✅ 签收" not in card.buttons

    await worker.press("❓ 询问反映人")
    prompt = await worker.next_message()
    assert shown_number(ticket) in prompt.text
    await worker.send("具体是哪一根灯杆？靠近哪个单元？")
    assert "已发送" in (await worker.next_message()).text
    question = await resident.next_message()
    assert "哪一根灯杆" in question.text

    await resident.send("2单元门口那根")
    assert "已转达" in (await resident.next_message()).text
    relayed = await worker.next_message()
    assert "2单元门口那根" in relayed.text

    await worker.press("✔️ 办结")
    await worker.next_message()
    await worker.send_photo(qr_png("lamp fixed"), caption="已更换灯泡")
    assert "办结" in (await worker.next_message()).text
    photo = await resident.next_message()
    assert photo.photo is not None
    rate_me = await resident.next_message()
    assert "已更换灯泡" in rate_me.text and "😞 不满意" in rate_me.buttons

    await resident.press("😞 不满意")
    await h.settle()
    reopened = (await resident.transcript()).texts
    assert any("重办" in text for text in reopened)
    await resident.press("跳过")

    await h.settle()
    await worker.press("✅ 签收")
    await h.settle()
    await worker.press("✔️ 办结")
    await h.settle()
    await worker.send("重新接线，已亮")
    await h.settle()
    await resident.press("😊 满意")
    await h.settle()

    async with h.session() as session:
        final = (await session.exec(select(Ticket).where(Ticket.id == ticket.id))).one()
        events = (
            await session.exec(
                select(TicketEvent.action, Person.name)
                .join(Person, col(Person.id) == TicketEvent.actor_id, isouter=True)
                .where(TicketEvent.ticket_id == ticket.id)
                .order_by(col(TicketEvent.id))
            )
        ).all()
    assert final.state == TicketState.CLOSED and final.solved and final.reopen_count == 1
    assert final.rating == Rating.SATISFIED
    assert [action for action, _ in events] == [
        "submitted",
        "dispatched",
        "accepted",
        "asked",
        "answered",
        "resolved",
        "reopened",
        "accepted",
        "resolved",
        "closed",
    ]
    assert all(name for action, name in events if action != "dispatched")

    await resident.send("/my")
    mine = await resident.next_message()
    assert shown_number(ticket) in mine.text and "已结案" in mine.text


async def test_two_workers_accept_at_once_and_one_wins(h: Harness) -> None:
    worker = await h.persona("worker")
    colleague = await h.persona("other_worker")
    async with h.session() as session:
        grid_id = (
            await session.exec(
                select(RoleAssignment.grid_id)
                .join(Person, col(Person.id) == RoleAssignment.person_id)
                .where(Person.telegram_id == worker.id, RoleAssignment.role == Role.WORKER)
            )
        ).one()
        other = (
            await session.exec(select(Person).where(Person.telegram_id == colleague.id))
        ).one()
        session.add(
            RoleAssignment(
                person_id=other.id or 0,
                role=Role.WORKER,
                grid_id=grid_id,
                created_at=h.clock.now(),
            )
        )
        await session.commit()
    ticket = await file_ticket_for(h, "resident", "楼道里堆满杂物，消防通道被堵")
    await worker.next_message()
    await colleague.next_message()

    await asyncio.gather(worker.press("✅ 签收"), colleague.press("✅ 签收"))
    await h.settle()
    toasts = [(await p.transcript()).toast for p in (worker, colleague)]
    texts = sorted(t["text"] for t in toasts if t)
    assert len(texts) == 2
    assert texts[0].startswith("已签收") or texts[1].startswith("已签收")
    assert any("已有新进展" in t for t in texts), texts
    async with h.session() as session:
        accepted = (
            await session.exec(
                select(TicketEvent).where(
                    TicketEvent.ticket_id == ticket.id, TicketEvent.action == "accepted"
                )
            )
        ).all()
    assert len(accepted) == 1


async def test_a_stale_button_is_answered_with_who_has_it(h: Harness) -> None:
    worker = await h.persona("worker")
    head = await h.persona("head")
    ticket = await file_ticket_for(h, "resident", "小区广场的健身器材断了，很危险")
    await worker.next_message()
    await worker.press("⬆️ 上报")
    await worker.next_message()
    await worker.send("需要社区协调维修资金")
    await h.settle()
    head_card = await head.next_message()
    assert shown_number(ticket) in head_card.text and "✅ 签收" in head_card.buttons
    old = (await worker.transcript()).messages[0]
    assert old.buttons == []  # the worker's card no longer offers actions
    await h.forge_press(worker, f"tk:a:{ticket.id}")
    toast = (await worker.transcript()).toast
    assert toast is not None and "已派遣" in toast["text"]


async def test_an_unrated_ticket_gets_a_return_visit(h: Harness) -> None:
    resident = await h.persona("resident")
    worker = await h.persona("worker")
    ticket = await file_ticket_for(h, "resident", "单元门禁坏了，外人随便进出")
    await worker.next_message()
    await worker.press("✅ 签收")
    await h.settle()
    await worker.press("✔️ 办结")
    await h.settle()
    await worker.send("已更换门禁电源")
    await h.settle()
    assert "满意" in (await resident.transcript()).texts[-1]

    # Friday 17:45: a full working day has passed since it was resolved
    await h.advance(timedelta(days=1, hours=8, minutes=45), jump=True)
    prompt = [m for m in (await worker.transcript()).bot_messages if "回访：" in m.text]
    assert len(prompt) == 1 and shown_number(ticket) in prompt[0].text
    await worker.press("🙂 基本满意")
    await h.settle()
    async with h.session() as session:
        final = (await session.exec(select(Ticket).where(Ticket.id == ticket.id))).one()
    assert final.state == TicketState.CLOSED and final.rating == Rating.BASICALLY_SATISFIED
    recorded = (await worker.transcript()).bot_messages
    assert any("回访已记录" in m.text and m.buttons == [] for m in recorded)
    await h.advance(timedelta(hours=2), jump=True)
    async with h.session() as session:
        visits = (
            await session.exec(select(ReturnVisit).where(ReturnVisit.ticket_id == ticket.id))
        ).all()
    assert len(visits) == 1 and visits[0].done_at is not None  # one return visit per ticket


async def test_a_cancel_under_the_same_step_opened_for_another_ticket_cancels_nothing(
    h: Harness,
) -> None:
    """A worker opens 📝 进展 on one ticket, then on another: the first prompt's 取消 no longer
    cancels anything (the bot now waits for the other ticket's note), and the note typed next
    goes to the other ticket."""
    worker = await h.persona("worker")
    first = await file_ticket_for(h, "resident", "3号楼门口的路灯坏了一个星期，晚上很黑")
    first_card = await worker.next_message()
    second = await file_ticket_for(h, "resident", "单元门禁坏了，外人随便进出")
    second_card = await worker.next_message()
    for card in (first_card, second_card):
        await worker.press("✅ 签收", message_id=card.message_id)
        await h.settle()
    await worker.press("📝 进展", message_id=first_card.message_id)
    first_prompt = await worker.next_message()
    await worker.press("📝 进展", message_id=second_card.message_id)
    second_prompt = await worker.next_message()
    assert shown_number(first) in first_prompt.text and shown_number(second) in second_prompt.text

    await worker.press("取消", message_id=first_prompt.message_id)
    await h.settle()
    transcript = await worker.transcript()
    assert transcript.toast is not None and transcript.toast["text"] == "当前没有需要取消的操作。"
    stale = next(m for m in transcript.messages if m.message_id == first_prompt.message_id)
    assert stale.buttons == []
    await worker.send("已联系物业，明天上午来修")
    await h.settle()
    async with h.session() as session:
        notes = (
            await session.exec(select(TicketEvent.ticket_id).where(TicketEvent.action == "note"))
        ).all()
    assert notes == [second.id]


async def test_a_cancel_pressed_after_its_step_cancels_nothing(h: Harness) -> None:
    """The 取消 under a prompt that waited for typing, pressed once the text was sent: nothing
    is left to cancel — the bot says so and takes the button away, and a conversation begun
    since is kept. Made-up step data cancels nothing either."""
    resident = await h.persona("resident")
    worker = await h.persona("worker")
    ticket = await file_ticket_for(h, "resident", "3号楼门口的路灯坏了一个星期，晚上很黑")
    await worker.next_message()
    await worker.press("✅ 签收")
    await h.settle()
    await worker.press("❓ 询问反映人")
    await h.settle()
    await worker.send("具体是哪一根灯杆？")
    await h.settle()
    await resident.press("✍️ 回答")
    await h.settle()
    prompt = (await resident.transcript()).bot_messages[-1]
    assert prompt.buttons == ["取消"]
    await resident.send("2单元门口那根")
    await h.settle()
    await resident.send("/report")  # something else in progress now
    await h.settle()

    await resident.press("取消", message_id=prompt.message_id)
    await h.settle()
    transcript = await resident.transcript()
    assert transcript.toast is not None and transcript.toast["text"] == "当前没有需要取消的操作。"
    stale = next(m for m in transcript.messages if m.message_id == prompt.message_id)
    assert stale.buttons == [] and stale.text == prompt.text  # the prompt reads as before

    for forged in (
        "cs:NewReport.description:0",
        "cs:NewReport.category:x",
        "cs:NewReport.category:1:2",
        "cs:NewReport.description",
        "cs:",
        "cs",
        "cs:a:b",
    ):
        await h.forge_press(resident, forged)  # (on the newest message: the category question)
    async with h.session() as session:
        states = (await session.exec(select(FsmRecord.state))).all()
        answered = (await session.exec(select(Ticket).where(Ticket.id == ticket.id))).one()
    assert states == ["NewReport:category"]  # the /report begun since is still there
    assert answered.state == TicketState.IN_PROGRESS  # and the answer went through
    await resident.press("公共设施损坏")
    await h.settle()
    step = (await resident.transcript()).bot_messages[-1]
    assert "第 2 步" in step.text  # the report goes on to its next step
