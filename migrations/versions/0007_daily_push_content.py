"""what a daily push named

``daily_push.content`` keeps the households, tickets and meetings a sent push named, so the
push can be edited in place as they are done. Pushes claimed before have none and are never
edited.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("daily_push") as batch:
        batch.add_column(sa.Column("content", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("daily_push") as batch:
        batch.drop_column("content")
