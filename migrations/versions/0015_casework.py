"""casework: departments' categories, assisting departments, extension requests, staff intake

``department.categories`` says which ticket categories a department handles;
``ticket_assist`` holds a ticket's assisting departments (协办) with their deadlines and
answers; ``extension_request`` a department's 延期申请 and its decision; ``ticket`` gains who
filed it for whom (staff intake: 来电 / 来访 / 12345 with its order number).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.types

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("department", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("categories", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.add_column(sa.Column("filed_by_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("caller_name", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("caller_phone", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("hotline_number", sa.String(length=40), nullable=True))
        batch_op.create_foreign_key(
            op.f("fk_ticket_filed_by_id_person"), "person", ["filed_by_id"], ["id"]
        )
    op.create_table(
        "ticket_assist",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("due_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("answered_at", models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("answered_by", sa.Integer(), nullable=True),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("created_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["answered_by"], ["person.id"], name=op.f("fk_ticket_assist_answered_by_person")
        ),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["department.id"],
            name=op.f("fk_ticket_assist_department_id_department"),
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["ticket.id"], name=op.f("fk_ticket_assist_ticket_id_ticket")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_assist")),
    )
    with op.batch_alter_table("ticket_assist", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ticket_assist_department_id"), ["department_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_ticket_assist_ticket_id"), ["ticket_id"], unique=False
        )
    op.create_table(
        "extension_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=True),
        sa.Column("asked_by", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("old_deadline", models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("wanted", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("asked_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("approved", sa.Boolean(), nullable=True),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        sa.Column("decided_at", models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["asked_by"], ["person.id"], name=op.f("fk_extension_request_asked_by_person")
        ),
        sa.ForeignKeyConstraint(
            ["decided_by"], ["person.id"], name=op.f("fk_extension_request_decided_by_person")
        ),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["department.id"],
            name=op.f("fk_extension_request_department_id_department"),
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["ticket.id"], name=op.f("fk_extension_request_ticket_id_ticket")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_extension_request")),
    )
    with op.batch_alter_table("extension_request", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_extension_request_ticket_id"), ["ticket_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("extension_request", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_extension_request_ticket_id"))
    op.drop_table("extension_request")
    with op.batch_alter_table("ticket_assist", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ticket_assist_ticket_id"))
        batch_op.drop_index(batch_op.f("ix_ticket_assist_department_id"))
    op.drop_table("ticket_assist")
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("fk_ticket_filed_by_id_person"), type_="foreignkey")
        batch_op.drop_column("hotline_number")
        batch_op.drop_column("caller_phone")
        batch_op.drop_column("caller_name")
        batch_op.drop_column("filed_by_id")
    with op.batch_alter_table("department", schema=None) as batch_op:
        batch_op.drop_column("categories")
