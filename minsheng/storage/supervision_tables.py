"""Tables of supervision by people (issue 17, section 1): supervision orders (督办) and the tickets they cover,
leaders' watches (提级盯办), leaders' instructions (批示) and the checks of dissatisfied ratings (不满意核查).

Reminders (催办) need no table: each is a timeline event, and their count is read from the timeline.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from minsheng.storage.models import Base, BigId


class SupervisionOrder(Base):
    """A 督办 to one unit about one ticket or a set of tickets: why, how pressing (``level``), and by when the
    unit owes its written answer (督办回复). ``overdue_at`` is when the deadline check found it unanswered (set
    once: the check fires once)."""

    __tablename__ = "supervision_orders"
    __table_args__ = (
        Index("ix_supervision_orders_unit_created", "unit_id", "created_at"),
        Index("ix_supervision_orders_waiting", "answered_at", "overdue_at", "answer_due_at"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    level: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    answer_due_at: Mapped[datetime]
    created_at: Mapped[datetime]
    created_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_by_name: Mapped[str] = mapped_column(String(64))
    answered_at: Mapped[datetime | None]
    answer: Mapped[str | None] = mapped_column(Text)
    answered_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    answered_by_name: Mapped[str | None] = mapped_column(String(64))
    overdue_at: Mapped[datetime | None]


class SupervisionOrderTicket(Base):
    """A ticket an order covers (one row for an order on a ticket, several for an order on a unit)."""

    __tablename__ = "supervision_order_tickets"
    __table_args__ = (Index("ix_supervision_order_tickets_ticket", "ticket_id"),)
    order_id: Mapped[int] = mapped_column(BigId, ForeignKey("supervision_orders.id"), primary_key=True)
    ticket_id: Mapped[int] = mapped_column(BigId, ForeignKey("tickets.id"), primary_key=True)


class Watch(Base):
    """A leader's 提级盯办 of a ticket; ``ended_at`` set when the leader lets it go (watching again reopens it)."""

    __tablename__ = "supervision_watches"
    __table_args__ = (
        UniqueConstraint("ticket_id", "user_id", name="uq_supervision_watches_ticket_user"),
        Index("ix_supervision_watches_user", "user_id", "ended_at"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(BigId, ForeignKey("tickets.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]


class Instruction(Base):
    """A leader's 批示 on a ticket, addressed to the unit that holds it; the unit acknowledges it once."""

    __tablename__ = "supervision_instructions"
    __table_args__ = (
        Index("ix_supervision_instructions_unit_ack", "unit_id", "acked_at"),
        Index("ix_supervision_instructions_ticket", "ticket_id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(BigId, ForeignKey("tickets.id"))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    author_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    author_name: Mapped[str] = mapped_column(String(64))
    acked_at: Mapped[datetime | None]
    acked_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    acked_by_name: Mapped[str | None] = mapped_column(String(64))


class RatingCheck(Base):
    """The 核查 of one dissatisfied rating (the timeline event ``rating_seq`` of the ticket).

    state: open → decided (reopen, referred) or explained → approved / open again (a second person refuses).
    ``outcome``: reopen, explained (不合理诉求, with ``justification``), referred (问责, with ``referred_to``).
    """

    __tablename__ = "supervision_checks"
    __table_args__ = (
        UniqueConstraint("ticket_id", "rating_seq", name="uq_supervision_checks_rating"),
        Index("ix_supervision_checks_state", "state", "opened_at"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(BigId, ForeignKey("tickets.id"))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    rating: Mapped[str] = mapped_column(String(32))
    rating_seq: Mapped[int]
    opened_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str | None] = mapped_column(String(16))
    justification: Mapped[str | None] = mapped_column(Text)
    referred_to: Mapped[str | None] = mapped_column(String(100))
    decided_at: Mapped[datetime | None]
    decided_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_by_name: Mapped[str | None] = mapped_column(String(64))
    approved_at: Mapped[datetime | None]
    approved_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    approved_by_name: Mapped[str | None] = mapped_column(String(64))


__all__ = ["Instruction", "RatingCheck", "SupervisionOrder", "SupervisionOrderTicket", "Watch"]
