"""short ticket numbers: a sequence per street that people read and say

``Ticket.number`` (``3502110010010101-20261207-001``) stays, inside; ``Ticket.short_number``
is what people read: a sequence per street (the top of the ticket's grid tree,
``Ticket.street_id``), unique with it. Existing tickets are numbered per street in the order
they were filed, and each street's counter row (``ticket-short:<street id>``) starts after
the last of them.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ticket = sa.table(
    "ticket",
    sa.column("id", sa.Integer),
    sa.column("grid_id", sa.Integer),
    sa.column("created_at", sa.DateTime),
    sa.column("street_id", sa.Integer),
    sa.column("short_number", sa.Integer),
)
grid = sa.table("grid", sa.column("id", sa.Integer), sa.column("path", sa.String))
counter = sa.table("counter", sa.column("name", sa.String), sa.column("value", sa.Integer))


def _street_of(grid_id: int, path: str | None) -> int:
    first = (path or "").strip("/").split("/", 1)[0]
    return int(first) if first.isdigit() else grid_id


def upgrade() -> None:
    with op.batch_alter_table("ticket") as batch:
        batch.add_column(sa.Column("street_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("short_number", sa.Integer(), nullable=True))

    connection = op.get_bind()
    rows = connection.execute(
        sa.select(ticket.c.id, ticket.c.grid_id, grid.c.path)
        .select_from(ticket.join(grid, grid.c.id == ticket.c.grid_id))
        .order_by(ticket.c.created_at, ticket.c.id)
    ).all()
    last: dict[int, int] = {}
    numbered = []
    for ticket_id, grid_id, path in rows:
        street = _street_of(grid_id, path)
        last[street] = last.get(street, 0) + 1
        numbered.append({"ticket_id": ticket_id, "street": street, "short": last[street]})
    if numbered:
        connection.execute(
            ticket.update()
            .where(ticket.c.id == sa.bindparam("ticket_id"))
            .values(street_id=sa.bindparam("street"), short_number=sa.bindparam("short")),
            numbered,
        )
    for street, value in last.items():
        name = f"ticket-short:{street}"
        connection.execute(counter.delete().where(counter.c.name == name))
        connection.execute(counter.insert().values(name=name, value=value))

    with op.batch_alter_table("ticket") as batch:
        batch.alter_column("street_id", existing_type=sa.Integer(), nullable=False)
        batch.alter_column("short_number", existing_type=sa.Integer(), nullable=False)
        batch.create_foreign_key(batch.f("fk_ticket_street_id_grid"), "grid", ["street_id"], ["id"])
        batch.create_unique_constraint(
            batch.f("uq_ticket_short_number"), ["short_number", "street_id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("ticket") as batch:
        batch.drop_constraint(batch.f("uq_ticket_short_number"), type_="unique")
        batch.drop_constraint(batch.f("fk_ticket_street_id_grid"), type_="foreignkey")
        batch.drop_column("short_number")
        batch.drop_column("street_id")
    op.execute(sa.text("DELETE FROM counter WHERE name LIKE 'ticket-short:%'"))
