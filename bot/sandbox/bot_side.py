"""The bot side of the sandbox: the Bot API entry, updates and webhooks, and the messages a
bot sends (what :mod:`bot.sandbox.botapi` methods call)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from typing import Any

import aiohttp

from bot.sandbox.botapi import BotApi
from bot.sandbox.errors import (
    QUERY_TOO_OLD,
    ApiError,
    bad_request,
    forbidden,
    too_many_requests,
)
from bot.sandbox.markup import ReplyMarkup
from bot.sandbox.media import (
    StoredFile,
    image_size,
)
from bot.sandbox.state import (
    Conversation,
    SandboxBot,
    StoredMessage,
)
from bot.sandbox.updates import (
    SET_WEBHOOK_CONFLICT,
    PendingUpdate,
    WebhookDeliverer,
    WebhookState,
)
from bot.sandbox.world import CALLBACK_ANSWER_TIMEOUT, JsonObject, SandboxWorld, shallow


class BotSide(SandboxWorld):
    """What a bot does to the world through the Bot API."""

    @functools.cached_property
    def api(self) -> BotApi:
        """The Bot API methods, run on this world."""
        return BotApi(self)

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
            data["reply_to_message"] = shallow(reply_to)
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
