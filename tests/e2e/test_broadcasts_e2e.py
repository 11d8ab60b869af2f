"""Broadcasts (宣传 / 应急通知) end to end: /broadcast from the head's chat to 500 sandbox
residents — an emergency in quiet hours goes out at once and asks for "收到"; a normal one at
22:00 waits for the morning; a process killed halfway through leaves nobody with two copies."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update
from sqlmodel import col, select

from bot.app import close
from bot.i18n import gettext_for
from bot.services import broadcast_delivery as delivery
from bot.services import grid_codes
from bot.services.broadcasts import HEADER_ROOM
from bot.services.demo import DEMO_PERSONAS
from bot.services.message_size import MAX_MESSAGE
from bot.services.qr import qr_png
from bot.telegram import broadcast_views as views
from models import (
    AuditLog,
    Broadcast,
    BroadcastRecipient,
    Grid,
    Household,
    Person,
    Role,
    RoleAssignment,
)
from tests.e2e.harness import BOT_USERNAME, Harness

pytestmark = pytest.mark.e2e

TZ = ZoneInfo("Asia/Shanghai")
RESIDENTS = 500
FIRST_ID = 8_100_000_000
UNCONFIRMED = 20
SLOW = 120.0  # seconds: 500 messages at Telegram's 30 a second take about 17


def t(msgid: str, **params: Any) -> str:
    return gettext_for("zh_Hans", msgid, **params)


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=TZ).astimezone(UTC)


async def jump(h: Harness, moment: datetime) -> None:
    h.clock.set(moment)
    await h.sweeps.catch_up(coalesce=True)
    assert h.app is not None
    h.app.sender.wake()
    await h.settle(SLOW)


async def estate(h: Harness) -> Grid:
    """A new tier-3 grid under the demo head's grid, with ``RESIDENTS`` residents who have
    started the bot, one household each, served by the demo worker."""
    async with h.session() as session:
        head = (
            await session.exec(select(Person).where(Person.telegram_id == DEMO_PERSONAS["head"]))
        ).one()
        worker = (
            await session.exec(select(Person).where(Person.telegram_id == DEMO_PERSONAS["worker"]))
        ).one()
        parent = (
            await session.exec(
                select(Grid)
                .join(RoleAssignment, col(RoleAssignment.grid_id) == Grid.id)
                .where(RoleAssignment.person_id == head.id, RoleAssignment.role == Role.HEAD)
            )
        ).one()
        now = h.clock.now()
        grid = Grid(
            code=grid_codes.child_code(parent.code, parent.tier, 90),
            name="滨江花园",
            tier=3,
            parent_id=parent.id,
            created_at=now,
        )
        session.add(grid)
        await session.flush()
        grid.path = f"{parent.path}{grid.id}/"
        for n in range(RESIDENTS):
            household = Household(
                code=f"BC{n:04d}",
                grid_id=grid.id or 0,
                worker_id=worker.id,
                address=f"滨江花园{n // 20 + 1}栋{n % 20 + 101}室",
                head_name=f"住户{n}",
                phone=f"1390000{n:04d}",
                created_at=now,
                updated_at=now,
            )
            session.add(household)
            await session.flush()
            person = Person(
                telegram_id=FIRST_ID + n,
                name=f"住户{n}",
                phone=f"1390000{n:04d}",
                household_id=household.id,
                created_at=now,
                updated_at=now,
            )
            session.add(person)
            await session.flush()
            session.add(
                RoleAssignment(
                    person_id=person.id or 0,
                    role=Role.RESIDENT,
                    grid_id=grid.id or 0,
                    created_at=now,
                )
            )
        await session.commit()
        await session.refresh(grid)
    await h.persona("worker")  # in the sandbox, to be told who to phone
    bot = h.server.get_bot(BOT_USERNAME)
    for n in range(RESIDENTS):
        h.server.create_user(f"住户{n}", user_id=FIRST_ID + n)
        bot.relation(FIRST_ID + n).started = True
        h.language.reads(FIRST_ID + n, "zh_Hans")
    return grid


def received(h: Harness) -> Counter[int]:
    """How many bot messages each of the estate's residents has."""
    bot = h.server.get_bot(BOT_USERNAME)
    counts: Counter[int] = Counter()
    for n in range(RESIDENTS):
        chat = FIRST_ID + n
        conversation = h.server.conversations.get((bot.id, chat))
        messages = conversation.messages.values() if conversation is not None else []
        counts[chat] = sum(1 for m in messages if m.from_bot)
    return counts


async def compose(h: Harness, grid: Grid, text: str, *, emergency: bool) -> Any:
    head = await h.persona("head")
    await head.send(f"/broadcast {grid.code}")
    asked = await head.next_message()
    assert grid.name in asked.text
    await head.send(text)
    card = await head.next_message()
    assert (
        t(
            "It will reach {reachable} of {total} people (the others have no Telegram "
            "account linked or blocked the bot).",
            reachable=RESIDENTS,
            total=RESIDENTS,
        )
        in card.text
    )
    if emergency:
        await head.press(t("Emergency: off"))
        await h.settle()
    return head


async def test_an_emergency_in_quiet_hours_goes_out_at_once_and_lists_who_did_not_confirm(
    h: Harness,
) -> None:
    grid = await estate(h)
    await jump(h, local(12, 23, 0))  # quiet hours
    head = await compose(h, grid, "台风“海葵”今晚登陆，请关好门窗，不要外出。", emergency=True)
    await head.press(t("✅ Send"))
    await h.settle(SLOW)

    counts = received(h)
    assert set(counts.values()) == {1}, "each resident gets exactly one copy, at once"
    first = await h.client.transcript(BOT_USERNAME, FIRST_ID)
    copy = first.messages[-1]
    assert (
        t("🚨 <b>Emergency notice</b> · {grid}", grid=grid.name)
        .replace("<b>", "")
        .replace("</b>", "")
        in copy.text
    )
    assert copy.buttons == [t(views.RECEIVED)]
    progress = (await head.transcript()).messages
    shown = [
        m.text
        for m in progress
        if t(
            "Sent: {sent} / {total}\nNot delivered: {failed}\nWaiting: {waiting}",
            sent=RESIDENTS,
            total=RESIDENTS,
            failed=0,
            waiting=0,
        )
        in m.text
    ]
    assert shown, "the progress message reaches 500/500"
    assert t("Finished at {time}.", time="03-12 23:00") in shown[-1]

    # five tap "收到" in the chat; 475 more are recorded as the same press would (to keep the
    # test short); 20 never do
    for n in range(5):
        resident = h.client.persona_for(h.server.users[FIRST_ID + n].to_api(), bot=BOT_USERNAME)
        await resident.press(t(views.RECEIVED))
    await h.settle()
    async with h.session() as session:
        broadcast = (await session.exec(select(Broadcast))).one()
        await session.exec(
            update(BroadcastRecipient)
            .where(
                col(BroadcastRecipient.broadcast_id) == broadcast.id,
                col(BroadcastRecipient.person_id).in_(
                    select(Person.id).where(
                        col(Person.telegram_id) >= FIRST_ID + 5,
                        col(Person.telegram_id) < FIRST_ID + RESIDENTS - UNCONFIRMED,
                    )
                ),
            )
            .values(confirmed_at=h.clock.now())
        )
        await session.commit()
        confirmed = (
            await session.exec(
                select(BroadcastRecipient).where(col(BroadcastRecipient.confirmed_at).is_not(None))
            )
        ).all()
        assert len(confirmed) == RESIDENTS - UNCONFIRMED
    # a resident pressing twice is fine; one the notice was not for is refused and audited
    again = h.client.persona_for(h.server.users[FIRST_ID].to_api(), bot=BOT_USERNAME)
    await h.forge_press(again, f"rc:{broadcast.id}")  # the button is gone; an old client
    stranger = await h.persona("other_resident")
    await stranger.send("/start")
    await h.settle()
    await h.forge_press(stranger, f"rc:{broadcast.id}")
    async with h.session() as session:
        refused = (
            await session.exec(
                select(AuditLog).where(AuditLog.action == "refused:broadcast_receipt")
            )
        ).all()
        assert len(refused) == 1

    await h.advance(timedelta(minutes=30))
    confirmed_line = t(
        "Confirmed “Received”: {confirmed} / {sent}",
        confirmed=RESIDENTS - UNCONFIRMED,
        sent=RESIDENTS,
    )
    assert any(confirmed_line in x for x in (await head.transcript()).texts), "receipts counted"
    listed = (await head.transcript()).texts[-1]
    assert (
        t(
            "🚨 Emergency broadcast #{id}: {count} people have not confirmed “Received” after "
            "{minutes} minutes. Please phone them:",
            id=broadcast.id,
            count=UNCONFIRMED,
            minutes=30,
        )
        in listed
    )
    for n in range(RESIDENTS - UNCONFIRMED, RESIDENTS):
        assert f"住户{n} · 1390000{n:04d}" in listed
    assert "住户0 ·" not in listed
    worker = await h.persona("worker")
    assert (
        f"住户{RESIDENTS - 1} · 1390000{RESIDENTS - 1:04d}"
        in (await worker.transcript()).texts[-1]
    )
    await h.advance(timedelta(minutes=5))  # listed once
    assert (await head.transcript()).texts[-1] == listed


async def kill(h: Harness) -> None:
    """The process stops in the middle of its work: no waiting for the outbox to drain
    (``Harness.stop_bot`` without its settle)."""
    app, h.app = h.app, None
    assert app is not None
    with contextlib.suppress(RuntimeError):
        await app.dispatcher.stop_polling()
    for task in h._tasks:
        task.cancel()
    for task in h._tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    h._tasks.clear()
    if h._stack is not None:
        await h._stack.aclose()
        h._stack = None
    await close(app)


async def test_a_normal_broadcast_at_night_waits_for_the_morning_and_a_restart_sends_none_twice(
    h: Harness,
) -> None:
    grid = await estate(h)
    await jump(h, local(12, 22, 0))
    head = await compose(h, grid, "明早8点起小区停水检修，请提前储水。", emergency=False)
    await head.press(t("✅ Send"))
    await h.settle()
    assert set(received(h).values()) == {0}, "nothing goes out in quiet hours"
    waiting = (await head.transcript()).texts
    assert any(t("Quiet hours: it goes out after {time}.", time="07:30") in x for x in waiting)

    h.clock.set(local(13, 7, 31))  # morning: the sweeps run, the sender starts on the 500
    assert h.app is not None
    await h.sweeps.catch_up(coalesce=True)
    h.app.sender.wake()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while sum(received(h).values()) < RESIDENTS // 3 and loop.time() < deadline:  # noqa: ASYNC110 (the sandbox's count, polled)
        await asyncio.sleep(0.05)
    await kill(h)
    halfway = sum(received(h).values())
    assert 0 < halfway < RESIDENTS, halfway

    await h.start_bot()
    await jump(h, local(13, 7, 33))
    await jump(h, local(13, 7, 34))
    counts = received(h)
    assert min(counts.values()) == 1 and max(counts.values()) == 1, "once each, no more"
    final = (await head.transcript()).texts
    assert any(
        t(
            "Sent: {sent} / {total}\nNot delivered: {failed}\nWaiting: {waiting}",
            sent=RESIDENTS,
            total=RESIDENTS,
            failed=0,
            waiting=0,
        )
        in x
        for x in final
    )
    async with h.session() as session:
        broadcast = (await session.exec(select(Broadcast))).one()
        assert broadcast.status == "done" and broadcast.sent_count == RESIDENTS
        assert delivery.ROUND  # rounds of recipients were written once each
        rows = (await session.exec(select(BroadcastRecipient))).all()
        assert len(rows) == RESIDENTS and len({r.outbox_id for r in rows}) == RESIDENTS


async def test_hostile_input_is_refused_in_the_persons_language_and_audited(h: Harness) -> None:
    head = await h.persona("head")
    await head.send("/broadcast")
    await head.next_message()
    await head.send("字" * 4050)  # a message Telegram takes, but no room left for the header
    refused = await head.next_message()
    assert refused.text == t(
        "The notice is too long: {length} characters, at most {limit} fit in one message. "
        "Please shorten it and send it again.",
        length=4050,
        limit=MAX_MESSAGE - HEADER_ROOM,
    )
    await head.send("😀" * 2000)  # 4,000 UTF-16 units, though 2,000 characters
    assert "4000" in (await head.next_message()).text
    await head.send("明早8点到10点停电检修。")  # the step was kept: this is the notice
    await head.next_message()
    async with h.session() as session:
        draft = (await session.exec(select(Broadcast))).one()

    # someone else presses the draft's buttons with forged data: refused and audited
    for persona in ("community_head", "other_worker"):
        other = await h.persona(persona)
        await other.send("/start")
        await h.settle()
        await h.forge_press(other, f"bc:{draft.id}:s")
        toast = (await other.transcript()).toast
        assert toast is not None
        assert t("Sorry, this broadcast is not yours to change or send.") in toast["text"]
    await h.forge_press(head, f"ba:{draft.id}:party_members")  # no such audience (yet)
    toast = (await head.transcript()).toast
    assert toast is not None and t("Sorry, this audience is not known.") in toast["text"]
    await h.forge_press(head, f"bc:{draft.id}:s:1")  # not in the packed form: stale
    await h.forge_press(head, f"bc:{2**40}:s")
    async with h.session() as session:
        refusals = (
            await session.exec(select(AuditLog).where(AuditLog.action == "refused:broadcast"))
        ).all()
        assert len(refusals) == 2
        assert (await session.get(Broadcast, draft.id)).status == "draft"  # type: ignore[union-attr]

    # an audience outside one's scope: refused, audited
    async with h.session() as session:
        outside = (
            await session.exec(select(Grid).where(Grid.tier == 3).order_by(col(Grid.id).desc()))
        ).first()
    assert outside is not None
    await head.send(f"/broadcast {outside.code}")
    assert (await head.next_message()).text == t(
        "Sorry, this is outside the grids you look after."
    )
    worker = await h.persona("worker")
    await worker.send("/broadcast")
    assert (await worker.next_message()).text == t(
        "Broadcasts are for grid heads, the centre and administrators."
    )
    async with h.session() as session:
        scoped = (
            await session.exec(
                select(AuditLog).where(
                    AuditLog.action == "refused:broadcast", AuditLog.object_type == "grid"
                )
            )
        ).all()
        assert [a.object_id for a in scoped] == [outside.id]


async def test_a_photo_notice_is_previewed_and_sent_with_its_caption(h: Harness) -> None:
    head, resident = await h.persona("head"), await h.persona("resident")
    worker = await h.persona("worker")  # the others of the audience are not in the sandbox
    await head.send("/broadcast")
    await head.next_message()
    await head.send_photo(qr_png("water cut"), caption="3月13日停水，请提前储水。")
    card = await head.next_message()
    assert t("With a photo or file attached.") in card.text
    await head.press(t("Residents, workers and heads"))
    await h.settle()
    await head.press(t("👁 Preview"))
    await h.settle()
    preview = (await head.transcript()).messages[-1]
    assert preview.photo is not None and "3月13日停水" in (preview.caption or "")
    await head.press(t("✅ Send"), message_id=card.message_id)
    await h.settle(SLOW)
    got = (await resident.transcript()).messages[-1]
    assert got.photo is not None
    assert t("📢 <b>Notice</b> · {grid}", grid="").split("<b>")[0] in (got.caption or "")
    assert "3月13日停水" in (got.caption or "") and got.buttons == []  # no receipt asked
    # the audience took in workers and heads too
    assert "3月13日停水" in ((await worker.transcript()).messages[-1].caption or "")
    progress = await h.client.transcript(BOT_USERNAME, head.id)
    shown = [m for m in progress.messages if m.message_id == card.message_id]
    assert shown and t("Finished at {time}.", time="03-12 09:00") in shown[0].text
    assert shown[0].buttons == []  # the card became the progress message
