"""supervision: orders (督办) and their tickets, leaders' watches and instructions, checks of dissatisfied ratings

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 13:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import minsheng.storage.models

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = minsheng.storage.models.UTCDateTime
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _when(name: str, nullable: bool = True) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, UTC(timezone=True), nullable=nullable)


def _user(name: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.Integer(), nullable=True)


def _fk_user(table: str, column: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], ["users.id"], name=op.f(f"fk_{table}_{column}_users"))


def upgrade() -> None:
    op.create_table(
        "supervision_orders",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        _when("answer_due_at", False),
        _when("created_at", False),
        _user("created_by_user_id"),
        sa.Column("created_by_name", sa.String(length=64), nullable=False),
        _when("answered_at"),
        sa.Column("answer", sa.Text(), nullable=True),
        _user("answered_by_user_id"),
        sa.Column("answered_by_name", sa.String(length=64), nullable=True),
        _when("overdue_at"),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"], name=op.f("fk_supervision_orders_unit_id_units")),
        _fk_user("supervision_orders", "created_by_user_id"),
        _fk_user("supervision_orders", "answered_by_user_id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_supervision_orders")),
    )
    op.create_index(
        "ix_supervision_orders_unit_created", "supervision_orders", ["unit_id", "created_at"], unique=False
    )
    op.create_index(
        "ix_supervision_orders_waiting",
        "supervision_orders",
        ["answered_at", "overdue_at", "answer_due_at"],
        unique=False,
    )
    op.create_table(
        "supervision_order_tickets",
        sa.Column("order_id", BIG_ID, nullable=False),
        sa.Column("ticket_id", BIG_ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["supervision_orders.id"],
            name=op.f("fk_supervision_order_tickets_order_id_supervision_orders"),
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_supervision_order_tickets_ticket_id_tickets")
        ),
        sa.PrimaryKeyConstraint("order_id", "ticket_id", name=op.f("pk_supervision_order_tickets")),
    )
    op.create_index(
        "ix_supervision_order_tickets_ticket", "supervision_order_tickets", ["ticket_id"], unique=False
    )
    op.create_table(
        "supervision_watches",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("ticket_id", BIG_ID, nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        _when("created_at", False),
        _when("ended_at"),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_supervision_watches_ticket_id_tickets")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_supervision_watches_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_supervision_watches")),
        sa.UniqueConstraint("ticket_id", "user_id", name="uq_supervision_watches_ticket_user"),
    )
    op.create_index(
        "ix_supervision_watches_user", "supervision_watches", ["user_id", "ended_at"], unique=False
    )
    op.create_table(
        "supervision_instructions",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("ticket_id", BIG_ID, nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        _when("created_at", False),
        _user("author_user_id"),
        sa.Column("author_name", sa.String(length=64), nullable=False),
        _when("acked_at"),
        _user("acked_by_user_id"),
        sa.Column("acked_by_name", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_supervision_instructions_ticket_id_tickets")
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["units.id"], name=op.f("fk_supervision_instructions_unit_id_units")
        ),
        _fk_user("supervision_instructions", "author_user_id"),
        _fk_user("supervision_instructions", "acked_by_user_id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_supervision_instructions")),
    )
    op.create_index(
        "ix_supervision_instructions_unit_ack",
        "supervision_instructions",
        ["unit_id", "acked_at"],
        unique=False,
    )
    op.create_index(
        "ix_supervision_instructions_ticket", "supervision_instructions", ["ticket_id"], unique=False
    )
    op.create_table(
        "supervision_checks",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("ticket_id", BIG_ID, nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=True),
        sa.Column("rating", sa.String(length=32), nullable=False),
        sa.Column("rating_seq", sa.Integer(), nullable=False),
        _when("opened_at", False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("justification", sa.Text(), nullable=True),
        sa.Column("referred_to", sa.String(length=100), nullable=True),
        _when("decided_at"),
        _user("decided_by_user_id"),
        sa.Column("decided_by_name", sa.String(length=64), nullable=True),
        _when("approved_at"),
        _user("approved_by_user_id"),
        sa.Column("approved_by_name", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_supervision_checks_ticket_id_tickets")
        ),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"], name=op.f("fk_supervision_checks_unit_id_units")),
        _fk_user("supervision_checks", "decided_by_user_id"),
        _fk_user("supervision_checks", "approved_by_user_id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_supervision_checks")),
        sa.UniqueConstraint("ticket_id", "rating_seq", name="uq_supervision_checks_rating"),
    )
    op.create_index("ix_supervision_checks_state", "supervision_checks", ["state", "opened_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_supervision_checks_state", table_name="supervision_checks")
    op.drop_table("supervision_checks")
    op.drop_index("ix_supervision_instructions_ticket", table_name="supervision_instructions")
    op.drop_index("ix_supervision_instructions_unit_ack", table_name="supervision_instructions")
    op.drop_table("supervision_instructions")
    op.drop_index("ix_supervision_watches_user", table_name="supervision_watches")
    op.drop_table("supervision_watches")
    op.drop_index("ix_supervision_order_tickets_ticket", table_name="supervision_order_tickets")
    op.drop_table("supervision_order_tickets")
    op.drop_index("ix_supervision_orders_waiting", table_name="supervision_orders")
    op.drop_index("ix_supervision_orders_unit_created", table_name="supervision_orders")
    op.drop_table("supervision_orders")
