"""outbox index by chat

Several reads ask for one chat's pending rows: the person's query on SQLite (the chat's
backlog, for the claim of an update's reply), the claim's own check on PostgreSQL, the
sender's lease per chat. With only ``ix_outbox_due (status, not_before)`` each read went
through every pending row — thousands during quiet hours or before the morning push —
to find one chat's. ``(chat_id, status, not_before)`` finds them directly, and the earliest
``not_before`` first.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_outbox_chat", "outbox", ["chat_id", "status", "not_before"])


def downgrade() -> None:
    op.drop_index("ix_outbox_chat", table_name="outbox")
