"""visit_tally WITHOUT ROWID on SQLite

The quota engine looks up each household's tally rows by the primary key
(household_id, period, period_start). In a rowid table that is a search of the key's
index and then a second search of the table for the row; WITHOUT ROWID keeps the rows
in the key's B-tree, so it is one search. PostgreSQL has no rowid: nothing to do there.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    # a batch "recreate" copies the rows into a new table built with these options, then
    # drops the old one and renames the new; the indexes and the foreign key come along
    with op.batch_alter_table(
        "visit_tally", recreate="always", table_kwargs={"sqlite_with_rowid": False}
    ):
        pass


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table(
        "visit_tally", recreate="always", table_kwargs={"sqlite_with_rowid": True}
    ):
        pass
