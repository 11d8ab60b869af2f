"""A typed client of the sandbox control API, and personas that make tests read like a chat.

::

    async with SandboxClient(sandbox.url) as sandbox_client:
        alice = await sandbox_client.persona("Alice", bot=BOT_ID, phone_number="13800000000")
        await alice.start()
        greeting = await alice.next_message()
        assert "欢迎" in greeting.text
        await alice.press("报告问题")
        await alice.share_contact()
        await alice.send_location(31.23, 121.47)
        await alice.send_photo(png_bytes, caption="路灯坏了")
        assert (await alice.next_message()).text.startswith("已收到")
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import aiohttp

JsonObject = dict[str, Any]
BotRef = int | str

DEFAULT_WAIT = 15.0  # seconds; generous, because CI machines can be busy


class SandboxClientError(Exception):
    """The control API refused a request (``status`` is the HTTP status)."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(f"{status}: {description}")
        self.status = status
        self.description = description


@dataclass(frozen=True)
class ChatMessage:
    """A message as the person sees it in the chat."""

    raw: JsonObject

    @property
    def message_id(self) -> int:
        return int(self.raw["message_id"])

    @property
    def from_bot(self) -> bool:
        return bool(self.raw["from"] == "bot")

    @property
    def text(self) -> str:
        """The text, or the caption of a photo or document ("" if neither)."""
        return str(self.raw.get("text") or self.raw.get("caption") or "")

    @property
    def caption(self) -> str | None:
        caption = self.raw.get("caption")
        return None if caption is None else str(caption)

    @property
    def entities(self) -> list[JsonObject]:
        return list(self.raw.get("entities") or [])

    @property
    def inline_keyboard(self) -> list[list[JsonObject]]:
        return list(self.raw.get("inline_keyboard") or [])

    @property
    def buttons(self) -> list[str]:
        """Texts of the inline buttons, row by row."""
        return [button["text"] for row in self.inline_keyboard for button in row]

    @property
    def keyboard(self) -> JsonObject | None:
        """The reply keyboard (or its removal / a force reply) sent with this message."""
        keyboard = self.raw.get("keyboard")
        return dict(keyboard) if keyboard else None

    @property
    def photo(self) -> JsonObject | None:
        return self.raw.get("photo")

    @property
    def document(self) -> JsonObject | None:
        return self.raw.get("document")

    @property
    def location(self) -> JsonObject | None:
        return self.raw.get("location")

    @property
    def contact(self) -> JsonObject | None:
        return self.raw.get("contact")

    @property
    def edited(self) -> bool:
        return "edit_date" in self.raw

    def has_entity(self, entity_type: str) -> bool:
        return any(entity["type"] == entity_type for entity in self.entities)


@dataclass(frozen=True)
class Transcript:
    """A chat as the person sees it (after edits and deletions)."""

    raw: JsonObject
    messages: list[ChatMessage] = field(default_factory=list)

    @classmethod
    def from_json(cls, raw: JsonObject) -> Transcript:
        return cls(raw, [ChatMessage(m) for m in raw["messages"]])

    @property
    def bot_messages(self) -> list[ChatMessage]:
        return [m for m in self.messages if m.from_bot and "service" not in m.raw]

    @property
    def last(self) -> ChatMessage | None:
        return self.messages[-1] if self.messages else None

    @property
    def reply_keyboard(self) -> list[list[str]]:
        """Labels of the reply keyboard the bot shows ([] if none)."""
        keyboard = self.raw.get("reply_keyboard") or {}
        return [[button["text"] for button in row] for row in keyboard.get("keyboard", [])]

    @property
    def toast(self) -> JsonObject | None:
        """The latest answer to a button press (``answerCallbackQuery``)."""
        toast = self.raw.get("toast")
        return dict(toast) if toast else None

    @property
    def commands(self) -> list[JsonObject]:
        return list(self.raw.get("commands") or [])

    @property
    def blocked(self) -> bool:
        return bool(self.raw.get("blocked"))

    @property
    def texts(self) -> list[str]:
        return [m.text for m in self.messages]


class SandboxClient:
    """The control API of a running sandbox (``base_url`` such as ``http://127.0.0.1:8081``)."""

    def __init__(self, base_url: str, *, session: aiohttp.ClientSession | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = session
        self._own_session = session is None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._own_session and self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
            self._own_session = True
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: JsonObject | None = None,
        data: aiohttp.FormData | None = None,
        params: dict[str, str] | None = None,
        wait: float = 0.0,
    ) -> Any:
        """Call ``/sandbox/api<path>``; return ``result`` or raise :class:`SandboxClientError`."""
        url = f"{self.base_url}/sandbox/api{path}"
        timeout = aiohttp.ClientTimeout(total=wait + 30.0)
        async with self._http().request(
            method, url, json=json, data=data, params=params, timeout=timeout
        ) as response:
            try:
                body = await response.json()
            except (aiohttp.ContentTypeError, ValueError):
                raise SandboxClientError(response.status, await response.text()) from None
        if not body.get("ok"):
            raise SandboxClientError(
                int(body.get("error_code", response.status)), str(body.get("description"))
            )
        return body["result"]

    # -- the world --------------------------------------------------------------------------------

    async def info(self) -> JsonObject:
        result: JsonObject = await self.request("GET", "/info")
        return result

    async def register_bot(
        self,
        token: str,
        *,
        username: str | None = None,
        first_name: str | None = None,
        group_privacy: bool = True,
    ) -> JsonObject:
        body: JsonObject = {"token": token, "group_privacy": group_privacy}
        if username:
            body["username"] = username
        if first_name:
            body["first_name"] = first_name
        result: JsonObject = await self.request("POST", "/bots", json=body)
        return result

    async def bots(self) -> list[JsonObject]:
        result: list[JsonObject] = await self.request("GET", "/bots")
        return result

    async def create_user(
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
    ) -> JsonObject:
        """A new person; ``group`` and ``note`` label them on the web page's list of people."""
        body: JsonObject = {"first_name": first_name, "language_code": language_code}
        for key, value in (
            ("last_name", last_name),
            ("username", username),
            ("phone_number", phone_number),
            ("id", user_id),
            ("group", group),
            ("note", note),
        ):
            if value is not None:
                body[key] = value
        result: JsonObject = await self.request("POST", "/users", json=body)
        return result

    async def users(self) -> list[JsonObject]:
        result: list[JsonObject] = await self.request("GET", "/users")
        return result

    async def create_group(self, bot: BotRef, title: str, member_ids: list[int]) -> JsonObject:
        result: JsonObject = await self.request(
            "POST", f"/bots/{bot}/groups", json={"title": title, "member_ids": member_ids}
        )
        return result

    async def persona(
        self,
        first_name: str,
        *,
        bot: BotRef,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "zh-hans",
        phone_number: str | None = None,
    ) -> Persona:
        """Create a person and return them as a :class:`Persona` talking to ``bot``."""
        user = await self.create_user(
            first_name,
            last_name=last_name,
            username=username,
            language_code=language_code,
            phone_number=phone_number,
        )
        return Persona(self, bot, user)

    def persona_for(self, user: JsonObject, *, bot: BotRef) -> Persona:
        """An existing person (a dict from :meth:`create_user` or :meth:`users`)."""
        return Persona(self, bot, user)

    # -- acting and reading -----------------------------------------------------------------------

    async def act(
        self,
        bot: BotRef,
        user_id: int,
        action: str,
        body: JsonObject | None = None,
        *,
        data: aiohttp.FormData | None = None,
    ) -> Any:
        path = f"/bots/{bot}/users/{user_id}/{action}"
        if data is not None:
            return await self.request("POST", path, data=data)
        return await self.request("POST", path, json=body or {})

    async def transcript(self, bot: BotRef, chat_id: int) -> Transcript:
        raw: JsonObject = await self.request("GET", f"/bots/{bot}/chats/{chat_id}")
        return Transcript.from_json(raw)

    async def events(
        self, bot: BotRef, chat_id: int, *, after: int = 0, wait: float = 0.0
    ) -> list[JsonObject]:
        """Chat events newer than ``after``, long-polling up to ``wait`` seconds for one."""
        result: list[JsonObject] = await self.request(
            "GET",
            f"/bots/{bot}/chats/{chat_id}/events",
            params={"after": str(after), "timeout": str(wait)},
            wait=wait,
        )
        return result

    async def wait_bot_message(
        self, bot: BotRef, chat_id: int, *, after: int, wait: float
    ) -> ChatMessage | None:
        result = await self.request(
            "GET",
            f"/bots/{bot}/chats/{chat_id}/next_message",
            params={"after": str(after), "timeout": str(wait)},
            wait=wait,
        )
        return ChatMessage(result) if result else None

    async def download(self, url_or_file_id: str) -> bytes:
        """A file by the ``url`` a transcript gives (``/sandbox/files/...``) or by file id."""
        path = url_or_file_id
        if not path.startswith("/"):
            path = f"/sandbox/files/{path}"
        async with self._http().get(f"{self.base_url}{path}") as response:
            if response.status != 200:
                raise SandboxClientError(response.status, await response.text())
            return await response.read()

    # -- server controls --------------------------------------------------------------------------

    async def stats(self) -> JsonObject:
        result: JsonObject = await self.request("GET", "/stats")
        return result

    async def reset_stats(self) -> None:
        await self.request("POST", "/stats/reset")

    async def reset(self) -> None:
        """Forget users, chats, files and counters (registered bots stay)."""
        await self.request("POST", "/reset")

    async def set_faults(self, **settings: Any) -> None:
        """See :class:`bot.sandbox.faults.Faults` (plus ``seed``)."""
        if "methods" in settings and settings["methods"] is not None:
            settings["methods"] = sorted(settings["methods"])
        if "error_codes" in settings:
            settings["error_codes"] = list(settings["error_codes"])
        await self.request("PUT", "/faults", json=settings)

    async def clear_faults(self) -> None:
        await self.request("DELETE", "/faults")

    async def storm(self, duration: float, retry_after: int) -> None:
        """Answer every send with 429 ``retry_after`` for ``duration`` seconds."""
        await self.request(
            "POST", "/faults/storm", json={"duration": duration, "retry_after": retry_after}
        )

    async def set_rate_limits(self, **settings: Any) -> None:
        """See :class:`bot.sandbox.ratelimit.RateLimits` (plus ``scale``)."""
        await self.request("PUT", "/rate_limits", json=settings)

    async def advance_clock(self, seconds: float) -> None:
        """Move a sandbox that runs on a ``ManualClock`` forward."""
        await self.request("POST", "/clock/advance", json={"seconds": seconds})


class Persona:
    """One person in one chat with one bot; every method is something they do or see.

    The persona remembers the newest message it has seen, so :meth:`next_message` returns the
    bot's messages one after another, each exactly once.
    """

    def __init__(
        self,
        client: SandboxClient,
        bot: BotRef,
        user: JsonObject,
        chat_id: int | None = None,
    ) -> None:
        self.client = client
        self.bot = bot
        self.user = user
        self.chat_id = chat_id if chat_id is not None else int(user["id"])
        self.cursor = 0

    def __repr__(self) -> str:
        return f"<Persona {self.first_name} ({self.id}) in chat {self.chat_id}>"

    @property
    def id(self) -> int:
        return int(self.user["id"])

    @property
    def first_name(self) -> str:
        return str(self.user["first_name"])

    def in_chat(self, chat_id: int) -> Persona:
        """The same person, acting in a group chat."""
        return Persona(self.client, self.bot, self.user, chat_id)

    def _body(self, **fields: Any) -> JsonObject:
        body = {key: value for key, value in fields.items() if value is not None}
        if self.chat_id != self.id:
            body["chat_id"] = self.chat_id
        return body

    def _seen(self, message: JsonObject) -> ChatMessage:
        self.cursor = max(self.cursor, int(message["message_id"]))
        return ChatMessage(message)

    async def _act(self, action: str, **fields: Any) -> Any:
        return await self.client.act(self.bot, self.id, action, self._body(**fields))

    # -- doing ------------------------------------------------------------------------------------

    async def start(self, payload: str | None = None) -> ChatMessage:
        """Open the bot and press Start (``/start`` or ``/start <payload>`` from a deep link)."""
        return self._seen(await self._act("start", payload=payload))

    async def send(self, text: str, *, reply_to: int | None = None) -> ChatMessage:
        """Type and send ``text``."""
        return self._seen(await self._act("send", text=text, reply_to_message_id=reply_to))

    async def press(
        self,
        label: str | None = None,
        *,
        callback_data: str | None = None,
        message_id: int | None = None,
    ) -> JsonObject:
        """Tap a button: an inline button with this text (or ``callback_data``) on the newest
        message that has one, else a reply-keyboard button with this text."""
        try:
            result: JsonObject = await self._act(
                "press", text=label, callback_data=callback_data, message_id=message_id
            )
            return result
        except SandboxClientError as error:
            if error.status != 409 or label is None or callback_data or message_id:
                raise
            try:
                message = await self.press_reply(label)
            except SandboxClientError:
                raise error from None
            return message.raw

    async def press_inline(
        self,
        label: str | None = None,
        *,
        callback_data: str | None = None,
        message_id: int | None = None,
    ) -> JsonObject:
        """Tap an inline button; a ``callback_data`` button answers ``callback_query_id``."""
        result: JsonObject = await self._act(
            "press", text=label, callback_data=callback_data, message_id=message_id
        )
        return result

    async def forge_press(
        self, callback_data: str, *, message_id: int | None = None
    ) -> JsonObject:
        """Send a ``callback_query`` with data no button carries (a tampered client)."""
        result: JsonObject = await self._act(
            "forge_press", callback_data=callback_data, message_id=message_id
        )
        return result

    async def press_reply(
        self, label: str, *, location: tuple[float, float] | None = None
    ) -> ChatMessage:
        """Tap a reply-keyboard button: sends its text, or the contact or location it requests
        (``location`` as (latitude, longitude); a default place if not given)."""
        latitude, longitude = location if location is not None else (None, None)
        return self._seen(
            await self._act("press_reply", text=label, latitude=latitude, longitude=longitude)
        )

    async def share_contact(self, phone_number: str | None = None) -> ChatMessage:
        """Share one's own phone number (``contact.user_id`` is this person)."""
        return self._seen(await self._act("contact", phone_number=phone_number))

    async def send_location(self, latitude: float, longitude: float) -> ChatMessage:
        return self._seen(await self._act("location", latitude=latitude, longitude=longitude))

    async def send_photo(self, data: bytes, *, caption: str | None = None) -> ChatMessage:
        return (await self.send_photos([data], caption=caption))[0]

    async def send_photos(
        self, photos: list[bytes], *, caption: str | None = None
    ) -> list[ChatMessage]:
        """Send an album (one ``media_group_id``) of 2-10 photos, or a single photo."""
        form = aiohttp.FormData()
        for index, data in enumerate(photos):
            form.add_field(f"photo{index}", data, filename=f"photo{index}.jpg")
        if caption is not None:
            form.add_field("caption", caption)
        if self.chat_id != self.id:
            form.add_field("chat_id", str(self.chat_id))
        messages = await self.client.act(self.bot, self.id, "photo", data=form)
        return [self._seen(message) for message in messages]

    async def send_document(
        self,
        data: bytes,
        filename: str,
        *,
        mime_type: str | None = None,
        caption: str | None = None,
    ) -> ChatMessage:
        form = aiohttp.FormData()
        form.add_field(
            "document",
            data,
            filename=filename,
            content_type=mime_type or "application/octet-stream",
        )
        form.add_field("filename", filename)
        if mime_type:
            form.add_field("mime_type", mime_type)
        if caption is not None:
            form.add_field("caption", caption)
        if self.chat_id != self.id:
            form.add_field("chat_id", str(self.chat_id))
        return self._seen(await self.client.act(self.bot, self.id, "document", data=form))

    async def edit(self, message_id: int, text: str) -> ChatMessage:
        """Edit one of one's own text messages."""
        return ChatMessage(await self._act("edit", message_id=message_id, text=text))

    async def block(self) -> None:
        """Block the bot (it gets ``my_chat_member``; its sends now fail with 403)."""
        await self.client.act(self.bot, self.id, "block")

    async def unblock(self) -> None:
        await self.client.act(self.bot, self.id, "unblock")

    # -- seeing -----------------------------------------------------------------------------------

    async def transcript(self) -> Transcript:
        return await self.client.transcript(self.bot, self.chat_id)

    async def next_message(self, timeout: float = DEFAULT_WAIT) -> ChatMessage:  # noqa: ASYNC109 (waits on the server)
        """The bot's next message after the last one seen; TimeoutError if none comes."""
        message = await self.client.wait_bot_message(
            self.bot, self.chat_id, after=self.cursor, wait=timeout
        )
        if message is None:
            raise TimeoutError(f"{self.first_name} got no message from the bot in {timeout}s")
        self.cursor = max(self.cursor, message.message_id)
        return message

    async def no_message(self, wait: float = 0.3) -> None:
        """Assert that the bot sends nothing new within ``wait`` seconds."""
        message = await self.client.wait_bot_message(
            self.bot, self.chat_id, after=self.cursor, wait=wait
        )
        if message is not None:
            raise AssertionError(f"{self.first_name} unexpectedly got {message.text!r}")

    async def wait_until(
        self,
        predicate: Callable[[Transcript], bool],
        timeout: float = DEFAULT_WAIT,  # noqa: ASYNC109 (waits on the server)
    ) -> Transcript:
        """Wait until ``predicate(transcript)`` holds (e.g. a message was edited or a toast
        shown); return that transcript, or raise TimeoutError."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        transcript = await self.transcript()
        seq = int(transcript.raw["seq"])
        while not predicate(transcript):
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"the chat of {self.first_name} did not reach the condition")
            events = await self.client.events(self.bot, self.chat_id, after=seq, wait=remaining)
            if events:
                seq = int(events[-1]["seq"])
                transcript = await self.transcript()
        return transcript

    async def toast(self) -> JsonObject | None:
        """The latest answer to a button press, as the app shows it."""
        return (await self.transcript()).toast
