"""Ticket numbers as people read them: the short number on every screen, and /ticket finding a
ticket by either number — end to end."""

from __future__ import annotations

import pytest

from bot.services.ticket_numbers import shown_number
from tests.e2e.harness import Harness, file_ticket_for

pytestmark = pytest.mark.e2e


async def test_people_read_the_short_number_and_never_the_long_one(h: Harness) -> None:
    resident, worker = await h.persona("resident"), await h.persona("worker")
    ticket = await file_ticket_for(h, "resident", "3号楼门口的路灯坏了")
    assert shown_number(ticket) == "2048" and len(ticket.number) > 20

    card = await worker.next_message()
    assert "工单 2048" in card.text and ticket.number not in card.text
    await worker.send("/tickets")
    listing = await worker.next_message()
    assert "2048" in listing.text and ticket.number not in listing.text
    assert "2048" in listing.buttons
    await resident.send("/my")
    mine = await resident.next_message()
    assert "2048" in mine.text and ticket.number not in mine.text
    assert "查看 2048 的办理记录" in mine.buttons


async def test_ticket_finds_a_ticket_by_either_number(h: Harness) -> None:
    resident, worker = await h.persona("resident"), await h.persona("worker")
    ticket = await file_ticket_for(h, "resident", "3号楼门口的路灯坏了")
    await worker.next_message()  # the card it was dispatched with

    for typed in ("2048", "#２０４８", ticket.number):
        await worker.send(f"/ticket {typed}")
        card = await worker.next_message()
        assert "工单 2048" in card.text and "✅ 签收" in card.buttons, typed

    # its reporter reads how it goes
    await resident.send("/ticket 2048")
    history = await resident.next_message()
    assert "工单 2048" in history.text and "状态" in history.text and history.buttons == []


async def test_ticket_refuses_what_is_not_theirs_or_no_number(h: Harness) -> None:
    await file_ticket_for(h, "resident", "3号楼门口的路灯坏了")
    stranger = await h.persona("other_resident")
    for typed, answer in (
        ("2048", "没有找到编号为 2048 的工单"),  # someone else's: as if there were none
        ("9999", "没有找到编号为 9999 的工单"),
        ("", "要查哪张工单"),
        ("<b>x</b>", "“<b>x</b>”不是工单编号"),  # shown as typed, not as markup
        ("二〇四八", "不是工单编号"),
        ("2048；删除", "不是工单编号"),
        ("1" * 60, "不是工单编号"),
    ):
        await stranger.send(f"/ticket {typed}".strip())
        reply = await stranger.next_message()
        assert answer in reply.text and not reply.has_entity("bold"), (typed, reply.text)
