"""household address keys, for matching a typed address in SQL

``household.address_key`` holds each household's address as a typed one is matched against
(``bot.services.addresses.address_key``: normalised, each number in brackets), with an index
on (grid, key) that the /report address step reads instead of every household's address.
Existing rows are keyed here, 2,000 at a time, with a copy of the normalisation as it stood
when this migration was written (a later change to it needs a migration of its own).

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07
"""

import itertools
import re
import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 2_000
KEY_LENGTH = 400
_BUILDING = re.compile(r"([0-9]+)(?:号楼|#楼|#|幢|栋|座)")
_ROOM = re.compile(r"([0-9]+)(?:室|号房)")
_NOISE = re.compile(r"[\s\-_,.;:/\\()\[\]{}'\"`~!?、，。；：（）【】《》“”‘’·—…]+")


def address_key(address: str) -> str:
    """``bot.services.addresses.address_key`` as of this revision."""
    folded = unicodedata.normalize("NFKC", address).lower()
    folded = _BUILDING.sub(r"\1栋", folded)
    folded = _ROOM.sub(r"\1", folded)
    normalised = _NOISE.sub("", folded)
    key = "".join(
        f"({''.join(run)})" if digits else "".join(run)
        for digits, run in itertools.groupby(normalised, str.isdigit)
    )
    return key if len(key) <= KEY_LENGTH else ""


def upgrade() -> None:
    with op.batch_alter_table("household", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "address_key", sa.String(length=400), nullable=False, server_default=sa.text("''")
            )
        )
    household = sa.table(
        "household",
        sa.column("id", sa.Integer()),
        sa.column("address", sa.String()),
        sa.column("address_key", sa.String()),
    )
    connection = op.get_bind()
    last = 0
    while True:
        rows = connection.execute(
            sa.select(household.c.id, household.c.address)
            .where(household.c.id > last)
            .order_by(household.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        connection.execute(
            household.update()
            .where(household.c.id == sa.bindparam("row_id"))
            .values(address_key=sa.bindparam("key")),
            [{"row_id": row_id, "key": address_key(address)} for row_id, address in rows],
        )
        last = rows[-1][0]
    with op.batch_alter_table("household", schema=None) as batch_op:
        batch_op.create_index(
            "ix_household_grid_address_key", ["grid_id", "address_key"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("household", schema=None) as batch_op:
        batch_op.drop_index("ix_household_grid_address_key")
        batch_op.drop_column("address_key")
