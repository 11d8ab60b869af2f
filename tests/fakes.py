"""Hand-written fakes: a Bot whose session records calls instead of reaching Telegram."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Any

from aiogram import Bot
from aiogram.client.session.base import BaseSession
from aiogram.methods import AnswerCallbackQuery, TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import CallbackQuery, Chat, Message, Update, User

TOKEN = "123456789:AAFakeTokenForTestsOnly_abcdefghijk"


class RecordingSession(BaseSession):
    """Answers every call like Telegram would for a simple success, and records it."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[TelegramMethod[Any]] = []
        self._next_message_id = 1000

    async def close(self) -> None:
        return None

    async def make_request(
        self, bot: Bot, method: TelegramMethod[TelegramType], timeout: int | None = None
    ) -> TelegramType:
        self.calls.append(method)
        returning = method.__returning__
        if returning is bool:
            return True  # type: ignore[return-value]
        if returning is Message:
            self._next_message_id += 1
            chat_id = int(getattr(method, "chat_id", 0) or 0)
            return Message(  # type: ignore[return-value]
                message_id=self._next_message_id,
                date=datetime.now(),
                chat=Chat(id=chat_id, type="private"),
                text=getattr(method, "text", None),
            )
        return True  # type: ignore[return-value]

    async def stream_content(
        self,
        url: str,
        headers: dict[str, Any] | None = None,
        timeout: int = 30,
        chunk_size: int = 65536,
        raise_for_status: bool = True,
    ) -> AsyncGenerator[bytes, None]:
        yield b""

    def answers(self) -> list[AnswerCallbackQuery]:
        return [c for c in self.calls if isinstance(c, AnswerCallbackQuery)]


def recording_bot() -> tuple[Bot, RecordingSession]:
    session = RecordingSession()
    return Bot(TOKEN, session=session), session


class UpdateFactory:
    """Builds Telegram updates from one user, with increasing update ids."""

    def __init__(self, user_id: int = 5001, language_code: str | None = "zh-hans") -> None:
        self.user = User(
            id=user_id,
            is_bot=False,
            first_name="小明",
            last_name="王",
            language_code=language_code,
        )
        self.chat = Chat(id=user_id, type="private")
        self.update_id = 0
        self.message_id = 0

    def _next(self) -> int:
        self.update_id += 1
        return self.update_id

    def text(self, text: str, when: datetime | None = None) -> Update:
        self.message_id += 1
        entities = None
        if text.startswith("/"):
            from aiogram.types import MessageEntity

            length = len(text.split()[0])
            entities = [MessageEntity(type="bot_command", offset=0, length=length)]
        message = Message(
            message_id=self.message_id,
            date=when or datetime(2026, 3, 12, 9, 0),
            chat=self.chat,
            from_user=self.user,
            text=text,
            entities=entities,
        )
        return Update(update_id=self._next(), message=message)

    def press(self, data: str, message_id: int = 1) -> Update:
        message = Message(
            message_id=message_id, date=datetime(2026, 3, 12, 9, 0), chat=self.chat, text="…"
        )
        query = CallbackQuery(
            id=f"q{self.update_id + 1}",
            from_user=self.user,
            chat_instance="ci-1",
            message=message,
            data=data,
        )
        return Update(update_id=self._next(), callback_query=query)


class RecordingNotifier:
    """A ticket notifier that keeps every update instead of rendering it."""

    def __init__(self) -> None:
        from bot.services.ticket_notices import TicketUpdate

        self.updates: list[TicketUpdate] = []

    async def __call__(self, session: Any, update: Any, now: datetime) -> None:
        self.updates.append(update)

    def notices(self) -> list[str]:
        return [str(u.notice) for u in self.updates]
