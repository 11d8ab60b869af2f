"""Delivers the outbox under Telegram's limits.

At least once, in order per chat: rows are leased (so another process or a restart picks up
what a dead sender held), sent at most ~30/s overall and one per second per chat, retried with
backoff on 5xx and network faults, delayed by ``retry_after`` on 429, and marked failed on a
permanent refusal. A person whose chat answers 403 is marked unreachable.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from itertools import groupby
from pathlib import Path
from typing import Any

import aiogram.methods
from aiogram import Bot
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods.base import TelegramMethod
from aiogram.types import FSInputFile, Message
from aiolimiter import AsyncLimiter
from sqlalchemy import ColumnElement, func, or_, update
from sqlmodel import col, select

from bot.clock import Clock
from bot.db import SessionFactory
from bot.services.schedule import in_quiet_hours
from bot.settings import Settings
from models import OutboxMessage, OutboxStatus, Person

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=10)
BATCH = 500
NOT_MODIFIED = "message is not modified"
MESSAGE_METHODS = ("send", "edit", "copy", "forward")

UnreachableHook = Callable[[int, datetime], Awaitable[None]]


def _method_classes() -> dict[str, type[TelegramMethod[Any]]]:
    found: dict[str, type[TelegramMethod[Any]]] = {}
    for _, cls in inspect.getmembers(aiogram.methods, inspect.isclass):
        if issubclass(cls, TelegramMethod) and cls is not TelegramMethod:
            found[str(cls.__api_method__).lower()] = cls
    return found


METHODS = _method_classes()


def build_call(method: str, payload: dict[str, Any]) -> TelegramMethod[Any]:
    """An aiogram method object from an outbox row (``_upload`` names a file on disk)."""
    cls = METHODS.get(method.lower())
    if cls is None:
        raise ValueError(f"unknown Bot API method {method!r}")
    data = dict(payload)
    upload = data.pop("_upload", None)
    if upload:
        data[upload["field"]] = FSInputFile(Path(upload["path"]), filename=upload.get("filename"))
    return cls.model_validate(data)


class OutboxSender:
    """The one way GridBot talks to Telegram (besides answering callback queries)."""

    def __init__(
        self,
        bot: Bot,
        sessions: SessionFactory,
        clock: Clock,
        settings: Settings,
        *,
        on_unreachable: UnreachableHook | None = None,
        concurrency: int = 64,
    ) -> None:
        self.bot = bot
        self.sessions = sessions
        self.clock = clock
        self.settings = settings
        self.on_unreachable = on_unreachable
        limits = settings.limits
        self._global = AsyncLimiter(limits.messages_per_second, 1)
        self._per_chat = limits.per_chat_interval
        self._retry_base = limits.retry_base_seconds
        self._max_attempts = limits.max_attempts
        self._chat_ready: dict[int, float] = {}
        self._slots = asyncio.Semaphore(concurrency)
        self._wake = asyncio.Event()
        self._is_postgres = False

    def wake(self) -> None:
        """Something was committed to the outbox: look now instead of at the next poll."""
        self._wake.set()

    async def run(self, poll_seconds: float = 1.0) -> None:
        """Deliver forever (cancel the task to stop)."""
        while True:
            try:
                sent = await self.drain_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox round failed; retrying")
                sent = 0
            if sent == 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), poll_seconds)

    async def drain_once(self) -> int:
        """Lease what is due, deliver it chat by chat, and return how many rows were handled."""
        batch = await self._lease()
        if not batch:
            return 0
        chats = [list(rows) for _, rows in groupby(batch, key=lambda m: m.chat_id)]
        await asyncio.gather(*(self._deliver_chat(rows) for rows in chats))
        return len(batch)

    def _due(self, now: datetime) -> list[ColumnElement[bool]]:
        """What may be sent now: pending, due, and urgent during quiet hours."""
        conditions: list[ColumnElement[bool]] = [
            col(OutboxMessage.status) == OutboxStatus.PENDING,
            col(OutboxMessage.not_before) <= now,
        ]
        if in_quiet_hours(now, self.settings):
            conditions.append(col(OutboxMessage.urgent).is_(True))
        return conditions

    async def due_count(self) -> int:
        """Rows that may be sent now, leased or not (tests wait for this to reach zero)."""
        async with self.sessions() as session:
            count = await session.exec(
                select(func.count()).select_from(OutboxMessage).where(*self._due(self.clock.now()))
            )
            return int(count.one())

    async def _lease(self) -> list[OutboxMessage]:
        now = self.clock.now()
        async with self.sessions() as session:
            self._is_postgres = session.get_bind().dialect.name == "postgresql"
            query = (
                select(OutboxMessage)
                .where(
                    *self._due(now),
                    or_(
                        col(OutboxMessage.lease_until).is_(None),
                        col(OutboxMessage.lease_until) < now,
                    ),
                )
                .order_by(col(OutboxMessage.chat_id), col(OutboxMessage.id))
                .limit(BATCH)
            )
            if self._is_postgres:
                query = query.with_for_update(skip_locked=True)
            rows = list((await session.exec(query)).all())
            if not rows:
                return []
            await session.exec(
                update(OutboxMessage)
                .where(col(OutboxMessage.id).in_([r.id for r in rows]))
                .values(lease_until=now + LEASE)
            )
            await session.commit()
            return rows

    async def _deliver_chat(self, rows: list[OutboxMessage]) -> None:
        """One chat's rows, strictly in order (retries wait in place rather than reorder)."""
        async with self._slots:
            for row in rows:
                try:
                    await self._deliver(row)
                except Exception as exc:  # a malformed row must not stop the chat or the round
                    log.exception("outbox %s could not be delivered", row.id)
                    await self._finish(row, OutboxStatus.FAILED, error=repr(exc))

    async def _deliver(self, row: OutboxMessage) -> None:
        now = self.clock.now()
        if row.expires_at is not None and row.expires_at <= now:
            await self._finish(row, OutboxStatus.DROPPED, error="expired before delivery")
            return
        payload = dict(row.payload)
        method = row.method
        if row.edit_ref:
            message_id = await self._message_id_of(row.edit_ref, row.chat_id)
            if message_id is None:
                method, payload = "sendMessage", _as_new_message(payload)
            else:
                payload["message_id"] = message_id
        call = build_call(method, payload)
        is_message = method.lower().startswith(MESSAGE_METHODS)
        while True:
            try:
                if is_message:  # Telegram's limits count messages, not menus or pins
                    await self._pace(row.chat_id)
                    async with self._global:
                        result = await self.bot(call)
                else:
                    result = await self.bot(call)
            except TelegramRetryAfter as exc:
                log.warning("429 for chat %s: retry after %ss", row.chat_id, exc.retry_after)
                self._chat_ready[row.chat_id] = self._loop_time() + exc.retry_after
                continue
            except TelegramForbiddenError as exc:
                await self._finish(row, OutboxStatus.FAILED, error=exc.message)
                await self._mark_unreachable(row.chat_id)
                return
            except TelegramBadRequest as exc:
                if NOT_MODIFIED in exc.message:
                    await self._finish(row, OutboxStatus.SENT)
                else:
                    log.error("outbox %s refused: %s", row.id, exc.message)
                    await self._finish(row, OutboxStatus.FAILED, error=exc.message)
                return
            except (TelegramServerError, TelegramNetworkError, TimeoutError) as exc:
                row.attempts += 1
                if row.attempts >= self._max_attempts:
                    await self._finish(row, OutboxStatus.FAILED, error=str(exc))
                    return
                await self._note_attempt(row, str(exc))
                await asyncio.sleep(min(self._retry_base * 2 ** (row.attempts - 1), 60.0))
                continue
            message_id = result.message_id if isinstance(result, Message) else None
            await self._finish(row, OutboxStatus.SENT, message_id=message_id)
            return

    async def _pace(self, chat_id: int) -> None:
        ready = self._chat_ready.get(chat_id, 0.0)
        delay = ready - self._loop_time()
        if delay > 0:
            await asyncio.sleep(delay)
        self._chat_ready[chat_id] = self._loop_time() + self._per_chat
        if len(self._chat_ready) > 10_000:
            now = self._loop_time()
            self._chat_ready = {c: t for c, t in self._chat_ready.items() if t > now}

    @staticmethod
    def _loop_time() -> float:
        return asyncio.get_running_loop().time()

    async def _message_id_of(self, ref: str, chat_id: int) -> int | None:
        async with self.sessions() as session:
            return (
                await session.exec(
                    select(OutboxMessage.message_id)
                    .where(
                        OutboxMessage.ref == ref,
                        OutboxMessage.chat_id == chat_id,
                        OutboxMessage.status == OutboxStatus.SENT,
                        col(OutboxMessage.message_id).is_not(None),
                    )
                    .order_by(col(OutboxMessage.id).desc())
                    .limit(1)
                )
            ).first()

    async def _finish(
        self,
        row: OutboxMessage,
        status: OutboxStatus,
        *,
        error: str | None = None,
        message_id: int | None = None,
    ) -> None:
        now = self.clock.now()
        upload = row.payload.get("_upload")
        if upload and upload.get("delete_after") and status != OutboxStatus.PENDING:
            await asyncio.to_thread(Path(upload["path"]).unlink, missing_ok=True)
        values: dict[str, Any] = {"status": status, "lease_until": None, "attempts": row.attempts}
        if status == OutboxStatus.SENT:
            values["sent_at"] = now
            if message_id is not None:
                values["message_id"] = message_id
        if error:
            values["last_error"] = error[:500]
        async with self.sessions() as session:
            await session.exec(
                update(OutboxMessage).where(col(OutboxMessage.id) == row.id).values(**values)
            )
            await session.commit()

    async def _note_attempt(self, row: OutboxMessage, error: str) -> None:
        async with self.sessions() as session:
            await session.exec(
                update(OutboxMessage)
                .where(col(OutboxMessage.id) == row.id)
                .values(attempts=row.attempts, last_error=error[:500])
            )
            await session.commit()

    async def _mark_unreachable(self, chat_id: int) -> None:
        now = self.clock.now()
        async with self.sessions() as session:
            await session.exec(
                update(Person).where(col(Person.telegram_id) == chat_id).values(reachable=False)
            )
            await session.commit()
        if self.on_unreachable is not None:
            await self.on_unreachable(chat_id, now)


def _as_new_message(edit_payload: dict[str, Any]) -> dict[str, Any]:
    """The original message was never delivered: send the edited content as a new one."""
    return {k: v for k, v in edit_payload.items() if k not in {"message_id", "inline_message_id"}}
