"""定性 through the real dispatcher with hostile input: forged callback data and any reason
text. Every press is answered with a refusal or a next step, never a crash."""

from __future__ import annotations

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
from handlers.tickets import Classifying
from models import AuditLog, HandlingKind, OutboxMessage, Person, TicketCategory
from tests.fakes import TOKEN, RecordingNotifier, recording_bot
from tests.test_dispatch_flow import (
    HOSTILE_TEXT,
    NO_SUCH_TICKET,
    SOMETHING_WENT_WRONG,
    numbers,
    recorded,
    the_ticket,
    updates_from,
)

pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")

kinds = st.one_of(
    st.sampled_from([*(kind.value for kind in HandlingKind), "MAJOR", "", "huge", "g"]),
    st.text(max_size=12),
)
steps = st.one_of(st.sampled_from(["a", "g", "", "A", "go"]), st.text(max_size=4))
HOSTILE_DATA = st.one_of(
    st.builds(lambda *parts: ":".join(["cl", *parts]), numbers, kinds, steps),
    st.builds(lambda rest: "cl:" + rest, st.text(max_size=60)),
    st.builds(lambda n: f"tk:k:{n}", numbers),
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
            report=tickets.Report(TicketCategory.FACILITY, "小区大门的电动伸缩门坏了，关不上"),
            settings=Settings(_env_file=None),  # type: ignore[call-arg]
            now=clock.now(),
        )
        await session.commit()
    yield application


async def forged_on_record(app: App) -> int:
    async with app.sessions() as session:
        rows = await session.exec(
            select(AuditLog.id).where(col(AuditLog.action) == "refused:classify")
        )
        return len(rows.all())


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=HOSTILE_DATA, persona=st.sampled_from(["worker", "head", "resident"]))
async def test_any_classify_callback_data_is_answered_without_a_crash(
    app: App, data: str, persona: str
) -> None:
    before = len(recorded(app).answers())
    audits = await forged_on_record(app)
    kind_before = (await the_ticket(app)).kind
    await app.dispatcher.feed_update(app.bot, updates_from(persona).press(data))
    answers = recorded(app).answers()[before:]
    assert len(answers) == 1, data
    assert SOMETHING_WENT_WRONG not in (answers[0].text or ""), data
    if persona != "worker":  # neither may classify it: nothing changed
        assert (await the_ticket(app)).kind == kind_before
    parts = data.split(":")
    ours = (
        len(parts) == 4
        and parts[2] in {kind.value for kind in HandlingKind}
        and parts[3] in {"a", "g"}
        and parts[1].isascii()
        and parts[1].isdigit()
        and str(int(parts[1])) == parts[1]
        and int(parts[1]) < 2**31
    )
    if data.startswith("cl:") and not ours:
        assert await forged_on_record(app) == audits + 1, data  # the press is on record


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=HOSTILE_TEXT)
async def test_any_reason_is_taken_or_asked_again(app: App, text: str) -> None:
    worker = updates_from("worker")
    ticket = await the_ticket(app)
    # both kinds stay with the worker, so every example may classify it back and forth
    target = HandlingKind.URGENT if ticket.kind == HandlingKind.GENERAL else HandlingKind.GENERAL
    key = StorageKey(bot_id=app.bot.id, chat_id=worker.chat.id, user_id=worker.user.id)
    await app.dispatcher.storage.set_state(key, Classifying.reason)
    await app.dispatcher.storage.set_data(key, {"ticket_id": ticket.id, "kind": target.value})
    async with app.sessions() as session:
        before = (
            await session.exec(select(OutboxMessage.id).order_by(col(OutboxMessage.id).desc()))
        ).first() or 0
    await app.dispatcher.feed_update(app.bot, worker.text(text or "?"))
    async with app.sessions() as session:
        answers = [
            payload.get("text", "")
            for payload in (
                await session.exec(
                    select(OutboxMessage.payload).where(
                        col(OutboxMessage.id) > before,
                        OutboxMessage.chat_id == worker.chat.id,
                    )
                )
            )
        ]
    assert answers and not any(SOMETHING_WENT_WRONG in a for a in answers)
    classified = (await the_ticket(app)).kind == target
    state = await app.dispatcher.storage.get_state(key)
    if classified:
        assert state is None and any("已定性为" in a for a in answers)
    elif not (text or "?").startswith("/"):
        assert state == Classifying.reason.state  # asked again for a usable reason


async def test_a_reason_with_nothing_remembered_is_refused_and_forgotten(app: App) -> None:
    worker = updates_from("worker")
    key = StorageKey(bot_id=app.bot.id, chat_id=worker.chat.id, user_id=worker.user.id)
    await app.dispatcher.storage.set_state(key, Classifying.reason)
    await app.dispatcher.storage.set_data(key, {"kind": "enormous"})
    await app.dispatcher.feed_update(app.bot, worker.text("影响很大"))
    async with app.sessions() as session:
        texts = [
            payload.get("text", "")
            for payload in await session.exec(
                select(OutboxMessage.payload).where(OutboxMessage.chat_id == worker.chat.id)
            )
        ]
    assert texts == [NO_SUCH_TICKET]
    assert await app.dispatcher.storage.get_state(key) is None
    assert (await the_ticket(app)).kind == HandlingKind.GENERAL


async def test_a_reason_for_the_kind_it_has_meanwhile_ends_the_step(app: App) -> None:
    worker = updates_from("worker")
    ticket = await the_ticket(app)
    key = StorageKey(bot_id=app.bot.id, chat_id=worker.chat.id, user_id=worker.user.id)
    await app.dispatcher.storage.set_state(key, Classifying.reason)
    await app.dispatcher.storage.set_data(key, {"ticket_id": ticket.id, "kind": "general"})
    await app.dispatcher.feed_update(app.bot, worker.text("就是一般事项"))
    async with app.sessions() as session:
        texts = [
            payload.get("text", "")
            for payload in await session.exec(
                select(OutboxMessage.payload).where(OutboxMessage.chat_id == worker.chat.id)
            )
        ]
    assert texts == ["这件工单已经是该类事项，请选择其他类别。"]
    assert await app.dispatcher.storage.get_state(key) is None
