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
import json
from collections.abc import Mapping
from typing import Any

from aiogram.exceptions import DataNotDictLikeError
from aiogram.fsm.state import State
from aiogram.fsm.storage.base import BaseStorage, StateType, StorageKey
from aiogram.fsm.storage.redis import RedisStorage
from redis.asyncio import Redis
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
    state is never ahead of what the database holds.

    That leaves the instant between the commit and the write: a worker killed there has
    committed the update but not its new state. So just before the commit the writes are
    also staged in Redis under the update's id (:meth:`stage`), and removed once written. The
    worker that died never answered the update, so Telegram delivers it again — before any
    later update of the chat — and the worker that finds it already handled writes what was
    staged (:func:`write_staged`): the conversation goes on at the step it had reached.
    """

    def __init__(
        self, storage: BaseStorage, *, bot_id: int | None = None, update_id: int | None = None
    ) -> None:
        self.storage = storage
        self.bot_id = bot_id
        self.update_id = update_id
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

    async def stage(self) -> None:
        """Before the commit: keep what :meth:`flush` will write under the update's id (or
        remove what an earlier, failed attempt of the update kept)."""
        redis, staged = _staging(self.storage, self.bot_id, self.update_id)
        if redis is None or staged is None:
            return
        if not self._states and not self._data:
            await redis.delete(staged)
            return
        writes = [
            {"key": _key_json(key), "data": self._data.get(key), "state": self._states.get(key)}
            | {"has_state": key in self._states}
            for key in self._keys()
        ]
        await redis.set(staged, json.dumps(writes, ensure_ascii=False), ex=STAGED_SECONDS)

    async def flush(self) -> None:
        """Write what the update changed (after its commit): the data, then the state; then
        forget what was staged."""
        redis, staged = _staging(self.storage, self.bot_id, self.update_id)
        data, self._data = self._data, {}
        states, self._states = self._states, {}
        for key, values in data.items():
            await self.storage.set_data(key, values)
        for key, state in states.items():
            await self.storage.set_state(key, state)
        if redis is not None and staged is not None and (data or states):
            await redis.delete(staged)

    def _keys(self) -> list[StorageKey]:
        return list(dict.fromkeys([*self._data, *self._states]))

    async def close(self) -> None:
        return None


STAGED_PREFIX = "fsm-staged:"  # + bot id : update id
STAGED_SECONDS = 2 * 86_400  # Telegram keeps an undelivered update for a day


def _staged_key(bot_id: int, update_id: int) -> str:
    return f"{STAGED_PREFIX}{bot_id}:{update_id}"


def _staging(
    storage: BaseStorage, bot_id: int | None, update_id: int | None
) -> tuple[Redis | None, str | None]:
    """The Redis client and the key of the update's staged writes (``None, None``: the
    storage is not Redis, or the update is not known)."""
    if not isinstance(storage, RedisStorage) or bot_id is None or update_id is None:
        return None, None
    return storage.redis, _staged_key(bot_id, update_id)


def _key_json(key: StorageKey) -> dict[str, Any]:
    return {
        "bot_id": key.bot_id,
        "chat_id": key.chat_id,
        "user_id": key.user_id,
        "thread_id": key.thread_id,
        "business_connection_id": key.business_connection_id,
        "destiny": key.destiny,
    }


async def write_staged(storage: BaseStorage, bot_id: int, update_id: int) -> int:
    """An update found already handled: write the conversation state its worker staged and
    died before writing (:meth:`CommitBoundStorage.stage`); returns how many conversations
    were written (0: nothing was left behind)."""
    if not isinstance(storage, RedisStorage):
        return 0
    staged = _staged_key(bot_id, update_id)
    raw = await storage.redis.get(staged)
    if raw is None:
        return 0
    writes = json.loads(raw)
    for write in writes:
        key = StorageKey(**write["key"])
        if write["data"] is not None:
            await storage.set_data(key, write["data"])
    for write in writes:
        if write["has_state"]:
            await storage.set_state(StorageKey(**write["key"]), write["state"])
    await storage.redis.delete(staged)
    return len(writes)
