"""Conversation state: in the database by default, in Redis when REDIS_URL is set."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiogram.fsm.storage.base import BaseStorage, StorageKey
from aiogram.fsm.storage.redis import RedisStorage
from pydantic import SecretStr
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.app import build_storage
from bot.clock import FrozenClock
from bot.db import create_session_factory
from bot.services import conversations
from bot.settings import Settings
from bot.telegram.fsm_storage import DatabaseStorage, SessionStorage, record_key
from models import FsmRecord
from tests.fakes import TOKEN
from tests.statements import Statements

KEY = StorageKey(bot_id=123456789, chat_id=42, user_id=42)
OTHER = StorageKey(bot_id=123456789, chat_id=43, user_id=43)
PARTS = ("state", "data")


async def round_trip(
    first: BaseStorage, second: BaseStorage, key: StorageKey = KEY, other: StorageKey = OTHER
) -> None:
    """What one process writes, another (a restarted bot, another worker) reads."""
    await first.set_state(key, "NewReport:description")
    await first.set_data(key, {"category": "fire", "photos": ["a", "b"]})
    assert await second.get_state(key) == "NewReport:description"
    assert await second.get_data(key) == {"category": "fire", "photos": ["a", "b"]}
    assert await second.get_state(other) is None
    assert await second.get_data(other) == {}
    await second.set_state(key, None)
    await second.set_data(key, {})
    assert await first.get_state(key) is None
    assert await first.get_data(key) == {}


async def test_database_storage_survives_a_restart(
    engine: AsyncEngine, clock: FrozenClock
) -> None:
    sessions = create_session_factory(engine)
    await round_trip(DatabaseStorage(sessions, clock), DatabaseStorage(sessions, clock))


def run_keys() -> tuple[StorageKey, StorageKey]:
    """Two conversations no other test run has: runs at once may share one Redis database."""
    chat = os.getpid() * 10**6 + secrets.randbelow(10**6)
    return (
        StorageKey(bot_id=KEY.bot_id, chat_id=chat, user_id=chat),
        StorageKey(bot_id=KEY.bot_id, chat_id=-chat, user_id=chat),
    )


async def test_redis_storage_is_shared_between_workers(redis_url: str) -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        bot_token=SecretStr(TOKEN),
        redis_url=redis_url,
    )
    clock = FrozenClock.__new__(FrozenClock)
    first = build_storage(settings, None, clock)  # type: ignore[arg-type]
    second = build_storage(settings, None, clock)  # type: ignore[arg-type]
    key, other = run_keys()
    try:
        assert isinstance(first, RedisStorage)
        await round_trip(first, second, key, other)
    finally:
        if isinstance(first, RedisStorage):  # this run's keys only: never the whole database
            names = [first.key_builder.build(k, part) for k in (key, other) for part in PARTS]
            await first.redis.delete(*names)
        await first.close()
        await second.close()


# -- inside an update: one read, one write ---------------------------------------------------


@asynccontextmanager
async def in_update(
    engine: AsyncEngine, storage: DatabaseStorage
) -> AsyncIterator[tuple[AsyncSession, SessionStorage]]:
    """The update's session and the storage bound to it, committed at the end (as
    ``UpdateContextMiddleware`` and ``UpdateFsmMiddleware`` do)."""
    async with create_session_factory(engine)() as session:
        yield session, storage.within(session)
        await session.commit()


async def test_in_an_update_the_record_is_read_once_and_written_once(
    engine: AsyncEngine, clock: FrozenClock
) -> None:
    storage = DatabaseStorage(create_session_factory(engine), clock)
    await storage.set_state(KEY, "NewReport:category")
    with Statements(engine) as sql:
        async with in_update(engine, storage) as (_, bound):
            # what the FSM middleware and a /report step do
            assert await bound.get_state(KEY) == "NewReport:category"
            assert await bound.get_data(KEY) == {}
            await bound.set_state(KEY, "NewReport:description")
            await bound.set_data(KEY, {"category": "fire"})
            assert await bound.get_state(KEY) == "NewReport:description"
            assert await bound.get_data(KEY) == {"category": "fire"}
    assert sql.on("fsm_record") == ["SELECT fsm_record", "UPDATE fsm_record"]
    assert await storage.get_state(KEY) == "NewReport:description"
    assert await storage.get_data(KEY) == {"category": "fire"}


async def test_a_new_conversation_is_looked_up_once_and_inserted_at_commit(
    engine: AsyncEngine, clock: FrozenClock
) -> None:
    storage = DatabaseStorage(create_session_factory(engine), clock)
    with Statements(engine) as sql:
        async with in_update(engine, storage) as (_, bound):
            assert await bound.get_state(KEY) is None
            await bound.set_state(KEY, "NewReport:category")
            await bound.set_data(KEY, {"photos": []})
    assert sql.on("fsm_record") == ["SELECT fsm_record", "INSERT fsm_record"]
    assert await storage.get_data(KEY) == {"photos": []}


async def test_data_given_out_or_taken_in_is_a_copy(
    engine: AsyncEngine, clock: FrozenClock
) -> None:
    storage = DatabaseStorage(create_session_factory(engine), clock)
    await storage.set_data(KEY, {"photos": ["a"]})
    async with in_update(engine, storage) as (_, bound):
        read = await bound.get_data(KEY)
        read["photos"].append("changed by the handler")
        assert await bound.get_data(KEY) == {"photos": ["a"]}
        mine = {"photos": ["a", "b"]}
        await bound.set_data(KEY, mine)
        mine["photos"].append("changed after set_data")
    assert await storage.get_data(KEY) == {"photos": ["a", "b"]}


async def test_a_conversation_ended_and_begun_again_in_one_update(
    engine: AsyncEngine, clock: FrozenClock
) -> None:
    storage = DatabaseStorage(create_session_factory(engine), clock)
    await storage.set_state(KEY, "NewReport:place")
    await storage.set_data(KEY, {"category": "fire"})
    async with in_update(engine, storage) as (_, bound):
        await bound.set_state(KEY, None)
        await bound.set_data(KEY, {})  # FSMContext.clear()
        assert await bound.get_state(KEY) is None
        await bound.set_state(KEY, "NewReport:category")
        await bound.set_data(KEY, {"category": "road"})
    assert await storage.get_state(KEY) == "NewReport:category"
    assert await storage.get_data(KEY) == {"category": "road"}
    async with in_update(engine, storage) as (_, bound):
        await bound.set_state(KEY, None)
        await bound.set_data(KEY, {})
    async with create_session_factory(engine)() as session:
        assert await session.get(FsmRecord, record_key(KEY)) is None


async def test_a_conversation_begun_and_ended_in_one_update_leaves_no_row(
    engine: AsyncEngine, clock: FrozenClock
) -> None:
    storage = DatabaseStorage(create_session_factory(engine), clock)
    with Statements(engine) as sql:
        async with in_update(engine, storage) as (_, bound):
            await bound.set_state(KEY, "NewReport:category")
            await bound.set_state(KEY, None)
    assert sql.on("fsm_record") == ["SELECT fsm_record"]
    assert await storage.get_state(KEY) is None


async def test_a_record_locked_in_the_update_is_the_one_the_storage_answers_from(
    engine: AsyncEngine, clock: FrozenClock
) -> None:
    """``conversations.hold`` re-reads the record under a lock (another worker may have moved
    the conversation on since the FSM middleware read it); the storage answers from that."""
    storage = DatabaseStorage(create_session_factory(engine), clock)
    name = record_key(KEY)
    await storage.set_state(KEY, "NewReport:photos")
    await storage.set_data(KEY, {"n": 1})
    async with in_update(engine, storage) as (session, bound):
        assert await bound.get_data(KEY) == {"n": 1}  # read by the FSM middleware
        # meanwhile another photo of the album moves it on (here in the same transaction, so
        # that SQLite, which lets one writer in at a time, can show it too)
        await session.exec(
            update(FsmRecord).where(FsmRecord.key == name).values(data={"n": 2})  # type: ignore[arg-type]
        )
        await conversations.hold(session, name)
        assert await bound.get_state(KEY) == "NewReport:photos"
        assert await bound.get_data(KEY) == {"n": 2}


async def test_after_a_rollback_the_record_is_read_again(
    engine: AsyncEngine, clock: FrozenClock
) -> None:
    storage = DatabaseStorage(create_session_factory(engine), clock)
    await storage.set_state(KEY, "NewReport:category")
    async with create_session_factory(engine)() as session:
        bound = storage.within(session)
        await bound.set_state(KEY, "NewReport:description")
        await session.rollback()  # the handler failed
        assert await bound.get_state(KEY) == "NewReport:category"


# -- in Redis: written once the update has committed --------------------------------------------


async def test_in_redis_a_failed_update_leaves_the_conversation_where_it_was(
    engine: AsyncEngine, database_url: str, redis_url: str, clock: FrozenClock
) -> None:
    """The update's state and data reach Redis only after its transaction commits: one that
    fails (or whose worker dies) is rolled back in the database and comes again, and must
    find the conversation where it was, not at the step it had moved on to (issue 24, found
    by tests/e2e/test_multiprocess_e2e.py)."""
    from aiogram import F
    from aiogram.fsm.context import FSMContext

    from bot.app import build_app
    from tests.fakes import UpdateFactory, recording_bot

    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        bot_token=SecretStr(TOKEN),
        database_url=database_url,
        redis_url=redis_url,
    )
    app = build_app(settings, clock, engine=engine, bot=recording_bot()[0])

    async def step(message: object, state: FSMContext) -> None:
        await state.set_state("report:place")
        await state.set_data({"address": "幸福路1号"})
        assert await state.get_state() == "report:place"  # the update reads its own writes
        assert await state.get_data() == {"address": "幸福路1号"}

    async def broken_step(message: object, state: FSMContext) -> None:
        await state.set_state("report:danger")
        await state.set_data({"address": "幸福路2号"})
        raise RuntimeError("the worker fails after the state moved on")

    app.dispatcher.message.register(step, F.text == "step")
    app.dispatcher.message.register(broken_step, F.text == "broken")
    key, _ = run_keys()
    user = UpdateFactory(user_id=key.chat_id)
    storage = app.dispatcher.storage
    assert isinstance(storage, RedisStorage)
    stored = StorageKey(bot_id=app.bot.id, chat_id=key.chat_id, user_id=key.chat_id)
    try:
        await app.dispatcher.feed_update(app.bot, user.text("step"))
        assert await storage.get_state(stored) == "report:place"
        with contextlib.suppress(RuntimeError):
            await app.dispatcher.feed_update(app.bot, user.text("broken"))
        assert await storage.get_state(stored) == "report:place"
        assert await storage.get_data(stored) == {"address": "幸福路1号"}
    finally:
        await storage.redis.delete(*[storage.key_builder.build(stored, p) for p in PARTS])
        await storage.close()


async def test_in_redis_a_worker_dead_between_commit_and_write_leaves_the_state_staged(
    engine: AsyncEngine,
    database_url: str,
    redis_url: str,
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A worker killed after the update committed and before it wrote the new state: the
    update was not answered, so it comes again, is found handled, and the state staged before
    the commit is written then — the chat's next update finds the step it had reached (issue
    24, found by tests/e2e/test_workers_e2e.py)."""
    from aiogram import F
    from aiogram.fsm.context import FSMContext

    from bot.app import build_app
    from bot.telegram import fsm_storage
    from tests.fakes import UpdateFactory, recording_bot

    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        bot_token=SecretStr(TOKEN),
        database_url=database_url,
        redis_url=redis_url,
    )
    app = build_app(settings, clock, engine=engine, bot=recording_bot()[0])
    handled: list[str] = []

    async def step(message: object, state: FSMContext) -> None:
        handled.append("step")
        await state.set_state("report:danger")
        await state.set_data({"address": "幸福路3号"})

    async def next_step(message: object, state: FSMContext) -> None:
        handled.append(f"next at {await state.get_state()}")

    app.dispatcher.message.register(step, F.text == "step")
    app.dispatcher.message.register(next_step, F.text == "next")
    key, _ = run_keys()
    user = UpdateFactory(user_id=key.chat_id)
    storage = app.dispatcher.storage
    assert isinstance(storage, RedisStorage)
    stored = StorageKey(bot_id=app.bot.id, chat_id=key.chat_id, user_id=key.chat_id)
    await storage.set_state(stored, "report:place")
    flush = fsm_storage.CommitBoundStorage.flush

    async def killed(self: fsm_storage.CommitBoundStorage) -> None:
        raise SystemError("SIGKILL between the commit and the write")

    update = user.text("step")
    staged = f"{fsm_storage.STAGED_PREFIX}{app.bot.id}:{update.update_id}"
    try:
        monkeypatch.setattr(fsm_storage.CommitBoundStorage, "flush", killed)
        with contextlib.suppress(SystemError):
            await app.dispatcher.feed_update(app.bot, update)
        monkeypatch.setattr(fsm_storage.CommitBoundStorage, "flush", flush)
        assert await storage.get_state(stored) == "report:place"  # committed, not written
        assert await storage.redis.exists(staged)

        await app.dispatcher.feed_update(app.bot, update)  # Telegram delivers it again
        assert handled == ["step"]  # handled once
        assert await storage.get_state(stored) == "report:danger"
        assert await storage.get_data(stored) == {"address": "幸福路3号"}
        assert not await storage.redis.exists(staged)

        following = user.text("next")
        await app.dispatcher.feed_update(app.bot, following)
        assert handled == ["step", "next at report:danger"]
        assert not await storage.redis.exists(
            f"{fsm_storage.STAGED_PREFIX}{app.bot.id}:{following.update_id}"
        )
    finally:
        await storage.redis.delete(staged, *[storage.key_builder.build(stored, p) for p in PARTS])
        await storage.close()
