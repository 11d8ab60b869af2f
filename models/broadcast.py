"""Broadcasts (宣传通知) and emergency alerts (应急通知), and who each one reaches."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, String, Text
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime


class Broadcast(SQLModel, table=True):
    """A notice a head, centre operator or admin sends to the people of a grid subtree.

    ``status``: ``draft`` (being written) → ``sending`` (confirmed; recipients are queued in
    rounds, ``cursor`` is the last person id queued, so a restart goes on where it stopped)
    → ``done`` (nothing left waiting), or ``cancelled``. An ``emergency`` one ignores quiet
    hours, goes in the notice lane before bulk work, and asks for a "收到" receipt; who has
    not confirmed ``confirm_minutes`` after it started is listed to the sender and workers."""

    id: int | None = Field(default=None, primary_key=True)
    sender_id: int = Field(foreign_key="person.id", index=True)
    grid_id: int = Field(foreign_key="grid.id")  # the audience lives in this grid's subtree
    audience: str = Field(default="residents", max_length=32)  # a key of the audience list
    emergency: bool = False
    text: str = Field(default="", sa_type=Text)  # plain text, as the sender wrote it
    photo_file_id: str | None = Field(default=None, max_length=255)
    document_file_id: str | None = Field(default=None, max_length=255)
    status: str = Field(default="draft", sa_type=String(12))
    cursor: int = 0  # the last person id whose recipient row is written
    queued_all: bool = False  # every recipient is written (and, if reachable, queued)
    confirm_minutes: int = 30
    progress_text: str | None = Field(default=None, sa_type=Text)  # last shown to the sender
    sent_count: int = 0  # frozen when done (outbox rows are purged after 30 days)
    failed_count: int = 0
    created_at: datetime = Field(sa_type=UTCDateTime)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reminded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class BroadcastRecipient(SQLModel, table=True):
    """One person a broadcast is for: written once (the key), with the outbox row that carries
    it — none for a person the bot cannot reach (no Telegram account, or blocked it)."""

    __tablename__ = "broadcast_recipient"
    __table_args__ = (Index("ix_broadcast_recipient_outbox", "outbox_id"),)

    broadcast_id: int = Field(foreign_key="broadcast.id", primary_key=True)
    person_id: int = Field(foreign_key="person.id", primary_key=True)
    chat_id: int | None = Field(default=None, sa_type=BigInteger)
    outbox_id: int | None = None  # no foreign key: the outbox is purged, this row stays
    household_id: int | None = Field(default=None, foreign_key="household.id")
    confirmed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(sa_type=UTCDateTime)


class BroadcastReach(SQLModel, table=True):
    """A household a (non-emergency) broadcast reached — delivered to someone living there:
    once per broadcast and household. Each adds one to the household's ``VisitTally.
    broadcasts``, which a quota rule counting "micro-lecture or broadcast" (微宣讲，含群发宣传)
    adds to its lectures."""

    __tablename__ = "broadcast_reach"

    broadcast_id: int = Field(foreign_key="broadcast.id", primary_key=True)
    household_id: int = Field(foreign_key="household.id", primary_key=True)
    reached_at: datetime = Field(sa_type=UTCDateTime)
