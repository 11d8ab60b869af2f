"""The /visit conversation's typed steps with hostile input, through the real dispatcher."""

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
from bot.services.demo import DEMO_PERSONAS, load_demo_data
from bot.settings import Settings
from handlers.visits import VisitFlow
from models import Household, OutboxMessage, Person
from tests.fakes import TOKEN, UpdateFactory, recording_bot

SOMETHING_WENT_WRONG = "抱歉，系统出了点问题"
HOSTILE = st.one_of(
    st.text(max_size=300),
    st.text(alphabet=st.characters(categories=["So", "Cs", "Zs", "Cc"]), max_size=50),
    st.just(" " * 20),
    st.just("x" * 10_000),
    st.just("１２３４５"),
    st.just("🙂" * 40),
)
pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")


@pytest.fixture
async def app(engine: AsyncEngine, database_url: str, clock: FrozenClock) -> AsyncIterator[App]:
    if not database_url.startswith("sqlite"):
        pytest.skip("the conversation's parsing does not depend on the database")
    bot, _ = recording_bot()
    application = build_app(
        Settings(bot_token=TOKEN, database_url=database_url, _env_file=None),  # type: ignore[call-arg]
        clock,
        engine=engine,
        bot=bot,
    )
    async with application.sessions() as session:
        await load_demo_data(session, clock.now())
        await session.commit()
    yield application


async def answers_after(app: App, before: int) -> list[str]:
    async with app.sessions() as session:
        rows = await session.exec(
            select(OutboxMessage.payload)
            .where(col(OutboxMessage.id) > before)
            .order_by(col(OutboxMessage.id))
        )
        return [payload.get("text", "") for payload in rows]


async def last_id(app: App) -> int:
    async with app.sessions() as session:
        found = (
            await session.exec(select(OutboxMessage.id).order_by(col(OutboxMessage.id).desc()))
        ).first()
        return found or 0


UPDATE_IDS = itertools.count(1)


def worker_updates() -> UpdateFactory:
    """The demo worker, with update ids never reused (a reused id is a redelivery, ignored)."""
    worker = UpdateFactory(user_id=DEMO_PERSONAS["worker"])
    worker.update_id = next(UPDATE_IDS) * 1000
    return worker


async def at_step(app: App, worker: UpdateFactory, step: object, **data: object) -> None:
    key = StorageKey(bot_id=app.bot.id, chat_id=worker.chat.id, user_id=worker.user.id)
    await app.dispatcher.storage.set_state(key, step)  # type: ignore[arg-type]
    await app.dispatcher.storage.set_data(key, dict(data))


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=HOSTILE)
async def test_any_search_text_lists_or_says_none_found(app: App, text: str) -> None:
    worker = worker_updates()
    await at_step(app, worker, VisitFlow.household)
    before = await last_id(app)
    await app.dispatcher.feed_update(app.bot, worker.text(text or "?"))
    answers = await answers_after(app, before)
    assert answers and not any(SOMETHING_WENT_WRONG in a for a in answers)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=HOSTILE)
async def test_any_diary_note_is_kept_or_asked_again(app: App, text: str) -> None:
    worker = worker_updates()
    async with app.sessions() as session:
        me = (await session.exec(select(Person).where(Person.telegram_id == worker.user.id))).one()
        household = (
            await session.exec(select(Household).where(Household.worker_id == me.id))
        ).first()
    assert household is not None
    await at_step(app, worker, VisitFlow.note, household_id=household.id, kind="phone")
    before = await last_id(app)
    await app.dispatcher.feed_update(app.bot, worker.text(text or "?"))
    answers = await answers_after(app, before)
    assert answers and not any(SOMETHING_WENT_WRONG in a for a in answers)
