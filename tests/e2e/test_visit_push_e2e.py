"""What a new grid worker trips over with visits (issue 19), end to end on the demo community:
a push that goes out late greets for the hour; a visit logged from /visit is saved when its
note is written (the photo comes after, attached); the day's push is one message edited in
place as households are visited, never "not modified"; a second visit the same day is asked
about first; /visit lists a household visited today last, not first as a suggestion."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import col, select

from bot import labels
from bot.i18n import gettext_for
from bot.sandbox.client import ChatMessage, Persona
from bot.services import quotas
from bot.services.qr import qr_png
from bot.telegram import visit_views as views
from bot.telegram.visit_views import VisitPickCb
from models import Household, OutboxMessage, Person, Visit, VisitKind
from tests.e2e.harness import Harness
from tests.e2e.test_visits_e2e import jump

pytestmark = pytest.mark.e2e

TZ = ZoneInfo("Asia/Shanghai")


def t(msgid: str, **params: Any) -> str:
    return gettext_for("zh_Hans", msgid, **params)


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=TZ).astimezone(UTC)  # type: ignore[misc]


def heading(msgid: str) -> str:
    return t(msgid, day="03-13").split("（")[0]


async def the_push(worker: Persona) -> list[ChatMessage]:
    evening = heading("Good evening! Today's tasks ({day})")
    return [m for m in (await worker.transcript()).bot_messages if evening in m.text]


async def test_a_late_push_is_kept_current_and_visits_are_saved_at_the_note(h: Harness) -> None:
    worker = await h.persona("worker")
    async with h.session() as session:
        me = (await session.exec(select(Person).where(Person.telegram_id == worker.id))).one()
    # the bot was down all day: the push goes out at 18:30, not as "good morning"
    await jump(h, local(2026, 3, 13, 18, 30))
    texts = [m.text for m in (await worker.transcript()).bot_messages]
    assert not [x for x in texts if heading("Good morning! Today's tasks ({day})") in x]
    [push] = await the_push(worker)
    async with h.session() as session:
        plan = (await quotas.plan_daily_push(session, h.clock.now(), tz=h.settings.tz))[me.id or 0]
    first, second = plan.suggestions[0], plan.suggestions[1]
    assert f"✅ 1 {first.head_name}" in push.buttons
    refused_before = h.server.stats.statuses[400]

    # ✅ on the push: visited; the push itself now says so, in place
    worker.cursor = max(worker.cursor, push.message_id)
    await worker.press(f"✅ 1 {first.head_name}")
    await worker.next_message()
    await worker.press(f"🚪 {t(labels.VISIT_KIND[VisitKind.IN_PERSON])}")
    await worker.next_message()
    await worker.send("老人身体还好")
    await worker.next_message()
    await worker.press(t("No, all fine"))
    await worker.next_message()
    await h.settle()
    [push] = await the_push(worker)
    assert push.edited and push.has_entity("strikethrough")
    assert f"✅ 1 {first.head_name}" not in push.buttons
    assert f"✅ 2 {second.head_name}" in push.buttons
    count = len(plan.suggestions)
    assert t("Visited so far: {done} of {count}.", done=1, count=count) in push.text

    # the same household again (a stale button): asked first, and Cancel logs nothing
    stale = VisitPickCb(id=first.household_id, quick=True).pack()
    await h.forge_press(worker, stale)
    question = await worker.next_message()
    assert t(
        views.ALREADY_VISITED,
        name=first.head_name,
        time="18:30",
        kind=t(labels.VISIT_KIND[VisitKind.IN_PERSON]),
    ) in (question.text)
    assert question.buttons == [t("Yes, log another visit"), t("Cancel")]
    await worker.press(t("Cancel"))
    await h.settle()
    async with h.session() as session:
        visits = (
            await session.exec(select(Visit).where(Visit.household_id == first.household_id))
        ).all()
    assert len(visits) == 1

    # /visit: the household visited today comes last, marked ✅, not first with ⭐
    await worker.send("/visit")
    listing = await worker.next_message()
    assert first.head_name not in listing.buttons[0]
    assert not [b for b in listing.buttons if first.head_name in b and b.startswith("⭐")]

    # /visit → the second suggestion → 入户走访 → note: saved at once, a photo may follow
    await worker.press(next(b for b in listing.buttons if second.head_name in b))
    await worker.next_message()
    await worker.press(f"🚪 {t(labels.VISIT_KIND[VisitKind.IN_PERSON])}")
    await worker.next_message()
    await worker.send("独居，电费已代缴")
    saved = await worker.next_message()
    assert t(views.ADD_EXTRAS) in saved.text and t("Skip") in saved.buttons
    async with h.session() as session:
        [visit] = (
            await session.exec(select(Visit).where(Visit.household_id == second.household_id))
        ).all()
    assert visit.note == "独居，电费已代缴" and visit.photo_file_id is None
    await h.settle()
    [push] = await the_push(worker)  # the push moved before any photo or Skip
    assert f"✅ 2 {second.head_name}" not in push.buttons
    assert t("Visited so far: {done} of {count}.", done=2, count=count) in push.text

    await worker.send_photo(qr_png("visit"))
    assert t(views.GOT_EXTRA) in (await worker.next_message()).text
    async with h.session() as session:
        photo = (await session.get(Visit, visit.id)).photo_file_id  # type: ignore[union-attr]
    assert photo
    await worker.press(t("Done"))
    assert t(views.PROBLEM_QUESTION) in (await worker.next_message()).text
    await worker.press(t("No, all fine"))
    await worker.next_message()

    # one push message all along; every edit changed something (no "not modified")
    await h.settle()
    assert len(await the_push(worker)) == 1
    assert h.server.stats.statuses[400] == refused_before
    async with h.session() as session:
        edits = (
            await session.exec(
                select(OutboxMessage).where(col(OutboxMessage.edit_ref).startswith("dp:"))
            )
        ).all()
    assert len(edits) == 2
    assert len({e.payload["text"] for e in edits}) == 2


async def test_search_puts_the_room_itself_before_numbers_that_contain_it(h: Harness) -> None:
    worker = await h.persona("worker")
    async with h.session() as session:
        me = (await session.exec(select(Person).where(Person.telegram_id == worker.id))).one()
        mine = list(
            (
                await session.exec(
                    select(Household).where(Household.worker_id == me.id).order_by(Household.id)
                )
            ).all()
        )
        room = {household.address.rsplit(" ", 1)[1]: household for household in mine}
        # a key household in room 702 whose number has 302 in it; room 302; room 3021
        room["702"].code, room["702"].is_key = "3502110010010130299", True
        room["301"].address = room["301"].address.rsplit(" ", 1)[0] + " 302"
        room["401"].address = room["401"].address.rsplit(" ", 1)[0] + " 3021"
        session.add_all([room["702"], room["301"], room["401"]])
        await session.commit()
    await worker.send("/visit 302")
    listing = await worker.next_message()
    names = [b for b in listing.buttons if "·" in b]
    assert len(names) == 3
    assert room["301"].head_name in names[0]  # exact: the room 302
    assert room["401"].head_name in names[1]  # begins with 302: room 3021
    assert room["702"].head_name in names[2]  # only contains 302 (its number)
