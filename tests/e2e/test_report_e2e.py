"""/report end to end: the real bot against the sandbox, a demo resident in the chat.

Labels and texts are looked up in the Simplified Chinese catalog (the demo people's language),
so the tests read what the resident reads.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import col, select

from bot import labels
from bot.i18n import gettext_for
from bot.sandbox.client import ChatMessage, Persona
from bot.sandbox.media import sample_png
from bot.services.deeplinks import join_payload
from bot.services.notice_board import resident_grid
from bot.services.ticket_numbers import shown_number
from bot.telegram import report_views as views
from models import (
    FsmRecord,
    HandlingKind,
    Person,
    Ticket,
    TicketCategory,
    TicketEvent,
    TicketPhoto,
)
from tests.e2e.harness import Harness

pytestmark = pytest.mark.e2e

ZH = "zh_Hans"


def zh(msgid: str, **params: object) -> str:
    return gettext_for(ZH, msgid, **params)


def category(value: TicketCategory) -> str:
    return zh(labels.TICKET_CATEGORY[value])


async def newest_ticket(h: Harness) -> Ticket:
    async with h.session() as session:
        ticket = (
            await session.exec(select(Ticket).order_by(col(Ticket.id).desc()).limit(1))
        ).first()
    assert ticket is not None
    return ticket


async def start_report(resident: Persona, kind: TicketCategory, description: str) -> ChatMessage:
    """/report, a category and the description: returns the photo step's question."""
    await resident.send("/report")
    assert (
        zh("What kind of problem is it? Choose one below.") in (await resident.next_message()).text
    )
    await resident.press(category(kind))
    assert "2" in (await resident.next_message()).text  # step 2 of 5: what happened
    await resident.send(description)
    return await resident.next_message()


async def finish_report(resident: Persona, address: str, *, danger: bool = False) -> ChatMessage:
    """From the photo step: no photos, a typed address, the danger question, send."""
    await resident.press(zh(views.NO_PHOTOS))
    await resident.next_message()
    await resident.send(address)
    await resident.next_message()  # the place, noted
    await resident.next_message()  # is anyone in danger?
    await resident.press(zh(views.DANGER_YES if danger else views.DANGER_NO))
    if danger:
        await resident.next_message()  # 110 / 119 / 120
    summary = await resident.next_message()
    assert zh("Please check your report:") in summary.text
    await resident.press(zh(views.SEND))
    return await resident.next_message()


async def test_a_resident_reports_with_an_album_and_a_location_and_the_worker_gets_it(
    h: Harness,
) -> None:
    resident = await h.persona("resident")
    worker = await h.persona("worker")
    asked = await start_report(
        resident, TicketCategory.FACILITY, "小区东门的路灯坏了三天，晚上很黑，老人走路不安全"
    )
    assert zh(views.NO_PHOTOS) in asked.buttons

    await resident.send_photos([sample_png(8, 6), sample_png(6, 8, (40, 40, 220))])
    await h.settle()
    transcript = await resident.transcript()
    answer = transcript.bot_messages[-1]
    assert transcript.messages[-2].photo is not None  # one answer, after both photos
    status = zh(
        "Got {count} of at most {limit} photos. Send more, or press “{done}”.",
        count=2,
        limit=5,
        done=zh(views.DONE),
    )
    assert status in answer.text and zh(views.DONE) in answer.buttons
    resident.cursor = answer.message_id

    await resident.press(zh(views.DONE))
    where = await resident.next_message()
    assert zh(views.AT_HOME) in str((await resident.transcript()).reply_keyboard)
    assert "4" in where.text
    await resident.press_reply(zh(views.SEND_LOCATION), location=(24.5801, 118.0902))
    noted = await resident.next_message()
    assert "24.58010" in noted.text
    assert (await resident.transcript()).reply_keyboard == []
    await resident.next_message()  # is anyone in danger?
    await resident.press(zh(views.DANGER_NO))
    await resident.next_message()  # the summary
    await resident.press(zh(views.SEND))
    done = await resident.next_message()

    ticket = await newest_ticket(h)
    assert shown_number(ticket) in done.text
    assert (ticket.latitude, ticket.longitude) == (24.5801, 118.0902)
    assert ticket.kind == HandlingKind.GENERAL
    async with h.session() as session:
        photos = (
            await session.exec(select(TicketPhoto).where(TicketPhoto.ticket_id == ticket.id))
        ).all()
    assert len(photos) == 2
    card = await worker.next_message()
    assert shown_number(ticket) in card.text


async def test_a_fire_with_someone_in_danger_says_call_119_first_and_the_ticket_is_urgent(
    h: Harness,
) -> None:
    resident = await h.persona("resident")
    await start_report(resident, TicketCategory.FIRE, "楼道里电动车在充电，电线冒烟了")
    await resident.press(zh(views.NO_PHOTOS))
    await resident.next_message()
    await resident.send("3号楼1单元楼道")
    await resident.next_message()
    await resident.next_message()
    await resident.press(zh(views.DANGER_YES))
    emergency = (await resident.next_message()).text.splitlines()
    # what to call comes first: 119 (fire) with 120 (ambulance); 110 after, for anything else
    assert emergency[0] == zh("If life or property is in danger, call now:")
    assert emergency[1] == "🚒 " + zh("{number} — fire", number="119")
    assert emergency[2] == "🚑 " + zh("{number} — ambulance", number="120")
    assert "110" in emergency[3] and "119" not in emergency[3]
    summary = await resident.next_message()
    assert zh("Please check your report:") in summary.text
    await resident.press(zh(views.SEND))
    done = (await resident.next_message()).text
    ticket = await newest_ticket(h)
    assert ticket.kind == HandlingKind.URGENT and shown_number(ticket) in done
    # the last word on an urgent report starts with whom to call, before anything else
    first_line = done.splitlines()[0]
    assert first_line.startswith("🆘") and "119" in first_line and "110" not in first_line
    assert done.index("119") < done.index(shown_number(ticket))


async def test_a_dispute_turning_violent_says_call_110_first(h: Harness) -> None:
    resident = await h.persona("resident")
    await start_report(resident, TicketCategory.DISPUTE, "楼上两家人打起来了，有人受伤")
    await finish_report(resident, "5号楼2单元", danger=True)
    transcript = await resident.transcript()
    emergency = next(
        m.text for m in transcript.bot_messages if zh(views.DANGER_TITLE) in m.text
    ).splitlines()
    assert emergency[1] == "🚓 " + zh("{number} — police", number="110")
    assert emergency[2] == "🚑 " + zh("{number} — ambulance", number="120")
    assert transcript.bot_messages[-1].text.splitlines()[0].startswith("🆘")


async def test_cancel_mid_way_sends_nothing(h: Harness) -> None:
    resident = await h.persona("resident")
    await start_report(resident, TicketCategory.SANITATION, "垃圾桶满了好几天没人清理")
    await resident.press(zh(views.NO_PHOTOS))
    await resident.next_message()
    assert (await resident.transcript()).reply_keyboard  # the place step's keyboard
    await resident.send("/cancel")
    cancelled = await resident.next_message()
    assert "/report" in cancelled.text
    assert (await resident.transcript()).reply_keyboard == []
    async with h.session() as session:
        assert (await session.exec(select(Ticket))).all() == []
        assert (await session.exec(select(FsmRecord))).all() == []


async def test_the_conversation_survives_a_restart_of_the_bot(h: Harness) -> None:
    resident = await h.persona("resident")
    asked = await start_report(resident, TicketCategory.PROPERTY, "电梯坏了两天，物业一直没来修")
    assert zh(views.NO_PHOTOS) in asked.buttons
    await h.settle()  # the question is delivered and marked sent; then the process dies
    await h.restart_bot()
    done = await finish_report(resident, "5号楼电梯")
    ticket = await newest_ticket(h)
    assert shown_number(ticket) in done.text
    assert ticket.category == TicketCategory.PROPERTY and ticket.address == "5号楼电梯"


async def test_a_likely_duplicate_is_shown_and_joined(h: Harness) -> None:
    resident = await h.persona("resident")
    await start_report(resident, TicketCategory.FACILITY, "东门的路灯坏了，晚上很黑")
    await finish_report(resident, "东门")
    original = await newest_ticket(h)

    async with h.session() as session:
        person = (
            await session.exec(select(Person).where(Person.telegram_id == resident.id))
        ).one()
        assert person.id is not None
        grid = await resident_grid(session, person.id)
    assert grid is not None
    neighbour = await h.newcomer("钱阿姨")
    await neighbour.start(join_payload(grid.code))
    await neighbour.next_message()
    await neighbour.press(zh("Skip"))
    await neighbour.next_message()

    await h.advance(timedelta(minutes=30))
    await start_report(neighbour, TicketCategory.FACILITY, "路灯不亮，东门那边黑乎乎的")
    offer = await finish_report(neighbour, "东门口")
    assert shown_number(original) in offer.text and "30" in offer.text  # reported 30 min ago
    assert "东门的路灯坏了" in offer.text
    assert zh(views.SAME) in offer.buttons and zh(views.NEW) in offer.buttons

    await neighbour.press(zh(views.SAME))
    joined = await neighbour.next_message()
    assert shown_number(original) in joined.text
    async with h.session() as session:
        assert len((await session.exec(select(Ticket))).all()) == 1
        event = (
            await session.exec(select(TicketEvent).where(TicketEvent.action == "joined"))
        ).one()
        follower = await session.get(Person, event.actor_id)
    assert event.ticket_id == original.id
    assert follower is not None and follower.telegram_id == neighbour.id

    # the neighbour follows it now: they see how it goes, not who reported it or where
    await neighbour.send("/my")
    await h.settle()
    mine = (await neighbour.transcript()).bot_messages[-1]
    assert shown_number(original) in mine.text, mine.text
    [history_button] = mine.buttons  # the one ticket they follow
    await neighbour.press(history_button)
    await h.settle()
    history = (await neighbour.transcript()).bot_messages[-1]
    assert shown_number(original) in history.text
    reporter = person.name
    assert reporter and reporter not in history.text, history.text
