"""The machinery: the outbox, FSM state, processed updates and the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, SmallInteger, String, Text
from sqlmodel import Field, SQLModel

from models.enums import OutboxLane, OutboxStatus
from models.types import UTCDateTime


class OutboxMessage(SQLModel, table=True):
    """A Bot API call to make, committed with the state change that caused it."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "status", "not_before"),
        Index("ix_outbox_chat", "chat_id", "status", "not_before"),  # one chat's pending rows
        Index("ix_outbox_ref", "ref"),
    )

    id: int | None = Field(default=None, primary_key=True)
    chat_id: int = Field(sa_type=BigInteger)
    person_id: int | None = Field(default=None, foreign_key="person.id")
    method: str = Field(max_length=32)  # sendMessage, editMessageText, sendPhoto, ...
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    ref: str | None = Field(default=None, max_length=80)  # names a message to edit later
    edit_ref: str | None = Field(default=None, max_length=80)  # edits the message with this ref
    urgent: bool = False  # ignores quiet hours
    lane: OutboxLane = Field(default=OutboxLane.NOTICE, sa_type=SmallInteger)  # who goes first
    status: OutboxStatus = Field(default=OutboxStatus.PENDING, sa_type=String(12))
    not_before: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=500)
    message_id: int | None = Field(default=None, sa_type=BigInteger)
    created_at: datetime = Field(sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class FsmRecord(SQLModel, table=True):
    """aiogram FSM state and data of one conversation (key = bot:chat:user[:thread])."""

    __tablename__ = "fsm_record"

    key: str = Field(primary_key=True, max_length=160)
    state: str | None = Field(default=None, max_length=160)
    data: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class ProcessedUpdate(SQLModel, table=True):
    """Telegram update ids already handled, so a redelivered update acts once."""

    __tablename__ = "processed_update"

    bot_id: int = Field(sa_type=BigInteger, primary_key=True)
    update_id: int = Field(sa_type=BigInteger, primary_key=True)
    at: datetime = Field(sa_type=UTCDateTime, index=True)


class AuditLog(SQLModel, table=True):
    """Who did or read what: refused actions, sensitive reads, admin changes."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_type=UTCDateTime)
    actor_id: int | None = Field(default=None, foreign_key="person.id")
    action: str = Field(max_length=48)
    object_type: str | None = Field(default=None, max_length=32)
    object_id: int | None = None
    detail: str | None = Field(default=None, sa_type=Text)
    data: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)


class JobRun(SQLModel, table=True):
    """The last run of each scheduled job, for /jobs."""

    __tablename__ = "job_run"

    job_id: str = Field(primary_key=True, max_length=64)
    last_started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_status: str | None = Field(default=None, sa_type=String(16))
    last_error: str | None = Field(default=None, max_length=500)


class SchedulerLease(SQLModel, table=True):
    """The scheduler leader lock where PostgreSQL advisory locks are not available."""

    __tablename__ = "scheduler_lease"

    name: str = Field(primary_key=True, max_length=32)
    holder: str = Field(max_length=64)
    expires_at: datetime = Field(sa_type=UTCDateTime)


class Counter(SQLModel, table=True):
    """Named sequences (ticket numbers per grid and day), bumped in the caller's transaction."""

    name: str = Field(primary_key=True, max_length=80)
    value: int = 0
