"""the daily measure facts (issue 15): counters per (cube, day, unit, area, category, channel, kind), and each
ticket's current contribution

The counter columns are listed here as they were when this migration was written (from
`minsheng.measures.timeline.COUNTERS`); a later change of the counters needs a migration of its own.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 12:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNTERS = (
    "tickets",
    "repeats",
    "transferred",
    "answered",
    "triaged",
    "dispatched",
    "closed",
    "closed_first_time",
    "closed_ever",
    "submitted",
    "reopened",
    "reopen_events",
    "complained",
    "complained_or_dissatisfied",
    "rated",
    "rated_satisfied",
    "rated_basically_satisfied",
    "rated_basically_dissatisfied",
    "rated_dissatisfied",
    "responded",
    "overdue",
    "assignments",
    "assignments_due",
    "signed",
    "returned",
    "reported",
    "sign_n",
    "sign_seconds",
    "sign_work_seconds",
    "sign_due",
    "sign_on_time",
    "sign_h0",
    "sign_h1",
    "sign_h2",
    "sign_h3",
    "sign_h4",
    "sign_h5",
    "sign_h6",
    "sign_h7",
    "sign_h8",
    "sign_h9",
    "sign_h10",
    "sign_h11",
    "sign_h12",
    "contact_n",
    "contact_seconds",
    "contact_work_seconds",
    "contact_due",
    "contact_on_time",
    "contact_h0",
    "contact_h1",
    "contact_h2",
    "contact_h3",
    "contact_h4",
    "contact_h5",
    "contact_h6",
    "contact_h7",
    "contact_h8",
    "contact_h9",
    "contact_h10",
    "contact_h11",
    "contact_h12",
    "arrive_n",
    "arrive_seconds",
    "arrive_work_seconds",
    "arrive_due",
    "arrive_on_time",
    "arrive_h0",
    "arrive_h1",
    "arrive_h2",
    "arrive_h3",
    "arrive_h4",
    "arrive_h5",
    "arrive_h6",
    "arrive_h7",
    "arrive_h8",
    "arrive_h9",
    "arrive_h10",
    "arrive_h11",
    "arrive_h12",
    "feedback_n",
    "feedback_seconds",
    "feedback_work_seconds",
    "feedback_due",
    "feedback_on_time",
    "feedback_h0",
    "feedback_h1",
    "feedback_h2",
    "feedback_h3",
    "feedback_h4",
    "feedback_h5",
    "feedback_h6",
    "feedback_h7",
    "feedback_h8",
    "feedback_h9",
    "feedback_h10",
    "feedback_h11",
    "feedback_h12",
    "close_n",
    "close_seconds",
    "close_work_seconds",
    "close_due",
    "close_on_time",
    "close_h0",
    "close_h1",
    "close_h2",
    "close_h3",
    "close_h4",
    "close_h5",
    "close_h6",
    "close_h7",
    "close_h8",
    "close_h9",
    "close_h10",
    "close_h11",
    "close_h12",
)
SECONDS = frozenset(c for c in COUNTERS if c.endswith("seconds"))


def upgrade() -> None:
    op.create_table(
        "measure_facts",
        sa.Column("cube", sa.SmallInteger(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("area_id", sa.Integer(), nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        *(
            sa.Column(name, sa.BigInteger() if name in SECONDS else sa.Integer(), nullable=False)
            for name in COUNTERS
        ),
        sa.PrimaryKeyConstraint(
            "cube",
            "day",
            "unit_id",
            "area_id",
            "category_id",
            "channel",
            "kind",
            name=op.f("pk_measure_facts"),
        ),
    )
    with op.batch_alter_table("measure_facts", schema=None) as batch_op:
        batch_op.create_index("ix_measure_facts_area", ["cube", "area_id", "day"], unique=False)
        batch_op.create_index("ix_measure_facts_unit", ["cube", "unit_id", "day"], unique=False)
    op.create_table(
        "measure_contributions",
        sa.Column("ticket_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("rows", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_measure_contributions_ticket_id_tickets")
        ),
        sa.PrimaryKeyConstraint("ticket_id", name=op.f("pk_measure_contributions")),
    )
    with op.batch_alter_table("measure_contributions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_measure_contributions_day"), ["day"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("measure_contributions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_measure_contributions_day"))
    op.drop_table("measure_contributions")
    with op.batch_alter_table("measure_facts", schema=None) as batch_op:
        batch_op.drop_index("ix_measure_facts_unit")
        batch_op.drop_index("ix_measure_facts_area")
    op.drop_table("measure_facts")
