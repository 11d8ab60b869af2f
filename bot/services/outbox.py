"""Enqueue Bot API calls in the outbox, in the caller's transaction (transactional outbox)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ScalarSelect, bindparam, func, insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

import models
from models import OutboxMessage, OutboxStatus

OUTBOX = models.metadata.tables[str(OutboxMessage.__tablename__)]
_BACKLOGS = "gridbot.outbox_backlogs"  # Session.info key: chats' backlogs read in a transaction


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
    """A ``sendMessage`` as a plain outbox row, for :func:`insert_rows` (not urgent)."""
    return {
        "chat_id": chat_id,
        "person_id": person_id,
        "method": "sendMessage",
        "payload": text_payload(chat_id, text, reply_markup, parse_mode),
        "ref": ref,
        "edit_ref": None,
        "urgent": False,
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
        session.sync_session.info.pop(_BACKLOGS, None)  # what was read of them is out of date
        connection = await session.connection()
        await connection.execute(insert(OUTBOX), list(rows))


# -- a chat's backlog, read ahead --------------------------------------------------------------


@dataclass(frozen=True)
class ChatBacklog:
    """A chat's pending outbox rows as a read saw them: the earliest ``not_before`` and the
    latest lease among them (``None``: there are none, or none is leased)."""

    chat_id: int
    due_from: datetime | None
    leased_until: datetime | None

    def in_the_way(self, now: datetime) -> bool:
        """Some row is due or on its way at ``now``: a new row of the chat must wait behind it
        (what the sender's claim asks; the same test, row by row, as its ``SELECT``)."""
        due = self.due_from is not None and self.due_from <= now
        return due or (self.leased_until is not None and self.leased_until >= now)


def backlog_columns() -> tuple[ScalarSelect[Any], ScalarSelect[Any]]:
    """Two columns for a query that already runs at the start of a transaction — the person's
    — giving the :class:`ChatBacklog` of the chat bound to ``backlog_chat``."""
    pending = (
        col(OutboxMessage.chat_id) == bindparam("backlog_chat"),
        col(OutboxMessage.status) == OutboxStatus.PENDING,
    )
    return (
        select(func.min(OutboxMessage.not_before)).where(*pending).scalar_subquery(),
        select(func.max(OutboxMessage.lease_until)).where(*pending).scalar_subquery(),
    )


def reads_backlog_ahead(session: AsyncSession) -> bool:
    """Whether a backlog read early in this session's transaction still holds at its commit.

    On SQLite it does: every transaction starts with ``BEGIN IMMEDIATE``, so from its first
    statement no one else writes until it ends, and what it writes itself to the outbox is
    either its own new rows (which the claim tells apart) or :func:`insert_rows` (which forgets
    what was read). Rows it drops only make a read too cautious. On PostgreSQL others go on
    writing: the claim locks the chat and asks then.
    """
    return session.get_bind().dialect.name == "sqlite"


def remember_backlog(session: AsyncSession, backlog: ChatBacklog) -> None:
    """Keep ``backlog``, read in the session's current transaction, for :func:`read_backlogs`."""
    transaction = session.sync_session.get_transaction()
    kept: tuple[object, dict[int, ChatBacklog]] | None = session.sync_session.info.get(_BACKLOGS)
    if kept is None or kept[0] is not transaction:
        kept = (transaction, {})
        session.sync_session.info[_BACKLOGS] = kept
    kept[1][backlog.chat_id] = backlog


def read_backlogs(session: AsyncSession) -> dict[int, ChatBacklog]:
    """The backlogs :func:`remember_backlog` kept in the current transaction, by chat."""
    kept: tuple[object, dict[int, ChatBacklog]] | None = session.sync_session.info.get(_BACKLOGS)
    if kept is None or kept[0] is not session.sync_session.get_transaction():
        return {}
    return kept[1]
