"""Households (户) and the visits made to them (走访, 民情日记)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, Text
from sqlmodel import Field, SQLModel

from models.enums import VisitKind
from models.types import UTCDateTime


class HouseholdBase(SQLModel):
    code: str = Field(max_length=32, unique=True)  # 户编号
    grid_id: int = Field(foreign_key="grid.id", index=True)
    worker_id: int | None = Field(default=None, foreign_key="person.id", index=True)
    address: str = Field(max_length=200)
    head_name: str = Field(max_length=50)  # 户主
    phone: str | None = Field(default=None, max_length=32, index=True)
    members: int = Field(default=1, ge=0, le=99)
    categories: int = 0  # HouseholdCategory flags (六类户)
    is_key: bool = False  # 重点户: in any category, or marked by hand
    is_business: bool = False  # 工商企业户
    note: str | None = Field(default=None, max_length=500)


class Household(HouseholdBase, table=True):
    __table_args__ = (Index("ix_household_grid_address_key", "grid_id", "address_key"),)

    id: int | None = Field(default=None, primary_key=True)
    # the address as a typed one is matched against (bot.services.addresses.address_key),
    # written with the address by whoever creates or edits a household; "" never matches
    address_key: str = Field(default="", max_length=400)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class HouseholdCreate(HouseholdBase):
    pass


class HouseholdRead(HouseholdBase):
    id: int


class Visit(SQLModel, table=True):
    """One contact with a household, as written in the worker's diary (民情日记)."""

    __table_args__ = (
        Index("ix_visit_household_at", "household_id", "visited_at"),
        Index("ix_visit_worker_at", "worker_id", "visited_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    household_id: int = Field(foreign_key="household.id")
    worker_id: int = Field(foreign_key="person.id")
    kind: VisitKind = Field(sa_type=String(16))
    visited_at: datetime = Field(sa_type=UTCDateTime)
    note: str = Field(default="", sa_type=Text)
    photo_file_id: str | None = Field(default=None, max_length=255)
    latitude: float | None = None
    longitude: float | None = None
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id")
    withdrawn_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
