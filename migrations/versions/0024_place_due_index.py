"""what is due, read from an index alone

``ix_place_next_due_at`` becomes ``ix_place_due`` on ``(next_due_at, active, name, type_key,
grid_id)``: the morning push's read of every place due (``due_by_worker``) takes every column
it needs from the index and never visits the table's rows. Its first column is the old
index's, so whatever used that one uses this.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-08
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_place_due",
        "place",
        ["next_due_at", "active", "name", "type_key", "grid_id"],
        unique=False,
    )
    op.drop_index("ix_place_next_due_at", table_name="place")


def downgrade() -> None:
    op.create_index("ix_place_next_due_at", "place", ["next_due_at"], unique=False)
    op.drop_index("ix_place_due", table_name="place")
