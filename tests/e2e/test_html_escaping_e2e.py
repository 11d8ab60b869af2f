"""Bad input loses nothing: hostile text typed by people (or imported) reaches every reader.

Every message GridBot sends is HTML (``parse_mode=HTML``) unless it says otherwise, and the
sandbox, like Telegram, refuses HTML that does not parse ("Can't parse entities"). So every
user-provided string must be escaped where the HTML is produced. These tests drive the real
flows with text that would break unescaped HTML, and a person whose Telegram name is
``<Tom & Jerry>``, then check that every message arrived (no outbox row failed or is still
waiting) and that the text shows literally.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import col, select

from bot import labels
from bot.i18n import gettext_for
from bot.sandbox.client import Persona
from bot.services.demo import DEMO_PERSONAS
from bot.services.ticket_numbers import shown_number
from bot.telegram import meeting_views, report_views
from models import (
    Grid,
    Household,
    OutboxMessage,
    OutboxStatus,
    Person,
    Role,
    RoleAssignment,
    Ticket,
    TicketCategory,
    VisitKind,
)
from tests.e2e.harness import Harness

pytestmark = pytest.mark.e2e

TZ = ZoneInfo("Asia/Shanghai")
TAGS = "<b>a & b</i> <script>"
MATHS = "1 < 2 > 0 &amp;"
TOM = "<Tom & Jerry>"


def t(msgid: str, **params: Any) -> str:
    """What a demo person reads (Simplified Chinese)."""
    return gettext_for("zh_Hans", msgid, **params)


async def everything_delivered(h: Harness) -> None:
    """No message was refused for its text (bad HTML is a permanent 400) or is overdue.

    Demo people who never opened the bot have no chat ("chat not found"): that is not ours."""
    await h.settle()
    async with h.session() as session:
        rows = (
            await session.exec(
                select(OutboxMessage).where(col(OutboxMessage.status) != OutboxStatus.SENT)
            )
        ).all()
    lost = [
        (r.method, r.status, r.last_error, r.payload.get("text") or r.payload.get("caption"))
        for r in rows
        if "chat not found" not in (r.last_error or "")
        and r.status != OutboxStatus.DROPPED  # withdrawn on purpose (a moved meeting)
        and (r.status != OutboxStatus.PENDING or r.not_before <= h.clock.now())
    ]
    assert lost == []


async def texts(persona: Persona) -> str:
    transcript = await persona.transcript()
    return "\n".join(m.text or m.caption or "" for m in transcript.bot_messages)


async def rename(h: Harness, persona: str, name: str) -> None:
    """A demo person whose name (their Telegram first_name) is ``name``; before ``h.persona``."""
    async with h.session() as session:
        person = (
            await session.exec(select(Person).where(Person.telegram_id == DEMO_PERSONAS[persona]))
        ).one()
        person.name = name
        session.add(person)
        await session.commit()


async def worker_grid(h: Harness) -> Grid:
    async with h.session() as session:
        return (
            await session.exec(
                select(Grid)
                .join(RoleAssignment, col(RoleAssignment.grid_id) == Grid.id)
                .join(Person, col(Person.id) == RoleAssignment.person_id)
                .where(
                    Person.telegram_id == DEMO_PERSONAS["worker"],
                    RoleAssignment.role == Role.WORKER,
                )
            )
        ).one()


async def hostile_community(h: Harness) -> None:
    """The worker is ``<Tom & Jerry>``; their grid and its households have hostile names (as
    an import may bring them)."""
    await rename(h, "worker", TOM)
    grid = await worker_grid(h)
    async with h.session() as session:
        grid.name = f"{MATHS} 网格"
        session.add(grid)
        households = (
            await session.exec(select(Household).where(Household.grid_id == grid.id))
        ).all()
        for household in households:
            household.head_name = f"{TAGS}{household.id}"
            household.address = f"{MATHS} 号楼{household.id}"
            session.add(household)
        await session.commit()


async def report(h: Harness, resident: Persona, description: str, address: str) -> Ticket:
    await resident.send("/report")
    await resident.next_message()
    await resident.press(t(labels.TICKET_CATEGORY[TicketCategory.FACILITY]))
    await resident.next_message()
    await resident.send(description)
    await resident.next_message()
    await resident.press(t(report_views.NO_PHOTOS))
    await resident.next_message()
    await resident.send(address)
    await h.settle()
    await resident.press(t(report_views.DANGER_NO))
    await h.settle()
    summary = (await resident.transcript()).bot_messages[-1]
    assert description in summary.text and address in summary.text
    await resident.press(t(report_views.SEND))
    await h.settle()
    async with h.session() as session:
        ticket = (await session.exec(select(Ticket).order_by(col(Ticket.id).desc()))).first()
    assert ticket is not None and ticket.description == description
    return ticket


async def test_a_ticket_loop_full_of_hostile_text(h: Harness) -> None:
    await hostile_community(h)
    resident, worker = await h.persona("resident"), await h.persona("worker")
    assert worker.first_name == TOM

    ticket = await report(h, resident, f"路灯坏了 {TAGS}", MATHS)
    await everything_delivered(h)
    assert TAGS in await texts(worker) and shown_number(ticket) in await texts(resident)

    await worker.press(t("✅ Accept"))
    await h.settle()
    await worker.press(t("📝 Progress"))
    await h.settle()
    await worker.send(f"进展 {MATHS}")
    await h.settle()
    await worker.press(t("❓ Ask reporter"))
    await h.settle()
    await worker.send(f"问题 {TAGS}")
    await h.settle()
    assert f"问题 {TAGS}" in await texts(resident)
    await resident.send(f"回答 {MATHS}")
    await h.settle()
    assert f"回答 {MATHS}" in await texts(worker)
    await worker.press(t("✔️ Resolved"))
    await h.settle()
    await worker.send(f"办结 {TAGS}")
    await h.settle()
    assert f"办结 {TAGS}" in await texts(resident)
    await everything_delivered(h)

    await resident.press(t("😞 Not satisfied"))
    await h.settle()
    await resident.send(f"不满意 {TAGS}")
    await h.settle()
    await everything_delivered(h)
    assert f"不满意 {TAGS}" in await texts(worker)

    await resident.send("/my")
    await h.settle()
    await everything_delivered(h)
    await resident.press(t("History of {number}", number=shown_number(ticket)))
    await h.settle()
    await everything_delivered(h)
    history = (await resident.transcript()).bot_messages[-1].text
    assert f"进展 {MATHS}" in history and TAGS in history


async def test_a_rejection_reason_reaches_the_resident(h: Harness) -> None:
    await hostile_community(h)
    resident, worker = await h.persona("resident"), await h.persona("worker")
    await report(h, resident, f"邻居吵闹 {MATHS}", TAGS)
    await worker.press(t("🚫 Reject"))
    await h.settle()
    await worker.send(f"驳回 {TAGS}")
    await h.settle()
    await everything_delivered(h)
    assert f"驳回 {TAGS}" in await texts(resident)


async def test_a_meeting_with_a_hostile_title_place_and_reason(h: Harness) -> None:
    await hostile_community(h)
    head, worker = await h.persona("head"), await h.persona("worker")
    await head.send("/meeting")
    await head.next_message()
    await head.press(t("✏️ Another meeting"))
    await head.next_message()
    await head.send(f"会议 {TAGS}")
    await head.next_message()
    await head.send("3月20日 14:30")
    await head.next_message()
    await head.send(f"地点 {MATHS}")
    await head.next_message()
    await head.press(
        next(b for b in (await head.transcript()).bot_messages[-1].buttons if "网格员" in b)
    )
    await head.next_message()
    await head.press(t(meeting_views.RHYTHM[meeting_views.Rhythm.ONCE]))
    check = await head.next_message()
    assert f"会议 {TAGS}" in check.text and f"地点 {MATHS}" in check.text
    await head.press(t("✅ Create and invite"))
    await h.settle()
    await everything_delivered(h)
    invitation = await texts(worker)
    assert f"会议 {TAGS}" in invitation and f"地点 {MATHS}" in invitation

    await worker.press(t(meeting_views.DECLINE))
    await h.settle()
    await worker.send(f"请假 {TAGS}")
    await h.settle()
    await everything_delivered(h)
    card = await texts(head)
    assert f"请假 {TAGS}" in card and TOM in card  # the worker's name, shown to the head

    await head.send("/meetings")
    await h.settle()
    await worker.send("/meetings")
    await h.settle()
    await everything_delivered(h)

    h.clock.set(datetime(2026, 3, 20, 15, 30, tzinfo=TZ).astimezone(UTC))
    await h.sweeps.catch_up(coalesce=True)
    assert h.app is not None
    h.app.sender.wake()
    await h.settle()
    ended = next(
        m
        for m in reversed((await head.transcript()).bot_messages)
        if t(meeting_views.MINUTES) in m.buttons
    )
    await head.press(t(meeting_views.MINUTES), message_id=ended.message_id)
    await h.settle()
    await head.send(f"纪要 {MATHS}")
    await h.settle()
    await everything_delivered(h)
    assert TOM in (await head.transcript()).bot_messages[-1].text  # absent, named


async def test_a_visit_note_and_hostile_households(h: Harness) -> None:
    await hostile_community(h)
    worker, head = await h.persona("worker"), await h.persona("head")
    await worker.send("/visit")
    listing = await worker.next_message()
    await worker.press(listing.buttons[0])
    chosen = await worker.next_message()
    assert TAGS in chosen.text
    await worker.press(f"🚪 {t(labels.VISIT_KIND[VisitKind.IN_PERSON])}")
    await worker.next_message()
    await worker.send(f"走访 {TAGS} {MATHS}")
    await h.settle()
    if t("Skip") in (await worker.transcript()).bot_messages[-1].buttons:
        await worker.press(t("Skip"))
        await h.settle()
    await worker.press(t("No, all fine"))
    await h.settle()
    await everything_delivered(h)

    await worker.send("/visit 不存在 <x> & y")  # a search word, echoed back
    await h.settle()
    await worker.send("/diary")
    await h.settle()
    await everything_delivered(h)
    assert f"走访 {TAGS} {MATHS}" in await texts(worker)
    assert "<x> & y" in await texts(worker)

    await worker.send("/quota_rules")
    await h.settle()
    await head.send("/quota")  # the head reads their workers' names
    await h.settle()
    await everything_delivered(h)
    assert TOM in await texts(head)


async def test_an_admin_names_a_grid_with_markup(h: Harness) -> None:
    admin = await h.persona("admin")
    async with h.session() as session:
        community = (await session.exec(select(Grid).where(Grid.tier == 1))).first()
    assert community is not None
    await admin.send(f"/grid add {community.code} 网格 {MATHS}")
    await h.settle()
    await everything_delivered(h)
    assert f"网格 {MATHS}" in await texts(admin)
    await admin.send("/grid")
    await h.settle()
    await admin.send("/sla <b>")
    await h.settle()
    await admin.send("/holidays off 2026-04-01 <清明> & 调休")
    await h.settle()
    await admin.send("/holidays")
    await h.settle()
    await everything_delivered(h)


async def test_a_newcomer_named_with_markup_is_greeted(h: Harness) -> None:
    tom = await h.newcomer(TOM)
    await tom.send("/start")
    await h.settle()
    await tom.send("/help")
    await h.settle()
    await everything_delivered(h)
    assert TOM in await texts(tom)  # greeted by name, literally
