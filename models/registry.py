"""Invitations and departments (职能部门)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
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
