"""Per-update plumbing: the update's unit of work, and its conversation state."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.fsm.context import FSMContext
from aiogram.fsm.middleware import FSMContextMiddleware
from aiogram.fsm.storage.base import BaseStorage
from aiogram.types import Chat, TelegramObject, Update, User
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel.ext.asyncio.session import AsyncSession

import models
from bot.clock import Clock
from bot.db import SessionFactory
from bot.i18n import resolve_locale
from bot.metrics import Metrics
from bot.services import people
from bot.services.actor import Actor
from bot.settings import Settings
from bot.telegram.fsm_storage import CommitBoundStorage, DatabaseStorage, write_staged
from bot.telegram.replies import Replier
from bot.telegram.sender import OutboxSender
from models import Person, ProcessedUpdate

log = logging.getLogger(__name__)
Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]

_MARK_HANDLED = insert(models.metadata.tables[str(ProcessedUpdate.__tablename__)])


class UpdateMetricsMiddleware(BaseMiddleware):
    """Count each update and time its handling, commit included (for ``/metrics``). Placed
    before the update's context, so an update that fails is counted as an error before
    aiogram's error handling answers it."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        started = time.perf_counter()
        outcome = "error"
        try:
            result = await handler(event, data)
            outcome = "ok"
            return result
        finally:
            self.metrics.updates.labels(outcome).inc()
            self.metrics.update_seconds.observe(time.perf_counter() - started)


BUSY_ATTEMPTS = 3  # an update is handled at most this often when the database stays busy
BUSY_PAUSE = 0.5  # seconds before the second attempt (then twice that)


def _busy(exc: OperationalError) -> bool:
    """SQLite's "database is locked": another connection held the write lock too long."""
    return "database is locked" in str(exc.orig)


class UpdateContextMiddleware(BaseMiddleware):
    """One transaction per update, and the update's context built in it.

    In order: a session and ``now`` fixed for the whole update; the update marked handled (a
    redelivered one — the same ``update_id`` — is skipped; the mark is rolled back with
    everything else if handling fails, so Telegram's redelivery gets another chance); the
    person behind it (created on first contact) with their roles and language; then the
    handler. Committed when the handler returns, rolled back if it raises; once committed,
    the sender is woken for the replies the update queued.

    Handlers get the :class:`~bot.services.actor.Actor` as ``actor`` and ``reply``, a
    :class:`Replier` to the update's chat. The Actor's parts are in the data under their own
    names too (``session``, ``now``, ``person``, ``roles``, ``locale``) for the middlewares
    that read them (the FSM storage, the translator); handlers take the Actor instead
    (``tests/test_layering.py``).
    """

    def __init__(
        self,
        sessions: SessionFactory,
        clock: Clock,
        sender: OutboxSender,
        settings: Settings,
        storage: BaseStorage | None = None,
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.sender = sender
        self.settings = settings
        self.storage = storage  # the conversations' store: a redelivery writes what was staged

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        """Handle the update in its transaction; one that meets a busy database (SQLite's
        write lock held past its ``busy_timeout`` by someone else's work) is rolled back whole
        — replies, conversation state, the handled mark — and handled again, up to
        :data:`BUSY_ATTEMPTS` times, so its person never gets an error for another's work."""
        for attempt in range(1, BUSY_ATTEMPTS + 1):
            try:
                return await self._handle(handler, event, data)
            except OperationalError as exc:
                if not _busy(exc) or attempt == BUSY_ATTEMPTS:
                    raise
                update_id = event.update_id if isinstance(event, Update) else None
                log.warning("update %s met a busy database; handling it again", update_id)
                await asyncio.sleep(BUSY_PAUSE * attempt)
        raise AssertionError("unreachable")  # the loop returns or raises

    async def _handle(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        chat: Chat | None = data.get("event_chat")
        user: User | None = data.get("event_from_user")
        chat_id = chat.id if chat is not None else (user.id if user is not None else None)
        async with self.sessions() as session:
            now = self.clock.now()
            if chat_id is not None:
                await _one_at_a_time(session, chat_id)
            if isinstance(event, Update) and await self._seen(session, event, data["bot"], now):
                if self.storage is not None:  # its worker died before writing the new state
                    await write_staged(self.storage, data["bot"].id, event.update_id)
                return None
            actor = await self._actor(session, now, data)
            data.update(
                actor=actor,
                session=session,
                now=now,
                person=actor.person,
                roles=actor.roles,
                locale=actor.locale,
            )
            if chat_id is not None:
                data["reply"] = Replier(
                    session,
                    chat_id,
                    now,
                    actor.person.id if actor.person is not None else None,
                    self.settings.outbox_files,
                )
            before_commit: list[Callable[[], Awaitable[None]]] = []
            after_commit: list[Callable[[], Awaitable[None]]] = []
            data["before_commit"] = before_commit  # the conversation's writes staged in Redis
            data["after_commit"] = after_commit  # and written
            try:
                result = await handler(event, data)
                for hook in before_commit:
                    await hook()
            except Exception:
                await session.rollback()
                raise
            await session.commit()
        for hook in after_commit:
            await hook()
        self.sender.wake()
        return result

    async def _seen(self, session: AsyncSession, update: Update, bot: Bot, now: datetime) -> bool:
        """Mark ``update`` handled; ``True`` if it was already."""
        try:
            await session.exec(
                _MARK_HANDLED,
                params={"bot_id": bot.id, "update_id": update.update_id, "at": now},
            )
        except IntegrityError:
            await session.rollback()
            log.info("update %s already handled; skipped", update.update_id)
            return True
        return False

    async def _actor(self, session: AsyncSession, now: datetime, data: dict[str, Any]) -> Actor:
        user: User | None = data.get("event_from_user")
        person: Person | None = None
        roles: list[people.RoleInGrid] = []
        if user is not None and not user.is_bot:
            caller = await people.get_or_create_with_roles(
                session,
                telegram_id=user.id,
                name=people.full_name(user.first_name, user.last_name),
                language_code=user.language_code,
                now=now,
            )
            person, roles = caller.person, caller.roles
        locale = resolve_locale(
            person.locale if person is not None else None,
            user.language_code if user is not None else None,
            self.settings.default_locale,
        )
        return Actor(session, now, person, locale, data["notifier"], roles)


CHAT_LOCKS = 0x47524944  # the advisory-lock key space of chats ("GRID")


async def _one_at_a_time(session: AsyncSession, chat_id: int) -> None:
    """On PostgreSQL, hold the chat's lock until the update's transaction ends, so two updates
    of one chat — in this process or in two webhook workers — are never handled at the same
    time (each reads the conversation state the other wrote). SQLite needs nothing: a writing
    transaction there already excludes every other."""
    if session.get_bind().dialect.name != "postgresql":
        return
    lock = func.pg_advisory_xact_lock(CHAT_LOCKS, chat_id % 2_147_483_647)
    await (await session.connection()).execute(select(lock))


class UpdateFsmMiddleware(FSMContextMiddleware):
    """aiogram's FSM middleware, with a conversation kept in the database read and written in
    the update's own transaction (``data["session"]``), and one kept in Redis written only
    once that transaction has committed (:class:`CommitBoundStorage`)."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        context = self.resolve_event_context(data["bot"], data)
        data["fsm_storage"] = self.storage
        if context is not None:
            session: AsyncSession | None = data.get("session")
            after_commit: list[Callable[[], Awaitable[None]]] | None = data.get("after_commit")
            if session is not None and isinstance(self.storage, DatabaseStorage):
                context = FSMContext(storage=self.storage.within(session), key=context.key)
            elif after_commit is not None:  # Redis: written once the update has committed
                bot: Bot | None = data.get("bot")
                held = CommitBoundStorage(
                    self.storage,
                    bot_id=bot.id if bot is not None else None,
                    update_id=event.update_id if isinstance(event, Update) else None,
                )
                before: list[Callable[[], Awaitable[None]]] = data.get("before_commit", [])
                before.append(held.stage)
                after_commit.append(held.flush)
                context = FSMContext(storage=held, key=context.key)
            data.update(state=context, raw_state=await context.get_state())
        return await handler(event, data)

    @classmethod
    def replacing(cls, fsm: FSMContextMiddleware) -> UpdateFsmMiddleware:
        """This middleware with ``fsm``'s storage, strategy and isolation."""
        return cls(
            storage=fsm.storage, events_isolation=fsm.events_isolation, strategy=fsm.strategy
        )
