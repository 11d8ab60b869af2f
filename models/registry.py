"""Invitations and departments (职能部门)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String, Text
from sqlmodel import Field, SQLModel

from models.enums import Role
from models.types import UTCDateTime


class Department(SQLModel, table=True):
    """A functional department (派出所, 城建办, 物业, 消防 …) that takes transferred tickets."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    code: str = Field(max_length=32, unique=True)
    grid_id: int = Field(foreign_key="grid.id", index=True)  # the area it serves
    phone: str | None = Field(default=None, max_length=32)
    # the ticket categories (``TicketCategory`` values) it handles, for picking it out
    categories: list[Any] = Field(default_factory=list, sa_type=JSON)
    active: bool = True
    created_at: datetime = Field(sa_type=UTCDateTime)


class Invite(SQLModel, table=True):
    """A single-use, expiring deep link that gives a role over a grid.

    Only a hash of the token is kept: a leaked database does not leak usable links.
    """

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    role: Role = Field(sa_type=String(16))
    grid_id: int = Field(foreign_key="grid.id")
    department_id: int | None = Field(default=None, foreign_key="department.id")
    created_by: int | None = Field(default=None, foreign_key="person.id")
    created_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    used_by: int | None = Field(default=None, foreign_key="person.id")
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class TicketAssist(SQLModel, table=True):
    """An assisting department (协办单位) of a ticket, with its own deadline and its answer.

    The lead department (主办) is the ticket's ``owner_department_id``; it resolves the ticket
    once every assisting one has answered or its deadline has passed.
    """

    __tablename__ = "ticket_assist"

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    department_id: int = Field(foreign_key="department.id", index=True)
    due_at: datetime = Field(sa_type=UTCDateTime)
    answered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    answered_by: int | None = Field(default=None, foreign_key="person.id")
    answer: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = Field(sa_type=UTCDateTime)


class ExtensionRequest(SQLModel, table=True):
    """A department's request for more time (延期申请): the level above decides."""

    __tablename__ = "extension_request"

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    department_id: int | None = Field(default=None, foreign_key="department.id")
    asked_by: int = Field(foreign_key="person.id")
    reason: str = Field(sa_type=Text)
    old_deadline: datetime | None = Field(default=None, sa_type=UTCDateTime)
    wanted: datetime = Field(sa_type=UTCDateTime)
    asked_at: datetime = Field(sa_type=UTCDateTime)
    approved: bool | None = None  # None while undecided
    decided_by: int | None = Field(default=None, foreign_key="person.id")
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    decision_note: str | None = Field(default=None, sa_type=Text)
