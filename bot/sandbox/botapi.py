"""The Bot API methods of the sandbox.

Each method first validates its parameters against the specification
(:func:`bot.sandbox.spec.validate_params`), then checks what Telegram checks, in Telegram's
order: the content (text and entities, keyboard), the chat (``chat not found``, 403 for a user
who blocked the bot or never started it), the message replied to, the flood limits (429), and
only then changes anything.  Results are real Bot API objects that aiogram parses.

Methods of the specification that the sandbox does not emulate answer 501; names that are not
Bot API methods at all answer 404 ``Not Found``, as Telegram does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import aiohttp
from yarl import URL

from bot.sandbox.errors import (
    MESSAGE_NOT_MODIFIED,
    ApiError,
    bad_request,
    conflict,
    entity_too_large,
    not_found,
    not_implemented,
    too_many_requests,
)
from bot.sandbox.formatting import (
    MAX_TEXT_BYTES,
    EntityParseError,
    FormattedText,
    finalize_text,
    parse_entities,
    utf16_len,
)
from bot.sandbox.markup import ReplyMarkup, check_markup_limits
from bot.sandbox.media import (
    MAX_DOWNLOAD_BYTES,
    MAX_PHOTO_BYTES,
    MAX_UPLOAD_BYTES,
    StoredFile,
    guess_mime_type,
    image_size,
)
from bot.sandbox.spec import UploadedFile, validate_params
from bot.sandbox.state import Conversation, SandboxBot
from bot.sandbox.updates import (
    LONG_POLL_MAX_TIMEOUT,
    WEBHOOK_ACTIVE_CONFLICT,
    PollAborted,
    WebhookState,
)

if TYPE_CHECKING:
    from bot.sandbox.bot_side import BotSide

JsonObject = dict[str, Any]
Params = dict[str, Any]
Files = dict[str, UploadedFile]
Handler = Callable[[SandboxBot, Params, Files], Awaitable[Any]]

MAX_MESSAGE_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_ANSWER_LENGTH = 200
MAX_COMMANDS = 100
MAX_COMMAND_DESCRIPTION = 256
DELETE_WINDOW = timedelta(hours=48)
CLOSE_GRACE = timedelta(minutes=10)
CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
# Methods that send a message: flood limits and 429 storms apply to these.
SEND_METHODS = frozenset(
    {
        "sendmessage",
        "sendphoto",
        "senddocument",
        "sendmediagroup",
        "sendlocation",
        "sendcontact",
        "sendvenue",
    }
)


@dataclass(frozen=True)
class Answer:
    """A result with the ``description`` Telegram adds to some answers."""

    result: Any
    description: str


def _int32(value: int) -> int:
    return max(-(1 << 31), min((1 << 31) - 1, value))


class BotApi:
    """Implements the Bot API methods on the sandbox's bot side (:class:`BotSide`)."""

    def __init__(self, server: BotSide) -> None:
        self.server = server
        self._handlers: dict[str, Handler] = {
            "getme": self.get_me,
            "logout": self.log_out,
            "close": self.close,
            "getupdates": self.get_updates,
            "setwebhook": self.set_webhook,
            "deletewebhook": self.delete_webhook,
            "getwebhookinfo": self.get_webhook_info,
            "sendmessage": self.send_message,
            "sendphoto": self.send_photo,
            "senddocument": self.send_document,
            "sendmediagroup": self.send_media_group,
            "sendlocation": self.send_location,
            "sendvenue": self.send_venue,
            "sendcontact": self.send_contact,
            "sendchataction": self.send_chat_action,
            "editmessagetext": self.edit_message_text,
            "editmessagecaption": self.edit_message_caption,
            "editmessagereplymarkup": self.edit_message_reply_markup,
            "deletemessage": self.delete_message,
            "deletemessages": self.delete_messages,
            "answercallbackquery": self.answer_callback_query,
            "getfile": self.get_file,
            "setmycommands": self.set_my_commands,
            "getmycommands": self.get_my_commands,
            "deletemycommands": self.delete_my_commands,
            "setmyname": self.set_my_name,
            "getmyname": self.get_my_name,
            "setmydescription": self.set_my_description,
            "getmydescription": self.get_my_description,
            "setmyshortdescription": self.set_my_short_description,
            "getmyshortdescription": self.get_my_short_description,
            "setchatmenubutton": self.set_chat_menu_button,
            "getchatmenubutton": self.get_chat_menu_button,
            "pinchatmessage": self.pin_chat_message,
            "unpinchatmessage": self.unpin_chat_message,
            "unpinallchatmessages": self.unpin_all_chat_messages,
            "getchat": self.get_chat,
            "getchatmember": self.get_chat_member,
        }

    @property
    def implemented(self) -> list[str]:
        """Names (as the specification spells them) of the emulated methods."""
        return sorted(
            spec.name for key, spec in self.server.spec.methods.items() if key in self._handlers
        )

    async def call(self, bot: SandboxBot, method: str, raw: dict[str, Any]) -> tuple[Any, str]:
        """Validate ``raw`` and run ``method``; return (result, description)."""
        spec = self.server.spec.method(method)
        if spec is None:
            raise not_found()
        params, files = validate_params(self.server.spec, spec, raw)
        handler = self._handlers.get(spec.name.lower())
        if handler is None:
            raise not_implemented(spec.name)
        result = await handler(bot, params, files)
        if isinstance(result, Answer):
            return result.result, result.description
        return result, ""

    # -- helpers ----------------------------------------------------------------------------------

    def _resolve_user(self, user_id: int) -> JsonObject | None:
        user = self.server.users.get(user_id)
        return user.to_api() if user else None

    def _formatted(
        self, text: str, parse_mode: str | None, entities: list[JsonObject] | None
    ) -> FormattedText:
        if len(text.encode("utf-8", "surrogatepass")) > MAX_TEXT_BYTES:
            raise bad_request("Text is too long")
        try:
            parsed = parse_entities(text, parse_mode, entities, resolve_user=self._resolve_user)
        except EntityParseError as error:
            raise bad_request(f"Can't parse entities: {error}") from None
        except ValueError as error:
            raise bad_request(str(error)) from None
        return finalize_text(parsed)

    def _message_text(self, params: Params) -> FormattedText:
        formatted = self._formatted(
            params.get("text", ""), params.get("parse_mode"), params.get("entities")
        )
        if not formatted.text:
            raise bad_request("Message text is empty")
        if utf16_len(formatted.text) > MAX_MESSAGE_LENGTH:
            raise bad_request("message is too long")
        return formatted

    def _caption(self, params: Params, key: str = "caption") -> FormattedText | None:
        caption = params.get(key)
        if not caption:
            return None
        formatted = self._formatted(
            caption, params.get("parse_mode"), params.get(f"{key}_entities")
        )
        if utf16_len(formatted.text) > MAX_CAPTION_LENGTH:
            raise bad_request("message caption is too long")
        return formatted if formatted.text else None

    @staticmethod
    def _with_caption(content: JsonObject, caption: FormattedText | None) -> JsonObject:
        if caption is not None:
            content["caption"] = caption.text
            if caption.entities:
                content["caption_entities"] = caption.entities
        return content

    @staticmethod
    def _no_business(params: Params) -> None:
        if params.get("business_connection_id"):
            raise bad_request("business connection not found")

    def _reply_to(self, conv: Conversation, params: Params) -> JsonObject | None:
        reply = params.get("reply_parameters")
        allow = bool(params.get("allow_sending_without_reply"))
        message_id = params.get("reply_to_message_id")
        if reply:
            message_id = reply.get("message_id")
            allow = bool(reply.get("allow_sending_without_reply", allow))
            other_chat = reply.get("chat_id")
            if other_chat is not None and str(other_chat) != str(conv.chat_id):
                if allow:
                    return None
                raise bad_request("message to be replied not found")
        if not message_id:
            return None
        stored = conv.messages.get(int(message_id))
        if stored is None or stored.deleted:
            if allow:
                return None
            raise bad_request("message to be replied not found")
        return stored.data

    def _send_target(self, bot: SandboxBot, params: Params) -> Conversation:
        self._no_business(params)
        conv = self.server.send_target(bot, params["chat_id"])
        markup: ReplyMarkup | None = params.get("reply_markup")
        if markup is not None:
            check_markup_limits(markup, private_chat=conv.is_private)
        return conv

    def _post(
        self,
        bot: SandboxBot,
        conv: Conversation,
        params: Params,
        content: JsonObject,
        reply_to: JsonObject | None,
    ) -> JsonObject:
        return self.server.post_bot_message(
            bot,
            conv,
            content,
            markup=params.get("reply_markup"),
            reply_to=reply_to,
            protect_content=bool(params.get("protect_content")),
        )

    async def _input_file(self, value: Any, files: Files, kind: str) -> StoredFile:
        """The file a ``photo``/``document``/``media`` parameter names: an upload, an
        ``attach://`` part, an existing ``file_id``, or an HTTP URL to fetch."""
        if isinstance(value, str) and value.startswith("attach://"):
            upload = files.get(value[len("attach://") :])
            if upload is None:
                raise bad_request("wrong file identifier/HTTP URL specified")
            value = upload
        if isinstance(value, UploadedFile):
            return self._store_upload(value.data, value.filename, value.content_type, kind)
        if not isinstance(value, str) or not value:
            raise bad_request("wrong file identifier/HTTP URL specified")
        if value.startswith(("http://", "https://")):
            data, content_type = await self._fetch(value, kind)
            name = value.rsplit("/", 1)[-1].split("?", 1)[0] or "file"
            return self._store_upload(data, name, content_type, kind)
        stored = self.server.files.get(value)
        if stored is None or (kind == "photo" and stored.kind != "photo"):
            raise bad_request("wrong file identifier/HTTP URL specified")
        return stored

    def _store_upload(
        self, data: bytes, filename: str, content_type: str, kind: str
    ) -> StoredFile:
        if len(data) > MAX_UPLOAD_BYTES:
            raise entity_too_large()
        if not data:
            raise bad_request("file must be non-empty")
        if kind == "photo":
            if len(data) > MAX_PHOTO_BYTES:
                raise bad_request("PHOTO_SAVE_FILE_INVALID")
            size = image_size(data)
            if size is None:
                raise bad_request("IMAGE_PROCESS_FAILED")
            width, height = size
            if width + height > 10000 or max(width, height) > 20 * max(1, min(width, height)):
                raise bad_request("PHOTO_INVALID_DIMENSIONS")
            return self.server.files.add("photo", data, size=size)
        return self.server.files.add(
            "document",
            data,
            file_name=filename,
            mime_type=guess_mime_type(filename, content_type),
        )

    async def _fetch(self, url: str, kind: str) -> tuple[bytes, str]:
        limit = 5 * 1024 * 1024 if kind == "photo" else MAX_DOWNLOAD_BYTES
        session = self.server.http_session()
        try:
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=10)) as response:
                if response.status != 200:
                    raise bad_request("failed to get HTTP URL content")
                data = await response.content.read(limit + 1)
                if len(data) > limit:
                    raise bad_request("failed to get HTTP URL content")
                return data, response.content_type
        except (aiohttp.ClientError, TimeoutError, ValueError):
            raise bad_request("failed to get HTTP URL content") from None

    def _edit_target(self, bot: SandboxBot, params: Params) -> tuple[Conversation, JsonObject]:
        chat_ref = params.get("chat_id")
        message_id = params.get("message_id")
        self._no_business(params)
        if chat_ref is None and message_id is None:
            if not params.get("inline_message_id"):
                raise bad_request("Message identifier is not specified")
            raise bad_request("MESSAGE_ID_INVALID")
        if chat_ref is None:
            raise bad_request("chat_id is empty")
        if message_id is None:
            raise bad_request("Message identifier is not specified")
        conv = self.server.existing_chat(bot, chat_ref)
        stored = conv.messages.get(message_id)
        if stored is None or stored.deleted:
            raise bad_request("message to edit not found")
        if not stored.from_bot or stored.sender_id != bot.id or stored.service is not None:
            raise bad_request("message can't be edited")
        return conv, stored.data

    @staticmethod
    def _inline_markup(params: Params) -> JsonObject | None:
        markup: ReplyMarkup | None = params.get("reply_markup")
        if markup is None:
            return None
        if not markup.is_inline:
            raise bad_request("Inline keyboard expected")
        return markup.data

    def _apply_edit(self, conv: Conversation, data: JsonObject, changes: JsonObject) -> JsonObject:
        current = {key: data.get(key) for key in changes}
        if current == changes:
            raise bad_request(MESSAGE_NOT_MODIFIED)
        for key, value in changes.items():
            if value is None or value == []:
                data.pop(key, None)
            else:
                data[key] = value
        data["edit_date"] = self.server.unix_now()
        conv.emit("edited", self.server.unix_now(), message_id=data["message_id"])
        return data

    def _scope_key(self, bot: SandboxBot, scope: JsonObject | None) -> str:
        if not scope:
            return "default"
        kind = scope["type"]
        if kind in ("chat", "chat_administrators", "chat_member"):
            conv = self.server.existing_chat(bot, scope["chat_id"])
            if kind == "chat_member":
                user_id = int(scope["user_id"])
                if user_id <= 0:
                    raise bad_request("Can't parse BotCommandScope: Invalid user_id specified")
                return f"chat_member:{conv.chat_id}:{user_id}"
            return f"{kind}:{conv.chat_id}"
        return str(kind)

    @staticmethod
    def _language(params: Params) -> str:
        language = str(params.get("language_code") or "")
        if language and not (len(language) == 2 and language.isascii() and language.isalpha()):
            raise bad_request("LANG_CODE_INVALID")
        return language.lower()

    # -- identity and lifecycle -------------------------------------------------------------------

    async def get_me(self, bot: SandboxBot, params: Params, files: Files) -> JsonObject:
        return bot.get_me()

    async def log_out(self, bot: SandboxBot, params: Params, files: Files) -> bool:
        """The bot leaves the cloud server: for 10 minutes every call answers 429."""
        self.server.delete_webhook(bot)
        bot.logged_out_until = self.server.now() + timedelta(minutes=10)
        return True

    async def close(self, bot: SandboxBot, params: Params, files: Files) -> bool:
        """Telegram refuses ``close`` during the first 10 minutes after a bot is launched."""
        age = self.server.now() - bot.created_at
        if age < CLOSE_GRACE:
            raise too_many_requests(int((CLOSE_GRACE - age).total_seconds()) + 1)
        return True

    # -- updates ----------------------------------------------------------------------------------

    async def get_updates(self, bot: SandboxBot, params: Params, files: Files) -> list[JsonObject]:
        if bot.webhook is not None:
            raise conflict(WEBHOOK_ACTIVE_CONFLICT)
        offset = _int32(params.get("offset", 0))
        limit = max(1, min(100, _int32(params.get("limit", 100))))
        timeout = max(0, min(LONG_POLL_MAX_TIMEOUT, _int32(params.get("timeout", 0))))
        bot.updates.set_allowed_updates(params.get("allowed_updates"))
        generation = bot.updates.start_poll()
        try:
            updates = await bot.updates.long_poll(generation, offset, limit, timeout)
        except PollAborted as aborted:
            raise conflict(aborted.description) from None
        return [update.to_api() for update in updates]

    async def set_webhook(self, bot: SandboxBot, params: Params, files: Files) -> Answer:
        url = params.get("url", "")
        if not url:
            return await self.delete_webhook(bot, params, files)
        try:
            parsed = URL(url)
        except ValueError:
            raise bad_request("invalid webhook URL specified") from None
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise bad_request("invalid webhook URL specified")
        secret = params.get("secret_token", "")
        if len(secret) > 256:
            raise bad_request("secret token is too long")
        if any(not (c.isascii() and (c.isalnum() or c in "_-")) for c in secret):
            raise bad_request("secret token contains unallowed characters")
        max_connections = max(1, min(100, _int32(params.get("max_connections", 40))))
        if params.get("drop_pending_updates"):
            bot.updates.clear()
        bot.updates.set_allowed_updates(params.get("allowed_updates"))
        current = bot.webhook
        if (
            current is not None
            and current.url == url
            and current.secret_token == (secret or None)
            and current.max_connections == max_connections
            and "certificate" not in params
        ):
            return Answer(True, "Webhook is already set")
        self.server.set_webhook(
            bot,
            WebhookState(
                url=url,
                secret_token=secret or None,
                max_connections=max_connections,
                ip_address=params.get("ip_address"),
                has_custom_certificate="certificate" in params,
            ),
        )
        return Answer(True, "Webhook was set")

    async def delete_webhook(self, bot: SandboxBot, params: Params, files: Files) -> Answer:
        if params.get("drop_pending_updates"):
            bot.updates.clear()
        deleted = self.server.delete_webhook(bot)
        return Answer(True, "Webhook was deleted" if deleted else "Webhook is already deleted")

    async def get_webhook_info(self, bot: SandboxBot, params: Params, files: Files) -> JsonObject:
        if bot.webhook is not None:
            return bot.webhook.info(bot.updates)
        info: JsonObject = {
            "url": "",
            "has_custom_certificate": False,
            "pending_update_count": bot.updates.pending_count(),
        }
        if bot.updates.allowed_updates is not None:
            info["allowed_updates"] = sorted(bot.updates.allowed_updates)
        return info

    # -- sending ----------------------------------------------------------------------------------

    async def send_message(self, bot: SandboxBot, params: Params, files: Files) -> JsonObject:
        text = self._message_text(params)
        conv = self._send_target(bot, params)
        reply_to = self._reply_to(conv, params)
        self.server.check_flood(bot, conv)
        content: JsonObject = {"text": text.text}
        if text.entities:
            content["entities"] = text.entities
        return self._post(bot, conv, params, content, reply_to)

    async def send_photo(self, bot: SandboxBot, params: Params, files: Files) -> JsonObject:
        caption = self._caption(params)
        conv = self._send_target(bot, params)
        reply_to = self._reply_to(conv, params)
        photo = await self._input_file(params["photo"], files, "photo")
        self.server.check_flood(bot, conv)
        content = self._with_caption({"photo": [photo.photo_size()]}, caption)
        if params.get("has_spoiler"):
            content["has_media_spoiler"] = True
        return self._post(bot, conv, params, content, reply_to)

    async def send_document(self, bot: SandboxBot, params: Params, files: Files) -> JsonObject:
        caption = self._caption(params)
        conv = self._send_target(bot, params)
        reply_to = self._reply_to(conv, params)
        document = await self._input_file(params["document"], files, "document")
        self.server.check_flood(bot, conv)
        content = self._with_caption({"document": document.document()}, caption)
        return self._post(bot, conv, params, content, reply_to)

    async def send_media_group(
        self, bot: SandboxBot, params: Params, files: Files
    ) -> list[JsonObject]:
        media: list[JsonObject] = params["media"]
        if len(media) > 10:
            raise bad_request("Too much messages to send as an album")
        if len(media) < 2:
            raise bad_request("media must include 2-10 items")
        kinds = {item["type"] for item in media}
        if not kinds <= {"photo", "document"}:
            unsupported = sorted(kinds - {"photo", "document"})
            raise ApiError(
                501,
                f"Not Implemented: the sandbox sends albums of photos or documents, not "
                f"{', '.join(unsupported)}",
            )
        if len(kinds) > 1:
            raise bad_request("Can't use the media of the specified type in the album")
        captions = [self._caption(item) for item in media]
        conv = self._send_target(bot, params)
        reply_to = self._reply_to(conv, params)
        stored = [await self._input_file(item["media"], files, item["type"]) for item in media]
        self.server.check_flood(bot, conv)
        group_id = self.server.new_media_group_id()
        messages = []
        for item, file, caption in zip(media, stored, captions, strict=True):
            body: JsonObject = (
                {"photo": [file.photo_size()]}
                if item["type"] == "photo"
                else {"document": file.document()}
            )
            body["media_group_id"] = group_id
            content = self._with_caption(body, caption)
            messages.append(
                self.server.post_bot_message(
                    bot,
                    conv,
                    content,
                    reply_to=reply_to,
                    protect_content=bool(params.get("protect_content")),
                )
            )
        return messages

    async def send_location(self, bot: SandboxBot, params: Params, files: Files) -> JsonObject:
        latitude, longitude = float(params["latitude"]), float(params["longitude"])
        if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
            raise bad_request("wrong location specified")
        conv = self._send_target(bot, params)
        reply_to = self._reply_to(conv, params)
        self.server.check_flood(bot, conv)
        location: JsonObject = {"latitude": latitude, "longitude": longitude}
        if params.get("horizontal_accuracy") is not None:
            location["horizontal_accuracy"] = float(params["horizontal_accuracy"])
        return self._post(bot, conv, params, {"location": location}, reply_to)

    async def send_venue(self, bot: SandboxBot, params: Params, files: Files) -> JsonObject:
        latitude, longitude = float(params["latitude"]), float(params["longitude"])
        if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
            raise bad_request("wrong location specified")
        conv = self._send_target(bot, params)
        reply_to = self._reply_to(conv, params)
        self.server.check_flood(bot, conv)
        location = {"latitude": latitude, "longitude": longitude}
        venue = {"location": location, "title": params["title"], "address": params["address"]}
        return self._post(bot, conv, params, {"venue": venue, "location": location}, reply_to)

    async def send_contact(self, bot: SandboxBot, params: Params, files: Files) -> JsonObject:
        conv = self._send_target(bot, params)
        reply_to = self._reply_to(conv, params)
        self.server.check_flood(bot, conv)
        contact: JsonObject = {
            "phone_number": params["phone_number"],
            "first_name": params["first_name"],
        }
        for key in ("last_name", "vcard"):
            if params.get(key):
                contact[key] = params[key]
        return self._post(bot, conv, params, {"contact": contact}, reply_to)

    async def send_chat_action(self, bot: SandboxBot, params: Params, files: Files) -> bool:
        action = params["action"]
        if action not in CHAT_ACTIONS:
            raise bad_request("Wrong parameter action in request")
        conv = self._send_target(bot, params)
        now = self.server.unix_now()
        conv.chat_action = {"action": action, "date": now, "until": now + 5}
        conv.emit("chat_action", now, action=action)
        return True

    # -- editing and deleting ---------------------------------------------------------------------

    async def edit_message_text(self, bot: SandboxBot, params: Params, files: Files) -> JsonObject:
        text = self._message_text(params)
        markup = self._inline_markup(params)
        conv, data = self._edit_target(bot, params)
        if "text" not in data:
            raise bad_request("there is no text in the message to edit")
        changes = {"text": text.text, "entities": text.entities or None, "reply_markup": markup}
        return self._apply_edit(conv, data, changes)

    async def edit_message_caption(
        self, bot: SandboxBot, params: Params, files: Files
    ) -> JsonObject:
        caption = self._caption(params)
        markup = self._inline_markup(params)
        conv, data = self._edit_target(bot, params)
        if not any(key in data for key in ("photo", "document", "video", "audio", "animation")):
            raise bad_request("there is no caption in the message to edit")
        changes = {
            "caption": caption.text if caption else None,
            "caption_entities": (caption.entities or None) if caption else None,
            "reply_markup": markup,
        }
        return self._apply_edit(conv, data, changes)

    async def edit_message_reply_markup(
        self, bot: SandboxBot, params: Params, files: Files
    ) -> JsonObject:
        markup = self._inline_markup(params)
        conv, data = self._edit_target(bot, params)
        return self._apply_edit(conv, data, {"reply_markup": markup})

    def _deletable(self, bot: SandboxBot, conv: Conversation, message_id: int) -> bool:
        stored = conv.messages.get(message_id)
        if stored is None or stored.deleted:
            return False
        age = self.server.unix_now() - int(stored.data["date"])
        if age > DELETE_WINDOW.total_seconds():
            raise bad_request("message can't be deleted")
        if not conv.is_private and not stored.from_bot:
            raise bad_request("message can't be deleted")
        return True

    def _delete(self, conv: Conversation, message_id: int) -> None:
        stored = conv.messages[message_id]
        stored.deleted = True
        if conv.pinned_message_id == message_id:
            conv.pinned_message_id = None
        conv.emit("deleted", self.server.unix_now(), message_id=message_id)

    async def delete_message(self, bot: SandboxBot, params: Params, files: Files) -> bool:
        conv = self.server.existing_chat(bot, params["chat_id"])
        message_id = params["message_id"]
        if not self._deletable(bot, conv, message_id):
            raise bad_request("message to delete not found")
        self._delete(conv, message_id)
        return True

    async def delete_messages(self, bot: SandboxBot, params: Params, files: Files) -> bool:
        ids: list[int] = params["message_ids"]
        if not ids:
            raise bad_request("Message identifiers are not specified")
        if len(ids) > 100:
            raise bad_request("Too many message identifiers specified")
        conv = self.server.existing_chat(bot, params["chat_id"])
        for message_id in ids:
            try:
                if self._deletable(bot, conv, message_id):
                    self._delete(conv, message_id)
            except ApiError:
                continue
        return True

    # -- callback queries and files ---------------------------------------------------------------

    async def answer_callback_query(self, bot: SandboxBot, params: Params, files: Files) -> bool:
        text = params.get("text", "")
        if utf16_len(text) > MAX_CALLBACK_ANSWER_LENGTH:
            raise bad_request("MESSAGE_TOO_LONG")
        answer: JsonObject = {"text": text, "show_alert": bool(params.get("show_alert"))}
        if params.get("url"):
            answer["url"] = params["url"]
        self.server.answer_callback(bot, params["callback_query_id"], answer)
        return True

    async def get_file(self, bot: SandboxBot, params: Params, files: Files) -> JsonObject:
        stored = self.server.files.get(params["file_id"])
        if stored is None:
            raise bad_request("wrong file_id or the file is temporarily unavailable")
        if stored.file_size > MAX_DOWNLOAD_BYTES:
            raise bad_request("file is too big")
        return stored.file()

    # -- commands, names, menu button -------------------------------------------------------------

    async def set_my_commands(self, bot: SandboxBot, params: Params, files: Files) -> bool:
        commands: list[JsonObject] = params["commands"]
        if len(commands) > MAX_COMMANDS:
            raise bad_request("BOT_COMMANDS_TOO_MUCH")
        cleaned = []
        for command in commands:
            name = str(command["command"]).removeprefix("/")
            description = str(command["description"]).strip()
            if not (
                1 <= len(name) <= 32
                and all(c.isascii() and (c.islower() or c.isdigit() or c == "_") for c in name)
            ):
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(description) <= MAX_COMMAND_DESCRIPTION:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
            cleaned.append({"command": name, "description": description})
        key = (self._scope_key(bot, params.get("scope")), self._language(params))
        if cleaned:
            bot.commands[key] = cleaned
        else:
            bot.commands.pop(key, None)
        return True

    async def get_my_commands(
        self, bot: SandboxBot, params: Params, files: Files
    ) -> list[JsonObject]:
        key = (self._scope_key(bot, params.get("scope")), self._language(params))
        return [dict(command) for command in bot.commands.get(key, [])]

    async def delete_my_commands(self, bot: SandboxBot, params: Params, files: Files) -> bool:
        key = (self._scope_key(bot, params.get("scope")), self._language(params))
        bot.commands.pop(key, None)
        return True

    async def _set_text(self, store: dict[str, str], params: Params, key: str, limit: int) -> bool:
        language = self._language(params)
        value = params.get(key, "")
        if len(value) > limit:
            raise bad_request(f"{key.replace('_', ' ')} is too long")
        if value:
            store[language] = value
        else:
            store.pop(language, None)
        return True

    @staticmethod
    def _get_text(store: dict[str, str], language: str, fallback: str = "") -> str:
        return store.get(language) or store.get("") or fallback

    async def set_my_name(self, bot: SandboxBot, params: Params, files: Files) -> bool:
        return await self._set_text(bot.names, params, "name", 64)

    async def get_my_name(self, bot: SandboxBot, params: Params, files: Files) -> JsonObject:
        return {"name": self._get_text(bot.names, self._language(params), bot.first_name)}

    async def set_my_description(self, bot: SandboxBot, params: Params, files: Files) -> bool:
        return await self._set_text(bot.descriptions, params, "description", 512)

    async def get_my_description(
        self, bot: SandboxBot, params: Params, files: Files
    ) -> JsonObject:
        return {"description": self._get_text(bot.descriptions, self._language(params))}

    async def set_my_short_description(
        self, bot: SandboxBot, params: Params, files: Files
    ) -> bool:
        return await self._set_text(bot.short_descriptions, params, "short_description", 120)

    async def get_my_short_description(
        self, bot: SandboxBot, params: Params, files: Files
    ) -> JsonObject:
        language = self._language(params)
        return {"short_description": self._get_text(bot.short_descriptions, language)}

    async def set_chat_menu_button(self, bot: SandboxBot, params: Params, files: Files) -> bool:
        chat_ref = params.get("chat_id")
        chat_id = None
        if chat_ref is not None:
            conv = self.server.existing_chat(bot, chat_ref)
            if not conv.is_private:
                raise bad_request("chat not found")
            chat_id = conv.chat_id
        button = params.get("menu_button") or {"type": "default"}
        if button.get("type") == "default":
            bot.menu_buttons.pop(chat_id, None)
        else:
            bot.menu_buttons[chat_id] = button
        for conv in self.server.conversations.values():
            if conv.bot_id == bot.id and (chat_id is None or conv.chat_id == chat_id):
                conv.emit("menu_button", self.server.unix_now())
        return True

    async def get_chat_menu_button(
        self, bot: SandboxBot, params: Params, files: Files
    ) -> JsonObject:
        chat_ref = params.get("chat_id")
        if chat_ref is None:
            return bot.menu_buttons.get(None) or {"type": "default"}
        conv = self.server.existing_chat(bot, chat_ref)
        return (
            bot.menu_buttons.get(conv.chat_id) or bot.menu_buttons.get(None) or {"type": "default"}
        )

    # -- pins, chats ------------------------------------------------------------------------------

    async def pin_chat_message(self, bot: SandboxBot, params: Params, files: Files) -> bool:
        self._no_business(params)
        conv = self.server.existing_chat(bot, params["chat_id"])
        stored = conv.messages.get(params["message_id"])
        if stored is None or stored.deleted or stored.service is not None:
            raise bad_request("message to pin not found")
        conv.pinned_message_id = stored.message_id
        conv.emit("pinned", self.server.unix_now(), message_id=stored.message_id)
        self.server.post_service_message(
            bot, conv, "pinned_message", {"pinned_message": dict(stored.data)}
        )
        return True

    async def unpin_chat_message(self, bot: SandboxBot, params: Params, files: Files) -> bool:
        self._no_business(params)
        conv = self.server.existing_chat(bot, params["chat_id"])
        message_id = params.get("message_id", conv.pinned_message_id)
        if message_id is None or message_id != conv.pinned_message_id:
            raise bad_request("message to unpin not found")
        conv.pinned_message_id = None
        conv.emit("unpinned", self.server.unix_now(), message_id=message_id)
        return True

    async def unpin_all_chat_messages(self, bot: SandboxBot, params: Params, files: Files) -> bool:
        conv = self.server.existing_chat(bot, params["chat_id"])
        conv.pinned_message_id = None
        conv.emit("unpinned", self.server.unix_now())
        return True

    async def get_chat(self, bot: SandboxBot, params: Params, files: Files) -> JsonObject:
        conv = self.server.existing_chat(bot, params["chat_id"])
        info: JsonObject = {
            **conv.chat,
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": True,
                "limited_gifts": True,
                "unique_gifts": True,
                "premium_subscription": True,
                "gifts_from_channels": True,
            },
        }
        if conv.pinned_message_id is not None:
            pinned = conv.messages.get(conv.pinned_message_id)
            if pinned is not None and not pinned.deleted:
                info["pinned_message"] = dict(pinned.data)
        if conv.is_private:
            user = self.server.users[conv.chat_id]
            if user.username:
                info["active_usernames"] = [user.username]
        return info

    async def get_chat_member(self, bot: SandboxBot, params: Params, files: Files) -> JsonObject:
        conv = self.server.existing_chat(bot, params["chat_id"])
        user_id = params["user_id"]
        if user_id == bot.id:
            return {"status": "member", "user": bot.to_api()}
        user = self.server.users.get(user_id)
        if user is None:
            raise bad_request("user not found")
        if conv.is_private:
            if user_id != conv.chat_id:
                raise bad_request("user not found")
            return {"status": "member", "user": user.to_api()}
        status = "member" if user_id in conv.members else "left"
        return {"status": status, "user": user.to_api()}
