"""Open311 GeoReport v2 (issue 16): the integrations' API keys and the service definitions of categories

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import minsheng.storage.models

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "open311_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("key_prefix", sa.String(length=16), nullable=False),
        sa.Column("created_at", minsheng.storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", minsheng.storage.models.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_open311_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_open311_keys_key_hash")),
    )
    op.create_index(op.f("ix_open311_keys_name"), "open311_keys", ["name"], unique=False)
    op.create_table(
        "open311_services",
        sa.Column("service_code", sa.String(length=32), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=True),
        sa.Column("keywords", sa.String(length=200), nullable=True),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("updated_at", minsheng.storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("service_code", name=op.f("pk_open311_services")),
    )


def downgrade() -> None:
    op.drop_table("open311_services")
    op.drop_index(op.f("ix_open311_keys_name"), table_name="open311_keys")
    op.drop_table("open311_keys")
