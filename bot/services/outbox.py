"""Enqueue Bot API calls in the outbox, in the caller's transaction (transactional outbox)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlmodel.ext.asyncio.session import AsyncSession

import models
from models import OutboxLane, OutboxMessage, OutboxStatus

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
    is always ``CONTROL``."""
    message = OutboxMessage(
        chat_id=chat_id,
        person_id=person_id,
        method=method,
        payload=payload,
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
    """Enqueue a ``sendMessage``."""
    return enqueue(
        session,
        chat_id=chat_id,
        method="sendMessage",
        payload=text_payload(chat_id, text, reply_markup, parse_mode),
        now=now,
        person_id=person_id,
        ref=ref,
        urgent=urgent,
        lane=lane,
        not_before=not_before,
        expires_at=expires_at,
    )


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
        "payload": text_payload(chat_id, text, reply_markup, parse_mode),
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
