"""What the time limits are doing: timers, a ticket's step deadlines, who is on duty."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from minsheng.services.errors import NotFound
from minsheng.services.timelimits.admin import unit_codes, unit_id
from minsheng.storage.models import Ticket
from minsheng.storage.timelimit_tables import DutyShift, StepDeadline, Timer


def timers(session: Session, ticket: str | None, pending: bool, limit: int) -> list[Timer]:
    """Timers in order of their due time: those not fired yet (``pending``), of one ticket number if given."""
    q = select(Timer).order_by(Timer.due_at, Timer.id).limit(limit)
    if pending:
        q = q.where(Timer.fired_at.is_(None))
    if ticket:
        tid = session.scalar(select(Ticket.id).where(Ticket.number == ticket))
        if tid is None:
            raise NotFound(f"ticket {ticket} not found")
        q = q.where(Timer.ticket_id == tid)
    return list(session.scalars(q))


def ticket_deadlines(session: Session, ticket_id: int) -> list[StepDeadline]:
    """Every step deadline of a ticket (sign, contact, arrive, feedback, resolve …) per assignment."""
    q = select(StepDeadline).where(StepDeadline.ticket_id == ticket_id).order_by(StepDeadline.id)
    return list(session.scalars(q))


def on_duty(session: Session, unit_id: int | None, at: datetime) -> list[DutyShift]:
    """The shifts of a unit (None: city-wide) covering ``at``."""
    q = select(DutyShift).where(DutyShift.starts_at <= at, DutyShift.ends_at > at)
    q = q.where(DutyShift.unit_id.is_(None) if unit_id is None else DutyShift.unit_id == unit_id)
    return list(session.scalars(q.order_by(DutyShift.starts_at)))


def commander_of_the_day(session: Session, at: datetime) -> list[DutyShift]:
    q = select(DutyShift).where(
        DutyShift.starts_at <= at, DutyShift.ends_at > at, DutyShift.commander.is_(True)
    )
    return list(session.scalars(q.order_by(DutyShift.starts_at)))


@dataclass(frozen=True)
class DutyNow:
    on_duty: list[DutyShift]
    commander: list[DutyShift]
    unit_codes: dict[int, str]  # unit id → code, to name the shifts' units


def duty_at(session: Session, unit: str | None, at: datetime) -> DutyNow:
    """Who is on duty for a unit code (None: city-wide) at ``at``, and the commander of the day."""
    codes = unit_codes(session)
    shifts = on_duty(session, unit_id(session, unit) if unit else None, at)
    return DutyNow(shifts, commander_of_the_day(session, at), codes)
