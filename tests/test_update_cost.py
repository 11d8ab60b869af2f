"""What one update costs the database: the middlewares' order, and a ceiling on the statements
of a /report step through the real dispatcher."""

from __future__ import annotations

import gc
import json
import weakref
from collections.abc import AsyncIterator

import pytest
from aiogram import Bot
from aiogram.dispatcher.middlewares.error import ErrorsMiddleware
from aiogram.dispatcher.middlewares.user_context import UserContextMiddleware
from aiogram.methods import GetMyCommands, Response
from aiogram.types import BotCommand
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.app import App, BotApiSession, build_app
from bot.clock import FrozenClock
from bot.db import create_engine
from bot.services import people
from bot.settings import Settings
from bot.telegram.middlewares import (
    UpdateContextMiddleware,
    UpdateFsmMiddleware,
    UpdateMetricsMiddleware,
)
from bot.telegram.report_views import ReportCategoryCb
from handlers.report import NewReport
from models import TicketCategory
from tests.fakes import TOKEN, RecordingNotifier, recording_bot
from tests.statements import Statements
from tests.test_report_flow import NEWCOMER_ID, RESIDENT_ID, WORKER_ID, Chat, build_world


@pytest.fixture
async def app(engine: AsyncEngine, database_url: str, clock: FrozenClock) -> AsyncIterator[App]:
    bot, _ = recording_bot()
    settings = Settings(bot_token=TOKEN, database_url=database_url, _env_file=None)
    pooled = create_engine(database_url)
    app = build_app(settings, clock, engine=pooled, bot=bot)
    app.dispatcher["notifier"] = RecordingNotifier()
    async with app.sessions() as session:
        await build_world(session, clock.now())
    yield app
    await pooled.dispose()


def test_the_update_context_runs_after_the_user_context_and_before_the_fsm() -> None:
    """The FSM middleware reads the state inside the update's transaction, after the duplicate
    check: one session and one write lock per update, no state read for a redelivery."""
    bot, _ = recording_bot()
    settings = Settings(bot_token=TOKEN, database_url="sqlite+aiosqlite://", _env_file=None)
    app = build_app(settings, FrozenClock.__new__(FrozenClock), bot=bot)
    order = [type(m) for m in app.dispatcher.update.outer_middleware]
    assert order == [
        ErrorsMiddleware,
        UserContextMiddleware,
        UpdateMetricsMiddleware,
        UpdateContextMiddleware,
        UpdateFsmMiddleware,
    ]
    assert app.dispatcher.update.outer_middleware[-1] is app.dispatcher.fsm


STATEMENTS_PER_STEP = 8
"""A ceiling, not a recipe: a /report step is one transaction of a handful of statements (the
duplicate mark, the person, the conversation, its new state, the next question)."""


async def test_a_report_step_is_one_short_transaction(app: App) -> None:
    chat = Chat(app)
    await chat.send("/report")
    await chat.press(ReportCategoryCb(category=TicketCategory.FACILITY))
    with Statements(app.engine) as sql:
        await chat.send("东门的路灯坏了三天，晚上很黑，老人走路不安全。")
    assert await chat.step() == NewReport.photos.state
    assert sql.transactions == 1
    assert len(sql.without_begin()) <= STATEMENTS_PER_STEP


async def test_a_redelivered_update_reads_no_conversation(app: App) -> None:
    chat = Chat(app)
    await chat.send("/report")
    again = chat.updates.text("/report")
    await chat.feed(again)
    with Statements(app.engine) as sql:
        await chat.feed(again)
    assert sql.on("fsm_record") == []
    assert sql.on("outbox") == []


def test_answer_models_outlive_the_garbage_collector() -> None:
    """aiogram builds ``Response[...]`` for every answer and pydantic caches it only weakly;
    BotApiSession holds each one, so it is not built again after every collection."""
    session = BotApiSession()
    bot = Bot(TOKEN, session=session)
    answer = json.dumps({"ok": True, "result": [{"command": "report", "description": "报告"}]})
    result = session.check_response(bot, GetMyCommands(), 200, answer)
    assert [command.command for command in result.result or []] == ["report"]
    model = weakref.ref(Response[list[BotCommand]])
    gc.collect()
    assert model() is not None


async def test_the_person_and_their_roles_are_read_together(app: App, clock: FrozenClock) -> None:
    async with app.sessions() as session:
        for telegram_id in (RESIDENT_ID, WORKER_ID):
            known = await people.get_or_create_by_telegram(
                session, telegram_id=telegram_id, name="x", language_code=None, now=clock.now()
            )
            assert known.id is not None
            caller = await people.get_or_create_with_roles(
                session, telegram_id=telegram_id, name="x", language_code=None, now=clock.now()
            )
            person, roles = caller.person, caller.roles
            assert person is known
            assert roles == await people.roles_of(session, known.id)
            assert roles
        caller = await people.get_or_create_with_roles(
            session, telegram_id=NEWCOMER_ID, name="新人", language_code="en", now=clock.now()
        )
        newcomer, roles = caller.person, caller.roles
        assert newcomer.id is not None and newcomer.name == "新人" and roles == []
        assert newcomer.telegram_language == "en"
