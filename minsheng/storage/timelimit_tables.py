"""Tables of the clock (issue 4): time-limit policies, calendars, duty rosters, deadlines, timers, outbox, inbox.

Timers and outbox rows are found by partial indexes on what is still to do (`fired_at IS NULL`,
`status = 'pending'`), so a pass costs what is due, not what is open or already done.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Mapped, mapped_column

from minsheng.storage.models import Base, BigId


class TimeLimitPolicy(Base):
    """One time-limit policy row; ``limits`` {step: {amount, unit}}, ``escalation`` {step: [steps]}."""

    __tablename__ = "clock_policies"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    category_code: Mapped[str | None] = mapped_column(String(32))
    urgency: Mapped[str | None] = mapped_column(String(16))
    zone: Mapped[str | None] = mapped_column(String(32))
    limits: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    warn_at: Mapped[list[Any] | None] = mapped_column(JSON, default=None)
    escalation: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime]
    # A deleted policy is kept (soft delete, issue 14) and read by nobody: every reader skips it.
    deleted_at: Mapped[datetime | None]


class TimeLimitZoneArea(Base):
    """An area (and its subtree) belongs to a policy zone, e.g. 嘉兴's 主城区 ``urban``."""

    __tablename__ = "clock_zone_areas"
    id: Mapped[int] = mapped_column(primary_key=True)
    zone: Mapped[str] = mapped_column(String(32))
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), unique=True)


class CalendarDay(Base):
    """A local calendar entry: a holiday or a working day the statutory calendar does not know."""

    __tablename__ = "clock_calendar_days"
    id: Mapped[int] = mapped_column(primary_key=True)
    # One entry per date: a second (overlapping or conflicting) entry is refused by the database too.
    day: Mapped[date] = mapped_column(unique=True)
    kind: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime]


class DutyShift(Base):
    """Who is on duty for a unit from ``starts_at`` to ``ends_at`` (tier 1: 24 h; tier 2/3: 8 or 12 h).

    ``duty_role`` is ``duty`` for the unit's on-duty cadre, or an escalation target (``unit_leader``,
    ``deputy_mayor``, ``mayor`` …) for the leader who takes that kind of escalation during the shift;
    ``commander`` marks the rotating commander of the day (海口).
    """

    __tablename__ = "duty_shifts"
    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    person_name: Mapped[str] = mapped_column(String(64), default="")
    phone: Mapped[str | None] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(200))
    duty_role: Mapped[str] = mapped_column(String(32), default="duty")
    tier: Mapped[int] = mapped_column(Integer, default=3)
    commander: Mapped[bool] = mapped_column(Boolean, default=False)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]

    __table_args__ = (
        Index("ix_duty_shifts_unit_starts", "unit_id", "starts_at"),
        Index("ix_duty_shifts_commander_starts", "commander", "starts_at"),
    )


class StepDeadline(Base):
    """The deadline of one step of one assignment, as computed (a snapshot: later policy edits don't move it).

    ``generation`` grows when an extension or a reopen sets a new deadline, so the new timers have new keys
    and fire again; a pause shifts a deadline without a new generation (what fired before stays fired).
    """

    __tablename__ = "clock_deadlines"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id"))
    step: Mapped[str] = mapped_column(String(24))
    started_at: Mapped[datetime]
    due_at: Mapped[datetime]
    unit: Mapped[str] = mapped_column(String(16))
    warn_shares: Mapped[list[Any]] = mapped_column(JSON, default=list)
    warn_at: Mapped[list[Any]] = mapped_column(JSON, default=list)
    ladder: Mapped[list[Any]] = mapped_column(JSON, default=list)
    policy_name: Mapped[str] = mapped_column(String(200), default="")
    calendar_fallback: Mapped[bool] = mapped_column(Boolean, default=False)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    met_at: Mapped[datetime | None]

    __table_args__ = (
        UniqueConstraint("assignment_id", "step", name="uq_clock_deadlines_assignment_step"),
        Index("ix_clock_deadlines_ticket", "ticket_id"),
    )


class Timer(Base):
    """One warning, overdue mark or escalation step to fire once at ``due_at``."""

    __tablename__ = "clock_timers"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    assignment_id: Mapped[int | None] = mapped_column(ForeignKey("assignments.id"))
    kind: Mapped[str] = mapped_column(String(12))
    step: Mapped[str] = mapped_column(String(24))
    due_at: Mapped[datetime]
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    fired_at: Mapped[datetime | None]
    locked_by: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str | None] = mapped_column(String(12))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]

    __table_args__ = (
        # The worker's scan: only unfired timers are indexed, so fired history costs nothing.
        Index(
            "ix_clock_timers_due_unfired",
            "due_at",
            sqlite_where=sql_text("fired_at IS NULL"),
            postgresql_where=sql_text("fired_at IS NULL"),
        ),
        Index("ix_clock_timers_assignment_step", "assignment_id", "step"),
        Index("ix_clock_timers_ticket", "ticket_id"),
    )


class OutboxMessage(Base):
    """A message to deliver (SMS, WeCom, DingTalk, email), written in the transaction of its event."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(String(200), default="")
    mention: Mapped[list[Any]] = mapped_column(JSON, default=list)
    title: Mapped[str] = mapped_column(String(200), default="")
    text: Mapped[str] = mapped_column(Text)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    status: Mapped[str] = mapped_column(String(8), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    locked_by: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime]

    __table_args__ = (
        Index(
            "ix_outbox_pending_next",
            "next_attempt_at",
            sqlite_where=sql_text("status = 'pending'"),
            postgresql_where=sql_text("status = 'pending'"),
        ),
        Index("ix_outbox_ticket", "ticket_id"),
    )


class Notification(Base):
    """The in-app inbox: to one user, or to a whole unit when nobody in it could be named."""

    __tablename__ = "notifications"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    kind: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(200), default="")
    text: Mapped[str] = mapped_column(Text)
    # The event key (timer key, …) that caused it: one inbox row per recipient per event.
    source: Mapped[str] = mapped_column(String(220), default="")
    created_at: Mapped[datetime]
    read_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_notifications_user_created", "user_id", "created_at"),
        Index("ix_notifications_unit_created", "unit_id", "created_at"),
    )


class MessageTemplate(Base):
    """An admin's override of a built-in template (checked with `validate_template` before saving)."""

    __tablename__ = "message_templates"
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime]


class UnitFailure(Base):
    """A unit missed a deadline (黔西's repeated-failure ladder counts these within a period)."""

    __tablename__ = "unit_failures"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    assignment_id: Mapped[int | None] = mapped_column(ForeignKey("assignments.id"))
    step: Mapped[str] = mapped_column(String(24))
    number: Mapped[int] = mapped_column(Integer)
    target: Mapped[str] = mapped_column(String(32))
    timer_key: Mapped[str] = mapped_column(String(200), unique=True)
    at: Mapped[datetime]

    __table_args__ = (Index("ix_unit_failures_unit_at", "unit_id", "at"),)
