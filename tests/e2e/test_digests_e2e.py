"""Digests end to end: the weekly one reaches the demo head once on Monday 08:30; the centre gets
the dispute screening on the 16th; /indicators answers a head in the chat."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import col, select

from bot.clock import FrozenClock
from bot.i18n import gettext_for
from bot.labels import TICKET_STATE
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
