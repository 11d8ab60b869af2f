"""Pending updates of a bot: long polling with offsets, and webhook delivery with retries.

Polling follows the Bot API server: an update stays queued until a ``getUpdates`` call confirms
it with a higher ``offset`` (so unconfirmed updates are delivered again), a second concurrent
``getUpdates`` ends the first with 409 ``Conflict: terminated by other getUpdates request``, and
updates are kept for at most 24 hours.

Webhook delivery follows Telegram too: each update is POSTed as JSON with the
``X-Telegram-Bot-Api-Secret-Token`` header; updates of one chat go one at a time and in order,
different chats in parallel up to ``max_connections``; a non-2xx answer or a connection error
is retried with a doubling delay (honouring ``Retry-After``) and reported by ``getWebhookInfo``
(``last_error_date``, ``last_error_message``).  A 2xx answer may carry a Bot API call
(``{"method": "sendMessage", ...}``), which is executed like Telegram does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import aiohttp

from bot.sandbox.clock import WallClock, unix
from bot.sandbox.params import read_response_params

JsonObject = dict[str, Any]

log = logging.getLogger(__name__)

ALL_UPDATE_TYPES = (
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "business_connection",
    "business_message",
    "edited_business_message",
    "deleted_business_messages",
    "message_reaction",
    "message_reaction_count",
    "inline_query",
    "chosen_inline_result",
    "callback_query",
    "shipping_query",
    "pre_checkout_query",
    "purchased_paid_media",
    "poll",
    "poll_answer",
    "my_chat_member",
    "chat_member",
    "chat_join_request",
    "chat_boost",
    "removed_chat_boost",
)
# Telegram leaves these out unless asked for explicitly.
OPT_IN_UPDATE_TYPES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
UPDATE_RETENTION = timedelta(hours=24)
LONG_POLL_MAX_TIMEOUT = 50
FIRST_UPDATE_ID = 100_000_001

POLL_CONFLICT = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is "
    "running"
)
SET_WEBHOOK_CONFLICT = "Conflict: terminated by setWebhook request"
WEBHOOK_ACTIVE_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete "
    "the webhook first"
)


@dataclass
class PendingUpdate:
    update_id: int
    kind: str
    body: JsonObject
    queue_key: int
    created_at: datetime
    failures: int = 0
    delay: float = 0.0
    not_before: float = 0.0  # event-loop time of the next webhook attempt

    def to_api(self) -> JsonObject:
        return {"update_id": self.update_id, self.kind: self.body}


class PollAborted(Exception):
    """This long poll was ended by a newer ``getUpdates`` or by ``setWebhook``."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


class UpdateQueue:
    """The updates waiting for one bot."""

    def __init__(self, clock: WallClock) -> None:
        self._clock = clock
        self.pending: list[PendingUpdate] = []
        self.next_update_id = FIRST_UPDATE_ID
        self.allowed_updates: frozenset[str] | None = None  # None: Telegram's default set
        self._changed = asyncio.Event()
        self._poll_generation = 0
        self._abort_reasons: dict[int, str] = {}
        self.closing = False

    # -- producing ------------------------------------------------------------------------------

    def accepts(self, kind: str) -> bool:
        if self.allowed_updates is None:
            return kind not in OPT_IN_UPDATE_TYPES
        return kind in self.allowed_updates

    def push(self, kind: str, body: JsonObject, queue_key: int) -> PendingUpdate | None:
        """Queue an update unless the bot's ``allowed_updates`` leave its type out."""
        if not self.accepts(kind):
            return None
        update = PendingUpdate(self.next_update_id, kind, body, queue_key, self._clock())
        self.next_update_id += 1
        self.pending.append(update)
        self.notify()
        return update

    def notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def wait_changed(self, seconds: float) -> None:
        if seconds <= 0:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._changed.wait()

    # -- consuming ------------------------------------------------------------------------------

    def set_allowed_updates(self, allowed: list[str] | None) -> None:
        """``None`` keeps the previous setting; ``[]`` restores Telegram's default."""
        if allowed is None:
            return
        known = [kind for kind in allowed if kind in ALL_UPDATE_TYPES]
        self.allowed_updates = frozenset(known) if known else None

    def drop_expired(self) -> None:
        limit = self._clock() - UPDATE_RETENTION
        self.pending = [u for u in self.pending if u.created_at >= limit]

    def confirm(self, offset: int) -> None:
        """Forget updates below ``offset``; a negative offset keeps only the last ``-offset``."""
        if offset < 0:
            self.pending = self.pending[offset:] if -offset < len(self.pending) else self.pending
        elif offset > 0:
            self.pending = [u for u in self.pending if u.update_id >= offset]

    def take(self, limit: int) -> list[PendingUpdate]:
        return self.pending[:limit]

    def pending_count(self) -> int:
        return len(self.pending)

    def clear(self) -> None:
        self.pending.clear()

    def remove(self, update: PendingUpdate) -> None:
        with contextlib.suppress(ValueError):
            self.pending.remove(update)

    # -- long polling ---------------------------------------------------------------------------

    @property
    def poll_generation(self) -> int:
        """How many ``getUpdates`` calls have started waiting so far."""
        return self._poll_generation

    def start_poll(self) -> int:
        """Register a new poller; the previous one, if still waiting, ends with 409."""
        self._abort_reasons[self._poll_generation] = POLL_CONFLICT
        self._poll_generation += 1
        self.notify()
        return self._poll_generation

    def abort_polls(self, reason: str) -> None:
        self._abort_reasons[self._poll_generation] = reason
        self._poll_generation += 1
        self.notify()

    def check_poll(self, generation: int) -> None:
        if generation != self._poll_generation:
            raise PollAborted(self._abort_reasons.get(generation, POLL_CONFLICT))

    async def long_poll(
        self, generation: int, offset: int, limit: int, wait_seconds: float
    ) -> list[PendingUpdate]:
        """Confirm ``offset``; return up to ``limit`` updates, waiting ``wait_seconds`` at most."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        self.confirm(offset)
        while True:
            self.check_poll(generation)
            self.drop_expired()
            updates = self.take(limit)
            remaining = deadline - loop.time()
            if updates or remaining <= 0 or self.closing:
                return updates
            await self.wait_changed(remaining)


@dataclass
class WebhookState:
    """``setWebhook`` settings and the delivery state reported by ``getWebhookInfo``."""

    url: str
    secret_token: str | None = None
    max_connections: int = 40
    ip_address: str | None = None
    has_custom_certificate: bool = False
    last_error_date: int | None = None
    last_error_message: str | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    def info(self, queue: UpdateQueue) -> JsonObject:
        result: JsonObject = {
            "url": self.url,
            "has_custom_certificate": self.has_custom_certificate,
            "pending_update_count": queue.pending_count(),
            "max_connections": self.max_connections,
            "ip_address": self.ip_address or "127.0.0.1",
        }
        if self.last_error_date is not None:
            result["last_error_date"] = self.last_error_date
            result["last_error_message"] = self.last_error_message or ""
        if queue.allowed_updates is not None:
            result["allowed_updates"] = sorted(queue.allowed_updates)
        return result


@dataclass(frozen=True)
class WebhookSettings:
    """Timing of webhook delivery (a test shortens the delays)."""

    timeout: float = 10.0
    retry_base: float = 1.0
    retry_max: float = 60.0


ReplyExecutor = Callable[[dict[str, Any]], Awaitable[None]]


class WebhookDeliverer:
    """Delivers one bot's updates to its webhook until cancelled."""

    def __init__(
        self,
        queue: UpdateQueue,
        state: WebhookState,
        session: aiohttp.ClientSession,
        clock: WallClock,
        settings: WebhookSettings,
        execute_reply: ReplyExecutor,
        on_delivered: Callable[[PendingUpdate], None],
    ) -> None:
        self.queue = queue
        self.state = state
        self.session = session
        self.clock = clock
        self.settings = settings
        self.execute_reply = execute_reply
        self.on_delivered = on_delivered
        self._in_flight: dict[int, asyncio.Task[None]] = {}  # queue key → task

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                self.queue.drop_expired()
                now = loop.time()
                waiting: set[int] = set()  # chats whose oldest update waits for a retry
                next_wakeup: float | None = None
                for update in list(self.queue.pending):
                    key = update.queue_key
                    if key in self._in_flight or key in waiting:
                        continue  # one update per chat at a time, in order
                    if update.not_before > now:
                        waiting.add(key)
                        next_wakeup = min(next_wakeup or update.not_before, update.not_before)
                        continue
                    if len(self._in_flight) >= self.state.max_connections:
                        break
                    self._in_flight[key] = asyncio.create_task(self._deliver(update))
                pause = 3600.0 if next_wakeup is None else max(0.0, next_wakeup - now)
                await self._wait(pause)
        finally:
            tasks = list(self._in_flight.values())
            self._in_flight.clear()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _wait(self, seconds: float) -> None:
        changed = asyncio.ensure_future(self.queue.wait_changed(seconds))
        try:
            await asyncio.wait(
                [changed, *self._in_flight.values()], return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            changed.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await changed
        for key, task in list(self._in_flight.items()):
            if task.done():
                del self._in_flight[key]

    async def _deliver(self, update: PendingUpdate) -> None:
        body = json.dumps(update.to_api(), ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self.state.secret_token:
            headers["X-Telegram-Bot-Api-Secret-Token"] = self.state.secret_token
        error: str | None = None
        retry_after = 0
        try:
            async with self.session.post(
                self.state.url,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.settings.timeout),
            ) as response:
                if 200 <= response.status <= 299:
                    self.queue.remove(update)
                    self.on_delivered(update)
                    reply = await read_response_params(response)
                    if reply:
                        await self._execute_reply(reply)
                    return
                await response.read()
                error = f"Wrong response from the webhook: {response.status} {response.reason}"
                with contextlib.suppress(ValueError):
                    retry_after = int(response.headers.get("Retry-After", "0"))
        except TimeoutError:
            error = "Read timeout expired"
        except aiohttp.ClientConnectorError as exc:
            error = "Connection refused" if "refused" in str(exc).lower() else str(exc)
        except aiohttp.ClientError as exc:
            error = f"Webhook connection closed: {type(exc).__name__}"
        self._failed(update, error or "Webhook connection closed", retry_after)

    async def _execute_reply(self, params: dict[str, Any]) -> None:
        try:
            await self.execute_reply(params)
        except Exception:  # the bot never sees errors of a reply-in-webhook call
            log.debug("call in a webhook reply failed", exc_info=True)

    def _failed(self, update: PendingUpdate, error: str, retry_after: int) -> None:
        loop = asyncio.get_running_loop()
        self.state.last_error_date = unix(self.clock())
        self.state.last_error_message = error
        if retry_after > 0:
            delay = float(min(retry_after, 3600))
        elif update.failures == 0:
            delay = self.settings.retry_base
        else:
            delay = min(self.settings.retry_max, max(update.delay, self.settings.retry_base) * 2)
        update.failures += 1
        update.delay = delay
        update.not_before = loop.time() + delay
        self.queue.notify()
