"""Places (场所), their inspections (巡查) and the hazards found (隐患)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String, Text
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime


class PlacePolicyVersion(SQLModel, table=True):
    """One version of the place types (场所类型): cadences, checklists, fix-by days; the newest
    applies (:mod:`bot.services.place_policy`)."""

    __tablename__ = "place_policy_version"

    id: int | None = Field(default=None, primary_key=True)
    body: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    created_by: int | None = Field(default=None, foreign_key="person.id")
    created_at: datetime = Field(sa_type=UTCDateTime)


class Place(SQLModel, table=True):
    """A place inspected on a cadence: a shop, a rental, a key unit, a pharmacy, an enterprise,
    a compound's common areas. ``last_inspected_at`` is the newest routine inspection not
    withdrawn; ``next_due_at`` when the next routine inspection is due by the type's worker
    cadence (when it was added, if never inspected; none when the type has no such cadence) —
    kept here so that what is due is one indexed comparison for every worker at once
    (:func:`bot.services.inspections.next_due`)."""

    __table_args__ = (
        Index("ix_place_type_last", "type_key", "last_inspected_at"),
        # what is due, read from the index alone: the morning push reads every place due
        # (:func:`bot.services.inspections.due_by_worker`) without visiting the table's rows
        Index("ix_place_due", "next_due_at", "active", "name", "type_key", "grid_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32, unique=True)  # 场所编号
    name: str = Field(max_length=100)
    type_key: str = Field(max_length=24)
    grid_id: int = Field(foreign_key="grid.id", index=True)
    address: str = Field(max_length=200)
    latitude: float | None = None
    longitude: float | None = None
    responsible_name: str | None = Field(default=None, max_length=50)  # 负责人
    responsible_phone: str | None = Field(default=None, max_length=32)  # E.164
    note: str | None = Field(default=None, max_length=500)
    active: bool = True
    last_inspected_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    next_due_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class Inspection(SQLModel, table=True):
    """One inspection of a place (巡查记录), kept like the visit diary: editable and withdrawable
    by its author under the visit rules. ``results`` maps each checklist item's key to
    ``pass``, ``fail`` or ``na``; ``photos`` maps failed items to a photo's file id."""

    __table_args__ = (
        Index("ix_inspection_place_at", "place_id", "inspected_at"),
        Index("ix_inspection_inspector_at", "inspector_id", "inspected_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    place_id: int = Field(foreign_key="place.id")
    inspector_id: int = Field(foreign_key="person.id")
    kind: str = Field(sa_type=String(16))  # routine | recheck (复查)
    refused: bool = False  # the place refused to be inspected
    inspected_at: datetime = Field(sa_type=UTCDateTime)
    results: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    photos: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    note: str = Field(default="", sa_type=Text)
    latitude: float | None = None
    longitude: float | None = None
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id")
    withdrawn_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class Hazard(SQLModel, table=True):
    """A failed checklist item (隐患): to be fixed by ``fix_by``, inspected again then (复查).

    ``state``: ``open`` → (the responsible person says it is fixed) ``reported`` → at the
    re-inspection ``fixed``, or ``ticket`` (not fixed: a ticket escalates it); ``withdrawn``
    when the inspection that found it is withdrawn."""

    __table_args__ = (Index("ix_hazard_state_fix_by", "state", "fix_by"),)

    id: int | None = Field(default=None, primary_key=True)
    place_id: int = Field(foreign_key="place.id", index=True)
    inspection_id: int = Field(foreign_key="inspection.id", index=True)
    item_key: str = Field(max_length=24)
    item_text: str = Field(max_length=100)
    severity: str = Field(sa_type=String(8))
    state: str = Field(sa_type=String(12), default="open")
    found_at: datetime = Field(sa_type=UTCDateTime)
    fix_by: datetime = Field(sa_type=UTCDateTime)
    photo_file_id: str | None = Field(default=None, max_length=255)
    reported_fixed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reported_photo_file_id: str | None = Field(default=None, max_length=255)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    recheck_id: int | None = Field(default=None, foreign_key="inspection.id")
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id")
