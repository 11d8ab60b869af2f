"""a place's next routine inspection

``place.next_due_at`` is when the place's next routine inspection is due by its type's worker
cadence (when it was added, if never inspected), kept with ``last_inspected_at`` so that what
is due is one indexed comparison. Filled here from the newest place-types version.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.types

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("place", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("next_due_at", models.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_index("ix_place_next_due_at", ["next_due_at"], unique=False)
    _fill()


def _fill() -> None:
    from bot.services.place_policy import DEFAULT_POLICY, parse_policy

    bind = op.get_bind()
    versions = sa.table("place_policy_version", sa.column("id"), sa.column("body", sa.JSON()))
    body = bind.execute(
        sa.select(versions.c.body).order_by(versions.c.id.desc()).limit(1)
    ).scalar_one_or_none()
    policy = DEFAULT_POLICY if body is None else parse_policy(json.dumps(body))
    stamp = models.types.UTCDateTime(timezone=True)
    place = sa.table(
        "place",
        sa.column("id", sa.Integer()),
        sa.column("type_key", sa.String()),
        sa.column("last_inspected_at", stamp),
        sa.column("created_at", stamp),
        sa.column("next_due_at", stamp),
    )
    intervals = {
        t.key: cadence.interval for t in policy.types if (cadence := t.cadence_of("worker"))
    }
    rows = bind.execute(
        sa.select(place.c.id, place.c.type_key, place.c.last_inspected_at, place.c.created_at)
    ).all()
    due = []
    for place_id, type_key, last, created in rows:
        interval = intervals.get(type_key)
        if interval is not None:
            due.append({"key": place_id, "due": created if last is None else last + interval})
    if due:
        bind.execute(
            place.update()
            .where(place.c.id == sa.bindparam("key"))
            .values(next_due_at=sa.bindparam("due", type_=stamp)),
            due,
        )


def downgrade() -> None:
    with op.batch_alter_table("place", schema=None) as batch_op:
        batch_op.drop_index("ix_place_next_due_at")
        batch_op.drop_column("next_due_at")
