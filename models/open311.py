"""Open311 (GeoReport v2): the keys partner apps file reports with, and what a report filed
through one carried about its caller (kept out of every public answer)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from models.types import UTCDateTime


class ApiKey(SQLModel, table=True):
    """A partner app's key (``/apikey new``): only its SHA-256 is stored, the key is shown once.

    ``person_id`` is the partner as a reporter (no Telegram account): its tickets are counted
    against the report limits of ``OPEN311__PER_HOUR``/``PER_DAY``. ``grid_id`` is where a
    report lands when its address matches no household: the grid the issuing admin runs.
    """

    __tablename__ = "api_key"

    id: int | None = Field(default=None, primary_key=True)
    partner: str = Field(max_length=100)
    key_hash: str = Field(max_length=64, unique=True)
    person_id: int = Field(foreign_key="person.id")
    grid_id: int = Field(foreign_key="grid.id")
    active: bool = True
    created_by_id: int | None = Field(default=None, foreign_key="person.id")
    created_at: datetime = Field(sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Open311Request(SQLModel, table=True):
    """A ticket filed through Open311: which key filed it, and the caller's own details."""

    __tablename__ = "open311_request"

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", unique=True)
    api_key_id: int = Field(foreign_key="api_key.id", index=True)
    email: str | None = Field(default=None, max_length=254)
    first_name: str | None = Field(default=None, max_length=100)
    last_name: str | None = Field(default=None, max_length=100)
    phone: str | None = Field(default=None, max_length=32)
    created_at: datetime = Field(sa_type=UTCDateTime)
