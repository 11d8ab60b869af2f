"""Visit quotas (走访任务): rules, per-period tallies and the daily push marker."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Index, String
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime


class QuotaRule(SQLModel, table=True):
    """ "Every <households> gets <required> <counts> per <period>" (方案1 §2)."""

    __tablename__ = "quota_rule"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    households: str = Field(sa_type=String(16))  # all | key | ordinary | category
    category: int = 0  # HouseholdCategory flag when households == "category"
    counts: str = Field(sa_type=String(16))  # any | in_person | lecture
    period: str = Field(sa_type=String(8))  # month | quarter | year
    required: int = Field(default=1, ge=1)
    valid_from: date  # first day of the period it applies from
    valid_until: date | None = None  # exclusive: a changed rule ends here
    created_by: int | None = Field(default=None, foreign_key="person.id")
    created_at: datetime = Field(sa_type=UTCDateTime)


class VisitTally(SQLModel, table=True):
    """Visits to one household in one period, kept current as visits are logged.

    One row per household and period (month, quarter and year), so "who is still due"
    is a join on one row per household rather than a count over all visits.

    On SQLite the table is ``WITHOUT ROWID``: the rows live in the primary key's B-tree,
    so the quota engine's look-up of a household's row is one search, not an index search
    followed by a fetch of the row (migration 0003; an Alembic batch rebuild of this table
    must pass ``table_kwargs={"sqlite_with_rowid": False}`` to keep it).
    """

    __tablename__ = "visit_tally"
    __table_args__ = (
        Index("ix_visit_tally_period", "period", "period_start"),
        {"sqlite_with_rowid": False},
    )

    household_id: int = Field(foreign_key="household.id", primary_key=True)
    period: str = Field(sa_type=String(8), primary_key=True)  # month | quarter | year
    period_start: date = Field(primary_key=True)
    contacts: int = 0  # any kind
    in_person: int = 0
    lectures: int = 0
    broadcasts: int = 0  # broadcasts that reached the household (BroadcastReach)
    last_visit_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class DailyPush(SQLModel, table=True):
    """The morning task push a worker got (or was due) on a local day: exactly once."""

    __tablename__ = "daily_push"

    worker_id: int = Field(foreign_key="person.id", primary_key=True)
    day: date = Field(primary_key=True)
    created_at: datetime = Field(sa_type=UTCDateTime)
    outcome: str = Field(default="sent", max_length=16)  # sent | empty | unreachable
    # what a sent push named, so that it can be edited as its items are done:
    # {"households": [[id, overdue], ...], "tickets": [id, ...], "meetings": [id, ...]}
    content: dict[str, Any] | None = Field(default=None, sa_type=JSON)
