"""Per-update plumbing: one DB session, duplicate-update guard, the current person."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.fsm.middleware import FSMContextMiddleware
from aiogram.types import Chat, TelegramObject, Update, User
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

import models
from bot.clock import Clock
from bot.db import SessionFactory
from bot.i18n import resolve_locale
from bot.services import outbox, people
from bot.telegram import fsm_storage
from bot.telegram.fsm_storage import update_session
from bot.telegram.replies import Replier
from bot.telegram.sender import OutboxSender
from models import ProcessedUpdate

log = logging.getLogger(__name__)
Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class DbSessionMiddleware(BaseMiddleware):
    """One session per update: committed when the handler returns, rolled back if it raises.

    Also fixes ``now`` for the whole update, and hands the outbox rows it added to the sender:
    the replies leased in the update's own transaction go out the moment it commits, and the
    sender is woken for the rest (:meth:`OutboxSender.claim`).
    """

    def __init__(self, sessions: SessionFactory, clock: Clock, sender: OutboxSender) -> None:
        self.sessions = sessions
        self.clock = clock
        self.sender = sender

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        session = self.sessions()
        try:
            data["session"] = session
            data["now"] = self.clock.now()
            self.sender.track(session)
            token = update_session.set(session)
            try:
                result = await handler(event, data)
                handoff = await self.sender.claim(session)
            except Exception:
                await session.rollback()
                raise
            finally:
                update_session.reset(token)
            await session.commit()
        except BaseException:
            async with session:  # closed even if this task is cancelled meanwhile
                raise
        # The replies go first. The commit gave the connection back, so closing only forgets
        # the session's objects: nothing can stop halfway, and it need not go through
        # ``async with``, whose close is a task of its own (a turn of the loop before the
        # replies would start).
        self.sender.committed(handoff)
        await session.close()
        return result


_MARK_HANDLED = insert(models.metadata.tables[str(ProcessedUpdate.__tablename__)])


class DedupeUpdateMiddleware(BaseMiddleware):
    """A redelivered update (same ``update_id``) is handled once.

    The marker is written in the update's own transaction: if handling fails, the marker is
    rolled back too and Telegram's redelivery gets another chance.
    """

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        if not isinstance(event, Update):
            return await handler(event, data)
        bot: Bot = data["bot"]
        session: AsyncSession = data["session"]
        try:
            await session.exec(
                _MARK_HANDLED,
                params={"bot_id": bot.id, "update_id": event.update_id, "at": data["now"]},
            )
        except IntegrityError:
            await session.rollback()
            log.info("update %s already handled; skipped", event.update_id)
            return None
        return await handler(event, data)


class PersonMiddleware(BaseMiddleware):
    """Loads (or creates) the person behind the update and their roles, once per update —
    and, in the same query, the conversation's FSM record for aiogram's FSM middleware after
    it (when the state is kept in the database) and, on SQLite, the chat's outbox backlog for
    the sender's claim of the update's replies (:func:`outbox.reads_backlog_ahead`)."""

    def __init__(self, fsm: FSMContextMiddleware) -> None:
        self.fsm = fsm

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        chat: Chat | None = data.get("event_chat")
        session = data["session"]
        if user is None or user.is_bot:
            data["person"] = None
            data["roles"] = []
        else:
            conversation = fsm_storage.key_of(
                self.fsm.storage, self.fsm.resolve_event_context(data["bot"], data)
            )
            caller = await people.get_or_create_with_roles(
                session,
                telegram_id=user.id,
                name=user.full_name,
                language_code=user.language_code,
                now=data["now"],
                conversation=conversation,
                backlog_of=chat.id if chat and outbox.reads_backlog_ahead(session) else None,
            )
            if conversation is not None:
                fsm_storage.hold(session, conversation, caller.conversation)
            if caller.backlog is not None:  # the sender's claim need not ask again
                outbox.remember_backlog(session, caller.backlog)
            assert caller.person.id is not None
            data["person"] = caller.person
            data["roles"] = caller.roles
        person = data["person"]
        data["locale"] = resolve_locale(
            person.locale if person is not None else None,
            user.language_code if user is not None else None,
            data["settings"].default_locale,
        )
        chat_id = chat.id if chat is not None else (user.id if user is not None else None)
        if chat_id is not None:
            data["reply"] = Replier(
                session,
                chat_id,
                data["now"],
                person.id if person is not None else None,
                data["settings"].data_dir / "outbox-files",
            )
        return await handler(event, data)
