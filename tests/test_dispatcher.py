"""/start, /help and /language through the real dispatcher, middlewares and outbox."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiogram.methods import SendMessage, SetMyCommands
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select

from bot.app import App, build_app
from bot.clock import FrozenClock
from bot.settings import Settings
from bot.telegram.callbacks import LanguageCb, LanguageCode
from models import Grid, OutboxMessage, OutboxStatus, Person, Role, RoleAssignment
from tests.fakes import TOKEN, RecordingSession, UpdateFactory, recording_bot


@pytest.fixture
async def app(engine: AsyncEngine, database_url: str, clock: FrozenClock) -> AsyncIterator[App]:
    bot, _ = recording_bot()
    settings = Settings(bot_token=TOKEN, database_url=database_url, _env_file=None)
    yield build_app(settings, clock, engine=engine, bot=bot)


def calls(app: App) -> RecordingSession:
    session = app.bot.session
    assert isinstance(session, RecordingSession)
    return session


async def outbox_texts(app: App, chat_id: int) -> list[str]:
    async with app.sessions() as session:
        rows = await session.exec(
            select(OutboxMessage)
            .where(OutboxMessage.chat_id == chat_id, OutboxMessage.method == "sendMessage")
            .order_by(col(OutboxMessage.id))
        )
        return [row.payload["text"] for row in rows]


async def test_start_greets_a_newcomer_and_explains_how_to_join(app: App) -> None:
    user = UpdateFactory(language_code="zh-hans")
    await app.dispatcher.feed_update(app.bot, user.text("/start"))
    [text] = await outbox_texts(app, user.chat.id)
    assert "网格通" in text
    assert "二维码" in text  # how to join
    async with app.sessions() as session:
        person = (await session.exec(select(Person))).one()
    assert person.telegram_id == user.user.id
    assert person.name == "王小明"  # 姓 王, 名 小明: family name first


async def test_start_names_a_workers_grid_and_role(app: App, clock: FrozenClock) -> None:
    user = UpdateFactory(user_id=6001, language_code="en")
    now = clock.now()
    async with app.sessions() as session:
        grid = Grid(code="350206001001", name="Xingdong", tier=1, created_at=now)
        person = Person(telegram_id=6001, name="Li Hua", created_at=now, updated_at=now)
        session.add_all([grid, person])
        await session.flush()
        assert grid.id is not None and person.id is not None
        session.add(
            RoleAssignment(person_id=person.id, role=Role.WORKER, grid_id=grid.id, created_at=now)
        )
        await session.commit()
    await app.dispatcher.feed_update(app.bot, user.text("/start"))
    [text] = await outbox_texts(app, 6001)
    assert "You are grid worker of <b>Xingdong</b>." in text


async def test_help_lists_commands_in_the_persons_language(app: App) -> None:
    user = UpdateFactory(language_code="zh-TW")
    await app.dispatcher.feed_update(app.bot, user.text("/help"))
    [text] = await outbox_texts(app, user.chat.id)
    assert "/language — 切換語言" in text
    assert "/start" in text


async def test_language_is_remembered_and_menu_refreshed(app: App) -> None:
    user = UpdateFactory(language_code="zh")
    await app.dispatcher.feed_update(app.bot, user.text("/language"))
    [choose] = await outbox_texts(app, user.chat.id)
    assert choose == "请选择语言："
    await app.dispatcher.feed_update(app.bot, user.press(LanguageCb(code=LanguageCode.EN).pack()))
    [answer] = calls(app).answers()
    assert answer.text == "Language set to English."
    await app.dispatcher.feed_update(app.bot, user.text("/help"))
    help_text = (await outbox_texts(app, user.chat.id))[-1]
    assert "Here is what I can do for you" in help_text
    async with app.sessions() as session:
        person = (await session.exec(select(Person))).one()
        menus = (
            await session.exec(
                select(OutboxMessage).where(OutboxMessage.method == "setMyCommands")
            )
        ).all()
    assert person.locale == "en"
    assert menus[-1].payload["commands"][0]["description"] == "Main menu"


async def test_forged_language_callback_is_answered_politely(app: App) -> None:
    user = UpdateFactory()
    await app.dispatcher.feed_update(app.bot, user.press("lg:klingon"))
    await app.dispatcher.feed_update(app.bot, user.press("x" * 64))
    answers = calls(app).answers()
    assert [a.text for a in answers] == ["这个按钮已失效。请发送 /start 重新开始。"] * 2


async def test_unknown_text_gets_a_hint(app: App) -> None:
    user = UpdateFactory()
    await app.dispatcher.feed_update(app.bot, user.text("随便说点什么"))
    assert await outbox_texts(app, user.chat.id) == [
        "抱歉，我没有看懂。发送 /help 查看我能做什么。"
    ]


async def test_a_redelivered_update_is_handled_once(app: App) -> None:
    user = UpdateFactory()
    update = user.text("/help")
    await app.dispatcher.feed_update(app.bot, update)
    await app.dispatcher.feed_update(app.bot, update)
    assert len(await outbox_texts(app, user.chat.id)) == 1


async def test_the_sender_delivers_the_outbox(app: App) -> None:
    user = UpdateFactory()
    await app.dispatcher.feed_update(app.bot, user.text("/start"))
    assert await app.sender.drain_once() >= 2
    sent = calls(app).calls
    assert any(isinstance(c, SendMessage) and c.chat_id == user.chat.id for c in sent)
    assert any(isinstance(c, SetMyCommands) for c in sent)
    async with app.sessions() as session:
        statuses = set((await session.exec(select(OutboxMessage.status))).all())
    assert statuses == {OutboxStatus.SENT}
