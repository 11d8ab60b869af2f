"""FSM storage in GridBot's own database (the embedded default; Redis at scale).

A conversation in progress survives a restart of the bot, and several bot processes on one
PostgreSQL share it. Inside an update the state is read and written in the update's own
transaction (``bot.telegram.middlewares.UpdateFsmMiddleware`` hands aiogram a
:class:`SessionStorage` bound to it), so a handler's changes and its conversation step commit
or roll back together — and SQLite never waits on a second connection for the write lock the
update holds.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from aiogram.exceptions import DataNotDictLikeError
from aiogram.fsm.state import State
from aiogram.fsm.storage.base import BaseStorage, StateType, StorageKey
from sqlalchemy import inspect
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import Clock
from bot.db import SessionFactory
from models import FsmRecord


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


class SessionStorage(BaseStorage):
    """The conversations of one transaction: read and written in ``session``, never
    committed here.

    Each record is read once and kept (a session's identity map holds unchanged objects only
    weakly): the FSM middleware reads the state, the handler the data, and state and data are
    written back in one ``UPDATE`` at commit.
    """

    def __init__(self, session: AsyncSession, clock: Clock) -> None:
        self.session = session
        self.clock = clock
        self._records: dict[str, FsmRecord | None] = {}  # None: there is no record

    async def _load(self, name: str) -> FsmRecord | None:
        if name in self._records:
            record = self._records[name]
            if record is None:
                return None
            state = inspect(record)
            if (state.persistent or state.pending) and not state.expired_attributes:
                return record
        record = await self.session.get(FsmRecord, name)
        self._records[name] = record
        return record

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        value = state.state if isinstance(state, State) else state
        await self._write(key, state=value, data=None)

    async def get_state(self, key: StorageKey) -> str | None:
        record = await self._load(record_key(key))
        return record.state if record else None

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        if not isinstance(data, dict):
            msg = f"Data must be a dict or dict-like object, got {type(data).__name__}"
            raise DataNotDictLikeError(msg)
        await self._write(key, state=None, data=data, keep_state=True)

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        record = await self._load(record_key(key))
        # a copy: the kept record must hold what the database has until it is written
        return copy.deepcopy(record.data) if record else {}

    async def close(self) -> None:
        return None

    async def _write(
        self,
        key: StorageKey,
        *,
        state: str | None,
        data: Mapping[str, Any] | None,
        keep_state: bool = False,
    ) -> None:
        """Change the record in the session; it is written at commit."""
        name = record_key(key)
        record = await self._load(name)
        now = self.clock.now()
        if record is None:
            record = FsmRecord(key=name, state=None, data={}, updated_at=now)
        if not keep_state:
            record.state = state
        if data is not None:
            record.data = copy.deepcopy(dict(data))  # the caller may change theirs later
        record.updated_at = now
        if record.state is None and not record.data:  # the conversation is over: no row
            self._records[name] = None
            written = inspect(record)
            if written.pending:
                self.session.expunge(record)
            elif written.persistent:
                await self.session.delete(record)
                await self.session.flush()  # a record made again in this update is a new row
        else:
            self.session.add(record)
            self._records[name] = record


class DatabaseStorage(BaseStorage):
    """Conversations outside an update (a transaction of their own per call)."""

    def __init__(self, sessions: SessionFactory, clock: Clock) -> None:
        self.sessions = sessions
        self.clock = clock

    def within(self, session: AsyncSession) -> SessionStorage:
        """The same conversations, read and written in ``session``'s transaction."""
        return SessionStorage(session, self.clock)

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        async with self.sessions() as session:
            await self.within(session).set_state(key, state)
            await session.commit()

    async def get_state(self, key: StorageKey) -> str | None:
        async with self.sessions() as session:
            return await self.within(session).get_state(key)

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        async with self.sessions() as session:
            await self.within(session).set_data(key, data)
            await session.commit()

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        async with self.sessions() as session:
            return await self.within(session).get_data(key)

    async def close(self) -> None:
        return None


class CommitBoundStorage(BaseStorage):
    """Another store of conversations (Redis), with one update's writes held back until the
    update's database transaction has committed (:meth:`flush`), and dropped if it does not.

    Redis and the database cannot commit together. Written as the handler goes, a state would
    run ahead of the database whenever the update fails, or its worker dies, after the write:
    the update is rolled back and comes again (Telegram delivers it again, maybe to another
    worker), and is then handled in the step it had moved on to. Held until the commit, the
    state is never ahead of what the database holds; the one gap left is the instant between
    the commit and the write.
    """

    def __init__(self, storage: BaseStorage) -> None:
        self.storage = storage
        self._states: dict[StorageKey, str | None] = {}
        self._data: dict[StorageKey, dict[str, Any]] = {}

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        self._states[key] = state.state if isinstance(state, State) else state

    async def get_state(self, key: StorageKey) -> str | None:
        if key in self._states:
            return self._states[key]
        return await self.storage.get_state(key)

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        if not isinstance(data, dict):
            raise DataNotDictLikeError(
                f"Data must be a dict or dict-like object, got {type(data).__name__}"
            )
        self._data[key] = copy.deepcopy(data)

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        if key in self._data:
            return copy.deepcopy(self._data[key])
        return await self.storage.get_data(key)

    async def flush(self) -> None:
        """Write what the update changed (after its commit): the data, then the state."""
        data, self._data = self._data, {}
        states, self._states = self._states, {}
        for key, values in data.items():
            await self.storage.set_data(key, values)
        for key, state in states.items():
            await self.storage.set_state(key, state)

    async def close(self) -> None:
        return None
