"""the claim's chat locks and its check in one call (PostgreSQL)

When an update's replies are leased in its own transaction (``OutboxSender.claim``), their
chats are locked until the commit and then asked whether anything else of theirs is due or on
its way. Two statements, because the check must see what committed while the lock was
awaited, and one statement reads one snapshot, taken before its locks. A PL/pgSQL function
runs them as two statements — each statement of a volatile function reads a fresh snapshot —
in one round trip. SQLite needs none of it (its write lock is taken at ``BEGIN IMMEDIATE``).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SIGNATURE = "gridbot_claim_waiting(text, bigint[], bigint[], timestamptz)"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE FUNCTION gridbot_claim_waiting(
            lock_prefix text, chats bigint[], mine bigint[], now timestamptz
        ) RETURNS TABLE (chat_id bigint) LANGUAGE plpgsql VOLATILE AS $$
        DECLARE
            chat bigint;
        BEGIN
            -- in the order given (the caller sorts them): two claims never wait on each other
            FOREACH chat IN ARRAY chats LOOP
                PERFORM pg_advisory_xact_lock(hashtextextended(lock_prefix || chat::text, 0));
            END LOOP;
            RETURN QUERY
                SELECT DISTINCT o.chat_id
                FROM outbox AS o
                WHERE o.chat_id = ANY (chats)
                  AND NOT (o.id = ANY (mine))
                  AND o.status = 'pending'
                  AND (o.not_before <= now OR o.lease_until >= now);
        END
        $$
        """
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"DROP FUNCTION {SIGNATURE}")
