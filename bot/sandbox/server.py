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

from bot.sandbox.state import (
    Conversation,
    SandboxBot,
)
from bot.sandbox.user_side import UserSide
from bot.sandbox.world import (
    FIRST_GROUP_ID,
    FIRST_USER_ID,
    JsonObject,
    Watcher,
)

__all__ = ["JsonObject", "SandboxServer", "Watcher"]


class SandboxServer(UserSide):
    """All state of the fake Telegram, plus the Bot API and user-side operations on it.

    :param clock: wall clock for ``date`` fields and callback-query age (aware UTC datetimes)
    :param monotonic: monotonic seconds, for rate limits and 429 storms
    :param rate_limits: flood limits; ``RateLimits.off()`` disables them, ``RateLimits.sliding()``
        counts the overall limit in a strict sliding window instead of a token bucket
    :param seed: seed of the fault-injection RNG
    :param auto_register_bots: accept any well-formed token as a new bot
    :param webhook: webhook delivery timing (tests shorten the retry delays)
    """

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
