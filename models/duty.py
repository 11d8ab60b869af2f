"""The street centre's duty rota (值班): who is on duty when, swaps, and who was paged."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime


class DutyShift(SQLModel, table=True):
    """One operator on duty at one centre (a tier-0 grid) from ``starts_at`` to ``ends_at``."""

    __tablename__ = "duty_shift"
    __table_args__ = (Index("ix_duty_shift_grid_starts", "grid_id", "starts_at"),)

    id: int | None = Field(default=None, primary_key=True)
    grid_id: int = Field(foreign_key="grid.id")
    person_id: int = Field(foreign_key="person.id", index=True)
    starts_at: datetime = Field(sa_type=UTCDateTime)
    ends_at: datetime = Field(sa_type=UTCDateTime)
    source: str = Field(default="chat", max_length=8)  # sheet | chat | swap
    created_by: int | None = Field(default=None, foreign_key="person.id")
    created_at: datetime = Field(sa_type=UTCDateTime)


class DutySwap(SQLModel, table=True):
    """An operator asks a colleague to take a shift; it moves only when the colleague agrees."""

    __tablename__ = "duty_swap"

    id: int | None = Field(default=None, primary_key=True)
    shift_id: int = Field(foreign_key="duty_shift.id", index=True)
    from_person_id: int = Field(foreign_key="person.id")
    to_person_id: int = Field(foreign_key="person.id")
    state: str = Field(default="asked", sa_type=String(12))  # asked | agreed | declined
    asked_at: datetime = Field(sa_type=UTCDateTime)
    answered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class DutyPage(SQLModel, table=True):
    """An urgent ticket or a flag that went to the operator on duty first; the rest of the
    centre is told at ``widen_at`` unless it was accepted by then (``done_at`` set either way).
    """

    __tablename__ = "duty_page"
    __table_args__ = (Index("ix_duty_page_due", "done_at", "widen_at"),)

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    grid_id: int = Field(foreign_key="grid.id")
    person_id: int = Field(foreign_key="person.id")
    notice: str = Field(max_length=24)
    paged_at: datetime = Field(sa_type=UTCDateTime)
    widen_at: datetime = Field(sa_type=UTCDateTime)
    done_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    widened: bool = False


class DutyGapWarning(SQLModel, table=True):
    """A gap in the rota, warned to the centre once (a day ahead)."""

    __tablename__ = "duty_gap_warning"
    __table_args__ = (UniqueConstraint("grid_id", "starts_at", name="uq_duty_gap_warning"),)

    id: int | None = Field(default=None, primary_key=True)
    grid_id: int = Field(foreign_key="grid.id")
    starts_at: datetime = Field(sa_type=UTCDateTime)
    ends_at: datetime = Field(sa_type=UTCDateTime)
    warned_at: datetime = Field(sa_type=UTCDateTime)
