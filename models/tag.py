"""Person tags (人员标签) and their follow-ups (随访): special groups, health, 留守儿童, 低保.

What the tags are — their names, who follows them up, how often, their record forms — is data
(:class:`TagPolicyVersion`, see :mod:`bot.services.tags`); a tag on a person is a row of
:class:`PersonTag` (sensitive personal information), and each follow-up made is a
:class:`FollowUp` with the answers of the tag's short form.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String, Text
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime


class TagPolicyVersion(SQLModel, table=True):
    """One version of the person tags: cadences, forms, sensitivity; the newest applies."""

    __tablename__ = "tag_policy_version"

    id: int | None = Field(default=None, primary_key=True)
    body: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    created_by: int | None = Field(default=None, foreign_key="person.id")
    created_at: datetime = Field(sa_type=UTCDateTime)


class PersonTag(SQLModel, table=True):
    """A tag on a household member (e.g. 慢性病); ended, not deleted, when taken off."""

    __tablename__ = "person_tag"
    __table_args__ = (Index("ix_person_tag_member", "member_id", "tag"),)

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="household_member.id")
    tag: str = Field(sa_type=String(24))  # the key in the tag policy
    tagged_by: int | None = Field(default=None, foreign_key="person.id")
    tagged_at: datetime = Field(sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    ended_by: int | None = Field(default=None, foreign_key="person.id")


class FollowUp(SQLModel, table=True):
    """One follow-up (随访) of a tagged person, with the answers of the tag's short form."""

    __tablename__ = "follow_up"
    __table_args__ = (
        Index("ix_follow_up_tag_at", "person_tag_id", "done_at"),
        Index("ix_follow_up_worker_at", "worker_id", "done_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    person_tag_id: int = Field(foreign_key="person_tag.id")
    worker_id: int = Field(foreign_key="person.id")
    done_at: datetime = Field(sa_type=UTCDateTime)
    answers: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    note: str = Field(default="", sa_type=Text)
    created_at: datetime = Field(sa_type=UTCDateTime)
