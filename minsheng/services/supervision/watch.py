"""提级盯办: a leader takes a ticket under personal watch. It shows on the leader's page (/watch), and the
leader is told of every step of it: `WatchNotices` is an engine subscriber that writes one inbox notice per
watching leader for each state change of the ticket or of its assignments."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from minsheng.domain.transitions import ACTION_LABELS
from minsheng.services.auth import Principal
from minsheng.services.queries import ticket_for, visible_to
from minsheng.services.supervision.common import allow, tell
from minsheng.services.ticket_core import DomainEvent, EngineCore
from minsheng.storage.models import Ticket
from minsheng.storage.supervision_tables import Watch


def watch(session: Session, engine: EngineCore, who: Principal, number: str, now: datetime) -> bool:
    """Start watching (True), or False when already watching."""
    allow(who, "watch")
    t = ticket_for(session, who, number)
    row = session.scalar(select(Watch).where(Watch.ticket_id == t.id, Watch.user_id == who.user_id))
    if row is not None and row.ended_at is None:
        return False
    if row is None:
        session.add(Watch(ticket_id=t.id, user_id=who.user_id, created_at=now))
    else:
        row.created_at, row.ended_at = now, None
    engine.record_note(session, engine._lock(session, number), who.actor, "watch", now, {})
    return True


def unwatch(session: Session, engine: EngineCore, who: Principal, number: str, now: datetime) -> bool:
    allow(who, "watch")
    t = ticket_for(session, who, number)
    row = session.scalar(select(Watch).where(Watch.ticket_id == t.id, Watch.user_id == who.user_id))
    if row is None or row.ended_at is not None:
        return False
    row.ended_at = now
    engine.record_note(session, engine._lock(session, number), who.actor, "unwatch", now, {})
    return True


def is_watching(session: Session, who: Principal, ticket_id: int) -> bool:
    q = select(Watch.id).where(
        Watch.ticket_id == ticket_id, Watch.user_id == who.user_id, Watch.ended_at.is_(None)
    )
    return session.scalar(q) is not None


def watched(session: Session, who: Principal, limit: int = 100) -> list[tuple[Ticket, datetime]]:
    """The tickets the person watches, most recently watched first."""
    q = (
        select(Ticket, Watch.created_at)
        .join(Watch, Watch.ticket_id == Ticket.id)
        .where(Watch.user_id == who.user_id, Watch.ended_at.is_(None), visible_to(who))
        .order_by(Watch.created_at.desc(), Watch.id.desc())
        .limit(limit)
    )
    return [(t, at) for t, at in session.execute(q).all()]


class WatchNotices:
    """Engine subscriber: each step (state change) of a watched ticket is told to the leaders watching it."""

    def __init__(self, channels: frozenset[str] = frozenset()) -> None:
        self.channels = channels

    def __call__(self, session: Session, event: DomainEvent, now: datetime) -> None:
        t = event.ticket
        if t.id is None:
            return
        leaders = list(
            session.scalars(select(Watch.user_id).where(Watch.ticket_id == t.id, Watch.ended_at.is_(None)))
        )
        if not leaders:
            return
        label = ACTION_LABELS.get(event.action, event.action)
        unit: Any = event.payload.get("unit_name")
        tell(
            session,
            kind="watch_step",
            title=f"盯办工单动态：{t.number} {label}",
            text=f"您盯办的工单 {t.number}（{t.title[:40]}）：{unit + ' ' if unit else ''}{label}。",
            now=now,
            source=f"watch:{t.id}:{event.event.seq}",
            ticket_id=t.id,
            user_ids=leaders,
            channels=self.channels,
        )
