"""ticket history import (issue 16): the claims of imported rows, unique per (source, source id)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 13:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import minsheng.storage.models

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ticket_imports",
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("source_id", sa.String(length=100), nullable=False),
        sa.Column("ticket_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("imported_at", minsheng.storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source", "source_id", name=op.f("pk_ticket_imports")),
        sa.UniqueConstraint("ticket_id", name=op.f("uq_ticket_imports_ticket_id")),
    )


def downgrade() -> None:
    op.drop_table("ticket_imports")
