"""Meetings (例会) end to end: the quarterly grid meeting from /meeting to its minutes, a moved
meeting, and reminders across a restart — with the shared clock advanced, never slept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import col, select

from bot import labels
from bot.i18n import gettext_for
from bot.services import meetings, people
from bot.services.demo import DEMO_PERSONAS
from bot.services.meetings import InviteeGroup, MeetingDraft
from bot.services.ticket_numbers import shown_number
from bot.telegram import meeting_views as views
from bot.telegram.ticket_views import OPEN_ACTIONS
from models import (
    Grid,
    Meeting,
    MeetingInvite,
    OutboxMessage,
    OutboxStatus,
    Person,
    Role,
    RoleAssignment,
    Rsvp,
    Ticket,
    TicketCategory,
)
from tests.e2e.harness import Harness

pytestmark = pytest.mark.e2e

TZ = ZoneInfo("Asia/Shanghai")
# the clock starts at 2026-03-12 09:00 in Shanghai; the meeting is eight days later
STARTS = datetime(2026, 3, 20, 14, 30, tzinfo=TZ).astimezone(UTC)


def t(msgid: str, **params: Any) -> str:
    """What a demo person reads (they all read Simplified Chinese)."""
    return gettext_for("zh_Hans", msgid, **params)


async def until(h: Harness, moment: datetime) -> None:
    """Jump the shared clock to ``moment``: the sweeps run once each (as a scheduler back
    from a pause would; meetings need none of them), then the bot delivers what is due."""
    h.clock.set(moment)
    await h.sweeps.catch_up(coalesce=True)
    assert h.app is not None
    h.app.sender.wake()
    await h.settle()


async def restart_at(h: Harness, moment: datetime) -> None:
    """The process dies, the clock moves on without it, and a new process starts."""
    await h.stop_bot()
    reached = h.sweeps.reached
    h.clock.set(moment)
    h._sweeps = None  # the new process's sweeps (as restart_bot does), on the same timeline
    await h.start_bot()
    h.sweeps.reached = reached
    await until(h, moment + timedelta(seconds=1))


REMINDER = "⏰"


async def demo_person(h: Harness, persona: str) -> Person:
    async with h.session() as session:
        return (
            await session.exec(select(Person).where(Person.telegram_id == DEMO_PERSONAS[persona]))
        ).one()


async def convene(h: Harness, starts_at: datetime, title: str = "消防安全专题会") -> Meeting:
    """The head's one-off meeting for the workers under their grid, straight through the
    service (what /meeting ends in), with the bot's own notifier."""
    head = await demo_person(h, "head")
    async with h.session() as session:
        roles = await people.roles_of(session, head.id or 0)
        grid = await meetings.organisable_grid(session, head, roles, h.clock.now())
        (meeting,) = await meetings.create_meeting(
            session,
            views.TelegramMeetingNotifier(h.settings),
            organiser=head,
            roles=roles,
            draft=MeetingDraft(
                grid_id=grid.id or 0,
                title=title,
                starts_at=starts_at,
                place="社区会议室",
                invitees=InviteeGroup.WORKERS,
            ),
            settings=h.settings,
            now=h.clock.now(),
        )
        await session.commit()
    assert h.app is not None
    h.app.sender.wake()
    await h.settle()
    return meeting


def texts_with(transcript_texts: list[str], words: str) -> list[str]:
    return [text for text in transcript_texts if words in text]


async def reminders(persona: Any, place: str) -> list[str]:
    """The meeting reminders in a chat (other features may write to it meanwhile: a worker's
    morning task push, digests), told apart by the meeting's place."""
    return [
        text for text in (await persona.transcript()).texts if REMINDER in text and place in text
    ]


async def test_the_quarterly_grid_meeting_from_invitation_to_minutes(h: Harness) -> None:
    head, worker = await h.persona("head"), await h.persona("worker")
    colleague = await h.persona("other_worker")

    await head.send("/meeting")
    proposed = await head.next_message()  # ready to create; the time is not what they want
    assert "2026-03-13" in proposed.text  # the next working day
    await head.press(t("🕒 Another time"))
    assert "2026-03-20 14:30" in (await head.next_message()).text  # the example of a time
    await head.send("下周五 14:30")  # not understood: asked again, nothing lost
    assert "2026-03-20 14:30" in (await head.next_message()).text
    await head.send("3月20日 14:30")
    check = await head.next_message()  # back to the card, with the new time
    assert "2026-03-20" in check.text and "2026-03-13" not in check.text
    await head.press(t("📍 Another place"))
    await head.next_message()  # where?
    await head.send("社区党群服务中心二楼会议室")
    check = await head.next_message()
    assert "2026-03-20" in check.text and t(views.RHYTHM[views.Rhythm.QUARTERLY]) in check.text
    assert "二楼会议室" in check.text
    await head.press(t("✅ Create and invite"))
    await h.settle()

    invitation = await worker.next_message()
    assert "二楼会议室" in invitation.text and "2026-03-20" in invitation.text
    assert invitation.buttons == [t(views.ATTEND), t(views.DECLINE)]
    assert "二楼会议室" in (await colleague.next_message()).text

    await worker.press(t(views.ATTEND))
    await colleague.press(t(views.DECLINE))
    await colleague.next_message()  # why not?
    await colleague.send("那天要去区里参加培训")
    await h.settle()
    card = (await head.transcript()).bot_messages
    summary = next(m for m in card if m.edited and "培训" in m.text)
    assert worker.first_name in summary.text and colleague.first_name in summary.text
    answered = next(m for m in (await worker.transcript()).bot_messages if m.edited)
    assert t("Your answer: ✅ attending") in answered.text

    # the reminders come at their times; the one who cannot come gets none
    place = "二楼会议室"
    await until(h, STARTS - timedelta(hours=24, minutes=1))
    assert await reminders(worker, place) == []
    await until(h, STARTS - timedelta(hours=24))
    (day_before,) = await reminders(worker, place)
    reminder = views.NOTICE_HEAD[meetings.MeetingNotice.REMINDER]
    assert t(reminder, when=views.when_text(STARTS, TZ, t)) in day_before
    await until(h, STARTS - timedelta(hours=1, minutes=1))
    assert len(await reminders(worker, place)) == 1
    await until(h, STARTS - timedelta(hours=1))
    assert len(await reminders(worker, place)) == 2
    assert await reminders(colleague, place) == []

    await until(h, STARTS)
    arrived = (await worker.transcript()).bot_messages
    check_in = next(m for m in arrived if t(views.CHECK_IN) in m.buttons)
    await worker.press(t(views.CHECK_IN), message_id=check_in.message_id)
    await h.settle()
    assert "14:30" in ((await worker.transcript()).toast or {}).get("text", "")
    # the next quarter's invitation goes out as this meeting starts
    assert any("2026-06-20" in text for text in (await worker.transcript()).texts)

    await until(h, STARTS + timedelta(hours=1))
    ended = next(
        m
        for m in reversed((await head.transcript()).bot_messages)
        if t(views.MINUTES) in m.buttons
    )
    await head.press(t(views.MINUTES), message_id=ended.message_id)
    await h.settle()
    await head.send("一、通报一季度走访情况；二、部署电动车充电消防检查。")
    await h.settle()
    after = (await head.transcript()).texts
    absent = next(text for text in reversed(after) if t("never answered") in text)
    assert colleague.first_name in absent and "培训" in absent
    assert worker.first_name not in absent  # checked in

    await head.press(t(views.PROBLEM))
    await h.settle()
    async with h.session() as session:
        worker_grid = (
            await session.exec(
                select(Grid)
                .join(RoleAssignment, col(RoleAssignment.grid_id) == Grid.id)
                .join(Person, col(Person.id) == RoleAssignment.person_id)
                .where(Person.telegram_id == worker.id, RoleAssignment.role == Role.WORKER)
            )
        ).one()
    await head.press(worker_grid.name)
    await h.settle()
    await head.press(t(labels.TICKET_CATEGORY[TicketCategory.FIRE]))
    await h.settle()
    await head.send("5号楼楼道里电动车充电，飞线很多")
    await h.settle()
    ticket_card = next(m for m in (await worker.transcript()).bot_messages if "飞线" in m.text)
    assert t(OPEN_ACTIONS[0][1]) in ticket_card.buttons  # the worker can accept it

    async with h.session() as session:
        first = (
            await session.exec(select(Meeting).order_by(col(Meeting.starts_at)).limit(1))
        ).one()
        ticket = (await session.exec(select(Ticket))).one()
        invites = (
            await session.exec(select(MeetingInvite).where(MeetingInvite.meeting_id == first.id))
        ).all()
        series = (await session.exec(select(Meeting).where(Meeting.series_id == first.id))).all()
    assert first.recurrence == "quarterly" and len(series) == meetings.SERIES_LENGTH
    assert first.minutes is not None and shown_number(ticket) in first.minutes
    assert ticket.grid_id == worker_grid.id
    assert sorted(i.rsvp for i in invites).count(Rsvp.DECLINED) == 1
    assert sum(1 for i in invites if i.checked_in_at is not None) == 1


async def test_a_moved_meeting_tells_each_invitee_once_and_old_reminders_never_come(
    h: Harness,
) -> None:
    head, worker = await h.persona("head"), await h.persona("worker")
    colleague = await h.persona("other_worker")
    meeting = await convene(h, STARTS)
    await worker.next_message()
    await colleague.next_message()
    card = await head.next_message()
    assert t(views.MOVE) in card.buttons

    await head.press(t(views.MOVE))
    await head.next_message()
    await head.send("3月22日 10:00")
    assert "2026-03-22" in (await head.next_message()).text
    await h.settle()  # the invitees' notices follow the head's reply
    new_start = datetime(2026, 3, 22, 10, 0, tzinfo=TZ).astimezone(UTC)
    for invitee in (worker, colleague):
        notices = texts_with((await invitee.transcript()).texts, "🔁")
        assert len(notices) == 1  # one notice each
        assert "2026-03-22" in notices[0] and "2026-03-20" in notices[0]

    # the old times pass in silence; the new reminders come at the new times
    place = "社区会议室"
    for old in (STARTS - timedelta(hours=24), STARTS - timedelta(hours=1), STARTS):
        await until(h, old)
        assert await reminders(worker, place) == []
        assert not [
            m for m in (await worker.transcript()).bot_messages if t(views.CHECK_IN) in m.buttons
        ]
    await until(h, new_start - timedelta(hours=24))
    (day_before,) = await reminders(worker, place)
    assert "2026-03-22" in day_before
    await until(h, new_start - timedelta(hours=1))
    assert len(await reminders(worker, place)) == 2
    async with h.session() as session:
        dropped = (
            await session.exec(
                select(OutboxMessage).where(
                    col(OutboxMessage.ref).startswith(f"mt:{meeting.id}:r"),
                    OutboxMessage.status == OutboxStatus.DROPPED,
                )
            )
        ).all()
    assert dropped and all(r.not_before < new_start - timedelta(hours=24) for r in dropped)


async def test_a_reminder_missed_by_a_dead_process_is_sent_once_if_still_useful(
    h: Harness,
) -> None:
    worker = await h.persona("worker")
    soon = await convene(h, STARTS, "消防安全专题会")
    later = await convene(h, STARTS + timedelta(hours=3), "防汛工作部署会")
    seen = len((await worker.transcript()).texts)
    person = await demo_person(h, "worker")

    async def statuses() -> dict[str, OutboxStatus]:
        async with h.session() as session:
            found = await session.exec(
                select(OutboxMessage).where(OutboxMessage.person_id == person.id)
            )
            return {r.ref: OutboxStatus(r.status) for r in found.all() if r.ref}

    def reminders_of(title: str, texts: list[str]) -> list[str]:  # other chat traffic aside
        return [text for text in texts if REMINDER in text and title in text]

    # down from before the 24 h reminders until 30 minutes before the first meeting
    await restart_at(h, STARTS - timedelta(minutes=30))
    new = (await worker.transcript()).texts[seen:]
    assert len(reminders_of("消防安全专题会", new)) == 1  # the 1 h one, late but useful
    assert len(reminders_of("防汛工作部署会", new)) == 1  # its 24 h one: the 1 h is not due
    rows = await statuses()
    assert rows[f"mt:{soon.id}:r1440:{person.id}"] == OutboxStatus.DROPPED  # superseded
    assert rows[f"mt:{soon.id}:r60:{person.id}"] == OutboxStatus.SENT
    assert rows[f"mt:{later.id}:r1440:{person.id}"] == OutboxStatus.SENT
    assert rows[f"mt:{later.id}:r60:{person.id}"] == OutboxStatus.PENDING

    # a second restart repeats nothing
    await restart_at(h, STARTS + timedelta(minutes=10))
    new = (await worker.transcript()).texts[seen:]
    assert len(reminders_of("消防安全专题会", new)) == 1
    assert (await statuses())[f"mt:{soon.id}:ci:{person.id}"] == OutboxStatus.SENT

    # down past the second meeting's start: its reminder is dropped, its check-in still useful
    await restart_at(h, STARTS + timedelta(hours=3, minutes=5))
    new = (await worker.transcript()).texts[seen:]
    assert len(reminders_of("防汛工作部署会", new)) == 1
    rows = await statuses()
    assert rows[f"mt:{later.id}:r60:{person.id}"] == OutboxStatus.DROPPED
    assert rows[f"mt:{later.id}:ci:{person.id}"] == OutboxStatus.SENT
    check_ins = [
        m for m in (await worker.transcript()).bot_messages if t(views.CHECK_IN) in m.buttons
    ]
    assert len(check_ins) == 2


async def test_the_quarterly_grid_meeting_is_one_tap_and_remembers_time_and_place(
    h: Harness,
) -> None:
    """README: "/meeting (the quarterly grid meeting in one tap)". Before, it took a kind, a
    typed time, a typed place and a confirmation."""
    head, worker = await h.persona("head"), await h.persona("worker")
    await head.send("/meeting")
    card = await head.next_message()
    next_working_day = "2026-03-13"  # Thursday 12 March → Friday 13 March
    assert next_working_day in card.text and "14:30" in card.text
    assert t(views.RHYTHM[views.Rhythm.QUARTERLY]) in card.text
    assert t("✅ Create and invite") in card.buttons
    await head.press(t("✅ Create and invite"))  # the one tap
    await h.settle()
    async with h.session() as session:
        created = (await session.exec(select(Meeting).order_by(col(Meeting.id)))).all()
    assert len(created) == meetings.SERIES_LENGTH  # a quarterly series
    first = created[0]
    assert first.starts_at == datetime(2026, 3, 13, 14, 30, tzinfo=TZ).astimezone(UTC)
    assert first.recurrence == "quarterly"
    invitation = await worker.next_message()
    assert next_working_day in invitation.text

    # next time: the time and place of the last one, on the next working day (after a weekend)
    async with h.session() as session:
        stored = await session.get(Meeting, first.id)
        assert stored is not None
        stored.place = "社区活动室"
        stored.starts_at = datetime(2026, 3, 13, 9, 0, tzinfo=TZ).astimezone(UTC)
        session.add(stored)
        await session.commit()
    await until(h, datetime(2026, 3, 13, 18, 0, tzinfo=TZ).astimezone(UTC))
    await head.send("/meeting")
    card = await head.next_message()
    assert "2026-03-16" in card.text and "09:00" in card.text and "社区活动室" in card.text


async def test_the_meetings_grid_is_picked_from_ones_own_scope_and_a_forged_one_refused(
    h: Harness,
) -> None:
    head = await h.persona("head")
    await head.send("/meeting")
    card = await head.next_message()
    await head.press(t("🏘 Another grid"))
    await h.settle()
    picker = (await head.transcript()).bot_messages[-1]
    async with h.session() as session:
        me = await demo_person(h, "head")
        roles = await people.roles_of(session, me.id or 0)
        own = await meetings.organisable_grid(session, me, roles, h.clock.now())
        below = (
            await session.exec(select(Grid).where(Grid.parent_id == own.id).order_by(Grid.code))
        ).all()
        foreign = (
            await session.exec(
                select(Grid).where(~col(Grid.path).startswith(own.path), Grid.tier == 3)
            )
        ).first()
    assert foreign is not None and below
    assert picker.message_id == card.message_id  # the card became the picker
    assert f"✅ {own.name}" in picker.buttons
    assert below[0].name in picker.buttons
    assert foreign.name not in picker.buttons
    for button in picker.inline_keyboard:
        for key in button:
            assert len(key["callback_data"].encode()) <= 64

    await h.forge_press(
        head, views.MeetingGridCb(grid=foreign.id or 0, page=0, step=views.PickStep.CHOOSE).pack()
    )
    toast = (await head.transcript()).toast
    assert toast is not None and "不在您负责的网格范围内" in toast["text"]
    await h.forge_press(
        head, views.MeetingGridCb(grid=foreign.id or 0, page=0, step=views.PickStep.OPEN).pack()
    )
    toast = (await head.transcript()).toast
    assert toast is not None and "不在您负责的网格范围内" in toast["text"]
    assert foreign.name not in (await head.transcript()).bot_messages[-1].text

    await head.press(below[0].name)
    await h.settle()
    chosen = (await head.transcript()).bot_messages[-1]
    assert below[0].name in chosen.text and t("✅ Create and invite") in chosen.buttons
    await head.press(t("✅ Create and invite"))
    await h.settle()
    async with h.session() as session:
        (meeting, *_) = (await session.exec(select(Meeting))).all()
    assert meeting.grid_id == below[0].id
