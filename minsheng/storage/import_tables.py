"""The claims of imported history (issue 16): which row of which source became which ticket.

The primary key (source, source_id) is what makes `minsheng import tickets` idempotent: a row is claimed with
``INSERT … ON CONFLICT DO NOTHING`` before its ticket is written, in the same transaction, so a re-run, or a
second importer of the same file at the same time on PostgreSQL, never makes the ticket twice (the second
waits on the first's uncommitted key, then finds it taken). ``ticket_id`` is not a foreign key because the
claim is written before its ticket; tickets are never deleted.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from minsheng.storage.models import Base, BigId


class TicketImport(Base):
    __tablename__ = "ticket_imports"
    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    source_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    ticket_id: Mapped[int] = mapped_column(BigId, unique=True)
    imported_at: Mapped[datetime]
