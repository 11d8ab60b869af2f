"""People, their roles, and the households residents belong to."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.enums import Role
from models.types import UTCDateTime


class PersonBase(SQLModel):
    telegram_id: int | None = Field(default=None, sa_type=BigInteger, unique=True)
    name: str = Field(max_length=100)
    phone: str | None = Field(default=None, max_length=32, index=True)
    locale: str | None = Field(default=None, max_length=8)  # chosen with /language
    telegram_language: str | None = Field(default=None, max_length=16)
    # households point at their worker (a person), so this side of the cycle is added later
    household_id: int | None = Field(
        default=None,
        sa_column_args=[ForeignKey("household.id", use_alter=True)],
        index=True,
    )


class Person(PersonBase, table=True):
    """Anyone the bot knows: resident, worker, head, operator, department, admin."""

    id: int | None = Field(default=None, primary_key=True)
    reachable: bool = True  # False after Telegram answered 403 (blocked / never started)
    active: bool = True
    muted_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    muted_reason: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class PersonCreate(PersonBase):
    pass


class PersonRead(PersonBase):
    id: int
    reachable: bool
    active: bool


class RoleAssignment(SQLModel, table=True):
    """A role held over a grid subtree (the grid and everything below it)."""

    __tablename__ = "role_assignment"
    __table_args__ = (
        UniqueConstraint("person_id", "role", "grid_id", name="uq_role_assignment"),
        Index("ix_role_assignment_grid_role", "grid_id", "role"),
    )

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    role: Role = Field(sa_type=String(16))
    grid_id: int = Field(foreign_key="grid.id")
    department_id: int | None = Field(default=None, foreign_key="department.id")
    active: bool = True
    created_at: datetime = Field(sa_type=UTCDateTime)
