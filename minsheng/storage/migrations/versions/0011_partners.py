"""partners: the registry of 110 and peer hotlines, the transfers exchanged with them, and their receipts

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 12:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import minsheng.storage.models

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = minsheng.storage.models.UTCDateTime
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "partners",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("endpoint_url", sa.String(length=500), nullable=False),
        sa.Column("secret", sa.String(length=128), nullable=False),
        sa.Column("secret_hint", sa.String(length=8), nullable=False),
        sa.Column("takes", sa.JSON(), nullable=False),
        sa.Column("sends", sa.JSON(), nullable=False),
        sa.Column("ack_warn_minutes", sa.Integer(), nullable=False),
        sa.Column("ack_escalate_minutes", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTC(timezone=True), nullable=False),
        sa.Column("updated_at", UTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partners")),
        sa.UniqueConstraint("code", name=op.f("uq_partners_code")),
    )
    op.create_table(
        "partner_transfers",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("partner_id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", BIG_ID, nullable=False),
        sa.Column("direction", sa.String(length=4), nullable=False),
        sa.Column("incident_id", sa.String(length=100), nullable=True),
        sa.Column("created_at", UTC(timezone=True), nullable=False),
        sa.Column("message_id", sa.String(length=64), nullable=True),
        sa.Column("acked_at", UTC(timezone=True), nullable=True),
        sa.Column("warn_at", UTC(timezone=True), nullable=True),
        sa.Column("escalate_at", UTC(timezone=True), nullable=True),
        sa.Column("warned_at", UTC(timezone=True), nullable=True),
        sa.Column("escalated_at", UTC(timezone=True), nullable=True),
        sa.Column("result_at", UTC(timezone=True), nullable=True),
        sa.Column("closed_at", UTC(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name=op.f("fk_partner_transfers_partner_id_partners")
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_partner_transfers_ticket_id_tickets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partner_transfers")),
        sa.UniqueConstraint("partner_id", "direction", "incident_id", name="uq_partner_transfers_incident"),
        sa.UniqueConstraint("partner_id", "direction", "ticket_id", name="uq_partner_transfers_ticket"),
    )
    op.create_index("ix_partner_transfers_ticket", "partner_transfers", ["ticket_id"], unique=False)
    op.create_index(
        "ix_partner_transfers_waiting",
        "partner_transfers",
        ["direction", "acked_at", "warn_at"],
        unique=False,
    )
    op.create_table(
        "partner_receipts",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("partner_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=160), nullable=False),
        sa.Column("transfer_id", BIG_ID, nullable=False),
        sa.Column("received_at", UTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name=op.f("fk_partner_receipts_partner_id_partners")
        ),
        sa.ForeignKeyConstraint(
            ["transfer_id"],
            ["partner_transfers.id"],
            name=op.f("fk_partner_receipts_transfer_id_partner_transfers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partner_receipts")),
        sa.UniqueConstraint("partner_id", "key", name="uq_partner_receipts_key"),
    )


def downgrade() -> None:
    op.drop_table("partner_receipts")
    op.drop_index("ix_partner_transfers_waiting", table_name="partner_transfers")
    op.drop_index("ix_partner_transfers_ticket", table_name="partner_transfers")
    op.drop_table("partner_transfers")
    op.drop_table("partners")
