"""Conversation state: in the database by default, in Redis when REDIS_URL is set."""

from __future__ import annotations

import pytest
from aiogram.fsm.storage.base import BaseStorage, StorageKey
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.app import build_storage
from bot.clock import FrozenClock
from bot.db import create_session_factory
from bot.settings import Settings
from bot.telegram.fsm_storage import DatabaseStorage
from tests.conftest import REDIS_URL
from tests.fakes import TOKEN

KEY = StorageKey(bot_id=123456789, chat_id=42, user_id=42)
OTHER = StorageKey(bot_id=123456789, chat_id=43, user_id=43)


async def round_trip(first: BaseStorage, second: BaseStorage) -> None:
    """What one process writes, another (a restarted bot, another worker) reads."""
    await first.set_state(KEY, "NewReport:description")
    await first.set_data(KEY, {"category": "fire", "photos": ["a", "b"]})
    assert await second.get_state(KEY) == "NewReport:description"
    assert await second.get_data(KEY) == {"category": "fire", "photos": ["a", "b"]}
    assert await second.get_state(OTHER) is None
    assert await second.get_data(OTHER) == {}
    await second.set_state(KEY, None)
    await second.set_data(KEY, {})
    assert await first.get_state(KEY) is None
    assert await first.get_data(KEY) == {}


async def test_database_storage_survives_a_restart(
    engine: AsyncEngine, clock: FrozenClock
) -> None:
    sessions = create_session_factory(engine)
    await round_trip(DatabaseStorage(sessions, clock), DatabaseStorage(sessions, clock))


async def test_redis_storage_is_shared_between_workers(database_url: str) -> None:
    if not REDIS_URL:
        pytest.skip("GRIDBOT_TEST_REDIS_URL is not set (Redis tests run in .ci/run)")
    if not database_url.startswith("sqlite"):
        pytest.skip("one backend is enough for this Redis test")
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        bot_token=SecretStr(TOKEN),
        database_url=database_url,
        redis_url=REDIS_URL,
    )
    clock = FrozenClock.__new__(FrozenClock)
    first = build_storage(settings, None, clock)  # type: ignore[arg-type]
    second = build_storage(settings, None, clock)  # type: ignore[arg-type]
    try:
        assert type(first).__name__ == "RedisStorage"
        await round_trip(first, second)
    finally:
        await first.close()
        await second.close()
