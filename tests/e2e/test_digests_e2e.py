"""Digests end to end: the weekly one reaches the demo head once on Monday 08:30; the centre gets
the dispute screening on the 16th; /indicators answers a head in the chat."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from sqlalchemy import func
from sqlmodel import col, select

from bot.clock import FrozenClock
from bot.i18n import gettext_for
from bot.labels import TICKET_STATE
from bot.sandbox.client import ChatMessage
from bot.services.ticket_numbers import shown_number
from models import OutboxMessage, Ticket, TicketCategory, TicketState
from scheduler import jobs
from tests.e2e.harness import Harness, file_ticket_for

pytestmark = pytest.mark.e2e

SHANGHAI = ZoneInfo("Asia/Shanghai")
WEEKLY = gettext_for("zh_Hans", "Weekly digest (每周简报)")
SCREENING = gettext_for("zh_Hans", "Dispute screening (半月一排查一上报)")


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI).astimezone(UTC)  # type: ignore[misc]


async def jump(h: Harness, until: datetime) -> None:
    """Move the shared clock far ahead, each sweep run once at its last fire time (as a
    scheduler back from a pause would), then let the bot deliver what came due."""
    h.clock.advance(until - h.clock.now())
    await h.sweeps.catch_up(coalesce=True)
    assert h.app is not None
    h.app.sender.wake()
    await h.settle()


async def texts_with(h: Harness, persona_name: str, marker: str) -> list[str]:
    persona = await h.persona(persona_name)
    return [m.text for m in (await persona.transcript()).bot_messages if marker in m.text]


async def test_the_head_gets_the_weekly_digest_once_and_the_centre_the_screening_on_the_16th(
    h: Harness,
) -> None:
    dispute = await file_ticket_for(
        h, "resident", "楼上楼下因为漏水吵了好几次，需要调解", category=TicketCategory.DISPUTE
    )
    await jump(h, local(2026, 3, 16, 8, 29))  # Thursday → Monday morning, a minute early
    assert await texts_with(h, "head", WEEKLY) == []

    await h.advance(local(2026, 3, 16, 8, 30) - h.clock.now())
    [digest] = await texts_with(h, "head", WEEKLY)
    # the ticket was filed on Thursday of week 11, in the head's subtree
    assert gettext_for("zh_Hans", "New tickets: {count}", count=1) in digest
    async with h.session() as session:
        row = (
            await session.exec(
                select(OutboxMessage).where(col(OutboxMessage.ref).startswith("dg:week:"))
            )
        ).first()
    assert row is not None and not row.urgent  # quiet hours would hold it

    # the 16th at 09:00: the half-monthly dispute screening to the centre
    await jump(h, local(2026, 3, 16, 8, 59))
    assert await texts_with(h, "center", SCREENING) == []
    await h.advance(local(2026, 3, 16, 9, 0) - h.clock.now())
    [screening] = await texts_with(h, "center", SCREENING)
    assert shown_number(dispute) in screening
    assert gettext_for("zh_Hans", "Open neighbour disputes: {count}", count=1) in screening
    async with h.session() as session:
        state = (await session.exec(select(Ticket.state).where(Ticket.id == dispute.id))).one()
    line = gettext_for(
        "zh_Hans",
        "{number} · {days} d · {state}",
        number=shown_number(dispute),
        days=4,  # filed on Thursday the 12th at 09:00
        state=gettext_for("zh_Hans", TICKET_STATE[TicketState(state)]),
    )
    assert "• " + line in screening

    # later in the same week nothing more: the sweeps run on, and a second run of the
    # weekly job (a restarted scheduler) finds this week's digest already sent
    await jump(h, local(2026, 3, 19, 10))
    await jobs.weekly_digests(replace(h.sweeps.ctx, clock=FrozenClock(h.clock.now())))
    await jump(h, local(2026, 3, 22, 23))
    assert len(await texts_with(h, "head", WEEKLY)) == 1
    assert len(await texts_with(h, "center", SCREENING)) == 1

    await jump(h, local(2026, 3, 23, 8, 30))  # the next Monday: the next week's digest
    assert len(await texts_with(h, "head", WEEKLY)) == 2


async def test_a_head_asks_for_the_indicators_of_their_grids(h: Harness) -> None:
    await file_ticket_for(h, "resident", "小区路灯坏了一个星期了")
    head = await h.persona("head")
    await head.send("/indicators")
    report = await head.next_message()
    assert gettext_for("zh_Hans", "Tickets filed: {count}", count=1) in report.text
    assert report.has_entity("bold")
    worker = await h.persona("worker")
    await worker.send("/indicators")
    refusal = await worker.next_message()
    assert refusal.text == gettext_for(
        "zh_Hans", "The indicators are for grid heads, the centre and supervisors."
    )


PNG = b"\x89PNG\r\n\x1a\n"
MONTHLY = gettext_for(
    "zh_Hans",
    "Monthly assessment (月度考核) for {month}",
    month=gettext_for("zh_Hans", "{year}/{month}", year=2026, month=3),
)


async def files_after(h: Harness, persona_name: str, marker: str) -> list[ChatMessage]:
    """The photos and documents the bot sent after its message containing ``marker``."""
    persona = await h.persona(persona_name)
    messages = (await persona.transcript()).bot_messages
    [digest] = [m for m in messages if marker in m.text and m.photo is None]
    return [
        m
        for m in messages
        if m.message_id > digest.message_id and (m.photo is not None or m.document is not None)
    ]


async def download(h: Harness, message: ChatMessage) -> bytes:
    if message.photo is not None:
        photo = message.photo
        largest = photo[-1] if isinstance(photo, list) else photo
        return await h.client.download(str(largest["file_id"]))
    assert message.document is not None
    return await h.client.download(str(message.document["file_id"]))


async def test_the_digests_carry_the_charts_and_the_month_s_workbook(h: Harness) -> None:
    await file_ticket_for(h, "resident", "小区路灯坏了一个星期了")
    for name in ("head", "center"):  # their chats exist before the digests come
        await h.persona(name)
    await jump(h, local(2026, 3, 16, 8, 29))
    await h.advance(local(2026, 3, 16, 8, 30) - h.clock.now())  # Monday: the weekly digest
    weekly_files = await files_after(h, "head", WEEKLY)
    assert weekly_files and all(m.photo is not None for m in weekly_files)
    for message in weekly_files:
        png = await download(h, message)
        assert png.startswith(PNG) and len(png) > 10_000
    async with h.session() as session:  # one row per file, after the text, never urgent
        rows = (
            await session.exec(
                select(OutboxMessage).where(col(OutboxMessage.ref).startswith("dg:week:"))
            )
        ).all()
    assert {r.method for r in rows} == {"sendMessage", "sendPhoto"}
    assert not any(r.urgent for r in rows)

    await jump(h, local(2026, 4, 1, 9, 29))
    await h.advance(local(2026, 4, 1, 9, 30) - h.clock.now())  # March's, to the centre
    monthly_files = await files_after(h, "center", MONTHLY)
    photos = [m for m in monthly_files if m.photo is not None]
    [ledger] = [m for m in monthly_files if m.document is not None]
    assert photos
    for message in photos:
        png = await download(h, message)
        assert png.startswith(PNG) and len(png) > 10_000
    assert ledger.document is not None and str(ledger.document["file_name"]).endswith(".xlsx")
    book = load_workbook(io.BytesIO(await download(h, ledger)))
    summary = [list(r) for r in book[book.sheetnames[0]].iter_rows(values_only=True)]
    header, rows_, total = summary[0], summary[1:-1], summary[-1]
    assert total[1] == gettext_for("zh_Hans", "Total") and rows_
    done = [i for i, title in enumerate(header) if str(title).endswith("：完成")]
    of = [i for i, title in enumerate(header) if str(title).endswith("：应完成")]
    assert done and len(done) == len(of)
    for column in done + of:
        assert total[column] == sum(row[column] or 0 for row in rows_), header[column]
    # the ticket filed on the 12th counts in March's figures: an independent count
    async with h.session() as session:
        filed = (
            await session.exec(
                select(func.count())
                .select_from(Ticket)
                .where(
                    col(Ticket.created_at) >= local(2026, 3, 1),
                    col(Ticket.created_at) < local(2026, 4, 1),
                )
            )
        ).one()
    assert filed == 1
    assert (
        gettext_for("zh_Hans", "Tickets filed: {count}", count=1)
        in (await texts_with(h, "center", MONTHLY))[0]
    )

    # a second run of the job (a restarted scheduler) sends neither the text nor the files
    await jobs.monthly_indicators(replace(h.sweeps.ctx, clock=FrozenClock(h.clock.now())))
    assert h.app is not None
    h.app.sender.wake()
    await h.settle()
    assert len(await files_after(h, "center", MONTHLY)) == len(monthly_files)
    await h.check_language()
