"""Visits end to end on the demo community: the 08:00 task push reaches every worker once, a
key household is ticked off from it, a micro-lecture is logged with /visit and a problem found
on it becomes a ticket, /quota moves, a restart sends no second push, and the reminders come
five working days before the end of March."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import col, select

from bot import labels
from bot.i18n import gettext_for
from bot.services import daily_push, quotas
from bot.services.demo import DEMO_PERSONAS, TELEGRAM_ID_BASE
from bot.services.ticket_numbers import shown_number
from bot.telegram import visit_views as views
from bot.telegram.visit_views import VisitPickCb
from models import (
    Household,
    Person,
    Role,
    RoleAssignment,
    Ticket,
    TicketCategory,
    Visit,
    VisitKind,
)
from tests.e2e.harness import BOT_USERNAME, Harness

pytestmark = pytest.mark.e2e

TZ = ZoneInfo("Asia/Shanghai")


def t(msgid: str, **params: Any) -> str:
    """What a demo person reads (they all read Simplified Chinese)."""
    return gettext_for("zh_Hans", msgid, **params)


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=TZ).astimezone(UTC)  # type: ignore[misc]


PUSH_MARK = t("Good morning! Today's tasks ({day})", day="03-13").split("(")[0]


async def jump(h: Harness, moment: datetime) -> None:
    """Move the clock far ahead: each sweep once at its last fire time, then deliver."""
    h.clock.set(moment)
    await h.sweeps.catch_up(coalesce=True)
    assert h.app is not None
    h.app.sender.wake()
    await h.settle()


async def workers(h: Harness) -> list[Person]:
    """Every demo worker, each made a sandbox user who has started the bot."""
    async with h.session() as session:
        found = list(
            (
                await session.exec(
                    select(Person)
                    .join(RoleAssignment, col(RoleAssignment.person_id) == col(Person.id))
                    .where(RoleAssignment.role == Role.WORKER)
                    .order_by(col(Person.id))
                )
            ).all()
        )
    for person in found:
        assert person.telegram_id is not None
        if person.telegram_id not in h.server.users:
            h.server.create_user(person.name, user_id=person.telegram_id)
            h.server.get_bot(BOT_USERNAME).relation(person.telegram_id).started = True
    return found


async def texts_of(h: Harness, telegram_id: int) -> list[str]:
    transcript = await h.client.transcript(BOT_USERNAME, telegram_id)
    return [m.text for m in transcript.bot_messages]


async def test_push_visits_quota_ticket_restart_and_reminders(h: Harness) -> None:
    staff = await workers(h)
    assert len(staff) == 27
    await h.persona("head")
    await jump(h, local(2026, 3, 13, 8, 0))  # Thursday 09:00 → Friday 08:00

    async with h.session() as session:
        plans = await quotas.plan_daily_push(session, h.clock.now(), tz=h.settings.tz)
    for person in staff:
        pushes = [x for x in await texts_of(h, person.telegram_id or 0) if PUSH_MARK in x]
        assert len(pushes) == 1, person.name
    for person in staff[:3]:  # the households the plan chose are in the push
        plan = plans[person.id or 0]
        assert plan.suggestions
        text = "\n".join(await texts_of(h, person.telegram_id or 0))
        for suggestion in plan.suggestions:
            assert suggestion.code in text

    worker = await h.persona("worker")
    me = staff[0]
    assert me.telegram_id == DEMO_PERSONAS["worker"]
    await worker.send("/quota")
    quota_before = (await worker.next_message()).text

    # one tap on a key household in the push: only the kind and a line are asked
    first = plans[me.id or 0].suggestions[0]
    assert first.is_key
    push = next(m for m in (await worker.transcript()).bot_messages if PUSH_MARK in m.text)
    worker.cursor = max(worker.cursor, push.message_id)
    await worker.press(next(b for b in push.buttons if b.startswith("✅ 1 ")))
    assert t(views.CHOOSE_KIND, name=first.head_name) in (await worker.next_message()).text
    await worker.press(f"🚪 {t(labels.VISIT_KIND[VisitKind.IN_PERSON])}")
    assert t(views.WRITE_NOTE) in (await worker.next_message()).text
    await worker.send("老人身体还好，子女每周回来一次，门口台阶有点滑")
    logged = await worker.next_message()
    assert first.head_name in logged.text
    assert "1/1 ✓" in logged.text
    await worker.press(t("No, all fine"))
    assert t(views.NO_PROBLEM) in (await worker.next_message()).text

    # /visit: a micro-lecture, a problem found → a ticket for the household's grid
    await worker.send("/visit")
    listing = await worker.next_message()
    assert len(listing.buttons) <= 100
    household_button = listing.buttons[1]
    await worker.press(household_button)
    await worker.next_message()
    await worker.press(f"📢 {t(labels.VISIT_KIND[VisitKind.LECTURE])}")
    await worker.next_message()
    await worker.send("\u200b")  # invisible only: asked again, clearly
    assert t("Please write a few words about the visit.") in (await worker.next_message()).text
    await worker.send("宣讲了防诈骗知识；楼道里的路灯坏了两盏，晚上很黑")
    lectured = await worker.next_message()  # saved; a photo or location may follow
    assert t("Quarterly policy micro-lecture for every household") in lectured.text
    assert t(views.ADD_EXTRAS) in lectured.text
    await worker.press(t("Skip"))
    assert t(views.PROBLEM_QUESTION) in (await worker.next_message()).text
    await worker.press(t("⚠️ Yes, report it"))
    await worker.next_message()
    await worker.press(t(labels.TICKET_CATEGORY[TicketCategory.FACILITY]))
    await h.settle()
    async with h.session() as session:
        ticket = (await session.exec(select(Ticket).order_by(col(Ticket.id).desc()))).first()
        assert ticket is not None
        visit = (await session.exec(select(Visit).where(Visit.ticket_id == ticket.id))).one()
        household = await session.get(Household, visit.household_id)
        assert household is not None
    assert ticket.household_id == household.id and ticket.grid_id == household.grid_id
    assert "路灯" in ticket.description
    assert any(shown_number(ticket) in text for text in await texts_of(h, me.telegram_id or 0))

    await worker.send("/quota")
    quota_after = (await worker.next_message()).text
    assert quota_after != quota_before
    async with h.session() as session:
        [row] = await quotas.progress(
            session,
            h.clock.now(),
            by="worker",
            scope_path=(await _grid_path(session, me.id or 0)),
            worker_ids=[me.id or 0],
            tz=h.settings.tz,
        )
    for cell in row.cells:
        assert views.bar(cell.fulfilled, cell.households) in quota_after
    assert any(c.fulfilled == 1 for c in row.cells if c.rule_name.startswith("Quarterly policy"))

    # a forged press for a household in someone else's grid is refused politely
    async with h.session() as session:
        foreign = (
            await session.exec(
                select(Household).where(col(Household.grid_id) != household.grid_id).limit(1)
            )
        ).one()
    await h.forge_press(worker, VisitPickCb(id=foreign.id or 0).pack())
    toast = (await worker.transcript()).toast
    assert toast is not None and t("Sorry, this is outside the grids you look after.") in str(
        toast
    )

    # the process restarts at 09:00: no second push
    await h.restart_bot()
    await h.advance(local(2026, 3, 13, 9, 0) - h.clock.now())
    for person in staff:
        pushes = [x for x in await texts_of(h, person.telegram_id or 0) if PUSH_MARK in x]
        assert len(pushes) == 1, person.name

    # five working days before the end of March (Wednesday the 25th): the reminders, once
    await jump(h, local(2026, 3, 25, 9, 15))
    title = t(daily_push.REMINDER_TITLE, days=5, day="03-31")
    head_title = t(daily_push.HEAD_REMINDER_TITLE, days=5, day="03-31")
    assert [x for x in await texts_of(h, me.telegram_id or 0) if title in x]
    head_texts = await texts_of(h, DEMO_PERSONAS["head"])
    [reminder] = [x for x in head_texts if head_title in x]
    assert me.name in reminder
    await jump(h, local(2026, 3, 25, 15, 0))
    await h.advance(timedelta(hours=1))
    assert len([x for x in await texts_of(h, DEMO_PERSONAS["head"]) if head_title in x]) == 1
    assert len([x for x in await texts_of(h, TELEGRAM_ID_BASE + 302) if title in x]) <= 1


async def _grid_path(session: Any, person_id: int) -> str:
    from bot.services.people import roles_of

    roles = await roles_of(session, person_id)
    return next(r.grid_path for r in roles if r.role == Role.WORKER)
