"""Tickets (事件 / 诉求), their photos and their audit trail."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column, Date, Index, Integer, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.enums import (
    HandlingKind,
    Rating,
    Role,
    SpotCheckKind,
    SpotCheckResult,
    TicketCategory,
    TicketSource,
    TicketState,
)
from models.types import UTCDateTime


class TicketBase(SQLModel):
    category: TicketCategory = Field(sa_type=String(24))
    kind: HandlingKind = Field(default=HandlingKind.GENERAL, sa_type=String(16))
    description: str = Field(sa_type=Text)
    address: str | None = Field(default=None, max_length=300)
    latitude: float | None = None
    longitude: float | None = None
    household_id: int | None = Field(default=None, foreign_key="household.id")


_VERSION = Column("version", Integer, nullable=False)


class Ticket(TicketBase, table=True):
    """One reported problem, from submission to a rated close."""

    __table_args__ = (
        Index("ix_ticket_next_deadline", "next_deadline_at"),
        Index("ix_ticket_warn", "warn_at"),
        Index("ix_ticket_owner_state", "owner_grid_id", "state"),
        Index("ix_ticket_reporter", "reporter_id", "created_at"),
        Index("ix_ticket_grid_state", "grid_id", "state"),
        UniqueConstraint("short_number", "street_id", name="uq_ticket_short_number"),
    )

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(max_length=40, unique=True)  # grid code + date + sequence
    # what people read and say: a sequence per street (the top of the grid's tree), "2048"
    street_id: int = Field(foreign_key="grid.id")
    short_number: int
    grid_id: int = Field(foreign_key="grid.id")  # where the problem is
    reporter_id: int | None = Field(default=None, foreign_key="person.id")
    source: TicketSource = Field(default=TicketSource.TELEGRAM, sa_type=String(16))
    # staff intake: who filed it, and the caller it was filed for (来电 / 来访 / 12345)
    filed_by_id: int | None = Field(default=None, foreign_key="person.id")
    caller_name: str | None = Field(default=None, max_length=100)
    caller_phone: str | None = Field(default=None, max_length=32)
    hotline_number: str | None = Field(default=None, max_length=40)  # 12345 工单号
    state: TicketState = Field(default=TicketState.SUBMITTED, sa_type=String(20))
    # who owns it now: a role over a grid (tier), optionally one accepting person
    owner_grid_id: int | None = Field(default=None, foreign_key="grid.id")
    owner_role: Role | None = Field(default=None, sa_type=String(16))
    owner_department_id: int | None = Field(default=None, foreign_key="department.id")
    assignee_id: int | None = Field(default=None, foreign_key="person.id")
    routing_rule: str | None = Field(default=None, max_length=64)
    # the deadline policy it was created under, and its clock
    sla: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    dispatched_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    accept_deadline: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolve_deadline: datetime | None = Field(default=None, sa_type=UTCDateTime)
    next_deadline_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    warn_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    paused_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    accepted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # 核查结案: when the on-site check confirmed the handling (kinds whose policy says verify)
    verified_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    solved: bool | None = None  # closed with the problem solved (解决) or not
    rating: Rating | None = Field(default=None, sa_type=String(24))
    rating_comment: str | None = Field(default=None, max_length=1000)
    reopen_count: int = 0
    escalation_count: int = 0
    duplicate_of_id: int | None = Field(default=None, foreign_key="ticket.id")
    # optimistic lock: every UPDATE checks and bumps it, so of two accepts one wins
    version: int = Field(default=1, sa_column=_VERSION)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)

    __mapper_args__ = {"version_id_col": _VERSION}


class TicketCreate(TicketBase):
    pass


class TicketRead(TicketBase):
    id: int
    number: str
    short_number: int
    state: TicketState


class TicketPhoto(SQLModel, table=True):
    __tablename__ = "ticket_photo"

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    file_id: str = Field(max_length=255)
    stage: str = Field(default="report", max_length=16)  # report | resolution | progress
    created_at: datetime = Field(sa_type=UTCDateTime)


class TicketEvent(SQLModel, table=True):
    """Every change of a ticket: who, when, from, to, why."""

    __tablename__ = "ticket_event"
    __table_args__ = (Index("ix_ticket_event_ticket_at", "ticket_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id")
    at: datetime = Field(sa_type=UTCDateTime)
    actor_id: int | None = Field(default=None, foreign_key="person.id")
    action: str = Field(max_length=32)
    from_state: TicketState | None = Field(default=None, sa_type=String(20))
    to_state: TicketState | None = Field(default=None, sa_type=String(20))
    note: str | None = Field(default=None, sa_type=Text)
    data: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)


class ReturnVisit(SQLModel, table=True):
    """A return visit (回访) to a reporter who did not rate a resolved ticket in time."""

    __tablename__ = "return_visit"

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    worker_id: int | None = Field(default=None, foreign_key="person.id", index=True)
    due_at: datetime = Field(sa_type=UTCDateTime)
    done_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    outcome: str | None = Field(default=None, sa_type=Text)
    rating: Rating | None = Field(default=None, sa_type=String(24))
    created_at: datetime = Field(sa_type=UTCDateTime)


class SpotCheck(SQLModel, table=True):
    """One item of a supervisor's spot check (抽查): a visit or a closed ticket drawn at random
    from a period, to call back; the result goes on the worker's record."""

    __tablename__ = "spot_check"
    __table_args__ = (
        Index("ix_spot_check_worker", "worker_id", "checked_at"),
        Index("ix_spot_check_supervisor", "supervisor_id", "drawn_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    supervisor_id: int = Field(foreign_key="person.id")
    kind: SpotCheckKind = Field(sa_type=String(12))
    visit_id: int | None = Field(default=None, foreign_key="visit.id")
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id")
    worker_id: int | None = Field(default=None, foreign_key="person.id")  # whose work it is
    grid_id: int = Field(foreign_key="grid.id")
    period_start: date = Field(sa_type=Date)
    period_end: date = Field(sa_type=Date)  # exclusive
    drawn_at: datetime = Field(sa_type=UTCDateTime)
    result: SpotCheckResult | None = Field(default=None, sa_type=String(12))
    checked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
