"""Assessment (考核) policy versions: the measures' weights and the veto rules."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime


class AssessmentPolicyVersion(SQLModel, table=True):
    """One version of the assessment policy (weights and 一票否决 rules); the newest applies.

    Scorecards of past periods are computed with the version in force now: a period is judged
    again whenever it is read, so a changed weight changes past rankings too (say so on
    change)."""

    __tablename__ = "assessment_policy_version"

    id: int | None = Field(default=None, primary_key=True)
    body: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    created_by: int | None = Field(default=None, foreign_key="person.id")
    created_at: datetime = Field(sa_type=UTCDateTime)
