"""催办: a reminder to the unit that holds a ticket. Each is a ``remind`` timeline event carrying its running
count; the unit is notified every time, and from the second reminder on its leader too, so that repeated
reminders reach the person who can make the unit move ("已催办 3 次")."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from minsheng.services.auth import Principal
from minsheng.services.errors import Invalid
from minsheng.services.queries import ticket_for
from minsheng.services.supervision.common import allow, holding_unit, tell
from minsheng.services.ticket_core import EngineCore
from minsheng.storage.models import Ticket, TimelineEvent

ACTION = "remind"
#: From this reminder on, the unit's leader is told as well.
LEADER_FROM = 2


def count(session: Session, ticket_id: int) -> int:
    """How many reminders the ticket has had."""
    q = select(func.count()).where(TimelineEvent.ticket_id == ticket_id, TimelineEvent.action == ACTION)
    return int(session.scalar(q) or 0)


def remind(
    session: Session,
    engine: EngineCore,
    who: Principal,
    number: str,
    note: str | None,
    now: datetime,
    channels: frozenset[str] = frozenset(),
) -> int:
    """Remind the holding unit; returns the ticket's reminder count after this one."""
    allow(who, "remind")
    note = (note or "").strip()[:500] or None
    ticket_for(session, who, number)
    t: Ticket = engine._lock(session, number)
    if t.state in ("closed", "rated", "merged", "transferred"):
        raise Invalid("a ticket no unit is handling cannot be reminded")
    unit = holding_unit(session, t)
    if unit is None:
        raise Invalid("the ticket has not been dispatched to a unit")
    n = count(session, t.id) + 1
    payload = {"count": n, "unit": unit.code, "unit_name": unit.name, "note": note}
    engine.record_note(session, t, who.actor, ACTION, now, payload)
    tell(
        session,
        kind="remind",
        title=f"催办（第 {n} 次）：{t.number}",
        text=f"{unit.name}：工单 {t.number} 已催办 {n} 次，请加快办理。" + (f"{note}" if note else ""),
        now=now,
        source=f"remind:{t.id}:{n}",
        ticket_id=t.id,
        unit=unit,
        leader=n >= LEADER_FROM,
        channels=channels,
    )
    return n
