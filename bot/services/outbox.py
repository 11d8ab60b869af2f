"""Enqueue Bot API calls in the outbox, in the caller's transaction (transactional outbox)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from models import OutboxMessage


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
    not_before: datetime | None = None,
    expires_at: datetime | None = None,
) -> OutboxMessage:
    """Add one call to the session; it is sent only if the transaction commits."""
    message = OutboxMessage(
        chat_id=chat_id,
        person_id=person_id,
        method=method,
        payload=payload,
        ref=ref,
        edit_ref=edit_ref,
        urgent=urgent,
        not_before=not_before or now,
        expires_at=expires_at,
        created_at=now,
    )
    session.add(message)
    return message


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
    not_before: datetime | None = None,
    expires_at: datetime | None = None,
) -> OutboxMessage:
    """Enqueue a ``sendMessage``; ``reply_markup`` is already in Bot API JSON form."""
    payload: dict[str, Any] = {"chat_id": chat_id, "text": text}
    if parse_mode:
        payload["parse_mode"] = parse_mode
    if reply_markup is not None:
        payload["reply_markup"] = reply_markup
    return enqueue(
        session,
        chat_id=chat_id,
        method="sendMessage",
        payload=payload,
        now=now,
        person_id=person_id,
        ref=ref,
        urgent=urgent,
        not_before=not_before,
        expires_at=expires_at,
    )
