"""FSM storage in GridBot's own database (the embedded default; Redis at scale).

A conversation in progress survives a restart of the bot, and several bot processes on one
PostgreSQL share it. Inside an update, state is read and written in the update's own
transaction (:data:`update_session`), so a handler's changes and its conversation step commit
or roll back together — and SQLite never waits on a second connection for a lock the first one
holds.

Within that transaction a conversation's record is read once — in the same query as the
person (:func:`hold`) — and aiogram's FSM middleware reads the state, the handler reads the
data and writes state and data from it: at commit, one ``UPDATE`` (see :func:`_held`).
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any

from aiogram.exceptions import DataNotDictLikeError
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State
from aiogram.fsm.storage.base import BaseStorage, StateType, StorageKey
from sqlalchemy import event, inspect
from sqlalchemy.orm import QueryContext, Session
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import Clock
from bot.db import SessionFactory
from models import FsmRecord

update_session: ContextVar[AsyncSession | None] = ContextVar("update_session", default=None)

_HELD = "gridbot.fsm_records"  # Session.info key of the records held for this transaction


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


def _held(session: Session) -> dict[str, FsmRecord | None]:
    """The records this session's current transaction has read or written, by key (``None``:
    there is no record).

    A session's identity map keeps unchanged objects only weakly, so without this a record read
    by the FSM middleware is gone by the time the handler asks for it again, and every
    ``session.get`` goes back to the database. Kept per transaction: after a commit or a
    rollback the next read goes to the database again.
    """
    transaction = session.get_transaction()
    held: tuple[object, dict[str, FsmRecord | None]] | None = session.info.get(_HELD)
    if held is None or held[0] is not transaction:
        held = (transaction, {})
        session.info[_HELD] = held
    return held[1]


@event.listens_for(FsmRecord, "load")
def _hold_loaded(record: FsmRecord, context: QueryContext) -> None:
    """A record loaded by anyone in the session — ``conversations.hold`` locking it, say — is the
    one the storage answers from."""
    _held(context.session)[record.key] = record


def hold(session: AsyncSession, name: str, record: FsmRecord | None) -> None:
    """``record`` is what the database has under ``name`` in this transaction (``None``: no
    record), read by someone else — the person's query, which reads it for the FSM
    middleware (:class:`~bot.telegram.middlewares.PersonMiddleware`)."""
    _held(session.sync_session)[name] = record


def key_of(storage: BaseStorage, context: FSMContext | None) -> str | None:
    """The record key of ``context`` when its state is kept in the database by ``storage``."""
    if context is None or not isinstance(storage, DatabaseStorage):
        return None
    return record_key(context.key)


async def _load(session: AsyncSession, name: str) -> FsmRecord | None:
    held = _held(session.sync_session)
    if name in held:
        record = held[name]
        if record is None:
            return None
        state = inspect(record)
        if (state.persistent or state.pending) and not state.expired_attributes:
            return record
    record = await session.get(FsmRecord, name)
    _held(session.sync_session)[name] = record
    return record


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
            record = await _load(session, record_key(key))
            return record.state if record else None

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        if not isinstance(data, dict):
            msg = f"Data must be a dict or dict-like object, got {type(data).__name__}"
            raise DataNotDictLikeError(msg)
        await self._write(key, state=None, data=data, keep_state=True)

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        async with self._session() as (session, _):
            record = await _load(session, record_key(key))
            # a copy: the held record must keep what the database has until it is written
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
        """Change the record in the session; inside an update it is written at commit, state
        and data in one ``UPDATE``."""
        now = self.clock.now()
        async with self._session() as (session, own):
            name = record_key(key)
            record = await _load(session, name)
            if record is None:
                record = FsmRecord(key=name, state=None, data={}, updated_at=now)
            if not keep_state:
                record.state = state
            if data is not None:
                record.data = copy.deepcopy(dict(data))  # the caller may change theirs later
            record.updated_at = now
            held = _held(session.sync_session)
            if record.state is None and not record.data:  # the conversation is over: no row
                held[name] = None
                written = inspect(record)
                if written.pending:
                    session.expunge(record)
                elif written.persistent:
                    await session.delete(record)
                    await session.flush()  # a record made again in this update is a new row
            else:
                session.add(record)
                held[name] = record
            if own:
                await session.commit()
