"""会商 is called confer in code and on the timeline (it was consult, which is also 咨询, the kind consultation)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 09:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("UPDATE timeline_events SET action = 'confer' WHERE action = 'consult'")


def downgrade() -> None:
    op.execute("UPDATE timeline_events SET action = 'consult' WHERE action = 'confer'")
