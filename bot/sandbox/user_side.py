"""The user side of the sandbox: what a person does in a Telegram app (send text, photos or a
location, press buttons, block the bot), each turned into the update the bot receives."""

from __future__ import annotations

import re

from bot.sandbox.bot_side import BotSide
from bot.sandbox.formatting import FormattedText, finalize_text
from bot.sandbox.markup import inline_buttons, reply_buttons
from bot.sandbox.media import (
    MAX_PHOTO_BYTES,
    MAX_UPLOAD_BYTES,
    guess_mime_type,
    image_size,
)
from bot.sandbox.state import (
    CallbackQueryRecord,
    Conversation,
    Relation,
    SandboxBot,
    SandboxError,
    SandboxUser,
)
from bot.sandbox.world import (
    DEFAULT_LOCATION,
    MAX_ALBUM,
    START_PAYLOAD,
    JsonObject,
    shallow,
)


class UserSide(BotSide):
    """What people do to the world, as the bot will see it."""

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
            data["reply_to_message"] = shallow(replied.data)
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
