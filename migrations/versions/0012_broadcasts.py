"""broadcasts and their recipients

``broadcast`` keeps each notice a head, centre operator or admin sends with ``/broadcast``
(应急 or not), and ``broadcast_recipient`` each person it is for, written once, with the
outbox row that carries it and when they confirmed ("收到").

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.types

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHEN = models.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "broadcast",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sender_id", sa.Integer(), nullable=False),
        sa.Column("grid_id", sa.Integer(), nullable=False),
        sa.Column("audience", sa.String(length=32), nullable=False),
        sa.Column("emergency", sa.Boolean(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("photo_file_id", sa.String(length=255), nullable=True),
        sa.Column("document_file_id", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("cursor", sa.Integer(), nullable=False),
        sa.Column("queued_all", sa.Boolean(), nullable=False),
        sa.Column("confirm_minutes", sa.Integer(), nullable=False),
        sa.Column("progress_text", sa.Text(), nullable=True),
        sa.Column("sent_count", sa.Integer(), nullable=False),
        sa.Column("failed_count", sa.Integer(), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("started_at", WHEN, nullable=True),
        sa.Column("finished_at", WHEN, nullable=True),
        sa.Column("reminded_at", WHEN, nullable=True),
        sa.ForeignKeyConstraint(["grid_id"], ["grid.id"], name=op.f("fk_broadcast_grid_id_grid")),
        sa.ForeignKeyConstraint(
            ["sender_id"], ["person.id"], name=op.f("fk_broadcast_sender_id_person")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_broadcast")),
    )
    op.create_index(op.f("ix_broadcast_sender_id"), "broadcast", ["sender_id"], unique=False)
    op.create_table(
        "broadcast_recipient",
        sa.Column("broadcast_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=True),
        sa.Column("outbox_id", sa.Integer(), nullable=True),
        sa.Column("household_id", sa.Integer(), nullable=True),
        sa.Column("confirmed_at", WHEN, nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["broadcast_id"],
            ["broadcast.id"],
            name=op.f("fk_broadcast_recipient_broadcast_id_broadcast"),
        ),
        sa.ForeignKeyConstraint(
            ["household_id"],
            ["household.id"],
            name=op.f("fk_broadcast_recipient_household_id_household"),
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name=op.f("fk_broadcast_recipient_person_id_person")
        ),
        sa.PrimaryKeyConstraint("broadcast_id", "person_id", name=op.f("pk_broadcast_recipient")),
    )
    op.create_index(
        "ix_broadcast_recipient_outbox", "broadcast_recipient", ["outbox_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_broadcast_recipient_outbox", table_name="broadcast_recipient")
    op.drop_table("broadcast_recipient")
    op.drop_index(op.f("ix_broadcast_sender_id"), table_name="broadcast")
    op.drop_table("broadcast")
