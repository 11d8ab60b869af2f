"""outbox lanes; the claim function goes

Replies to what a person just did go before notices, and both before bulk pushes and
broadcasts; menus and pins (``CONTROL``) are never in a chat's message order
(``models.OutboxLane``). Rows already queued are notices.

An update's replies are no longer leased inside its own transaction: the sender is woken when
the update commits and leases them at once. The PostgreSQL function of that claim
(``gridbot_claim_waiting``, migration 0005) is dropped.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CLAIM_FUNCTION = "gridbot_claim_waiting(text, bigint[], bigint[], timestamptz)"


def upgrade() -> None:
    # the server default makes the rows already queued notices, and keeps an older process
    # that is still running during an upgrade able to queue rows
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("lane", sa.SmallInteger(), nullable=False, server_default="1"))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP FUNCTION IF EXISTS {CLAIM_FUNCTION}")


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("lane")
    # the claim function is not made again: the code that called it is gone
