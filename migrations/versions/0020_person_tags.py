"""person tags and follow-ups

``tag_policy_version`` keeps the tag policy file (who follows each tag up, how often, its short
record form, its sensitivity); ``person_tag`` a tag on a household member (ended, not deleted);
``follow_up`` each follow-up (随访) made, with the answers of the tag's form.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.types

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tag_policy_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"], ["person.id"], name=op.f("fk_tag_policy_version_created_by_person")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tag_policy_version")),
    )
    op.create_table(
        "person_tag",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(length=24), nullable=False),
        sa.Column("tagged_by", sa.Integer(), nullable=True),
        sa.Column("tagged_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ended_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["household_member.id"],
            name=op.f("fk_person_tag_member_id_household_member"),
        ),
        sa.ForeignKeyConstraint(
            ["tagged_by"], ["person.id"], name=op.f("fk_person_tag_tagged_by_person")
        ),
        sa.ForeignKeyConstraint(
            ["ended_by"], ["person.id"], name=op.f("fk_person_tag_ended_by_person")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_person_tag")),
    )
    with op.batch_alter_table("person_tag", schema=None) as batch_op:
        batch_op.create_index("ix_person_tag_member", ["member_id", "tag"], unique=False)
    op.create_table(
        "follow_up",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_tag_id", sa.Integer(), nullable=False),
        sa.Column("worker_id", sa.Integer(), nullable=False),
        sa.Column("done_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_tag_id"],
            ["person_tag.id"],
            name=op.f("fk_follow_up_person_tag_id_person_tag"),
        ),
        sa.ForeignKeyConstraint(
            ["worker_id"], ["person.id"], name=op.f("fk_follow_up_worker_id_person")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_follow_up")),
    )
    with op.batch_alter_table("follow_up", schema=None) as batch_op:
        batch_op.create_index("ix_follow_up_tag_at", ["person_tag_id", "done_at"], unique=False)
        batch_op.create_index("ix_follow_up_worker_at", ["worker_id", "done_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("follow_up", schema=None) as batch_op:
        batch_op.drop_index("ix_follow_up_worker_at")
        batch_op.drop_index("ix_follow_up_tag_at")
    op.drop_table("follow_up")
    with op.batch_alter_table("person_tag", schema=None) as batch_op:
        batch_op.drop_index("ix_person_tag_member")
    op.drop_table("person_tag")
    op.drop_table("tag_policy_version")
