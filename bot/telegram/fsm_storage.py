"""FSM storage in GridBot's own database (the embedded default; Redis at scale).

A conversation in progress survives a restart of the bot, and several bot processes on one
PostgreSQL share it. Inside an update, state is written in the update's own transaction
(:data:`update_session`), so a handler's changes and its conversation step commit or roll back
together — and SQLite never waits on a second connection for a lock the first one holds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any

from aiogram.exceptions import DataNotDictLikeError
from aiogram.fsm.state import State
from aiogram.fsm.storage.base import BaseStorage, StateType, StorageKey
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import Clock
from bot.db import SessionFactory
from models import FsmRecord

update_session: ContextVar[AsyncSession | None] = ContextVar("update_session", default=None)


def record_key(key: StorageKey) -> str:
    parts = [
        str(key.bot_id),
        str(key.chat_id),
        str(key.user_id),
        str(key.thread_id or ""),
        key.business_connection_id or "",
        key.destiny,
    ]
    return ":".join(parts)


class DatabaseStorage(BaseStorage):
    def __init__(self, sessions: SessionFactory, clock: Clock) -> None:
        self.sessions = sessions
        self.clock = clock

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        value = state.state if isinstance(state, State) else state
        await self._write(key, state=value, data=None)

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[tuple[AsyncSession, bool]]:
        """The update's session if there is one (no commit here), else a new one."""
        current = update_session.get()
        if current is not None:
            yield current, False
            return
        async with self.sessions() as session:
            yield session, True

    async def get_state(self, key: StorageKey) -> str | None:
        async with self._session() as (session, _):
            record = await session.get(FsmRecord, record_key(key))
            return record.state if record else None

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        if not isinstance(data, dict):
            msg = f"Data must be a dict or dict-like object, got {type(data).__name__}"
            raise DataNotDictLikeError(msg)
        await self._write(key, state=None, data=dict(data), keep_state=True)

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        async with self._session() as (session, _):
            record = await session.get(FsmRecord, record_key(key))
            return dict(record.data) if record else {}

    async def close(self) -> None:
        return None

    async def _write(
        self,
        key: StorageKey,
        *,
        state: str | None,
        data: dict[str, Any] | None,
        keep_state: bool = False,
    ) -> None:
        now = self.clock.now()
        async with self._session() as (session, own):
            name = record_key(key)
            record = await session.get(FsmRecord, name)
            if record is None:
                record = FsmRecord(key=name, state=None, data={}, updated_at=now)
            if not keep_state:
                record.state = state
            if data is not None:
                record.data = data
            record.updated_at = now
            if record.state is None and not record.data:
                if record in session:
                    await session.delete(record)
            else:
                session.add(record)
            if own:
                await session.commit()
            else:
                await session.flush()
