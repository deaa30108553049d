"""channels (issue 16): inbound channel messages seen, call records, leaders' mailboxes

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 12:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import minsheng.storage.models

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_AT = minsheng.storage.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "channel_messages",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column("sender_hash", sa.String(length=64), nullable=False),
        sa.Column("reply_to", sa.String(length=200), nullable=True),
        sa.Column("received_at", _AT, nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("ticket_id", _ID, nullable=True),
        sa.Column("reply", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_channel_messages_ticket_id_tickets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channel_messages")),
        sa.UniqueConstraint("channel", "external_id", name="uq_channel_messages_channel_external"),
    )
    op.create_index("ix_channel_messages_ticket", "channel_messages", ["ticket_id"], unique=False)
    op.create_index(
        "ix_channel_messages_sender", "channel_messages", ["sender_hash", "received_at"], unique=False
    )
    op.create_table(
        "call_records",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("call_id", sa.String(length=100), nullable=False),
        sa.Column("caller", sa.String(length=32), nullable=False),
        sa.Column("started_at", _AT, nullable=False),
        sa.Column("duration_seconds", sa.Integer(), nullable=False),
        sa.Column("agent", sa.String(length=64), nullable=False),
        sa.Column("recording_ref", sa.String(length=500), nullable=True),
        sa.Column("ticket_id", _ID, nullable=True),
        sa.Column("created_at", _AT, nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_call_records_ticket_id_tickets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_records")),
        sa.UniqueConstraint("call_id", name=op.f("uq_call_records_call_id")),
    )
    op.create_index("ix_call_records_started", "call_records", ["started_at"], unique=False)
    op.create_index(op.f("ix_call_records_ticket_id"), "call_records", ["ticket_id"], unique=False)
    op.create_table(
        "leader_mailboxes",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("address", sa.String(length=200), nullable=False),
        sa.Column("leader_name", sa.String(length=64), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("created_at", _AT, nullable=False),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"], name=op.f("fk_leader_mailboxes_unit_id_units")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_leader_mailboxes")),
        sa.UniqueConstraint("address", name=op.f("uq_leader_mailboxes_address")),
    )


def downgrade() -> None:
    op.drop_table("leader_mailboxes")
    op.drop_index(op.f("ix_call_records_ticket_id"), table_name="call_records")
    op.drop_index("ix_call_records_started", table_name="call_records")
    op.drop_table("call_records")
    op.drop_index("ix_channel_messages_sender", table_name="channel_messages")
    op.drop_index("ix_channel_messages_ticket", table_name="channel_messages")
    op.drop_table("channel_messages")
