"""Redis (the conversations' store) goes away while the bot runs: every person hears "try
again later" in their language, and the log says so once an outage, not a traceback per
update. (Its absence at start is refused by ``gridbot run``: tests/test_startup.py.)"""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select

from bot.app import App, build_app
from bot.clock import FrozenClock
from bot.settings import Settings
from bot.telegram.callbacks import LanguageCb, LanguageCode
from models import OutboxMessage
from tests.fakes import TOKEN, RecordingSession, UpdateFactory, recording_bot

TRY_LATER = {"zh_Hans": "暂时无法处理，请稍后再试。", "en": "Please try again later."}
CRASHED = "系统出了点问题"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
async def app(engine: AsyncEngine, database_url: str, clock: FrozenClock) -> AsyncIterator[App]:
    bot, _ = recording_bot()
    settings = Settings(
        bot_token=TOKEN,
        database_url=database_url,
        redis_url=f"redis://127.0.0.1:{closed_port()}/0",
        _env_file=None,
    )
    app = build_app(settings, clock, engine=engine, bot=bot)
    yield app
    await app.dispatcher.storage.close()


async def texts_to(app: App, chat_id: int) -> list[str]:
    async with app.sessions() as session:
        rows = await session.exec(
            select(OutboxMessage)
            .where(OutboxMessage.chat_id == chat_id, OutboxMessage.method == "sendMessage")
            .order_by(col(OutboxMessage.id))
        )
        return [row.payload["text"] for row in rows]


async def test_people_hear_try_again_later_and_the_log_says_it_once(
    app: App, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    resident = UpdateFactory(user_id=7001, language_code="zh-hans")
    visitor = UpdateFactory(user_id=7002, language_code="en")
    visitor.update_id = 100
    caplog.set_level(logging.INFO, logger="handlers.errors")

    await app.dispatcher.feed_update(app.bot, resident.text("/help"))
    await app.dispatcher.feed_update(app.bot, resident.text("楼道灯坏了"))
    await app.dispatcher.feed_update(app.bot, visitor.text("/start"))
    await app.dispatcher.feed_update(
        app.bot, visitor.press(LanguageCb(code=LanguageCode.EN).pack())
    )

    assert await texts_to(app, resident.chat.id) == [TRY_LATER["zh_Hans"]] * 2
    [english] = await texts_to(app, visitor.chat.id)
    assert english.endswith(TRY_LATER["en"])
    recording = app.bot.session
    assert isinstance(recording, RecordingSession)
    [alert] = recording.answers()
    assert alert.text is not None and alert.text.endswith(TRY_LATER["en"]) and alert.show_alert
    records = [r for r in caplog.records if r.name == "handlers.errors"]
    assert [r.levelno for r in records] == [logging.ERROR]
    assert "Redis cannot be reached" in records[0].getMessage()
    assert records[0].exc_info is None  # one line, not a traceback per update

    clock.advance(timedelta(seconds=30))  # still out: one reminder a minute
    await app.dispatcher.feed_update(app.bot, resident.text("/help"))
    clock.advance(timedelta(seconds=31))
    await app.dispatcher.feed_update(app.bot, resident.text("/help"))
    records = [r for r in caplog.records if r.name == "handlers.errors"]
    assert [r.levelno for r in records] == [logging.ERROR, logging.WARNING]
    assert "5 updates" in records[1].getMessage()
    assert not any(CRASHED in text for text in await texts_to(app, resident.chat.id))
