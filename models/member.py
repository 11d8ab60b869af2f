"""The people who live in a household (家庭成员, 实有人口), under the privacy law.

The resident ID number (公民身份号码) is never stored as written: ``id_cipher`` holds it
encrypted (Fernet, with the key from the settings) and ``id_hash`` a keyed hash (HMAC-SHA256)
that finds a person by number and refuses the same number twice without decrypting anything.
A forgotten person (删除权, ``forgotten_at`` set) keeps only what the counts need: household,
relation, gender, status and the moving dates; name, number, phone, birth date and origin
are gone.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Index, String, Text
from sqlmodel import Field, SQLModel

from models.enums import Gender, PartyKind, Relation, ResidenceStatus
from models.types import UTCDateTime


class HouseholdMember(SQLModel, table=True):
    """One person registered in a household (人口登记)."""

    __tablename__ = "household_member"
    __table_args__ = (
        Index("ix_household_member_id_hash", "id_hash", unique=True),
        Index("ix_household_member_moved_out", "moved_out"),
        # a bot user is found in the register by phone (a party member's push, /mygrid)
        Index("ix_household_member_phone", "phone"),
    )

    id: int | None = Field(default=None, primary_key=True)
    household_id: int = Field(foreign_key="household.id", index=True)
    name: str = Field(default="", max_length=100)  # empty once forgotten
    relation: Relation = Field(sa_type=String(16))
    gender: Gender | None = Field(default=None, sa_type=String(8))
    birth_date: date | None = None
    id_cipher: str | None = Field(default=None, sa_type=Text)  # Fernet token
    id_hash: str | None = Field(default=None, max_length=64)  # HMAC-SHA256, hex
    phone: str | None = Field(default=None, max_length=32)  # E.164
    status: ResidenceStatus = Field(sa_type=String(16))
    moved_in: date | None = None
    moved_out: date | None = None
    # 政治面貌: a party member (正式/预备/流动) and their branch (党支部); None for everyone else
    party: PartyKind | None = Field(default=None, sa_type=String(16))
    party_branch_id: int | None = Field(default=None, foreign_key="party_branch.id")
    origin: str | None = Field(default=None, max_length=100)  # 来自何处: where they came from
    stay_until: date | None = None  # 拟居住期限: how long they expect to stay
    forgotten_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
