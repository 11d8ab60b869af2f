"""下派 / 上收 through the real dispatcher with hostile input: forged callback data and any
reason text. Every press is answered with a refusal or a next step, never a crash."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import pytest
from aiogram.fsm.storage.base import StorageKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select

from bot.app import App, build_app
from bot.clock import FrozenClock
from bot.services import tickets
from bot.services.demo import DEMO_PERSONAS, load_demo_data
from bot.services.notice_board import resident_grid
from bot.settings import Settings
from handlers.tickets import Dispatching
from models import AuditLog, OutboxMessage, Person, Ticket, TicketCategory
from tests.fakes import TOKEN, RecordingNotifier, RecordingSession, UpdateFactory, recording_bot

SOMETHING_WENT_WRONG = "抱歉，系统出了点问题"
NO_SUCH_TICKET = "抱歉，该内容已不存在。"
pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")

numbers = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.sampled_from(["", "+0", " 3", "3.0", "0x1", "１", "-0", "007", "nan", "9" * 40]),
)
words = st.one_of(
    st.sampled_from(["worker", "head", "center", "admin", "department", "WORKER", "", "a", "g"]),
    st.text(max_size=12),
)
HOSTILE_DATA = st.one_of(
    st.builds(lambda *parts: ":".join(["dp", *parts]), numbers, numbers, words, words),
    st.builds(lambda rest: "dp:" + rest, st.text(max_size=60)),
    st.builds(lambda n: f"tk:s:{n}", numbers),
)
HOSTILE_TEXT = st.one_of(
    st.text(max_size=300),
    st.text(alphabet=st.characters(categories=["So", "Cs", "Zs", "Cc"]), max_size=50),
    st.just(" " * 20),
    st.just("x" * 10_000),
    st.just("<b>不是标签</b> & ;"),
)


@pytest.fixture
async def app(engine: AsyncEngine, database_url: str, clock: FrozenClock) -> AsyncIterator[App]:
    if not database_url.startswith("sqlite"):
        pytest.skip("the parsing does not depend on the database")
    bot, _ = recording_bot()
    application = build_app(
        Settings(bot_token=TOKEN, database_url=database_url, _env_file=None),  # type: ignore[call-arg]
        clock,
        engine=engine,
        bot=bot,
    )
    async with application.sessions() as session:
        await load_demo_data(session, clock.now())
        await session.flush()
        reporter = (
            await session.exec(
                select(Person).where(Person.telegram_id == DEMO_PERSONAS["resident"])
            )
        ).one()
        grid = await resident_grid(session, reporter.id or 0)
        assert grid is not None
        await tickets.file_ticket(
            session,
            RecordingNotifier(),
            reporter=reporter,
            grid=grid,
            report=tickets.Report(TicketCategory.FACILITY, "楼顶水箱漏水，顺着墙往下流"),
            settings=Settings(_env_file=None),  # type: ignore[call-arg]
            now=clock.now(),
        )
        await session.commit()
    yield application


UPDATE_IDS = itertools.count(1)


def updates_from(persona: str) -> UpdateFactory:
    """A demo person, with update ids never reused (a reused id is a redelivery, ignored)."""
    person = UpdateFactory(user_id=DEMO_PERSONAS[persona])
    person.update_id = next(UPDATE_IDS) * 1000
    return person


def recorded(app: App) -> RecordingSession:
    session = app.bot.session
    assert isinstance(session, RecordingSession)
    return session


async def refusals_on_record(app: App) -> int:
    async with app.sessions() as session:
        rows = await session.exec(
            select(AuditLog.id).where(col(AuditLog.action) == "refused:dispatch")
        )
        return len(rows.all())


async def the_ticket(app: App) -> Ticket:
    async with app.sessions() as session:
        return (await session.exec(select(Ticket))).one()


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=HOSTILE_DATA, persona=st.sampled_from(["center", "worker", "resident"]))
async def test_any_dispatch_callback_data_is_answered_without_a_crash(
    app: App, data: str, persona: str
) -> None:
    before = len(recorded(app).answers())
    audits = await refusals_on_record(app)
    await app.dispatcher.feed_update(app.bot, updates_from(persona).press(data))
    answers = recorded(app).answers()[before:]
    assert len(answers) == 1, data
    answer = answers[0].text or ""
    assert SOMETHING_WENT_WRONG not in answer, data
    if persona != "center":
        assert (await the_ticket(app)).owner_role == "worker"  # nothing moved
        if data.startswith("dp:") and answer != NO_SUCH_TICKET:
            assert await refusals_on_record(app) == audits + 1, data  # the press is on record


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=HOSTILE_TEXT)
async def test_any_reason_is_taken_or_asked_again(app: App, text: str) -> None:
    centre = updates_from("center")
    ticket = await the_ticket(app)
    tier = 0 if ticket.sla["tier"] != 0 else 3
    role = "center" if tier == 0 else "worker"
    key = StorageKey(bot_id=app.bot.id, chat_id=centre.chat.id, user_id=centre.user.id)
    await app.dispatcher.storage.set_state(key, Dispatching.reason)
    await app.dispatcher.storage.set_data(
        key, {"ticket_id": ticket.id, "tier": tier, "role": role}
    )
    async with app.sessions() as session:
        before = (
            await session.exec(select(OutboxMessage.id).order_by(col(OutboxMessage.id).desc()))
        ).first() or 0
    await app.dispatcher.feed_update(app.bot, centre.text(text or "?"))
    async with app.sessions() as session:
        answers = [
            payload.get("text", "")
            for payload in (
                await session.exec(
                    select(OutboxMessage.payload).where(
                        col(OutboxMessage.id) > before,
                        OutboxMessage.chat_id == centre.chat.id,
                    )
                )
            )
        ]
    assert answers and not any(SOMETHING_WENT_WRONG in a for a in answers)
    moved = (await the_ticket(app)).sla["tier"] == tier
    state = await app.dispatcher.storage.get_state(key)
    if moved:
        assert state is None and any("现由" in a for a in answers)
    elif not (text or "?").startswith("/"):
        assert state == Dispatching.reason.state  # asked again for a usable reason


async def test_a_reason_with_nothing_remembered_is_refused_and_forgotten(app: App) -> None:
    centre = updates_from("center")
    key = StorageKey(bot_id=app.bot.id, chat_id=centre.chat.id, user_id=centre.user.id)
    await app.dispatcher.storage.set_state(key, Dispatching.reason)
    await app.dispatcher.storage.set_data(key, {"tier": "high"})
    await app.dispatcher.feed_update(app.bot, centre.text("交给社区处理"))
    async with app.sessions() as session:
        texts = [
            payload.get("text", "")
            for payload in await session.exec(
                select(OutboxMessage.payload).where(OutboxMessage.chat_id == centre.chat.id)
            )
        ]
    assert texts == [NO_SUCH_TICKET]
    assert await app.dispatcher.storage.get_state(key) is None
    assert (await the_ticket(app)).owner_role == "worker"


async def test_a_reason_for_a_tier_it_has_reached_meanwhile_ends_the_step(app: App) -> None:
    centre = updates_from("center")
    ticket = await the_ticket(app)
    key = StorageKey(bot_id=app.bot.id, chat_id=centre.chat.id, user_id=centre.user.id)
    await app.dispatcher.storage.set_state(key, Dispatching.reason)
    await app.dispatcher.storage.set_data(
        key, {"ticket_id": ticket.id, "tier": 3, "role": "worker"}
    )
    await app.dispatcher.feed_update(app.bot, centre.text("交给网格员处理"))
    async with app.sessions() as session:
        texts = [
            payload.get("text", "")
            for payload in await session.exec(
                select(OutboxMessage.payload).where(OutboxMessage.chat_id == centre.chat.id)
            )
        ]
    assert texts == ["工单已经在这一级了，请选择其他层级。"]
    assert await app.dispatcher.storage.get_state(key) is None
