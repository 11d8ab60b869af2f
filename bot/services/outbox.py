"""Enqueue Bot API calls in the outbox, in the caller's transaction (transactional outbox)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

import models
from bot.services.message_size import (
    MAX_CAPTION,
    MAX_MESSAGE,
    cut_to_fit,
    split_message,
    visible_length,
)
from models import OutboxLane, OutboxMessage, OutboxStatus

log = logging.getLogger(__name__)
OUTBOX = models.metadata.tables[str(OutboxMessage.__tablename__)]
MESSAGE_METHODS = ("send", "edit", "copy", "forward")  # what Telegram's rate limits count


def is_message(method: str) -> bool:
    """A call that sends or edits a message (the rest — menus, pins — are ``CONTROL``)."""
    return method.lower().startswith(MESSAGE_METHODS)


def enqueue(
    session: AsyncSession,
    *,
    chat_id: int,
    method: str,
    payload: dict[str, Any],
    now: datetime,
    person_id: int | None = None,
    ref: str | None = None,
    edit_ref: str | None = None,
    urgent: bool = False,
    lane: OutboxLane = OutboxLane.NOTICE,
    not_before: datetime | None = None,
    expires_at: datetime | None = None,
) -> OutboxMessage:
    """Add one call to the session; it is sent only if the transaction commits.

    ``lane`` says who goes first when the sender must choose; a call that is not a message
    is always ``CONTROL``. A text or caption longer than Telegram takes is cut to fit (a
    message sent with :func:`send_text` is split instead): a row the Bot API would refuse
    for its length is never queued."""
    message = OutboxMessage(
        chat_id=chat_id,
        person_id=person_id,
        method=method,
        payload=fitted(method, payload),
        ref=ref,
        edit_ref=edit_ref,
        urgent=urgent,
        lane=lane if is_message(method) else OutboxLane.CONTROL,
        not_before=not_before or now,
        expires_at=expires_at,
        created_at=now,
    )
    session.add(message)
    return message


def text_payload(
    chat_id: int, text: str, reply_markup: dict[str, Any] | None, parse_mode: str | None
) -> dict[str, Any]:
    """A ``sendMessage`` call's parameters; ``reply_markup`` is already in Bot API JSON form."""
    payload: dict[str, Any] = {"chat_id": chat_id, "text": text}
    if parse_mode:
        payload["parse_mode"] = parse_mode
    if reply_markup is not None:
        payload["reply_markup"] = reply_markup
    return payload


def send_text(
    session: AsyncSession,
    *,
    chat_id: int,
    text: str,
    now: datetime,
    reply_markup: dict[str, Any] | None = None,
    parse_mode: str | None = "HTML",
    person_id: int | None = None,
    ref: str | None = None,
    urgent: bool = False,
    lane: OutboxLane = OutboxLane.NOTICE,
    not_before: datetime | None = None,
    expires_at: datetime | None = None,
) -> OutboxMessage:
    """Enqueue a ``sendMessage``; a text longer than one message is sent as several, split
    between lines, the keyboard under the last and ``ref`` naming the first (returned)."""
    parts = [text]
    if visible_length(text, parse_mode) > MAX_MESSAGE:
        parts = split_message(text)
    rows = [
        enqueue(
            session,
            chat_id=chat_id,
            method="sendMessage",
            payload=text_payload(
                chat_id, part, reply_markup if index == len(parts) - 1 else None, parse_mode
            ),
            now=now,
            person_id=person_id,
            ref=ref if index == 0 else None,
            urgent=urgent,
            lane=lane,
            not_before=not_before,
            expires_at=expires_at,
        )
        for index, part in enumerate(parts)
    ]
    return rows[0]


def file_payload(
    chat_id: int, field: str, path: Path, filename: str, caption: str | None
) -> dict[str, Any]:
    """A ``sendPhoto``/``sendDocument`` call's parameters for a file kept on disk until it is
    sent (then deleted); ``caption`` is HTML."""
    payload: dict[str, Any] = {
        "chat_id": chat_id,
        "_upload": {
            "field": field,
            "path": str(path),
            "filename": filename,
            "delete_after": True,
        },
    }
    if caption:
        payload.update(caption=caption, parse_mode="HTML")
    return payload


async def stage_file(files_dir: Path, data: bytes, filename: str) -> Path:
    """Write a generated file where the sender will find it (in a worker thread); stage files
    before queueing their rows, so no file is written inside a write transaction."""

    def write() -> Path:
        files_dir.mkdir(parents=True, exist_ok=True)
        path = files_dir / f"{uuid.uuid4().hex}-{Path(filename).name}"
        path.write_bytes(data)
        return path

    return await asyncio.to_thread(write)


def fitted(method: str, payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` with its text or caption cut to what Telegram takes, if it is longer."""
    parse_mode = payload.get("parse_mode")
    for key, limit in (("text", MAX_MESSAGE), ("caption", MAX_CAPTION)):
        value = payload.get(key)
        if isinstance(value, str) and visible_length(value, parse_mode) > limit:
            log.error("%s to chat %s: %s cut to fit", method, payload.get("chat_id"), key)
            payload = {**payload, key: cut_to_fit(value, parse_mode, limit)}
    return payload


def text_row(
    *,
    chat_id: int,
    text: str,
    now: datetime,
    reply_markup: dict[str, Any] | None = None,
    parse_mode: str | None = "HTML",
    person_id: int | None = None,
    ref: str | None = None,
    expires_at: datetime | None = None,
) -> dict[str, Any]:
    """A ``sendMessage`` as a plain outbox row, for :func:`insert_rows` (bulk, not urgent)."""
    return {
        "chat_id": chat_id,
        "person_id": person_id,
        "method": "sendMessage",
        "payload": fitted("sendMessage", text_payload(chat_id, text, reply_markup, parse_mode)),
        "ref": ref,
        "edit_ref": None,
        "urgent": False,
        "lane": OutboxLane.BULK,
        "status": OutboxStatus.PENDING,
        "not_before": now,
        "expires_at": expires_at,
        "attempts": 0,
        "created_at": now,
    }


async def insert_rows(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Add many rows at once, in the caller's transaction: one ``executemany``, no ORM object
    per row. For sweeps that queue thousands of messages (the morning push)."""
    if rows:
        connection = await session.connection()
        await connection.execute(insert(OUTBOX), list(rows))


async def sent_refs(session: AsyncSession, refs: Iterable[str]) -> set[str]:
    """Which of ``refs`` are already in the outbox."""
    wanted = sorted(set(refs))
    if not wanted:
        return set()
    rows = await session.exec(select(OutboxMessage.ref).where(col(OutboxMessage.ref).in_(wanted)))
    return {ref for ref in rows if ref is not None}
