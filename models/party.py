"""Party members' contact households (党员联系户, 方案1): branches, who contacts whom, and
the contacts made. A person's party standing is on their register row
(:attr:`models.HouseholdMember.party`), a personal field like the others."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, Text
from sqlmodel import Field, SQLModel

from models.enums import VisitKind
from models.types import UTCDateTime


class PartyBranch(SQLModel, table=True):
    """A party branch (党支部), kept by the administrators of the grid it belongs to."""

    __tablename__ = "party_branch"

    id: int | None = Field(default=None, primary_key=True)
    grid_id: int = Field(foreign_key="grid.id", index=True)
    name: str = Field(max_length=100)
    created_at: datetime = Field(sa_type=UTCDateTime)


class PartyContact(SQLModel, table=True):
    """A contact household (联系户): one household, the party member who keeps in touch."""

    __tablename__ = "party_contact"
    __table_args__ = (Index("ix_party_contact_household", "household_id", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    household_id: int = Field(foreign_key="household.id")
    member_id: int = Field(foreign_key="household_member.id", index=True)
    assigned_by: int | None = Field(default=None, foreign_key="person.id")
    assigned_at: datetime = Field(sa_type=UTCDateTime)


class PartyContactLog(SQLModel, table=True):
    """One contact a party member made with a contact household (联系记录)."""

    __tablename__ = "party_contact_log"
    __table_args__ = (
        Index("ix_party_contact_log_member_at", "member_id", "contacted_at"),
        Index("ix_party_contact_log_household_at", "household_id", "contacted_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="household_member.id")
    household_id: int = Field(foreign_key="household.id")
    kind: VisitKind = Field(sa_type=String(16))
    note: str = Field(default="", sa_type=Text)
    contacted_at: datetime = Field(sa_type=UTCDateTime)
    recorded_by: int | None = Field(default=None, foreign_key="person.id")
