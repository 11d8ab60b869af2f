"""The morning task push and the quota reminders on the demo community (real database)."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.errors import NotAllowed
from bot.services import daily_push, meetings, quotas, tickets
from bot.services.demo import DEMO_PERSONAS, load_demo_data
from bot.services.message_size import utf16_length
from bot.services.notice_board import resident_grid
from bot.services.people import roles_of, roles_of_many
from bot.settings import ReportLimits, Settings
from bot.telegram.visit_views import VisitPickCb, render_push
from models import DailyPush, Meeting, MeetingInvite, OutboxMessage, Person, TicketCategory
from tests.fakes import RecordingNotifier

SHANGHAI = ZoneInfo("Asia/Shanghai")
SETTINGS = Settings(
    _env_file=None, bot_token=SecretStr("200000001:GridBotServiceTestToken_abcdefghijkl")
)  # type: ignore[call-arg]


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI).astimezone(UTC)  # type: ignore[misc]


async def pushes(session: AsyncSession) -> list[OutboxMessage]:
    rows = await session.exec(
        select(OutboxMessage).where(col(OutboxMessage.ref).startswith("dp:"))
    )
    return list(rows.all())


async def test_the_push_goes_to_every_worker_once_from_eight_with_the_planned_households(
    session: AsyncSession,
) -> None:
    await load_demo_data(session, at(2026, 3, 12, 7))
    assert (
        await daily_push.send_daily_pushes(session, at(2026, 3, 13, 7, 59), SETTINGS, render_push)
        == 0
    )
    sent = await daily_push.send_daily_pushes(session, at(2026, 3, 13, 8), SETTINGS, render_push)
    assert sent == 27
    assert (
        await daily_push.send_daily_pushes(session, at(2026, 3, 13, 10), SETTINGS, render_push)
        == 0
    )
    plans = await quotas.plan_daily_push(session, at(2026, 3, 13, 8), tz=SHANGHAI)
    rows = await pushes(session)
    assert len({row.chat_id for row in rows if "#" not in (row.ref or "")}) == 27
    for row in rows:
        assert not row.urgent  # quiet hours hold it
        assert utf16_length(row.payload["text"]) <= 4096
    worker = (
        await session.exec(select(Person).where(Person.telegram_id == DEMO_PERSONAS["worker"]))
    ).one()
    text = "\n".join(r.payload["text"] for r in rows if r.chat_id == worker.telegram_id)
    for suggestion in plans[worker.id or 0].suggestions:
        assert suggestion.code in text


async def test_no_push_at_weekends_or_in_quiet_hours(session: AsyncSession) -> None:
    await load_demo_data(session, at(2026, 3, 12, 7))
    saturday = at(2026, 3, 14, 9)
    assert await daily_push.send_daily_pushes(session, saturday, SETTINGS, render_push) == 0
    assert (
        await daily_push.send_daily_pushes(session, at(2026, 3, 13, 21, 30), SETTINGS, render_push)
        == 0
    )
    assert await pushes(session) == []


async def test_an_unreachable_worker_is_reported_to_the_head(session: AsyncSession) -> None:
    await load_demo_data(session, at(2026, 3, 12, 7))
    worker = (
        await session.exec(select(Person).where(Person.telegram_id == DEMO_PERSONAS["worker"]))
    ).one()
    worker.reachable = False
    session.add(worker)
    await daily_push.send_daily_pushes(session, at(2026, 3, 13, 8), SETTINGS, render_push)
    rows = await pushes(session)
    assert all(row.chat_id != worker.telegram_id for row in rows)
    told = (
        await session.exec(
            select(OutboxMessage).where(OutboxMessage.chat_id == DEMO_PERSONAS["head"])
        )
    ).all()
    assert any(worker.name in row.payload["text"] for row in told)


async def test_reminders_five_working_days_before_the_end_once(session: AsyncSession) -> None:
    await load_demo_data(session, at(2026, 3, 12, 7))
    assert await daily_push.send_quota_reminders(session, at(2026, 3, 24, 9, 15), SETTINGS) == 0
    first = await daily_push.send_quota_reminders(session, at(2026, 3, 25, 9, 15), SETTINGS)
    assert first > 27  # every worker, and their heads
    assert await daily_push.send_quota_reminders(session, at(2026, 3, 25, 10), SETTINGS) == 0
    refs = (
        await session.exec(
            select(OutboxMessage.ref).where(col(OutboxMessage.ref).startswith("qr"))
        )
    ).all()
    assert f"qrh:{DEMO_PERSONAS['head']}" not in refs  # refs name person ids, not chats
    assert any(ref and ref.endswith(":2026-03-01") for ref in refs)


async def _tickets_and_a_meeting_today(session: AsyncSession) -> None:
    """Open tickets in several grids (one at the worker's) and a meeting this morning."""
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        reports=ReportLimits(per_hour=50, per_day=50),
    )
    for persona in ("resident", "other_resident"):
        reporter = (
            await session.exec(select(Person).where(Person.telegram_id == DEMO_PERSONAS[persona]))
        ).one()
        grid = await resident_grid(session, reporter.id or 0)
        assert grid is not None
        for n in range(12):  # more than a push names
            await tickets.file_ticket(
                session,
                RecordingNotifier(),
                reporter=reporter,
                grid=grid,
                report=tickets.Report(TicketCategory.FACILITY, f"第{n}号路灯不亮了"),
                settings=settings,
                now=at(2026, 3, 12, 9, n),
            )
    head = (
        await session.exec(select(Person).where(Person.telegram_id == DEMO_PERSONAS["head"]))
    ).one()
    worker = (
        await session.exec(select(Person).where(Person.telegram_id == DEMO_PERSONAS["worker"]))
    ).one()
    grid_id = (await roles_of(session, head.id or 0))[0].grid_id
    for hour, cancelled in ((10, None), (11, at(2026, 3, 12, 12)), (20, None)):
        meeting = Meeting(
            organiser_id=head.id or 0,
            grid_id=grid_id,
            title=f"{hour}点例会",
            starts_at=at(2026, 3, 13, hour),
            cancelled_at=cancelled,
            created_at=at(2026, 3, 12, 12),
            updated_at=at(2026, 3, 12, 12),
        )
        session.add(meeting)
        await session.flush()
        session.add(MeetingInvite(meeting_id=meeting.id or 0, person_id=worker.id or 0))
    await session.flush()


async def test_the_push_names_what_each_workers_own_lists_name(session: AsyncSession) -> None:
    """The set-based push matches, worker by worker, /tickets and the meeting list."""
    await load_demo_data(session, at(2026, 3, 12, 7))
    await _tickets_and_a_meeting_today(session)
    now = at(2026, 3, 13, 8)
    workers = list((await session.exec(select(Person).order_by(col(Person.id)))).all())
    roles = await roles_of_many(session, [w.id or 0 for w in workers])
    built = await daily_push.compose_pushes(
        session, workers, {}, roles, date(2026, 3, 13), now, SETTINGS
    )
    named_tickets = named_meetings = 0
    for push in built:
        worker = push.worker
        try:
            expected = await tickets.tickets_in_scope(
                session, worker, roles.get(worker.id or 0, []), limit=1000
            )
        except NotAllowed:
            expected = []
        # the same soonest deadlines, from the same tickets (ties may come in any order)
        deadlines = [t.next_deadline_at for t in expected[: daily_push.MAX_TICKETS]]
        assert [t.next_deadline_at for t in push.tickets] == deadlines, worker.name
        assert {t.id for t in push.tickets} <= {t.id for t in expected}, worker.name
        todays = [
            m.id
            for m, _ in await meetings.upcoming_for(session, worker, now)
            if m.starts_at < at(2026, 3, 14, 0)
        ]
        assert [m.id for m in push.meetings] == todays, worker.name
        named_tickets += len(push.tickets)
        named_meetings += len(push.meetings)
    assert named_tickets > 0 and named_meetings > 0  # the comparison was not vacuous


async def test_the_push_reads_the_same_few_times_for_any_number_of_workers(
    session: AsyncSession,
) -> None:
    """No query per worker: the statements of a whole push do not grow with the workers."""
    await load_demo_data(session, at(2026, 3, 12, 7))
    await _tickets_and_a_meeting_today(session)
    statements: list[str] = []

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    connection = (await session.connection()).sync_connection
    assert connection is not None
    event.listen(connection, "before_cursor_execute", count)
    try:
        sent = await daily_push.send_daily_pushes(
            session, at(2026, 3, 13, 8), SETTINGS, render_push
        )
    finally:
        event.remove(connection, "before_cursor_execute", count)
    assert sent == 27
    reads = [s for s in statements if s.lstrip().upper().startswith(("SELECT", "WITH"))]
    assert len(reads) < 20, reads  # 27 workers, each with tickets and a meeting


async def test_two_processes_claiming_overlapping_pushes_share_them_out_once(
    engine: AsyncEngine,
) -> None:
    now = at(2026, 3, 13, 8)
    async with AsyncSession(engine, expire_on_commit=False) as setup:
        people = [Person(name=f"网格员{n}", created_at=now, updated_at=now) for n in range(50)]
        setup.add_all(people)
        await setup.commit()
    ids = [p.id or 0 for p in people]

    async def claim(mine: list[int]) -> set[int]:
        async with AsyncSession(engine) as session:
            outcomes = dict.fromkeys(mine, "sent")
            won = await quotas.claim_daily_pushes(session, date(2026, 3, 13), now, outcomes)
            await asyncio.sleep(0)  # let the other claimant run into the first one's rows
            await session.commit()
            return won

    first, second = await asyncio.gather(claim(ids[:40]), claim(ids[20:]))
    assert not first & second
    assert first | second == set(ids)
    async with AsyncSession(engine) as check:
        assert len((await check.exec(select(DailyPush))).all()) == 50
        again = await quotas.claim_daily_pushes(
            check, date(2026, 3, 13), now, dict.fromkeys(ids, "sent")
        )
        assert again == set()


def test_a_long_push_is_split_within_telegrams_limits() -> None:
    suggestions = tuple(
        quotas.Suggestion(
            i, f"H{i:05d}", "张" * 20, "杏林路" + "号" * 60, i % 2 == 0, False, (1,), None
        )
        for i in range(1, 351)
    )
    plan = quotas.WorkerPlan(1, date(2026, 3, 13), 400, 350, (), suggestions)
    worker = Person(
        id=1, name="王", telegram_id=5, created_at=at(2026, 1, 1), updated_at=at(2026, 1, 1)
    )
    push = daily_push.MorningPush(
        worker, date(2026, 3, 13), plan, (), (), composed_at=at(2026, 3, 13, 8)
    )
    parts = render_push(push, "zh_Hans", SETTINGS)
    assert len(parts) > 1
    ids: list[int] = []
    for text, keyboard in parts:
        assert utf16_length(text) <= 4096
        buttons = [b for row in (keyboard or {}).get("inline_keyboard", []) for b in row]
        assert len(buttons) <= 100
        assert all(len(row) <= 8 for row in (keyboard or {}).get("inline_keyboard", []))
        ids.extend(VisitPickCb.unpack(b["callback_data"]).id for b in buttons)
    assert ids == list(range(1, 351))


def test_an_empty_push_is_empty() -> None:
    worker = Person(id=1, name="王", created_at=at(2026, 1, 1), updated_at=at(2026, 1, 1))
    assert daily_push.MorningPush(
        worker, date(2026, 3, 13), None, (), (), composed_at=at(2026, 3, 13, 8)
    ).empty


@given(st.one_of(st.text(max_size=10_000), st.sampled_from(["   ", "１２３", "😀" * 60, "\x00a"])))
def test_search_words_never_crash_and_stay_short(text: str) -> None:
    words = daily_push.clean_search(text)
    assert len(words) <= daily_push.SEARCH_LIMIT
    assert words == words.strip()
