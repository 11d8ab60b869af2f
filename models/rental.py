"""Rental houses (出租房屋) and their tenants' stays (谁出租、谁负责).

A rental is a household's address let to tenants; its landlord (房东), once they have opened
the link the grid worker gave them, answers for registering the tenants. Each tenant is a
person of that household (:class:`~models.member.HouseholdMember`, relation ``tenant``) with a
:class:`Tenancy`: who registered them, the day their residence registration (居住登记) is due,
the worker's confirmation, the reminders sent, and the day they moved out (kept, not deleted).
Links are stored as SHA-256 hashes only, like invitations.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime


class Rental(SQLModel, table=True):
    """A rental house (出租房屋) and its landlord."""

    __tablename__ = "rental"

    id: int | None = Field(default=None, primary_key=True)
    household_id: int = Field(foreign_key="household.id", index=True)
    landlord_name: str = Field(max_length=50)
    landlord_phone: str | None = Field(default=None, max_length=32)  # E.164
    landlord_id: int | None = Field(default=None, foreign_key="person.id", index=True)
    link_hash: str | None = Field(default=None, max_length=64, unique=True)  # landlord's link
    link_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    tenant_link_hash: str | None = Field(default=None, max_length=64, unique=True)
    created_by: int | None = Field(default=None, foreign_key="person.id")
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Tenancy(SQLModel, table=True):
    """One tenant's stay in a rental and their residence registration (居住登记)."""

    __tablename__ = "tenancy"
    __table_args__ = (Index("ix_tenancy_due", "due_on", "confirmed_at", "ended_on"),)

    id: int | None = Field(default=None, primary_key=True)
    rental_id: int = Field(foreign_key="rental.id", index=True)
    member_id: int = Field(foreign_key="household_member.id", unique=True)
    registered_by: int | None = Field(default=None, foreign_key="person.id")
    self_registered: bool = False  # the tenant registered themselves through the link
    registered_at: datetime = Field(sa_type=UTCDateTime)
    due_on: date  # residence registration must be done by this day (move-in + policy days)
    confirmed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    confirmed_by: int | None = Field(default=None, foreign_key="person.id")
    reminded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # landlord, worker
    lapse_told_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # the head
    ended_on: date | None = None  # moved out
