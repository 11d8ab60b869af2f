"""On PostgreSQL, two updates of one chat are handled one after the other, in any process."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.db import create_session_factory
from bot.telegram.middlewares import _one_at_a_time


async def test_two_updates_of_one_chat_wait_for_each_other(engine: AsyncEngine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite's write lock already lets one transaction write at a time")
    sessions = create_session_factory(engine)
    order: list[str] = []
    first_holds = asyncio.Event()

    async def first() -> None:
        async with sessions() as session:
            await _one_at_a_time(session, 7_000_000_001)
            first_holds.set()
            await asyncio.sleep(0.3)
            order.append("first done")
            await session.commit()

    async def second(chat_id: int, name: str) -> None:
        await first_holds.wait()
        async with sessions() as session:
            await _one_at_a_time(session, chat_id)
            order.append(name)
            await session.commit()

    await asyncio.gather(
        first(), second(7_000_000_001, "same chat"), second(7_000_000_002, "other chat")
    )
    assert order == ["other chat", "first done", "same chat"]
