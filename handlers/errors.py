"""The error router: domain refusals in the person's language, a store that is out of reach
answered with "try again later", everything else logged."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from aiogram import Router
from aiogram.filters import ExceptionTypeFilter
from aiogram.types import CallbackQuery, ErrorEvent
from aiogram.utils.i18n import gettext as _
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.clock import Clock
from bot.db import SessionFactory
from bot.errors import DomainError
from bot.services import outbox
from bot.telegram.render import esc
from bot.telegram.sender import OutboxSender
from models import AuditLog, OutboxLane, Person

log = logging.getLogger(__name__)


async def _tell(
    event: ErrorEvent,
    text: str,
    sessions: SessionFactory,
    clock: Clock,
    sender: OutboxSender,
    audit: AuditLog | None = None,
) -> None:
    """Answer in a fresh transaction: the update's own one was rolled back."""
    update = event.update
    query: CallbackQuery | None = update.callback_query
    chat = update.message.chat if update.message else None
    if audit is not None or (query is None and chat is not None):
        async with sessions() as session:
            if audit is not None:
                if (
                    audit.actor_id is not None
                    and await session.get(Person, audit.actor_id) is None
                ):
                    # their first contact was this update, rolled back with it: the record
                    # names them by their Telegram account instead
                    source = query or update.message
                    user = source.from_user if source is not None else None
                    audit.data = {**audit.data, "telegram_id": user.id if user else None}
                    audit.actor_id = None
                session.add(audit)
            if query is None and chat is not None:
                outbox.send_text(
                    session,
                    chat_id=chat.id,
                    text=text,
                    now=clock.now(),
                    urgent=True,
                    lane=OutboxLane.REPLY,
                )
            await session.commit()
        sender.wake()
    if query is not None:
        await query.answer(text[:200], show_alert=True)


async def domain_error(
    event: ErrorEvent, sessions: SessionFactory, clock: Clock, sender: OutboxSender
) -> None:
    error = event.exception
    assert isinstance(error, DomainError)
    # a parameter may itself be a msgid (a state or category label): translate it too
    params = {key: esc(_(str(value))) if value else "" for key, value in error.params.items()}
    text = _(error.message).format(**params)
    await _tell(event, text, sessions, clock, sender, audit=error.audit)


async def unexpected_error(
    event: ErrorEvent, sessions: SessionFactory, clock: Clock, sender: OutboxSender
) -> None:
    log.error("update %s failed", event.update.update_id, exc_info=event.exception)
    await _tell(
        event,
        _("Sorry, something went wrong on our side. Please try again in a moment."),
        sessions,
        clock,
        sender,
    )


class StoreOutage:
    """Redis, where conversations are kept (``REDIS_URL``), cannot be reached: every update
    fails before its handler. The person hears to try again later, and the log says so once
    an outage and then once a minute — not a traceback per update."""

    REMIND_EVERY = timedelta(minutes=1)  # also: a failure after a quiet minute is a new outage

    def __init__(self) -> None:
        self.last_failure: datetime | None = None
        self.logged_at: datetime | None = None
        self.unanswered = 0  # updates answered "try again later" since the last log line

    async def handle(
        self, event: ErrorEvent, sessions: SessionFactory, clock: Clock, sender: OutboxSender
    ) -> None:
        now = clock.now()
        self.unanswered += 1
        reason = str(event.exception).strip().splitlines()[0][:200] if str(event.exception) else ""
        if self.last_failure is None or now - self.last_failure > self.REMIND_EVERY:
            log.error(
                "Redis cannot be reached (%s): updates are answered 'try again later' "
                "until it is back",
                reason or type(event.exception).__name__,
            )
            self.logged_at, self.unanswered = now, 0
        elif self.logged_at is not None and now - self.logged_at >= self.REMIND_EVERY:
            log.warning(
                "Redis still cannot be reached (%s): %d updates answered 'try again later' "
                "since %s",
                reason or type(event.exception).__name__,
                self.unanswered,
                self.logged_at.isoformat(timespec="seconds"),
            )
            self.logged_at, self.unanswered = now, 0
        self.last_failure = now
        await _tell(
            event,
            _("Sorry, this cannot be handled right now. Please try again later."),
            sessions,
            clock,
            sender,
        )


def build_router() -> Router:
    router = Router(name=__name__)
    router.errors.register(
        StoreOutage().handle, ExceptionTypeFilter(RedisConnectionError, RedisTimeoutError)
    )
    router.errors.register(domain_error, ExceptionTypeFilter(DomainError))
    router.errors.register(unexpected_error)
    return router
