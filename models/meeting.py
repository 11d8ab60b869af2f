"""Meetings (例会) and who attends them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.enums import Rsvp
from models.types import UTCDateTime


class Meeting(SQLModel, table=True):
    __table_args__ = (Index("ix_meeting_starts_at", "starts_at"),)

    id: int | None = Field(default=None, primary_key=True)
    organiser_id: int = Field(foreign_key="person.id")
    grid_id: int = Field(foreign_key="grid.id")
    title: str = Field(max_length=200)
    place: str = Field(default="", max_length=200)
    starts_at: datetime = Field(sa_type=UTCDateTime)
    duration_minutes: int = 60
    recurrence: str | None = Field(default=None, max_length=16)  # weekly | monthly | quarterly
    series_id: int | None = Field(default=None, foreign_key="meeting.id")
    cancelled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    minutes: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class MeetingInvite(SQLModel, table=True):
    """An invitation, its answer and the attendance it ended in."""

    __tablename__ = "meeting_invite"
    __table_args__ = (UniqueConstraint("meeting_id", "person_id", name="uq_meeting_invite"),)

    id: int | None = Field(default=None, primary_key=True)
    meeting_id: int = Field(foreign_key="meeting.id", index=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    rsvp: Rsvp = Field(default=Rsvp.PENDING, sa_type=String(16))
    reason: str | None = Field(default=None, max_length=500)
    checked_in_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    answered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
