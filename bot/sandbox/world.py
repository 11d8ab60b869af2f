"""The sandbox's world: its bots, people and chats, its clock, limits and faults.

:class:`SandboxWorld` is the ground of :class:`~bot.sandbox.server.SandboxServer`: it holds
the state and finds bots, users and chats; the bot side (:mod:`bot.sandbox.bot_side`) and the
user side (:mod:`bot.sandbox.user_side`) act on it.
"""

from __future__ import annotations

import asyncio
import copy
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import aiohttp

from bot.sandbox.clock import MonotonicClock, WallClock, system_monotonic, system_now, unix
from bot.sandbox.errors import (
    ApiError,
    not_found,
    too_many_requests,
)
from bot.sandbox.faults import FaultInjector, Faults
from bot.sandbox.media import (
    FileStore,
)
from bot.sandbox.ratelimit import RateLimiter, RateLimits
from bot.sandbox.spec import BotApiSpec, load_spec
from bot.sandbox.state import (
    CallbackQueryRecord,
    Conversation,
    SandboxBot,
    SandboxError,
    SandboxUser,
    Stats,
)
from bot.sandbox.updates import (
    PendingUpdate,
    UpdateQueue,
    WebhookSettings,
)

JsonObject = dict[str, Any]
# told of every change a user could see, as it happens: the chat and its event
Watcher = Callable[[Conversation, JsonObject], None]

TOKEN_PATTERN = re.compile(r"(\d{1,20}):([A-Za-z0-9_-]{30,50})")
START_PAYLOAD = re.compile(r"[A-Za-z0-9_-]{1,64}")
USERNAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{3,31}")
FIRST_USER_ID = 5_000_000_001
FIRST_GROUP_ID = -1_001_000_000_001
LOGOUT_PERIOD = timedelta(minutes=10)
CALLBACK_ANSWER_TIMEOUT = 15.0
MAX_ALBUM = 10
# where a user "is" when a button asks for a location: on the demo community's map (Xiamen)
DEFAULT_LOCATION = (24.575, 118.0345)


def shallow(message: JsonObject) -> JsonObject:
    """A message as it appears inside another (``reply_to_message``, ``pinned_message``)."""
    return {k: v for k, v in message.items() if k not in ("reply_to_message", "pinned_message")}


class SandboxWorld:
    """All state of the fake Telegram, and the finding of bots, users and chats in it.

    :param clock: wall clock for ``date`` fields and callback-query age (aware UTC datetimes)
    :param monotonic: monotonic seconds, for rate limits and 429 storms
    :param rate_limits: flood limits; ``RateLimits.off()`` disables them, ``RateLimits.sliding()``
        counts the overall limit in a strict sliding window instead of a token bucket
    :param seed: seed of the fault-injection RNG
    :param auto_register_bots: accept any well-formed token as a new bot
    :param webhook: webhook delivery timing (tests shorten the retry delays)
    """

    def __init__(
        self,
        *,
        clock: WallClock = system_now,
        monotonic: MonotonicClock = system_monotonic,
        rate_limits: RateLimits | None = None,
        seed: int = 0,
        auto_register_bots: bool = True,
        webhook: WebhookSettings | None = None,
        spec: BotApiSpec | None = None,
    ) -> None:
        self.clock = clock
        self.monotonic = monotonic
        self.spec = spec or load_spec()
        self.auto_register_bots = auto_register_bots
        self.webhook_settings = webhook or WebhookSettings()
        self.rate_limiter = RateLimiter(rate_limits or RateLimits(), monotonic)
        self.faults = FaultInjector(monotonic, seed=seed)
        self.stats = Stats()
        self.files = FileStore()
        self.bots: dict[int, SandboxBot] = {}
        self._bots_by_token: dict[str, SandboxBot] = {}
        self.users: dict[int, SandboxUser] = {}
        self.conversations: dict[tuple[int, int], Conversation] = {}
        self.callbacks: dict[str, CallbackQueryRecord] = {}
        self._next_user_id = FIRST_USER_ID
        self._next_group_id = FIRST_GROUP_ID
        self._callback_counter = 0
        self._media_group_counter = 0
        self._session: aiohttp.ClientSession | None = None
        self._closing = False
        self._world_changed = asyncio.Event()
        self._watchers: list[Watcher] = []

    # -- watching ---------------------------------------------------------------------------------

    def watch(self, watcher: Watcher) -> Callable[[], None]:
        """Call ``watcher`` with every event of every chat as it happens (a message stored, an
        edit, a toast, a button pressed…), while the chat still shows what the event is about;
        returns the function that stops it. Tests use this to read every version of every
        text the bot showed, including those edited away since."""
        self._watchers.append(watcher)
        return lambda: self._watchers.remove(watcher)

    def _observe(self, conv: Conversation, event: JsonObject) -> None:
        for watcher in tuple(self._watchers):
            watcher(conv, event)

    # -- time -------------------------------------------------------------------------------------

    def now(self) -> datetime:
        moment = self.clock()
        if moment.tzinfo is None:
            raise ValueError("the sandbox clock must return timezone-aware datetimes")
        return moment

    def unix_now(self) -> int:
        return unix(self.now())

    # -- configuration ----------------------------------------------------------------------------

    def set_rate_limits(self, limits: RateLimits) -> None:
        """Replace the flood limits (buckets start full, windows empty)."""
        self.rate_limiter.configure(limits)

    def set_faults(self, faults: Faults, *, seed: int | None = None) -> None:
        """Inject ``faults`` into Bot API requests from now on."""
        self.faults.configure(faults, seed=seed)

    def clear_faults(self) -> None:
        self.faults.clear()

    def start_429_storm(self, duration: float, retry_after: int) -> None:
        """Every send answers 429 with ``retry_after`` for ``duration`` (monotonic) seconds."""
        self.faults.start_storm(duration, retry_after)

    # -- bots -------------------------------------------------------------------------------------

    def register_bot(
        self,
        token: str,
        *,
        username: str | None = None,
        first_name: str | None = None,
        group_privacy: bool = True,
    ) -> SandboxBot:
        """Create (or update) the bot owning ``token``."""
        match = TOKEN_PATTERN.fullmatch(token)
        if match is None:
            raise SandboxError(400, "malformed bot token (expected <digits>:<30-50 characters>)")
        bot_id = int(match.group(1))
        if username is not None and not USERNAME.fullmatch(username):
            raise SandboxError(400, f"invalid bot username {username!r}")
        existing = self._bots_by_token.get(token)
        if existing is not None:
            if username:
                existing.username = username
            if first_name:
                existing.first_name = first_name
            existing.group_privacy = group_privacy
            return existing
        if bot_id in self.bots:
            raise SandboxError(409, f"bot {bot_id} is already registered with another token")
        bot = SandboxBot(
            id=bot_id,
            token=token,
            username=username or f"sandbox_{bot_id}_bot",
            first_name=first_name or "Sandbox Bot",
            created_at=self.now(),
            updates=UpdateQueue(self.now),
            group_privacy=group_privacy,
        )
        self.bots[bot_id] = bot
        self._bots_by_token[token] = bot
        self._changed()
        return bot

    def authenticate(self, token: str) -> SandboxBot:
        """The bot for a request's token, or Telegram's answer for a bad one."""
        bot = self._bots_by_token.get(token)
        if bot is None:
            if not TOKEN_PATTERN.fullmatch(token):
                raise not_found()
            if not self.auto_register_bots:
                raise ApiError(401, "Unauthorized")
            bot = self.register_bot(token)
        if bot.logged_out_until is not None:
            remaining = (bot.logged_out_until - self.now()).total_seconds()
            if remaining > 0:
                raise too_many_requests(int(remaining) + 1)
            bot.logged_out_until = None
        return bot

    def get_bot(self, bot_ref: int | str) -> SandboxBot:
        """A bot by id or username."""
        if isinstance(bot_ref, int) or (isinstance(bot_ref, str) and bot_ref.isdigit()):
            bot = self.bots.get(int(bot_ref))
            if bot is not None:
                return bot
        else:
            name = bot_ref.lstrip("@").lower()
            for bot in self.bots.values():
                if bot.username.lower() == name:
                    return bot
        raise SandboxError(404, f"no bot {bot_ref!r}")

    # -- users and groups -------------------------------------------------------------------------

    def create_user(
        self,
        first_name: str,
        *,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "zh-hans",
        phone_number: str | None = None,
        user_id: int | None = None,
        group: str | None = None,
        note: str | None = None,
    ) -> SandboxUser:
        """A new person (not yet talking to any bot); ``group`` and ``note`` only label them on
        the web page's list of people."""
        if not first_name.strip():
            raise SandboxError(400, "first_name must not be empty")
        if username is not None:
            username = username.lstrip("@")
            if not USERNAME.fullmatch(username):
                raise SandboxError(400, f"invalid username {username!r}")
            if any((u.username or "").lower() == username.lower() for u in self.users.values()):
                raise SandboxError(409, f"username @{username} is taken")
        if user_id is None:
            while self._next_user_id in self.users or self._next_user_id in self.bots:
                self._next_user_id += 1
            user_id = self._next_user_id
            self._next_user_id += 1
        elif user_id <= 0 or user_id in self.users or user_id in self.bots:
            raise SandboxError(409, f"user id {user_id} is not available")
        user = SandboxUser(
            id=user_id,
            first_name=first_name,
            last_name=last_name or None,
            username=username or None,
            language_code=language_code or None,
            # everyone on Telegram has a phone number; make one up if none is given
            phone_number=phone_number or f"+8613{user_id % 1_000_000_000:09d}",
            group=group or None,
            note=note or None,
        )
        self.users[user_id] = user
        self._changed()
        return user

    def get_user(self, user_id: int) -> SandboxUser:
        user = self.users.get(user_id)
        if user is None:
            raise SandboxError(404, f"no user {user_id}")
        return user

    def create_group(self, bot_ref: int | str, title: str, member_ids: list[int]) -> JsonObject:
        """A supergroup with ``member_ids`` and the bot in it (the bot gets ``my_chat_member``)."""
        bot = self.get_bot(bot_ref)
        if not title.strip():
            raise SandboxError(400, "title must not be empty")
        members = [self.get_user(member) for member in member_ids]
        if not members:
            raise SandboxError(400, "a group needs at least one member")
        group_id = self._next_group_id
        self._next_group_id -= 1
        chat = {"id": group_id, "type": "supergroup", "title": title}
        conv = Conversation(bot.id, chat, members={m.id for m in members}, observer=self._observe)
        self.conversations[(bot.id, group_id)] = conv
        adder = members[0]
        self._push(
            bot,
            "my_chat_member",
            {
                "chat": chat,
                "from": adder.to_api(),
                "date": self.unix_now(),
                "old_chat_member": {"status": "left", "user": bot.to_api()},
                "new_chat_member": {"status": "member", "user": bot.to_api()},
            },
            group_id,
        )
        conv.emit("joined", self.unix_now(), user_id=bot.id)
        self._changed()
        return chat

    def conversation(self, bot: SandboxBot, chat_id: int) -> Conversation | None:
        """The chat ``chat_id`` of ``bot``; a private one is created on first use."""
        conv = self.conversations.get((bot.id, chat_id))
        if conv is None and chat_id > 0 and chat_id in self.users:
            conv = Conversation(
                bot.id,
                self.users[chat_id].private_chat(),
                members={chat_id},
                observer=self._observe,
            )
            self.conversations[(bot.id, chat_id)] = conv
        return conv

    def _conversation_for(self, bot_ref: int | str, chat_id: int) -> Conversation:
        bot = self.get_bot(bot_ref)
        conv = self.conversation(bot, chat_id)
        if conv is None:
            raise SandboxError(404, f"no chat {chat_id} with bot {bot.id}")
        return conv

    # -- updates and changes ----------------------------------------------------------------------

    def _push(
        self, bot: SandboxBot, kind: str, body: JsonObject, queue_key: int
    ) -> PendingUpdate | None:
        update = bot.updates.push(kind, copy.deepcopy(body), queue_key)
        if update is not None:
            self.stats.updates_created += 1
        return update

    def _changed(self) -> None:
        changed, self._world_changed = self._world_changed, asyncio.Event()
        changed.set()
