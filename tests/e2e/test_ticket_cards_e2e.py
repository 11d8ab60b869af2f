"""A handler's ticket card end to end: a redo (重办) comes as the card with the reporter's
complaint on it, and the card's 📷 button sends the report's photos — to those who may see
them, never to a forged press."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import col, select

from bot.sandbox.client import ChatMessage, Persona
from bot.sandbox.media import image_size
from bot.services.qr import qr_png
from bot.services.ticket_numbers import shown_number
from models import AuditLog, OutboxMessage, Ticket, TicketPhoto, TicketState
from tests.e2e.harness import Harness, file_ticket_for

pytestmark = pytest.mark.e2e

COMPLAINT = "灯还是不亮，晚上楼道口还是黑的"


async def resolved_ticket(h: Harness, description: str) -> Ticket:
    """A ticket the worker accepted and resolved; the resident is asked to rate it."""
    worker = await h.persona("worker")
    ticket = await file_ticket_for(h, "resident", description)
    await worker.next_message()
    await worker.press("✅ 签收")
    await h.settle()
    await worker.press("✔️ 办结")
    await h.settle()
    await worker.send("已更换灯泡")
    await h.settle()
    return ticket


async def new_messages(persona: Persona, after: int) -> list[ChatMessage]:
    return [m for m in (await persona.transcript()).bot_messages if m.message_id > after]


async def newest_id(persona: Persona) -> int:
    return max((m.message_id for m in (await persona.transcript()).messages), default=0)


async def test_a_redo_reaches_the_worker_as_one_card_with_the_complaint(h: Harness) -> None:
    resident, worker = await h.persona("resident"), await h.persona("worker")
    ticket = await resolved_ticket(h, "3号楼门口的路灯坏了一个星期，晚上很黑")
    before = await newest_id(worker)

    await resident.press("😞 不满意")
    await h.settle()
    [card] = await new_messages(worker, before)  # one message: the card, not plain texts
    assert "✅ 签收" in card.buttons and "📝 进展" not in card.buttons
    assert shown_number(ticket) in card.text and "不满意" in card.text and "重办" in card.text

    before = await newest_id(worker)
    await resident.send(COMPLAINT)
    await h.settle()
    [card] = await new_messages(worker, before)  # the card again, the complaint on it
    assert COMPLAINT in card.text and "✅ 签收" in card.buttons
    cards = [m for m in (await worker.transcript()).bot_messages if m.buttons]
    assert [m.message_id for m in cards if "✅ 签收" in m.buttons] == [card.message_id]

    await worker.press("✅ 签收", message_id=card.message_id)
    await h.settle()
    assert "✔️ 办结" in (await worker.transcript()).bot_messages[-1].buttons

    await worker.send("/tickets")
    listed = await worker.next_message()
    assert shown_number(ticket) in listed.text
    await worker.press(shown_number(ticket))
    opened = await worker.next_message()
    assert COMPLAINT in opened.text and "✔️ 办结" in opened.buttons


async def test_a_redo_heard_on_a_return_visit_sends_the_card(h: Harness) -> None:
    worker = await h.persona("worker")
    ticket = await resolved_ticket(h, "单元门禁坏了，外人随便进出")
    await h.advance(timedelta(days=1, hours=8, minutes=45), jump=True)  # a working day later
    prompt = [m for m in (await worker.transcript()).bot_messages if "回访：" in m.text]
    assert len(prompt) == 1
    before = await newest_id(worker)
    await worker.press("😞 不满意", message_id=prompt[0].message_id)
    await h.settle()
    fresh = [m for m in await new_messages(worker, before) if shown_number(ticket) in m.text]
    cards = [m for m in fresh if "✅ 签收" in m.buttons]
    assert len(cards) == 1 and "不满意" in cards[0].text
    assert all(m.buttons or "回访已记录" in m.text for m in fresh)  # no plain redo notice
    async with h.session() as session:
        final = (await session.exec(select(Ticket).where(Ticket.id == ticket.id))).one()
    assert final.state == TicketState.REOPENED


def stored_photos(h: Harness, count: int) -> list[str]:
    """Photos a resident sent, as the sandbox keeps them (their ``file_id``)."""
    ids = []
    for n in range(count):
        data = qr_png(f"photo {n}")
        ids.append(h.server.files.add("photo", data, size=image_size(data)).file_id)
    return ids


def photo_ids(messages: list[ChatMessage]) -> list[str]:
    return [m.photo["file_id"] for m in messages if m.photo]


async def test_the_card_sends_the_reports_photos_as_an_album(h: Harness) -> None:
    worker, head = await h.persona("worker"), await h.persona("head")
    filed = stored_photos(h, 3)
    ticket = await file_ticket_for(h, "resident", "楼道里堆满杂物", photo_file_ids=tuple(filed))
    card = await worker.next_message()
    assert "📷 照片 3 张" in card.text and "📷 查看照片（3）" in card.buttons

    await worker.press("📷 查看照片（3）")
    await h.settle()
    album = [m for m in await new_messages(worker, card.message_id) if m.photo]
    assert photo_ids(album) == filed
    assert len({m.raw.get("media_group_id") for m in album}) == 1 and album[0].raw.get(
        "media_group_id"
    )
    assert shown_number(ticket) in (album[0].caption or "")
    async with h.session() as session:
        calls = (await session.exec(select(OutboxMessage.method))).all()
    assert calls.count("sendMediaGroup") == 1

    # the head above the grid opens it from /tickets and sees them too
    await head.send("/tickets")
    await head.next_message()
    await head.press(shown_number(ticket))
    opened = await head.next_message()
    await head.press("📷 查看照片（3）", message_id=opened.message_id)
    await h.settle()
    assert photo_ids(await new_messages(head, opened.message_id)) == filed


async def test_more_than_ten_photos_go_as_several_albums(h: Harness) -> None:
    worker = await h.persona("worker")
    filed = stored_photos(h, 12)
    first = tuple(filed[:2])
    ticket = await file_ticket_for(h, "resident", "楼道里堆满杂物", photo_file_ids=first)
    async with h.session() as session:  # more than a report takes: as if kept over time
        session.add_all(
            TicketPhoto(ticket_id=ticket.id or 0, file_id=f, created_at=h.clock.now())
            for f in filed[2:]
        )
        await session.commit()
    card = await worker.next_message()
    await worker.press("📷 查看照片（2）")
    await h.settle()
    sent = [m for m in await new_messages(worker, card.message_id) if m.photo]
    assert photo_ids(sent) == filed
    groups = [m.raw.get("media_group_id") for m in sent]
    assert len(set(groups)) == 2 and all(groups) and groups.count(groups[0]) == 6
    assert "第 1 组，共 2 组" in (sent[0].caption or "")
    assert "第 2 组，共 2 组" in (sent[6].caption or "")


async def test_one_photo_goes_by_itself(h: Harness) -> None:
    worker = await h.persona("worker")
    [photo] = stored_photos(h, 1)
    await file_ticket_for(h, "resident", "路边井盖松动", photo_file_ids=(photo,))
    card = await worker.next_message()
    await worker.press("📷 查看照片（1）")
    await h.settle()
    [sent] = [m for m in await new_messages(worker, card.message_id) if m.photo]
    assert photo_ids([sent]) == [photo] and not sent.raw.get("media_group_id")


async def test_forged_photo_presses_are_refused_and_audited(h: Harness) -> None:
    resident, outsider = await h.persona("resident"), await h.persona("other_worker")
    filed = stored_photos(h, 2)
    ticket = await file_ticket_for(h, "resident", "楼道里堆满杂物", photo_file_ids=tuple(filed))
    for someone in (resident, outsider):  # a message to press on
        await someone.send("/my" if someone is resident else "/tickets")
        await someone.next_message()
    before = await newest_id(outsider)

    await h.forge_press(outsider, f"tp:{ticket.id}")  # another grid's ticket
    toast = (await outsider.transcript()).toast
    assert toast is not None and "不在您负责的网格范围内" in toast["text"]
    hostile = (
        f"tp:+{ticket.id}",
        f"tp:{ticket.id}:1",
        f"tp: {ticket.id}",
        "tp:abc",
        f"tp:{2**40}",
        "tp:-1",
        "tp:",
    )
    for data in hostile:
        await h.forge_press(outsider, data)
        toast = (await outsider.transcript()).toast
        assert toast is not None and "按钮无效" in toast["text"], data
    assert await new_messages(outsider, before) == []  # not a photo reached them

    async with h.session() as session:
        refused = (
            await session.exec(
                select(AuditLog)
                .where(AuditLog.action == "refused:view")
                .order_by(col(AuditLog.id))
            )
        ).all()
    assert [(r.object_type, r.object_id) for r in refused[:1]] == [("ticket", ticket.id)]
    assert [r.object_type for r in refused[1:]] == ["callback"] * len(hostile)
    assert [r.detail for r in refused[1:]] == list(hostile)

    # the reporter may see their own photos (the same press, not forged for them)
    before = await newest_id(resident)
    await h.forge_press(resident, f"tp:{ticket.id}")
    assert photo_ids(await new_messages(resident, before)) == filed
