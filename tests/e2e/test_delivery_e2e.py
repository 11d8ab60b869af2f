"""Delivery end to end: the ticket loop through 5xx answers and a 429 storm with nothing lost
or sent twice, a person who blocked the bot reported to their head once, and a webhook
redelivery that acts once."""

from __future__ import annotations

import logging

import pytest
from sqlmodel import col, func, select

from bot.i18n import gettext_for
from bot.labels import ROLE
from bot.sandbox import Faults
from bot.sandbox.updates import PendingUpdate
from bot.services import unreachable
from bot.services.qr import qr_png
from bot.services.ticket_numbers import shown_number
from models import (
    OutboxMessage,
    OutboxStatus,
    Person,
    ProcessedUpdate,
    Rating,
    Role,
    Ticket,
    TicketEvent,
    TicketState,
)
from tests.e2e.harness import BOT_USERNAME, Harness, file_ticket_for

pytestmark = pytest.mark.e2e

# what the outbox sender calls; getUpdates and answerCallbackQuery are left alone, so the
# faults fall on delivery (a failed getUpdates only makes aiogram's poller back off)
SENDING = frozenset(
    {
        "sendMessage",
        "sendPhoto",
        "sendDocument",
        "sendMediaGroup",
        "editMessageText",
        "editMessageCaption",
        "editMessageReplyMarkup",
        "deleteMessage",
        "setMyCommands",
    }
)
SEED = 31  # its first twelve draws hold three faults, so the run sees some whatever the order


async def accounted(h: Harness) -> None:
    """Every outbox row was sent, and the chats hold exactly the messages the outbox sent:
    none missing, none extra (a second copy would be a message no row knows)."""
    bot = h.server.get_bot(BOT_USERNAME)
    async with h.session() as session:
        rows = (await session.exec(select(OutboxMessage))).all()
    assert rows and {r.status for r in rows} == {OutboxStatus.SENT}, [
        (r.id, r.method, r.status, r.last_error) for r in rows if r.status != OutboxStatus.SENT
    ]
    for chat_id in {r.chat_id for r in rows if r.chat_id != 0}:
        conv = h.server.conversation(bot, chat_id)
        assert conv is not None
        shown = {m.message_id for m in conv.messages.values() if m.from_bot and not m.service}
        sent = {r.message_id for r in rows if r.chat_id == chat_id}
        assert shown == sent, chat_id
        assert h.server.stats.delivered[(bot.id, chat_id)] == len(shown), chat_id


async def test_the_full_loop_survives_5xx_and_a_429_storm_with_nothing_lost_or_doubled(
    h: Harness,
) -> None:
    h.server.set_faults(Faults(error_rate=0.10, methods=SENDING), seed=SEED)
    resident = await h.persona("resident")
    worker = await h.persona("worker")
    ticket = await file_ticket_for(h, "resident", "3号楼门口的路灯坏了一个星期，晚上很黑")
    assert shown_number(ticket) in (await worker.next_message()).text

    h.server.start_429_storm(duration=1.5, retry_after=1)
    await worker.press("✅ 签收")
    accepted = await resident.next_message()
    assert shown_number(ticket) in accepted.text and "签收" in accepted.text
    await h.settle()

    await worker.press("❓ 询问反映人")
    await worker.next_message()
    await worker.send("具体是哪一根灯杆？靠近哪个单元？")
    assert "已发送" in (await worker.next_message()).text
    assert "哪一根灯杆" in (await resident.next_message()).text
    await resident.send("2单元门口那根")
    assert "已转达" in (await resident.next_message()).text
    assert "2单元门口那根" in (await worker.next_message()).text

    await worker.press("✔️ 办结")
    await worker.next_message()
    await worker.send_photo(qr_png("lamp fixed"), caption="已更换灯泡")
    assert "办结" in (await worker.next_message()).text
    assert (await resident.next_message()).photo is not None
    rate_me = await resident.next_message()
    assert "😞 不满意" in rate_me.buttons

    await resident.press("😞 不满意")
    await h.settle()
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
        actions = (
            await session.exec(
                select(TicketEvent.action)
                .where(TicketEvent.ticket_id == ticket.id)
                .order_by(col(TicketEvent.id))
            )
        ).all()
    assert final.state == TicketState.CLOSED and final.rating == Rating.SATISFIED
    assert actions.count("accepted") == 2 and actions.count("closed") == 1
    faults = h.server.stats.faults
    assert faults["storm"] >= 1 and faults["error_500"] + faults["error_502"] >= 3
    await accounted(h)


async def test_a_person_who_blocked_the_bot_is_reported_to_their_head_once(h: Harness) -> None:
    resident = await h.persona("resident")
    worker, head = await h.persona("worker"), await h.persona("head")
    ticket = await file_ticket_for(h, "resident", "小区东门的井盖松动了，踩上去会响")
    await worker.next_message()
    await resident.block()

    await worker.press("✅ 签收")  # the resident would be told: Telegram answers 403
    await h.settle()
    await worker.press("📝 进展")
    await worker.next_message()
    await worker.send("已联系物业，明天上午更换")
    await h.settle()

    async with h.session() as session:
        person = (
            await session.exec(select(Person).where(Person.telegram_id == resident.id))
        ).one()
        failed = (
            await session.exec(
                select(func.count()).where(
                    OutboxMessage.chat_id == resident.id,
                    OutboxMessage.status == OutboxStatus.FAILED,
                )
            )
        ).one()
    assert not person.reachable and failed >= 1
    role = gettext_for("zh_Hans", ROLE[Role.RESIDENT])
    notice = gettext_for("zh_Hans", unreachable.UNREACHABLE, name=person.name, role=role)
    told = [m.text for m in (await head.transcript()).bot_messages if notice in m.text]
    assert len(told) == 1 and f"{person.phone}" in told[0]
    assert shown_number(ticket) in (await worker.transcript()).messages[0].text

    await resident.unblock()  # and writes again: reachable once more
    await resident.send("/help")
    assert "/language" in (await resident.next_message()).text
    async with h.session() as session:
        person = (
            await session.exec(select(Person).where(Person.telegram_id == resident.id))
        ).one()
    assert person.reachable


async def test_a_webhook_redelivery_of_a_press_acts_once(
    h_webhook: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    h = h_webhook
    resident, worker = await h.persona("resident"), await h.persona("worker")
    ticket = await file_ticket_for(h, "resident", "楼道的声控灯不亮了，老人上下楼看不见")
    await worker.next_message()

    queue = h.server.get_bot(BOT_USERNAME).updates
    delivered: list[PendingUpdate] = []
    remove = queue.remove

    def remember(update: PendingUpdate) -> None:  # the sandbox forgets a delivered update
        delivered.append(update)
        remove(update)

    queue.remove = remember  # type: ignore[method-assign]
    await worker.press("✅ 签收")
    await h.settle()
    assert "签收" in (await resident.next_message()).text
    [press] = [u for u in delivered if u.kind == "callback_query"]

    caplog.set_level(logging.INFO, logger="bot.telegram.middlewares")
    deliveries = h.server.stats.webhook_deliveries
    press.failures, press.not_before = 0, 0.0  # Telegram got no answer in time: it retries
    queue.pending.append(press)
    queue.notify()
    await h.settle()

    assert h.server.stats.webhook_deliveries == deliveries + 1  # the same update, POSTed again
    assert f"update {press.update_id} already handled" in caplog.text
    await resident.no_message()
    async with h.session() as session:
        accepted = (
            await session.exec(
                select(func.count()).where(
                    TicketEvent.ticket_id == ticket.id, TicketEvent.action == "accepted"
                )
            )
        ).one()
        marks = (
            await session.exec(
                select(func.count()).where(ProcessedUpdate.update_id == press.update_id)
            )
        ).one()
    assert accepted == 1 and marks == 1
