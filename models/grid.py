"""The grid tree (网格)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Text
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime


class GridBase(SQLModel):
    code: str = Field(max_length=32, unique=True)  # 网格编码
    name: str = Field(max_length=100)
    tier: int = Field(ge=0, le=6)  # 0 = street/township centre, 1..3 = 一级..三级网格
    parent_id: int | None = Field(default=None, foreign_key="grid.id")
    # notice-board fields (公示牌)
    area_desc: str | None = Field(default=None, max_length=500)
    services: str | None = Field(default=None, max_length=1000)
    complaint_process: str | None = Field(default=None, max_length=1000)
    complaint_phone: str | None = Field(default=None, max_length=32)


class Grid(GridBase, table=True):
    """One node of the grid tree; ``path`` is ``/1/4/17/`` for subtree look-ups."""

    __table_args__ = (Index("ix_grid_path", "path"),)

    id: int | None = Field(default=None, primary_key=True)
    path: str = Field(default="/", max_length=255)
    created_at: datetime = Field(sa_type=UTCDateTime)


class GridCreate(GridBase):
    pass


class GridRead(GridBase):
    id: int
    path: str


class GridBoundary(SQLModel, table=True):
    """Where a grid lies on the map (网格边界): one polygon (or several) per grid, WGS-84.

    ``geometry`` is a GeoJSON Polygon or MultiPolygon as JSON text. An admin loads them from a
    GeoJSON file, all or nothing (:mod:`bot.services.boundaries`); each process reads them
    once into a spatial index and reads them again when a new file is loaded.
    """

    __tablename__ = "grid_boundary"

    id: int | None = Field(default=None, primary_key=True)
    grid_id: int = Field(foreign_key="grid.id", unique=True)
    geometry: str = Field(sa_type=Text)
    loaded_at: datetime = Field(sa_type=UTCDateTime)
    loaded_by: int | None = Field(default=None, foreign_key="person.id")
