"""Replies from handlers, written to the outbox in the update's transaction."""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from aiogram.types import (
    CallbackQuery,
    ForceReply,
    InlineKeyboardMarkup,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services import outbox
from models import OutboxLane, OutboxMessage

Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove | ForceReply


def markup_json(markup: Markup | None) -> dict[str, Any] | None:
    """A keyboard as the Bot API JSON the outbox stores."""
    if markup is None:
        return None
    return markup.model_dump(mode="json", exclude_none=True, exclude_defaults=False)


class Replier:
    """Sends to the chat the current update came from, through the outbox."""

    def __init__(
        self,
        session: AsyncSession,
        chat_id: int,
        now: datetime,
        person_id: int | None,
        files_dir: Path,
    ) -> None:
        self.session = session
        self.chat_id = chat_id
        self.now = now
        self.person_id = person_id
        self.files_dir = files_dir

    def text(
        self, text: str, reply_markup: Markup | None = None, *, ref: str | None = None
    ) -> OutboxMessage:
        return outbox.send_text(
            self.session,
            chat_id=self.chat_id,
            text=text,
            now=self.now,
            reply_markup=markup_json(reply_markup),
            person_id=self.person_id,
            ref=ref,
            urgent=True,  # an answer to something the person just did is never held back
            lane=OutboxLane.REPLY,
        )

    def show(
        self, message_id: int | None, text: str, reply_markup: InlineKeyboardMarkup | None = None
    ) -> OutboxMessage:
        """Replace message ``message_id`` (the one whose button was pressed) with ``text``, or
        send ``text`` anew when there is no message to replace."""
        if message_id is not None:
            return self.edit(message_id, text, reply_markup)
        return self.text(text, reply_markup)

    def edit(
        self, message_id: int, text: str, reply_markup: InlineKeyboardMarkup | None = None
    ) -> OutboxMessage:
        payload: dict[str, Any] = {
            "chat_id": self.chat_id,
            "message_id": message_id,
            "text": text,
            "parse_mode": "HTML",
        }
        if reply_markup is not None:
            payload["reply_markup"] = markup_json(reply_markup)
        return outbox.enqueue(
            self.session,
            chat_id=self.chat_id,
            method="editMessageText",
            payload=payload,
            now=self.now,
            person_id=self.person_id,
            urgent=True,
            lane=OutboxLane.REPLY,
        )

    def drop_buttons(self, message_id: int) -> OutboxMessage:
        """Take the inline buttons off one of the bot's messages; its text stays."""
        return outbox.enqueue(
            self.session,
            chat_id=self.chat_id,
            method="editMessageReplyMarkup",
            payload={"chat_id": self.chat_id, "message_id": message_id},
            now=self.now,
            person_id=self.person_id,
            urgent=True,
            lane=OutboxLane.REPLY,
        )

    def photos(self, file_ids: list[str], caption: str | None = None) -> OutboxMessage:
        """Photos Telegram already holds (by ``file_id``): one by ``sendPhoto``, 2-10 as one
        album (``sendMediaGroup``, the caption under the first)."""
        if not 1 <= len(file_ids) <= 10:
            raise ValueError("an album holds 1-10 photos")
        payload: dict[str, Any] = {"chat_id": self.chat_id}
        if len(file_ids) == 1:
            method = "sendPhoto"
            payload["photo"] = file_ids[0]
            if caption:
                payload["caption"] = caption
        else:
            method = "sendMediaGroup"
            payload["media"] = [{"type": "photo", "media": f} for f in file_ids]
            if caption:
                payload["media"][0]["caption"] = caption
        return outbox.enqueue(
            self.session,
            chat_id=self.chat_id,
            method=method,
            payload=payload,
            now=self.now,
            person_id=self.person_id,
            urgent=True,
            lane=OutboxLane.REPLY,
        )

    def upload(
        self,
        method: str,
        field: str,
        data: bytes,
        filename: str,
        *,
        caption: str | None = None,
    ) -> OutboxMessage:
        """Send a generated file (``sendPhoto``/``sendDocument``): kept on disk until sent."""
        self.files_dir.mkdir(parents=True, exist_ok=True)
        path = self.files_dir / f"{uuid.uuid4().hex}-{Path(filename).name}"
        path.write_bytes(data)
        payload = outbox.file_payload(self.chat_id, field, path, filename, caption)
        return outbox.enqueue(
            self.session,
            chat_id=self.chat_id,
            method=method,
            payload=payload,
            now=self.now,
            person_id=self.person_id,
            urgent=True,
            lane=OutboxLane.REPLY,
        )

    def contact(self, phone: str, first_name: str) -> OutboxMessage:
        return outbox.enqueue(
            self.session,
            chat_id=self.chat_id,
            method="sendContact",
            payload={"chat_id": self.chat_id, "phone_number": phone, "first_name": first_name},
            now=self.now,
            person_id=self.person_id,
            urgent=True,
            lane=OutboxLane.REPLY,
        )


def pressed(query: CallbackQuery) -> int | None:
    """The id of the message whose button was pressed, if Telegram still has it."""
    return query.message.message_id if isinstance(query.message, Message) else None
