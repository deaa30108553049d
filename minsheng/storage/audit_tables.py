"""The audit log of administrative changes (issue 14): who changed which row, when, and its values before and
after. Append-only: no code path updates or deletes its rows, and a trigger (migration 0006) refuses both."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from minsheng.storage.models import Base, BigId


class AuditEntry(Base):
    """One change of one administrative row (``action`` create | update | delete; a soft delete is a delete).

    ``actor_*`` name the user who made it (``actor_id`` None for ``cli`` and ``system``); ``entity`` is the
    kind of row (``timelimit_policy``, ``unit`` …) and ``entity_id`` its key as text; ``before``/``after`` hold
    the row's column values (None for a create's before and a delete's after).
    """

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime]
    actor_id: Mapped[int | None]
    actor_name: Mapped[str] = mapped_column(String(64))
    actor_role: Mapped[str] = mapped_column(String(16))
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(8))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    __table_args__ = (
        Index("ix_audit_log_entity", "entity", "entity_id", "id"),
        Index("ix_audit_log_actor", "actor_name", "id"),
        Index("ix_audit_log_at", "at"),
    )
