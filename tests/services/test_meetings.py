"""Meetings (例会) on the real database: invitations, reminders as due rows, RSVP, moving,
cancelling, check-in, minutes, problems as tickets, absentees; the time parser."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import FrozenClock
from bot.errors import InvalidInput, NotAllowed
from bot.services import meeting_minutes, meeting_times, meetings, people
from bot.services.demo import DEMO_PERSONAS, load_demo_data
from bot.services.meeting_times import Recurrence, parse_meeting_time
from bot.services.meetings import (
    CheckInClosed,
    InviteeGroup,
    MeetingDraft,
    MeetingStarted,
    NotInvited,
)
from bot.services.ticket_numbers import shown_number
from bot.settings import Settings
from bot.telegram.meeting_views import TelegramMeetingNotifier
from bot.telegram.ticket_notifier import TelegramTicketNotifier
from models import (
    AuditLog,
    CalendarDay,
    Grid,
    Meeting,
    MeetingInvite,
    OutboxMessage,
    OutboxStatus,
    Person,
    Role,
    RoleAssignment,
    Rsvp,
    TicketCategory,
)
from tests.conftest import T0

TZ = ZoneInfo("Asia/Shanghai")
SETTINGS = Settings(_env_file=None)  # type: ignore[call-arg]
NOTIFIER = TelegramMeetingNotifier(SETTINGS)
# 2026-03-20 14:30 in Shanghai, a Friday eight days after T0
STARTS = datetime(2026, 3, 20, 14, 30, tzinfo=TZ).astimezone(UTC)


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=TZ).astimezone(UTC)  # type: ignore[misc]


# -- the time parser (pure) -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed,expected",
    [
        ("2026-03-20 14:30", local(2026, 3, 20, 14, 30)),
        ("2026-3-20T14:30", local(2026, 3, 20, 14, 30)),
        ("2026/03/20 14:30", local(2026, 3, 20, 14, 30)),
        ("2026.3.20 9:05", local(2026, 3, 20, 9, 5)),
        ("２０２６－０３－２０　１４：３０", local(2026, 3, 20, 14, 30)),
        ("3月20日 14:30", local(2026, 3, 20, 14, 30)),
        ("3月20日14:30", local(2026, 3, 20, 14, 30)),
        ("3月20号 下午2点半", local(2026, 3, 20, 14, 30)),
        ("2026年3月20日 上午9点", local(2026, 3, 20, 9, 0)),
        ("3月20日 晚上7点15分", local(2026, 3, 20, 19, 15)),
        ("3月20日 中午12点", local(2026, 3, 20, 12, 0)),
        ("03-20 14:30", local(2026, 3, 20, 14, 30)),
        ("3/20 2:30 pm", local(2026, 3, 20, 14, 30)),
        ("明天 下午3点", local(2026, 3, 13, 15, 0)),
        ("今天 15:00", local(2026, 3, 12, 15, 0)),
        ("後天 10:00", local(2026, 3, 14, 10, 0)),
        ("  Tomorrow   08:00 ", local(2026, 3, 13, 8, 0)),
        ("1月5日 9:00", local(2027, 1, 5, 9, 0)),  # January has passed: next year's
    ],
)
def test_the_time_parser_reads_what_people_type(typed: str, expected: datetime) -> None:
    assert parse_meeting_time(typed, now=T0, tz=TZ) == expected


@pytest.mark.parametrize(
    "typed,words",
    [
        ("", "could not read"),
        ("   ", "could not read"),
        ("next friday", "could not read"),
        ("2026-03-20", "could not read"),
        ("14:30", "could not read"),
        ("2026-02-30 10:00", "no such date"),
        ("2026-03-20 25:00", "no such date"),
        ("2026-03-20 10:75", "no such date"),
        ("3月11日 10:00", "already passed"),  # yesterday: a slip, not next year
        ("今天 8:00", "already passed"),
        ("2025-12-01 10:00", "already passed"),
        ("2027-03-12 09:01", "more than a year"),
        ("2030-01-01 10:00", "more than a year"),
        ("2" * 10_000, "could not read"),
    ],
)
def test_the_time_parser_refuses_clearly(typed: str, words: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_meeting_time(typed, now=T0, tz=TZ)
    assert words in refused.value.message.format(**refused.value.params)


@given(st.text(max_size=10_000))
@hsettings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_the_time_parser_never_crashes_on_any_text(typed: str) -> None:
    try:
        starts = parse_meeting_time(typed, now=T0, tz=TZ)
    except InvalidInput as refused:
        refused.message.format(**refused.params)  # a complete message, ready to translate
        return
    assert starts.tzinfo is not None and T0 < starts <= T0 + timedelta(days=366)


TIME_WORDS = st.sampled_from(
    [
        "",
        " ",
        "　",
        "上午",
        "下午",
        "晚上",
        "中午",
        "am",
        "pm",
        "点",
        "點",
        "时",
        ":",
        "：",
        "半",
        "分",
        "月",
        "日",
        "号",
        "年",
        "-",
        "/",
        ".",
        "T",
        "明天",
        "今天",
        "後天",
        "🙂",
        "\u200b",
        "\n",
        "٣",
        "０",
        "１",
        "２",
        "９",
    ]
)
DIGITS = st.integers(min_value=0, max_value=9999).map(str)


@given(st.lists(st.one_of(TIME_WORDS, DIGITS), max_size=12))
@hsettings(max_examples=150)
def test_the_time_parser_on_near_misses(pieces: list[str]) -> None:
    """Pieces of real time expressions in any order: a time within the year, or a refusal."""
    try:
        starts = parse_meeting_time("".join(pieces), now=T0, tz=TZ)
    except InvalidInput:
        return
    assert T0 < starts <= T0 + timedelta(days=366)


@given(
    st.datetimes(min_value=datetime(2026, 3, 12, 9, 1), max_value=datetime(2027, 3, 11, 23, 59)),
    st.booleans(),
)
def test_any_future_time_round_trips_in_every_format(moment: datetime, full_width: bool) -> None:
    moment = moment.replace(second=0, microsecond=0)
    typed = [
        moment.strftime("%Y-%m-%d %H:%M"),
        f"{moment.year}年{moment.month}月{moment.day}日 {moment.hour}:{moment.minute:02d}",
    ]
    for text in typed:
        if full_width:
            text = "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in text)
        assert parse_meeting_time(text, now=T0, tz=TZ) == moment.replace(tzinfo=TZ).astimezone(UTC)


def test_a_series_keeps_its_wall_time_and_clamps_month_ends() -> None:
    first = local(2026, 1, 31, 9, 0)
    assert meeting_times.occurrences(first, Recurrence.QUARTERLY, 4, TZ) == [
        local(2026, 1, 31, 9, 0),
        local(2026, 4, 30, 9, 0),
        local(2026, 7, 31, 9, 0),
        local(2026, 10, 31, 9, 0),
    ]
    assert meeting_times.occurrences(first, Recurrence.MONTHLY, 2, TZ)[1] == local(
        2026, 2, 28, 9, 0
    )
    assert meeting_times.occurrences(first, Recurrence.WEEKLY, 2, TZ)[1] == local(2026, 2, 7, 9, 0)
    assert meeting_times.occurrences(first, None, 4, TZ) == [first]


# -- on the database ------------------------------------------------------------------------------


@pytest.fixture
async def demo(session: AsyncSession, clock: FrozenClock) -> AsyncSession:
    await load_demo_data(session, clock.now())
    await session.flush()
    return session


async def person(session: AsyncSession, persona: str) -> Person:
    return (
        await session.exec(select(Person).where(Person.telegram_id == DEMO_PERSONAS[persona]))
    ).one()


async def roles(session: AsyncSession, who: Person) -> list[people.RoleInGrid]:
    assert who.id is not None
    return await people.roles_of(session, who.id)


async def head_grid(session: AsyncSession, head: Person) -> Grid:
    return await meetings.organisable_grid(session, head, await roles(session, head), T0)


async def rows(session: AsyncSession, prefix: str) -> list[OutboxMessage]:
    await session.flush()
    return list(
        (
            await session.exec(
                select(OutboxMessage)
                .where(col(OutboxMessage.ref).startswith(prefix))
                .order_by(col(OutboxMessage.id))
            )
        ).all()
    )


async def create(
    session: AsyncSession,
    *,
    recurrence: Recurrence | None = None,
    starts_at: datetime = STARTS,
    invitees: InviteeGroup = InviteeGroup.WORKERS,
    named_ids: tuple[int, ...] = (),
) -> list[Meeting]:
    head = await person(session, "head")
    grid = await head_grid(session, head)
    created = await meetings.create_meeting(
        session,
        NOTIFIER,
        organiser=head,
        roles=await roles(session, head),
        draft=MeetingDraft(
            grid_id=grid.id or 0,
            title="第一季度网格例会",
            starts_at=starts_at,
            place="社区活动室",
            invitees=invitees,
            named_ids=named_ids,
            recurrence=recurrence,
        ),
        settings=SETTINGS,
        now=T0,
    )
    await session.flush()
    return created


async def test_a_meeting_invites_the_workers_under_the_grid(demo: AsyncSession) -> None:
    (meeting,) = await create(demo)
    head = await person(demo, "head")
    grid = await head_grid(demo, head)
    expected = await meetings.staff_under(demo, grid, {Role.WORKER})
    invites = await meetings.invites_of(demo, meeting.id or 0)
    assert {p.id for _, p in invites} == {p.id for p in expected}
    assert len(invites) >= 2 and all(i.rsvp == Rsvp.PENDING for i, _ in invites)
    worker = await person(demo, "worker")
    assert worker.id in {p.id for _, p in invites}

    invitations = await rows(demo, f"mt:{meeting.id}:inv:")
    assert len(invitations) == len(invites)
    card = next(r for r in invitations if r.person_id == worker.id)
    assert "第一季度网格例会" in card.payload["text"] and "社区活动室" in card.payload["text"]
    assert card.not_before == T0 and card.expires_at == STARTS
    buttons = [b["callback_data"] for b in card.payload["reply_markup"]["inline_keyboard"][0]]
    assert buttons == [f"mt:a:{meeting.id}", f"mt:d:{meeting.id}"]
    summary = await rows(demo, f"mt:{meeting.id}:sum:{head.id}")
    assert len(summary) == 1 and summary[0].chat_id == head.telegram_id


async def test_reminders_and_check_in_are_rows_due_later(demo: AsyncSession) -> None:
    (meeting,) = await create(demo)
    worker, head = await person(demo, "worker"), await person(demo, "head")
    day = await rows(demo, f"mt:{meeting.id}:r1440:{worker.id}")
    hour = await rows(demo, f"mt:{meeting.id}:r60:{worker.id}")
    check = await rows(demo, f"mt:{meeting.id}:ci:{worker.id}")
    assert [(r.not_before, r.expires_at, r.urgent) for r in day] == [
        (STARTS - timedelta(hours=24), STARTS - timedelta(hours=1), False)  # then superseded
    ]
    assert [(r.not_before, r.expires_at, r.urgent) for r in hour] == [
        (STARTS - timedelta(hours=1), STARTS, True)
    ]
    assert [(r.not_before, r.expires_at) for r in check] == [
        (STARTS, STARTS + meetings.CHECK_IN_CLOSES)
    ]
    assert all(r.status == OutboxStatus.PENDING for r in day + hour + check)
    # the organiser is reminded too, gets no check-in button, and is asked for minutes at the end
    assert len(await rows(demo, f"mt:{meeting.id}:r60:{head.id}")) == 1
    assert await rows(demo, f"mt:{meeting.id}:ci:{head.id}") == []
    (ended,) = await rows(demo, f"mt:{meeting.id}:end:{head.id}")
    assert ended.not_before == STARTS + timedelta(minutes=60) and ended.expires_at is None


async def test_a_meeting_soon_skips_the_reminder_that_would_come_before_the_invitation(
    demo: AsyncSession,
) -> None:
    (meeting,) = await create(demo, starts_at=T0 + timedelta(hours=3))
    assert await rows(demo, f"mt:{meeting.id}:r1440:") == []
    assert len(await rows(demo, f"mt:{meeting.id}:r60:")) > 0
    assert all(r.urgent for r in await rows(demo, f"mt:{meeting.id}:inv:"))


async def test_only_organisers_in_scope_can_convene(demo: AsyncSession) -> None:
    worker = await person(demo, "worker")
    with pytest.raises(NotAllowed):
        await meetings.organisable_grid(demo, worker, await roles(demo, worker), T0)
    head = await person(demo, "head")
    other_tier2 = (
        await demo.exec(
            select(Grid).where(Grid.tier == 2, Grid.id != (await head_grid(demo, head)).id)
        )
    ).first()
    assert other_tier2 is not None
    with pytest.raises(NotAllowed):
        await meetings.organisable_grid(demo, head, await roles(demo, head), T0, other_tier2)


async def test_rsvp_attend_and_decline_with_a_reason(demo: AsyncSession) -> None:
    (meeting,) = await create(demo)
    worker, other = await person(demo, "worker"), await person(demo, "other_worker")
    head = await person(demo, "head")
    mid = meeting.id or 0
    await meetings.rsvp(demo, NOTIFIER, person=worker, meeting_id=mid, attending=True, now=T0)
    with pytest.raises(InvalidInput):
        await meetings.rsvp(
            demo, NOTIFIER, person=other, meeting_id=mid, attending=False, reason="  ", now=T0
        )
    invite = await meetings.rsvp(
        demo,
        NOTIFIER,
        person=other,
        meeting_id=mid,
        attending=False,
        reason="那天要去区里培训",
        now=T0,
    )
    assert invite.rsvp == Rsvp.DECLINED and invite.reason == "那天要去区里培训"
    # no reminders or check-in for someone who cannot come
    dropped = await rows(demo, f"mt:{mid}:r1440:{other.id}") + await rows(
        demo, f"mt:{mid}:ci:{other.id}"
    )
    assert dropped and all(r.status == OutboxStatus.DROPPED for r in dropped)
    assert all(
        r.status == OutboxStatus.PENDING for r in await rows(demo, f"mt:{mid}:r60:{worker.id}")
    )
    # the organiser's card is edited in place with each reply
    await demo.flush()
    edits = (
        await demo.exec(
            select(OutboxMessage).where(OutboxMessage.edit_ref == f"mt:{mid}:sum:{head.id}")
        )
    ).all()
    assert len(edits) == 2
    assert worker.name in edits[-1].payload["text"]
    assert "那天要去区里培训" in edits[-1].payload["text"]

    # changing one's mind brings the reminders back
    await meetings.rsvp(demo, NOTIFIER, person=other, meeting_id=mid, attending=True, now=T0)
    again = [
        r for r in await rows(demo, f"mt:{mid}:r60:{other.id}") if r.status == OutboxStatus.PENDING
    ]
    assert len(again) == 1

    head_roles = await roles(demo, head)
    assert head_roles
    with pytest.raises(NotInvited):
        await meetings.rsvp(demo, NOTIFIER, person=head, meeting_id=mid, attending=True, now=T0)
    with pytest.raises(MeetingStarted):
        await meetings.rsvp(
            demo, NOTIFIER, person=worker, meeting_id=mid, attending=True, now=STARTS
        )


async def test_moving_withdraws_old_timers_and_tells_everyone_once(
    demo: AsyncSession,
) -> None:
    (meeting,) = await create(demo)
    head = await person(demo, "head")
    mid = meeting.id or 0
    invites = await meetings.invites_of(demo, mid)
    old = {r.id for r in await rows(demo, f"mt:{mid}:r") + await rows(demo, f"mt:{mid}:ci:")}
    later = STARTS + timedelta(days=1, hours=1)
    await meetings.move_meeting(
        demo,
        NOTIFIER,
        actor=head,
        roles=await roles(demo, head),
        meeting_id=mid,
        starts_at=later,
        now=T0,
    )
    timers = await rows(demo, f"mt:{mid}:r") + await rows(demo, f"mt:{mid}:ci:")
    assert {r.id for r in timers if r.status == OutboxStatus.DROPPED} == old
    fresh = [r for r in timers if r.status == OutboxStatus.PENDING]
    assert {r.not_before for r in fresh} == {
        later - timedelta(hours=24),
        later - timedelta(hours=1),
        later,
    }
    assert {r.expires_at for r in fresh} == {
        later - timedelta(hours=1),
        later,
        later + meetings.CHECK_IN_CLOSES,
    }
    notices = (
        await demo.exec(
            select(OutboxMessage).where(
                col(OutboxMessage.ref).is_(None),
                col(OutboxMessage.person_id).in_([p.id for _, p in invites]),
            )
        )
    ).all()
    assert sorted(n.person_id or 0 for n in notices) == sorted(p.id or 0 for _, p in invites)
    assert all("2026-03-21" in n.payload["text"] for n in notices)
    assert all("2026-03-20" in n.payload["text"] for n in notices)  # where it was before
    audit = (await demo.exec(select(AuditLog).where(AuditLog.action == "meeting_moved"))).one()
    assert audit.object_id == mid

    other_head = (
        await demo.exec(
            select(Person)
            .join(RoleAssignment, col(RoleAssignment.person_id) == Person.id)
            .where(RoleAssignment.role == Role.HEAD, Person.id != head.id)
            .order_by(col(Person.id).desc())
        )
    ).first()
    assert other_head is not None
    with pytest.raises(NotAllowed):
        await meetings.move_meeting(
            demo,
            NOTIFIER,
            actor=other_head,
            roles=await roles(demo, other_head),
            meeting_id=mid,
            starts_at=later + timedelta(hours=1),
            now=T0,
        )


async def test_cancelling_drops_every_pending_row_and_tells_everyone_once(
    demo: AsyncSession,
) -> None:
    (meeting,) = await create(demo)
    head = await person(demo, "head")
    mid = meeting.id or 0
    invites = await meetings.invites_of(demo, mid)
    await meetings.cancel_meeting(
        demo, NOTIFIER, actor=head, roles=await roles(demo, head), meeting_id=mid, now=T0
    )
    assert meeting.cancelled_at == T0
    pending = [r for r in await rows(demo, f"mt:{mid}:") if r.status == OutboxStatus.PENDING]
    assert pending == []
    edits = (
        await demo.exec(
            select(OutboxMessage).where(OutboxMessage.edit_ref == f"mt:{mid}:sum:{head.id}")
        )
    ).all()
    assert len(edits) == 1 and not edits[0].payload["reply_markup"]["inline_keyboard"]
    notices = (
        await demo.exec(
            select(OutboxMessage).where(
                col(OutboxMessage.ref).is_(None),
                col(OutboxMessage.person_id).in_([p.id for _, p in invites]),
            )
        )
    ).all()
    assert len(notices) == len(invites)
    worker = await person(demo, "worker")
    with pytest.raises(meetings.MeetingClosed):
        await meetings.rsvp(demo, NOTIFIER, person=worker, meeting_id=mid, attending=True, now=T0)


async def test_a_series_is_created_up_front_and_cancelled_from_one_on(
    demo: AsyncSession,
) -> None:
    series = await create(demo, recurrence=Recurrence.QUARTERLY)
    assert [m.starts_at for m in series] == meeting_times.occurrences(
        STARTS, Recurrence.QUARTERLY, meetings.SERIES_LENGTH, TZ
    )
    assert {m.series_id for m in series} == {series[0].id}
    worker = await person(demo, "worker")
    # each occurrence has its own invitation, sent when the one before it starts
    for before, meeting in zip(series, series[1:], strict=False):
        (invitation,) = await rows(demo, f"mt:{meeting.id}:inv:{worker.id}")
        assert invitation.not_before == before.starts_at
        assert len(await rows(demo, f"mt:{meeting.id}:r60:{worker.id}")) == 1

    head = await person(demo, "head")
    cancelled = await meetings.cancel_meeting(
        demo,
        NOTIFIER,
        actor=head,
        roles=await roles(demo, head),
        meeting_id=series[1].id or 0,
        now=T0,
        following=True,
    )
    assert [m.id for m in cancelled] == [m.id for m in series[1:]]
    assert series[0].cancelled_at is None
    told = (
        await demo.exec(
            select(OutboxMessage).where(
                col(OutboxMessage.ref).is_(None), OutboxMessage.person_id == worker.id
            )
        )
    ).all()
    assert len(told) == 1  # about the occurrence it was named for; the later ones never invited


async def test_check_in_has_a_window(demo: AsyncSession) -> None:
    (meeting,) = await create(demo)
    worker = await person(demo, "worker")
    mid = meeting.id or 0
    for too_early_or_late in (
        STARTS - timedelta(minutes=31),
        STARTS + timedelta(hours=2, seconds=1),
    ):
        with pytest.raises(CheckInClosed) as refused:
            await meetings.check_in(
                demo, person=worker, meeting_id=mid, settings=SETTINGS, now=too_early_or_late
            )
        assert refused.value.params == {"opens": "2026-03-20 14:00", "closes": "2026-03-20 16:30"}
    first = STARTS - timedelta(minutes=30)
    invite = await meetings.check_in(
        demo, person=worker, meeting_id=mid, settings=SETTINGS, now=first
    )
    again = await meetings.check_in(
        demo, person=worker, meeting_id=mid, settings=SETTINGS, now=STARTS
    )
    assert invite.checked_in_at == again.checked_in_at == first
    assert invite.rsvp == Rsvp.ATTENDING
    head = await person(demo, "head")
    with pytest.raises(NotInvited):
        await meetings.check_in(demo, person=head, meeting_id=mid, settings=SETTINGS, now=STARTS)


async def test_minutes_problems_to_tickets_and_absentees(demo: AsyncSession) -> None:
    (meeting,) = await create(demo)
    head, worker = await person(demo, "head"), await person(demo, "worker")
    head_roles = await roles(demo, head)
    mid = meeting.id or 0
    with pytest.raises(InvalidInput):
        await meeting_minutes.record_minutes(
            demo,
            NOTIFIER,
            actor=head,
            roles=head_roles,
            meeting_id=mid,
            text="还没开",
            settings=SETTINGS,
            now=T0,
        )
    await meetings.check_in(demo, person=worker, meeting_id=mid, settings=SETTINGS, now=STARTS)
    after = STARTS + timedelta(hours=1)
    await meeting_minutes.record_minutes(
        demo,
        NOTIFIER,
        actor=head,
        roles=head_roles,
        meeting_id=mid,
        text="一、通报一季度走访情况。\n二、部署消防检查。",
        settings=SETTINGS,
        now=after,
    )
    worker_grid_id = (
        await demo.exec(
            select(RoleAssignment.grid_id).where(
                RoleAssignment.person_id == worker.id, RoleAssignment.role == Role.WORKER
            )
        )
    ).one()
    assert worker_grid_id in {g.id for g in await meeting_minutes.problem_grids(demo, meeting)}
    ticket = await meeting_minutes.raise_problem(
        demo,
        TelegramTicketNotifier(SETTINGS),
        actor=head,
        roles=head_roles,
        meeting_id=mid,
        grid_id=worker_grid_id,
        category=TicketCategory.FIRE,
        description="5号楼楼道电动车充电，消防隐患",
        settings=SETTINGS,
        now=after,
    )
    assert ticket.reporter_id == head.id and ticket.grid_id == worker_grid_id
    await demo.flush()
    card = (
        await demo.exec(
            select(OutboxMessage).where(OutboxMessage.ref == f"tc:{ticket.id}:{worker.id}")
        )
    ).one()
    assert "电动车" in card.payload["text"]
    assert meeting.minutes is not None
    assert meeting.minutes.startswith("一、通报") and shown_number(ticket) in meeting.minutes
    # writing the minutes again keeps the problems listed
    await meeting_minutes.record_minutes(
        demo,
        NOTIFIER,
        actor=head,
        roles=head_roles,
        meeting_id=mid,
        text="修订后的纪要",
        settings=SETTINGS,
        now=after,
    )
    assert meeting.minutes.startswith("修订后的纪要") and shown_number(ticket) in meeting.minutes

    elsewhere = (
        await demo.exec(select(Grid).where(Grid.tier == 3).order_by(col(Grid.id).desc()))
    ).first()
    assert elsewhere is not None
    with pytest.raises(NotAllowed):
        await meeting_minutes.raise_problem(
            demo,
            TelegramTicketNotifier(SETTINGS),
            actor=head,
            roles=head_roles,
            meeting_id=mid,
            grid_id=elsewhere.id,
            category=TicketCategory.OTHER,
            description="别的网格的问题，不该在这里",
            settings=SETTINGS,
            now=after,
        )

    absent = await meeting_minutes.absentees(
        demo, actor=head, roles=head_roles, meeting_id=mid, now=after
    )
    invited = await meetings.invites_of(demo, mid)
    assert {p.id for p, _ in absent} == {p.id for _, p in invited} - {worker.id}
    worker_roles = await roles(demo, worker)
    with pytest.raises(NotAllowed):
        await meeting_minutes.absentees(
            demo, actor=worker, roles=worker_roles, meeting_id=mid, now=after
        )


async def test_a_series_is_topped_up_when_minutes_are_recorded(demo: AsyncSession) -> None:
    series = await create(demo, recurrence=Recurrence.WEEKLY)
    head = await person(demo, "head")
    second = series[1]
    during = second.starts_at + timedelta(minutes=30)
    await meeting_minutes.record_minutes(
        demo,
        NOTIFIER,
        actor=head,
        roles=await roles(demo, head),
        meeting_id=second.id or 0,
        text="第二周例会纪要",
        settings=SETTINGS,
        now=during,
    )
    await demo.flush()
    all_of_them = (
        await demo.exec(
            select(Meeting)
            .where(Meeting.series_id == series[0].id)
            .order_by(col(Meeting.starts_at))
        )
    ).all()
    assert len(all_of_them) == meetings.SERIES_LENGTH + 1
    added = all_of_them[-1]
    assert added.starts_at == series[-1].starts_at + timedelta(weeks=1)
    invites = (
        await demo.exec(select(MeetingInvite).where(MeetingInvite.meeting_id == added.id))
    ).all()
    assert len(invites) == len(await meetings.invites_of(demo, series[0].id or 0))


async def test_named_invitees(demo: AsyncSession) -> None:
    head = await person(demo, "head")
    grid = await head_grid(demo, head)
    worker, other = await person(demo, "worker"), await person(demo, "other_worker")
    found = await meetings.find_named(demo, grid, f"{worker.name}、 {other.name}")
    assert [p.id for p in found] == [worker.id, other.id]
    with pytest.raises(InvalidInput):
        await meetings.find_named(demo, grid, "没有这个人")
    with pytest.raises(InvalidInput):
        await meetings.find_named(demo, grid, " ， ")
    (meeting,) = await create(
        demo, invitees=InviteeGroup.NAMED, named_ids=(worker.id or 0, head.id or 0)
    )
    invited = await meetings.invites_of(demo, meeting.id or 0)
    assert [p.id for _, p in invited] == [worker.id]  # never the organiser
    upcoming = await meetings.upcoming_for(demo, worker, T0)
    assert [m.id for m, _ in upcoming] == [meeting.id]


@given(st.text(max_size=300))
@hsettings(max_examples=200)
def test_titles_and_places_are_cleaned_or_refused(raw: str) -> None:
    try:
        title = meeting_times.clean_title(raw)
    except InvalidInput:
        return
    assert title == title.strip() and 0 < len(title) <= meeting_times.MAX_TITLE
    assert "\n" not in title


@given(st.text(max_size=10_000))
@hsettings(max_examples=200)
def test_names_are_split_or_refused(raw: str) -> None:
    try:
        words = meetings.split_names(raw)
    except InvalidInput as refused:
        refused.message.format(**refused.params)
        return
    assert 0 < len(words) <= meetings.MAX_NAMES and len(set(words)) == len(words)
    assert all(word and not any(ch.isspace() for ch in word) for word in words)


def test_names_are_split_on_chinese_and_western_separators() -> None:
    assert meetings.split_names("王晓峰、段嘉怡，田琳; 13800138000  王晓峰") == [
        "王晓峰",
        "段嘉怡",
        "田琳",
        "13800138000",
    ]


async def test_the_quarterly_proposal_skips_days_off_and_keeps_the_usual_time_and_place(
    demo: AsyncSession, clock: FrozenClock
) -> None:
    """/meeting's one tap: Thursday 12 March → Friday 13th, unless the 13th is made a day off
    (then Monday 16th); the time and place of the organiser's last meeting there."""
    now = clock.now()
    head = await person(demo, "head")
    roles = await people.roles_of(demo, head.id or 0)
    first = await meetings.propose_quarterly(demo, head, roles, now, TZ)
    assert first.starts_at == local(2026, 3, 13, 14, 30) and first.place == ""
    demo.add(CalendarDay(day=date(2026, 3, 13), is_workday=False, created_at=now))
    demo.add(
        Meeting(
            organiser_id=head.id or 0,
            grid_id=first.grid.id or 0,
            title="例会",
            place="二楼会议室",
            starts_at=local(2026, 3, 10, 9, 30),
            created_at=now,
            updated_at=now,
        )
    )
    await demo.flush()
    again = await meetings.propose_quarterly(demo, head, roles, now, TZ)
    assert again.grid.id == first.grid.id
    assert again.starts_at == local(2026, 3, 16, 9, 30) and again.place == "二楼会议室"
    worker = await person(demo, "worker")
    with pytest.raises(NotAllowed):
        await meetings.propose_quarterly(
            demo, worker, await people.roles_of(demo, worker.id or 0), now, TZ
        )
