"""assessment policy versions

``assessment_policy_version`` keeps each version of the assessment (考核) weights and veto
rules an admin sent with ``/score``; the newest applies.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.types

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "assessment_policy_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["person.id"],
            name=op.f("fk_assessment_policy_version_created_by_person"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assessment_policy_version")),
    )


def downgrade() -> None:
    op.drop_table("assessment_policy_version")
