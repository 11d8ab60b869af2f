"""The in-memory world of the sandbox: bots, users, chats, messages, callback queries, counters."""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.sandbox.updates import UpdateQueue, WebhookState

JsonObject = dict[str, Any]

MAX_EVENTS_KEPT = 2000


class SandboxError(Exception):
    """A refused control-API action (HTTP ``status``), e.g. pressing a button that is not there."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class SandboxUser:
    """A Telegram user of the sandbox (a resident, a worker...)."""

    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None
    phone_number: str | None = None
    # sandbox only, never in the Bot API: the heading the web page lists this person under
    # (e.g. a role) and a line it shows under the name and searches (e.g. their grids)
    group: str | None = None
    note: str | None = None

    def to_api(self) -> JsonObject:
        """The Bot API ``User`` object."""
        result: JsonObject = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.last_name:
            result["last_name"] = self.last_name
        if self.username:
            result["username"] = self.username
        if self.language_code:
            result["language_code"] = self.language_code
        return result

    def to_json(self) -> JsonObject:
        """What the control API shows: the Bot API ``User``, the phone number the user would
        share and, where set, the web page's ``group`` and ``note``."""
        result: JsonObject = {**self.to_api(), "phone_number": self.phone_number}
        if self.group:
            result["group"] = self.group
        if self.note:
            result["note"] = self.note
        return result

    def private_chat(self) -> JsonObject:
        """The Bot API ``Chat`` of this user's private chat with a bot."""
        chat: JsonObject = {"id": self.id, "type": "private", "first_name": self.first_name}
        if self.last_name:
            chat["last_name"] = self.last_name
        if self.username:
            chat["username"] = self.username
        return chat


@dataclass
class Relation:
    """How a user stands with a bot."""

    started: bool = False
    blocked: bool = False


@dataclass
class SandboxBot:
    """A bot account known to the sandbox."""

    id: int
    token: str
    username: str
    first_name: str
    created_at: datetime
    updates: UpdateQueue
    group_privacy: bool = True
    webhook: WebhookState | None = None
    relations: dict[int, Relation] = field(default_factory=dict)
    commands: dict[tuple[str, str], list[JsonObject]] = field(default_factory=dict)
    menu_buttons: dict[int | None, JsonObject] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    descriptions: dict[str, str] = field(default_factory=dict)
    short_descriptions: dict[str, str] = field(default_factory=dict)
    logged_out_until: datetime | None = None

    def to_api(self) -> JsonObject:
        """The Bot API ``User`` object of the bot."""
        return {
            "id": self.id,
            "is_bot": True,
            "first_name": self.first_name,
            "username": self.username,
        }

    def get_me(self) -> JsonObject:
        return {
            **self.to_api(),
            "can_join_groups": True,
            "can_read_all_group_messages": not self.group_privacy,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def relation(self, user_id: int) -> Relation:
        return self.relations.setdefault(user_id, Relation())

    def to_json(self) -> JsonObject:
        return {
            "id": self.id,
            "username": self.username,
            "first_name": self.first_name,
            "group_privacy": self.group_privacy,
            "webhook_url": self.webhook.url if self.webhook else None,
            "pending_update_count": self.updates.pending_count(),
        }


@dataclass
class StoredMessage:
    """One message of a chat, as it currently is (edits applied)."""

    message_id: int
    from_bot: bool
    sender_id: int
    data: JsonObject  # the Bot API ``Message`` object
    keyboard: JsonObject | None = None  # reply keyboard / removal / force reply sent with it
    deleted: bool = False
    service: str | None = None


@dataclass
class Conversation:
    """A chat as one bot sees it: a private chat with a user, or a group."""

    bot_id: int
    chat: JsonObject
    members: set[int] = field(default_factory=set)
    bot_is_member: bool = True
    messages: dict[int, StoredMessage] = field(default_factory=dict)
    next_message_id: int = 1
    reply_keyboard: JsonObject | None = None
    reply_keyboard_message_id: int | None = None
    keyboard_hidden: bool = False
    force_reply: JsonObject | None = None
    toast: JsonObject | None = None
    pinned_message_id: int | None = None
    chat_action: JsonObject | None = None
    delivered: int = 0
    events: deque[JsonObject] = field(default_factory=lambda: deque(maxlen=MAX_EVENTS_KEPT))
    seq: int = 0
    # called with every event as it happens (the server's watchers: see ``SandboxServer.watch``)
    observer: Callable[[Conversation, JsonObject], None] | None = field(default=None, repr=False)
    _changed: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def chat_id(self) -> int:
        return int(self.chat["id"])

    @property
    def is_private(self) -> bool:
        return bool(self.chat["type"] == "private")

    def allocate_message_id(self) -> int:
        message_id = self.next_message_id
        self.next_message_id += 1
        return message_id

    def emit(self, event_type: str, at: int, **details: Any) -> JsonObject:
        """Record a change the user can see and wake everyone waiting on this chat."""
        self.seq += 1
        event: JsonObject = {"seq": self.seq, "type": event_type, "at": at, **details}
        self.events.append(event)
        if self.observer is not None:
            self.observer(self, event)
        self.wake()
        return event

    def wake(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def wait_changed(self, seconds: float) -> bool:
        """Wait until the next :meth:`emit` (True) or for ``seconds`` at most (False)."""
        if seconds <= 0:
            return False
        try:
            async with asyncio.timeout(seconds):
                await self._changed.wait()
        except TimeoutError:
            return False
        return True

    def events_after(self, seq: int) -> list[JsonObject]:
        return [event for event in self.events if event["seq"] > seq]

    def visible_messages(self) -> list[StoredMessage]:
        return [m for m in self.messages.values() if not m.deleted]

    def first_bot_message_after(self, message_id: int) -> StoredMessage | None:
        """The bot's first message (not a service message, not deleted) after ``message_id``.

        Looks back from the newest message only as far as ``message_id`` (ids grow in the
        order messages are stored), so a long chat costs what is new in it.
        """
        found = None
        for message in reversed(self.messages.values()):
            if message.message_id <= message_id:
                break
            if message.from_bot and message.service is None and not message.deleted:
                found = message
        return found


@dataclass
class CallbackQueryRecord:
    """A button press, for ``answerCallbackQuery``."""

    id: str
    bot_id: int
    user_id: int
    chat_id: int
    message_id: int
    created_at: datetime
    answered: bool = False


@dataclass
class Stats:
    """Server-side counters, for tests that assert nothing was lost or sent twice."""

    requests: Counter[str] = field(default_factory=Counter)  # by method (as called)
    statuses: Counter[int] = field(default_factory=Counter)  # by HTTP status answered
    delivered: Counter[tuple[int, int]] = field(default_factory=Counter)  # (bot, chat)
    faults: Counter[str] = field(default_factory=Counter)  # by fault kind injected
    updates_created: int = 0
    webhook_deliveries: int = 0

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())

    def delivered_to(self, chat_id: int, bot_id: int | None = None) -> int:
        return sum(
            count
            for (bot, chat), count in self.delivered.items()
            if chat == chat_id and (bot_id is None or bot == bot_id)
        )

    def to_json(self) -> JsonObject:
        return {
            "total_requests": self.total_requests,
            "requests": dict(self.requests),
            "statuses": {str(code): count for code, count in self.statuses.items()},
            "delivered": [
                {"bot_id": bot, "chat_id": chat, "count": count}
                for (bot, chat), count in sorted(self.delivered.items())
            ],
            "faults": dict(self.faults),
            "updates_created": self.updates_created,
            "webhook_deliveries": self.webhook_deliveries,
        }

    def reset(self) -> None:
        self.requests.clear()
        self.statuses.clear()
        self.delivered.clear()
        self.faults.clear()
        self.updates_created = 0
        self.webhook_deliveries = 0
