"""The sandbox: a faithful in-memory stand-in for the Telegram Bot API and its users.

:class:`SandboxServer` holds every bot, user, chat, message, file and pending update, and has
two faces:

* the **bot side** — :meth:`SandboxServer.call_method` runs a Bot API method for a token, with
  the same validation, limits and error answers as Telegram (see :mod:`bot.sandbox.botapi`);
  :mod:`bot.sandbox.app` serves it over HTTP at ``/bot<token>/<method>``;
* the **user side** — methods such as :meth:`send_text`, :meth:`press_button` or
  :meth:`block_bot` act as a person in a Telegram app would, producing the real updates the bot
  receives, and :meth:`transcript` shows a chat as that person sees it.  The control API
  (``/sandbox/api/...``) and :mod:`bot.sandbox.client` expose these over HTTP.

All state lives in one event loop; nothing here is thread-safe, nothing needs to be.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import aiohttp

from bot.sandbox.botapi import BotApi
from bot.sandbox.clock import MonotonicClock, WallClock, system_monotonic, system_now, unix
from bot.sandbox.errors import (
    QUERY_TOO_OLD,
    ApiError,
    bad_request,
    forbidden,
    not_found,
    too_many_requests,
)
from bot.sandbox.faults import FaultInjector, Faults
from bot.sandbox.formatting import FormattedText, finalize_text
from bot.sandbox.markup import ReplyMarkup, inline_buttons, reply_buttons
from bot.sandbox.media import (
    MAX_PHOTO_BYTES,
    MAX_UPLOAD_BYTES,
    FileStore,
    StoredFile,
    guess_mime_type,
    image_size,
)
from bot.sandbox.ratelimit import RateLimiter, RateLimits
from bot.sandbox.spec import BotApiSpec, load_spec
from bot.sandbox.state import (
    CallbackQueryRecord,
    Conversation,
    Relation,
    SandboxBot,
    SandboxError,
    SandboxUser,
    Stats,
    StoredMessage,
)
from bot.sandbox.updates import (
    SET_WEBHOOK_CONFLICT,
    PendingUpdate,
    UpdateQueue,
    WebhookDeliverer,
    WebhookSettings,
    WebhookState,
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


def _shallow(message: JsonObject) -> JsonObject:
    """A message as it appears inside another (``reply_to_message``, ``pinned_message``)."""
    return {k: v for k, v in message.items() if k not in ("reply_to_message", "pinned_message")}


class SandboxServer:
    """All state of the fake Telegram, plus the Bot API and user-side operations on it.

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
        self.api = BotApi(self)
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

    # -- the Bot API ------------------------------------------------------------------------------

    async def call_method(self, token: str, method: str, raw: dict[str, Any]) -> tuple[Any, str]:
        """Run Bot API ``method`` for ``token`` with raw request parameters.

        Returns (result, description); raises :class:`ApiError` with Telegram's answer.
        """
        bot = self.authenticate(token)
        return await self.api.call(bot, method, raw)

    def http_session(self) -> aiohttp.ClientSession:
        """The client session used for webhook delivery and files given by URL."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    # -- updates ----------------------------------------------------------------------------------

    def _push(
        self, bot: SandboxBot, kind: str, body: JsonObject, queue_key: int
    ) -> PendingUpdate | None:
        update = bot.updates.push(kind, copy.deepcopy(body), queue_key)
        if update is not None:
            self.stats.updates_created += 1
        return update

    def set_webhook(self, bot: SandboxBot, state: WebhookState) -> None:
        self.delete_webhook(bot)
        bot.updates.abort_polls(SET_WEBHOOK_CONFLICT)
        bot.webhook = state
        deliverer = WebhookDeliverer(
            bot.updates,
            state,
            self.http_session(),
            self.now,
            self.webhook_settings,
            lambda params: self._execute_webhook_reply(bot, params),
            self._on_webhook_delivered,
        )
        state.task = asyncio.create_task(deliverer.run(), name=f"sandbox-webhook-{bot.id}")

    def delete_webhook(self, bot: SandboxBot) -> bool:
        state, bot.webhook = bot.webhook, None
        if state is None:
            return False
        if state.task is not None:
            state.task.cancel()
        return True

    def _on_webhook_delivered(self, update: PendingUpdate) -> None:
        self.stats.webhook_deliveries += 1

    async def _execute_webhook_reply(self, bot: SandboxBot, params: dict[str, Any]) -> None:
        method = params.pop("method", None)
        if not isinstance(method, str) or not method:
            return
        lowered = method.lower()
        if lowered in ("deletewebhook", "setwebhook", "close", "logout") or lowered.startswith(
            "get"
        ):
            return
        spec = self.spec.method(method)
        self.stats.requests[spec.name if spec else method] += 1
        with contextlib.suppress(ApiError):
            await self.api.call(bot, method, params)

    # -- bot messages (used by the Bot API methods) -----------------------------------------------

    def send_target(self, bot: SandboxBot, chat_ref: int | str) -> Conversation:
        """The chat a bot sends to, or Telegram's 400/403 answer."""
        if isinstance(chat_ref, str):
            raise bad_request("chat not found")
        if chat_ref > 0:
            user = self.users.get(chat_ref)
            if user is None:
                raise bad_request("chat not found")
            relation = bot.relations.get(chat_ref)
            if relation is None or not relation.started:
                raise forbidden("bot can't initiate conversation with a user")
            if relation.blocked:
                raise forbidden("bot was blocked by the user")
            conv = self.conversation(bot, chat_ref)
            assert conv is not None
            return conv
        conv = self.conversations.get((bot.id, chat_ref))
        if conv is None:
            raise bad_request("chat not found")
        if not conv.bot_is_member:
            raise forbidden("bot is not a member of the supergroup chat")
        return conv

    def existing_chat(self, bot: SandboxBot, chat_ref: int | str) -> Conversation:
        """A chat the bot knows (for edits, deletions, pins), or 400 ``chat not found``."""
        if isinstance(chat_ref, str):
            raise bad_request("chat not found")
        conv = self.conversations.get((bot.id, chat_ref))
        if conv is None:
            if chat_ref > 0 and chat_ref in self.users and chat_ref in bot.relations:
                conv = self.conversation(bot, chat_ref)
                assert conv is not None
                return conv
            raise bad_request("chat not found")
        return conv

    def check_flood(self, bot: SandboxBot, conv: Conversation, count: int = 1) -> None:
        """429 during a storm or when a flood limit is reached; otherwise take the tokens."""
        storm = self.faults.storm_retry_after()
        if storm is not None:
            self.stats.faults["storm"] += 1
            raise too_many_requests(storm)
        wait = self.rate_limiter.acquire(
            bot.id, conv.chat_id, is_group=not conv.is_private, count=count
        )
        if wait:
            raise too_many_requests(wait)

    def post_bot_message(
        self,
        bot: SandboxBot,
        conv: Conversation,
        content: JsonObject,
        *,
        markup: ReplyMarkup | None = None,
        reply_to: JsonObject | None = None,
        protect_content: bool = False,
    ) -> JsonObject:
        """Store a message the bot sent and show it to the chat."""
        message_id = conv.allocate_message_id()
        data: JsonObject = {
            "message_id": message_id,
            "from": bot.to_api(),
            "chat": conv.chat,
            "date": self.unix_now(),
        }
        if reply_to is not None:
            data["reply_to_message"] = _shallow(reply_to)
        data.update(content)
        if protect_content:
            data["has_protected_content"] = True
        keyboard: JsonObject | None = None
        if markup is not None:
            if markup.is_inline:
                data["reply_markup"] = markup.data
            else:
                keyboard = markup.data
                self._apply_keyboard(conv, markup, message_id)
        self._store(conv, data, from_bot=True, sender_id=bot.id, keyboard=keyboard)
        conv.delivered += 1
        self.stats.delivered[(bot.id, conv.chat_id)] += 1
        return data

    def _apply_keyboard(self, conv: Conversation, markup: ReplyMarkup, message_id: int) -> None:
        if markup.kind == "keyboard":
            conv.reply_keyboard = markup.data
            conv.reply_keyboard_message_id = message_id
            conv.keyboard_hidden = False
        elif markup.kind == "remove_keyboard":
            conv.reply_keyboard = None
            conv.reply_keyboard_message_id = None
        elif markup.kind == "force_reply":
            conv.force_reply = {"message_id": message_id, **markup.data}

    def _store(
        self,
        conv: Conversation,
        data: JsonObject,
        *,
        from_bot: bool,
        sender_id: int,
        keyboard: JsonObject | None = None,
        service: str | None = None,
    ) -> None:
        message_id = int(data["message_id"])
        conv.messages[message_id] = StoredMessage(
            message_id, from_bot, sender_id, data, keyboard, service=service
        )
        conv.emit(
            "message",
            int(data["date"]),
            message_id=message_id,
            **{"from": "bot" if from_bot else "user"},
        )

    def post_service_message(
        self, bot: SandboxBot, conv: Conversation, service: str, content: JsonObject
    ) -> JsonObject:
        message_id = conv.allocate_message_id()
        data: JsonObject = {
            "message_id": message_id,
            "from": bot.to_api(),
            "chat": conv.chat,
            "date": self.unix_now(),
            **content,
        }
        self._store(conv, data, from_bot=True, sender_id=bot.id, service=service)
        return data

    def new_media_group_id(self) -> str:
        self._media_group_counter += 1
        return str(13_000_000_000_000_000 + self._media_group_counter)

    def store_upload(
        self,
        kind: str,
        data: bytes,
        *,
        file_name: str | None = None,
        mime_type: str | None = None,
    ) -> StoredFile:
        size = image_size(data) if kind == "photo" else None
        return self.files.add(kind, data, file_name=file_name, mime_type=mime_type, size=size)

    def answer_callback(self, bot: SandboxBot, query_id: str, answer: JsonObject) -> None:
        record = self.callbacks.get(query_id)
        age = (self.now() - record.created_at).total_seconds() if record else 0.0
        if (
            record is None
            or record.bot_id != bot.id
            or record.answered
            or age > CALLBACK_ANSWER_TIMEOUT
        ):
            raise bad_request(QUERY_TOO_OLD)
        record.answered = True
        conv = self.conversations.get((bot.id, record.chat_id))
        if conv is not None:
            conv.toast = {
                "callback_query_id": query_id,
                "message_id": record.message_id,
                "user_id": record.user_id,
                "date": self.unix_now(),
                **answer,
            }
            conv.emit("toast", self.unix_now(), message_id=record.message_id)

    # -- the user side ----------------------------------------------------------------------------

    def _actor(
        self, bot_ref: int | str, user_id: int, chat_id: int | None
    ) -> tuple[SandboxBot, SandboxUser, Conversation]:
        bot = self.get_bot(bot_ref)
        user = self.get_user(user_id)
        if chat_id is None or chat_id == user.id:
            relation = bot.relation(user.id)
            if relation.blocked:
                raise SandboxError(409, "the user has blocked this bot; unblock it first")
            conv = self.conversation(bot, user.id)
            assert conv is not None
            return bot, user, conv
        conv = self.conversations.get((bot.id, chat_id))
        if conv is None:
            raise SandboxError(404, f"no chat {chat_id} with bot {bot.id}")
        if user.id not in conv.members:
            raise SandboxError(403, f"user {user.id} is not a member of chat {chat_id}")
        return bot, user, conv

    def _user_post(
        self,
        bot: SandboxBot,
        user: SandboxUser,
        conv: Conversation,
        content: JsonObject,
        *,
        reply_to_message_id: int | None = None,
        queue_update: bool = True,
    ) -> JsonObject:
        if conv.is_private:
            bot.relation(user.id).started = True
        message_id = conv.allocate_message_id()
        data: JsonObject = {
            "message_id": message_id,
            "from": user.to_api(),
            "chat": conv.chat,
            "date": self.unix_now(),
        }
        if reply_to_message_id is None and conv.force_reply is not None and conv.is_private:
            reply_to_message_id = int(conv.force_reply["message_id"])
        if reply_to_message_id is not None:
            replied = conv.messages.get(reply_to_message_id)
            if replied is None or replied.deleted:
                raise SandboxError(404, f"no message {reply_to_message_id} to reply to")
            data["reply_to_message"] = _shallow(replied.data)
            if conv.force_reply and conv.force_reply["message_id"] == reply_to_message_id:
                conv.force_reply = None
        data.update(content)
        self._store(conv, data, from_bot=False, sender_id=user.id)
        if queue_update and self._bot_sees(bot, conv, data):
            self._push(bot, "message", data, conv.chat_id)
        return data

    @staticmethod
    def _bot_sees(bot: SandboxBot, conv: Conversation, message: JsonObject) -> bool:
        """Privacy mode: in groups a bot gets only commands, replies to it and mentions of it."""
        if conv.is_private or not bot.group_privacy:
            return True
        text = message.get("text") or message.get("caption") or ""
        if text.startswith("/"):
            command = text[1:].split(maxsplit=1)[0] if text[1:] else ""
            target = command.partition("@")[2]
            return not target or target.lower() == bot.username.lower()
        replied = message.get("reply_to_message")
        if replied and replied.get("from", {}).get("id") == bot.id:
            return True
        return f"@{bot.username}".lower() in text.lower()

    def _user_text(self, text: str) -> FormattedText:
        formatted = finalize_text(FormattedText(text))
        if not formatted.text:
            raise SandboxError(400, "message text is empty")
        if len(formatted.text.encode("utf-16-le")) // 2 > 4096:
            raise SandboxError(400, "message is too long (more than 4096 characters)")
        return formatted

    def send_text(
        self,
        bot_ref: int | str,
        user_id: int,
        text: str,
        *,
        chat_id: int | None = None,
        reply_to_message_id: int | None = None,
    ) -> JsonObject:
        """The user types ``text`` (commands get ``bot_command`` entities) and sends it."""
        bot, user, conv = self._actor(bot_ref, user_id, chat_id)
        formatted = self._user_text(text)
        content: JsonObject = {"text": formatted.text}
        if formatted.entities:
            content["entities"] = formatted.entities
        return self._user_post(bot, user, conv, content, reply_to_message_id=reply_to_message_id)

    def start(self, bot_ref: int | str, user_id: int, payload: str | None = None) -> JsonObject:
        """The user opens the bot (a ``t.me/<bot>?start=<payload>`` link) and presses Start."""
        if payload is not None and not START_PAYLOAD.fullmatch(payload):
            raise SandboxError(
                400, "a start parameter is 1-64 characters of A-Z, a-z, 0-9, _ and -"
            )
        text = "/start" if payload is None else f"/start {payload}"
        return self.send_text(bot_ref, user_id, text)

    def send_photos(
        self,
        bot_ref: int | str,
        user_id: int,
        photos: list[bytes],
        *,
        caption: str | None = None,
        chat_id: int | None = None,
    ) -> list[JsonObject]:
        """The user sends one photo, or an album (2-10 photos sharing ``media_group_id``)."""
        if not photos or len(photos) > MAX_ALBUM:
            raise SandboxError(400, f"send 1 to {MAX_ALBUM} photos")
        bot, user, conv = self._actor(bot_ref, user_id, chat_id)
        stored = []
        for data in photos:
            if len(data) > MAX_PHOTO_BYTES:
                raise SandboxError(413, "a photo is at most 10 MB")
            size = image_size(data)
            if size is None:
                raise SandboxError(
                    400,
                    "not an image: a photo must be a PNG, JPEG, GIF, WebP or BMP "
                    "(bot.sandbox.media.sample_png() makes one)",
                )
            stored.append(self.files.add("photo", data, size=size))
        group_id = self.new_media_group_id() if len(stored) > 1 else None
        formatted = finalize_text(FormattedText(caption or "")) if caption else None
        messages = []
        for index, file in enumerate(stored):
            content: JsonObject = {"photo": [file.photo_size()]}
            if group_id:
                content["media_group_id"] = group_id
            if formatted is not None and formatted.text and index == 0:
                content["caption"] = formatted.text
                if formatted.entities:
                    content["caption_entities"] = formatted.entities
            messages.append(self._user_post(bot, user, conv, content))
        return messages

    def send_document(
        self,
        bot_ref: int | str,
        user_id: int,
        data: bytes,
        *,
        filename: str,
        mime_type: str | None = None,
        caption: str | None = None,
        chat_id: int | None = None,
    ) -> JsonObject:
        """The user sends a file."""
        if len(data) > MAX_UPLOAD_BYTES:
            raise SandboxError(413, "the sandbox takes files of at most 50 MB")
        if not filename:
            raise SandboxError(400, "a document needs a file name")
        bot, user, conv = self._actor(bot_ref, user_id, chat_id)
        file = self.files.add(
            "document", data, file_name=filename, mime_type=guess_mime_type(filename, mime_type)
        )
        content: JsonObject = {"document": file.document()}
        if caption:
            formatted = finalize_text(FormattedText(caption))
            if formatted.text:
                content["caption"] = formatted.text
                if formatted.entities:
                    content["caption_entities"] = formatted.entities
        return self._user_post(bot, user, conv, content)

    def send_location(
        self,
        bot_ref: int | str,
        user_id: int,
        latitude: float,
        longitude: float,
        *,
        chat_id: int | None = None,
    ) -> JsonObject:
        """The user shares a location."""
        if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
            raise SandboxError(400, "latitude must be in -90..90 and longitude in -180..180")
        bot, user, conv = self._actor(bot_ref, user_id, chat_id)
        content = {"location": {"latitude": float(latitude), "longitude": float(longitude)}}
        return self._user_post(bot, user, conv, content)

    def share_contact(
        self,
        bot_ref: int | str,
        user_id: int,
        phone_number: str | None = None,
        *,
        chat_id: int | None = None,
    ) -> JsonObject:
        """The user shares their own phone number (``contact.user_id`` is theirs)."""
        bot, user, conv = self._actor(bot_ref, user_id, chat_id)
        phone = phone_number or user.phone_number
        if not phone or not re.fullmatch(r"\+?[0-9][0-9 -]{4,20}", phone):
            raise SandboxError(400, "a phone number of digits (optionally +) is needed")
        user.phone_number = phone
        contact: JsonObject = {
            "phone_number": phone,
            "first_name": user.first_name,
            "user_id": user.id,
        }
        if user.last_name:
            contact["last_name"] = user.last_name
        return self._user_post(bot, user, conv, {"contact": contact})

    def edit_text(
        self, bot_ref: int | str, user_id: int, message_id: int, text: str
    ) -> JsonObject:
        """The user edits one of their text messages (the bot gets ``edited_message``)."""
        bot, user, conv = self._actor(bot_ref, user_id, None)
        message = conv.messages.get(message_id)
        if message is None or message.deleted or message.from_bot or message.sender_id != user.id:
            raise SandboxError(404, f"user {user.id} has no message {message_id} in this chat")
        if "text" not in message.data:
            raise SandboxError(400, "only text messages can be edited here")
        formatted = self._user_text(text)
        message.data["text"] = formatted.text
        message.data.pop("entities", None)
        if formatted.entities:
            message.data["entities"] = formatted.entities
        message.data["edit_date"] = self.unix_now()
        conv.emit("edited", self.unix_now(), message_id=message_id)
        self._push(bot, "edited_message", dict(message.data), conv.chat_id)
        return message.data

    def press_button(
        self,
        bot_ref: int | str,
        user_id: int,
        *,
        text: str | None = None,
        callback_data: str | None = None,
        message_id: int | None = None,
        chat_id: int | None = None,
    ) -> JsonObject:
        """The user taps an inline button (found by its text and/or callback data).

        Without ``message_id`` the newest bot message carrying such a button is used.  A
        ``callback_data`` button produces a ``callback_query`` update; a URL button just opens
        its link.  Pressing a button that is not on the message is refused.
        """
        if text is None and callback_data is None:
            raise SandboxError(400, "name the button by text or callback_data")
        bot, user, conv = self._actor(bot_ref, user_id, chat_id)
        if message_id is not None:
            message = conv.messages.get(message_id)
            if message is None or message.deleted:
                raise SandboxError(404, f"no message {message_id} in this chat")
            candidates = [message]
        else:
            candidates = [
                m for m in reversed(conv.visible_messages()) if m.from_bot and m.service is None
            ]
        for message in candidates:
            for button in inline_buttons(message.data.get("reply_markup")):
                if text is not None and button["text"] != text:
                    continue
                if callback_data is not None and button.get("callback_data") != callback_data:
                    continue
                return self._press(bot, user, conv, message.data, button)
        where = f"message {message_id}" if message_id is not None else "any bot message"
        label = text if text is not None else callback_data
        raise SandboxError(409, f"there is no button {label!r} on {where}")

    def _press(
        self,
        bot: SandboxBot,
        user: SandboxUser,
        conv: Conversation,
        message: JsonObject,
        button: JsonObject,
    ) -> JsonObject:
        message_id = int(message["message_id"])
        if "callback_data" in button:
            self._callback_counter += 1
            query_id = str(4_242_000_000_000_000_000 + self._callback_counter * 7_919)
            self.callbacks[query_id] = CallbackQueryRecord(
                query_id, bot.id, user.id, conv.chat_id, message_id, self.now()
            )
            chat_instance = str(-(((bot.id * 1_000_003) ^ conv.chat_id) % 9_000_000_000_000_000))
            self._push(
                bot,
                "callback_query",
                {
                    "id": query_id,
                    "from": user.to_api(),
                    "message": dict(message),
                    "chat_instance": chat_instance,
                    "data": button["callback_data"],
                },
                conv.chat_id,
            )
            conv.emit("pressed", self.unix_now(), message_id=message_id, text=button["text"])
            return {
                "callback_query_id": query_id,
                "message_id": message_id,
                "data": button["callback_data"],
            }
        if "url" in button:
            return {"message_id": message_id, "url": button["url"]}
        kinds = sorted(set(button) - {"text", "style", "icon_custom_emoji_id"})
        raise SandboxError(400, f"the sandbox cannot press a {', '.join(kinds)} button")

    def forge_callback_query(
        self,
        bot_ref: int | str,
        user_id: int,
        callback_data: str,
        *,
        message_id: int | None = None,
        chat_id: int | None = None,
    ) -> JsonObject:
        """A tampered client presses a button that was never there: a ``callback_query`` with
        any ``callback_data`` on a bot message (the newest one unless ``message_id`` is given).

        For testing that the bot re-checks every press instead of trusting callback data.
        """
        bot, user, conv = self._actor(bot_ref, user_id, chat_id)
        if message_id is not None:
            message = conv.messages.get(message_id)
            if message is None or message.deleted:
                raise SandboxError(404, f"no message {message_id} in this chat")
        else:
            newest = [m for m in reversed(conv.visible_messages()) if m.from_bot]
            if not newest:
                raise SandboxError(409, "the chat has no bot message to press a button on")
            message = newest[0]
        return self._press(
            bot, user, conv, message.data, {"text": "forged", "callback_data": callback_data}
        )

    def press_reply_button(
        self,
        bot_ref: int | str,
        user_id: int,
        text: str,
        *,
        chat_id: int | None = None,
        location: tuple[float, float] | None = None,
    ) -> JsonObject:
        """The user taps a button of the reply keyboard the bot is showing.

        A plain button sends its text; ``request_contact`` shares the user's phone number;
        ``request_location`` shares ``location`` (latitude, longitude), by default
        :data:`DEFAULT_LOCATION`.
        """
        bot, user, conv = self._actor(bot_ref, user_id, chat_id)
        if conv.reply_keyboard is None:
            raise SandboxError(409, "the bot is not showing a reply keyboard")
        for button in reply_buttons(conv.reply_keyboard):
            if button["text"] != text:
                continue
            if conv.reply_keyboard.get("one_time_keyboard"):
                conv.keyboard_hidden = True
            if button.get("request_contact"):
                return self.share_contact(bot.id, user.id, chat_id=chat_id)
            if button.get("request_location"):
                latitude, longitude = location or DEFAULT_LOCATION
                return self.send_location(bot.id, user.id, latitude, longitude, chat_id=chat_id)
            other = set(button) - {"text", "style", "icon_custom_emoji_id"}
            if other:
                raise SandboxError(400, f"the sandbox cannot press a {sorted(other)} button")
            return self.send_text(bot.id, user.id, text, chat_id=chat_id)
        raise SandboxError(409, f"the reply keyboard has no button {text!r}")

    def block_bot(self, bot_ref: int | str, user_id: int) -> None:
        """The user blocks the bot: ``my_chat_member`` (member → kicked); sends now get 403."""
        self._set_blocked(bot_ref, user_id, blocked=True)

    def unblock_bot(self, bot_ref: int | str, user_id: int) -> None:
        """The user unblocks the bot: ``my_chat_member`` (kicked → member)."""
        self._set_blocked(bot_ref, user_id, blocked=False)

    def _set_blocked(self, bot_ref: int | str, user_id: int, *, blocked: bool) -> None:
        bot = self.get_bot(bot_ref)
        user = self.get_user(user_id)
        relation: Relation = bot.relation(user.id)
        if relation.blocked == blocked:
            return
        relation.blocked = blocked
        if not blocked:
            relation.started = True
        member = {"status": "member", "user": bot.to_api()}
        kicked = {"status": "kicked", "user": bot.to_api(), "until_date": 0}
        self._push(
            bot,
            "my_chat_member",
            {
                "chat": user.private_chat(),
                "from": user.to_api(),
                "date": self.unix_now(),
                "old_chat_member": member if blocked else kicked,
                "new_chat_member": kicked if blocked else member,
            },
            user.id,
        )
        conv = self.conversation(bot, user.id)
        assert conv is not None
        conv.emit("blocked" if blocked else "unblocked", self.unix_now())
        self._changed()

    # -- reading chats ----------------------------------------------------------------------------

    def message_view(self, conv: Conversation, message_id: int) -> JsonObject:
        """One message as the user sees it (for transcripts)."""
        stored = conv.messages[message_id]
        data = stored.data
        view: JsonObject = {
            "message_id": stored.message_id,
            "from": "bot" if stored.from_bot else "user",
            "sender_id": stored.sender_id,
            "sender_name": (data.get("from") or {}).get("first_name", ""),
            "date": data["date"],
        }
        for key in ("edit_date", "media_group_id", "text", "caption", "location", "contact"):
            if key in data:
                view[key] = data[key]
        view["entities"] = data.get("entities") or data.get("caption_entities") or []
        markup = data.get("reply_markup")
        view["inline_keyboard"] = markup.get("inline_keyboard") if markup else None
        view["keyboard"] = stored.keyboard
        if "reply_to_message" in data:
            view["reply_to_message_id"] = data["reply_to_message"]["message_id"]
        if "photo" in data:
            largest = data["photo"][-1]
            view["photo"] = {**largest, "url": f"/sandbox/files/{largest['file_id']}"}
        if "document" in data:
            document = data["document"]
            view["document"] = {**document, "url": f"/sandbox/files/{document['file_id']}"}
        if stored.service is not None:
            view["service"] = stored.service
            if "pinned_message" in data:
                view["pinned_message_id"] = data["pinned_message"]["message_id"]
        if data.get("has_protected_content"):
            view["protected"] = True
        return view

    def view_of(self, bot_ref: int | str, message: JsonObject) -> JsonObject:
        """A Bot API message (as returned by the user-side methods) as the user sees it."""
        conv = self._conversation_for(bot_ref, int(message["chat"]["id"]))
        return self.message_view(conv, int(message["message_id"]))

    def transcript(self, bot_ref: int | str, chat_id: int) -> JsonObject:
        """A chat as its user sees it: messages in order after edits and deletions, keyboards,
        the latest callback answer (toast), the command menu."""
        bot = self.get_bot(bot_ref)
        conv = self._conversation_for(bot.id, chat_id)
        relation = bot.relations.get(chat_id) if conv.is_private else None
        return {
            "bot": {"id": bot.id, "username": bot.username, "first_name": bot.first_name},
            "chat": conv.chat,
            "messages": [self.message_view(conv, m.message_id) for m in conv.visible_messages()],
            "reply_keyboard": conv.reply_keyboard,
            "reply_keyboard_message_id": conv.reply_keyboard_message_id,
            "keyboard_hidden": conv.keyboard_hidden,
            "force_reply": conv.force_reply,
            "toast": conv.toast,
            "pinned_message_id": conv.pinned_message_id,
            "chat_action": conv.chat_action,
            "commands": self.visible_commands(bot, conv),
            "menu_button": bot.menu_buttons.get(conv.chat_id)
            or bot.menu_buttons.get(None)
            or {"type": "default"},
            "started": bool(relation and relation.started),
            "blocked": bool(relation and relation.blocked),
            "delivered": conv.delivered,
            "seq": conv.seq,
        }

    def visible_commands(self, bot: SandboxBot, conv: Conversation) -> list[JsonObject]:
        """The command menu Telegram would show in this chat (scope and language fallback)."""
        if conv.is_private:
            user = self.users.get(conv.chat_id)
            language = (user.language_code or "")[:2].lower() if user else ""
            scopes = [f"chat:{conv.chat_id}", "all_private_chats", "default"]
        else:
            language = ""
            scopes = [f"chat:{conv.chat_id}", "all_group_chats", "default"]
        for scope in scopes:
            for lang in dict.fromkeys([language, ""]):
                commands = bot.commands.get((scope, lang))
                if commands:
                    return commands
        return []

    def events(self, bot_ref: int | str, chat_id: int, after: int = 0) -> list[JsonObject]:
        return self._conversation_for(bot_ref, chat_id).events_after(after)

    async def wait_events(
        self, bot_ref: int | str, chat_id: int, after: int, wait_seconds: float
    ) -> list[JsonObject]:
        """Events of a chat newer than ``after``, waiting up to ``wait_seconds`` for one."""
        conv = self._conversation_for(bot_ref, chat_id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        while True:
            events = conv.events_after(after)
            remaining = deadline - loop.time()
            if events or remaining <= 0 or self._closing:
                return events
            await conv.wait_changed(remaining)

    async def wait_bot_message(
        self, bot_ref: int | str, chat_id: int, after_message_id: int, wait_seconds: float
    ) -> JsonObject | None:
        """The first message the bot sent in the chat after ``after_message_id`` (not a service
        message, not deleted), waiting up to ``wait_seconds`` for it; ``None`` on timeout."""
        conv = self._conversation_for(bot_ref, chat_id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        while True:
            found = conv.first_bot_message_after(after_message_id)
            if found is not None:
                return self.message_view(conv, found.message_id)
            remaining = deadline - loop.time()
            if remaining <= 0 or self._closing:
                return None
            await conv.wait_changed(remaining)

    async def wait_world_changed(self, wait_seconds: float) -> None:
        """Wait until a bot or user is added (for the web page's lists)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait_seconds):
                await self._world_changed.wait()

    def _changed(self) -> None:
        changed, self._world_changed = self._world_changed, asyncio.Event()
        changed.set()

    # -- lifecycle --------------------------------------------------------------------------------

    def wake_all(self) -> None:
        """End every long poll and wait at once (the HTTP server is shutting down)."""
        self._closing = True
        for bot in self.bots.values():
            bot.updates.closing = True
            bot.updates.notify()
        for conv in self.conversations.values():
            conv.wake()
        self._changed()

    def reopen(self) -> None:
        """Undo :meth:`wake_all` (the server is served again)."""
        self._closing = False
        for bot in self.bots.values():
            bot.updates.closing = False

    def reset(self) -> None:
        """Forget users, chats, files, updates and counters; keep the registered bots."""
        for bot in self.bots.values():
            bot.relations.clear()
            bot.updates.clear()
            bot.commands.clear()
            bot.menu_buttons.clear()
        self.users.clear()
        self.conversations.clear()
        self.callbacks.clear()
        self.files.clear()
        self.stats.reset()
        self.faults.clear()
        self.rate_limiter.configure(self.rate_limiter.limits)
        self._next_user_id = FIRST_USER_ID
        self._next_group_id = FIRST_GROUP_ID
        self._changed()

    async def aclose(self) -> None:
        """Stop webhook delivery and close the HTTP client session."""
        self.wake_all()
        tasks = []
        for bot in self.bots.values():
            if bot.webhook is not None and bot.webhook.task is not None:
                bot.webhook.task.cancel()
                tasks.append(bot.webhook.task)
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None
