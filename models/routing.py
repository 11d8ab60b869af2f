"""Routing and deadline policy versions, and the working-day calendar's overrides."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime


class PolicyVersion(SQLModel, table=True):
    """One version of the routing rules and deadline (SLA) policy; the newest applies.

    Tickets copy the policy they were created under into ``Ticket.sla``.
    """

    __tablename__ = "policy_version"

    id: int | None = Field(default=None, primary_key=True)
    body: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    note: str | None = Field(default=None, max_length=500)
    created_by: int | None = Field(default=None, foreign_key="person.id")
    created_at: datetime = Field(sa_type=UTCDateTime)


class CalendarDay(SQLModel, table=True):
    """An admin's override of the official calendar: a holiday or a make-up working day."""

    __tablename__ = "calendar_day"

    day: date = Field(primary_key=True)
    is_workday: bool
    note: str | None = Field(default=None, max_length=200)
    created_by: int | None = Field(default=None, foreign_key="person.id")
    created_at: datetime = Field(sa_type=UTCDateTime)
