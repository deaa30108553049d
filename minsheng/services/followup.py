"""The follow-up desk (回访): which closed tickets staff call, newest closing first; the default rating of the
tickets nobody answered for; and each follow-up worker's workload and answer rate.

Newest first because a call about last week's repair still reaches someone who remembers it; the oldest are
not lost, they take the default rating (`Settings.followup_default_days`, docs/METRICS.md) rather than wait
on top for a year. Which tickets are called is a sample by kind (`Settings.followup_sample`): the share of a
kind is taken by ticket id (id mod 100 below the percentage), so every process and every page load agrees on
the sample without storing it, and it does not depend on the text or the unit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.orm import Session

from minsheng.domain.roles import Actor
from minsheng.domain.states import Channel, Rating, TicketState
from minsheng.domain.transitions import TicketAction
from minsheng.services.auth import Principal
from minsheng.services.errors import Invalid
from minsheng.services.queries import TicketFilter, _apply_filter, visible_to
from minsheng.services.ticket_core import EngineCore
from minsheng.services.uow import writing
from minsheng.storage.db import Database
from minsheng.storage.models import Ticket, TimelineEvent, User

DEFAULT_BATCH = 200


@dataclass(frozen=True)
class FollowUpFilter:
    """The desk's filters: the lead unit's code, a category code (with its subtree) and a channel."""

    unit: str | None = None
    category: str | None = None
    channel: str | None = None


def sampled(shares: Mapping[str, float]) -> ColumnElement[bool]:
    """The closed tickets the desk calls: every ticket of a kind whose share is 1, none of a kind whose share is
    0, and the tickets whose id mod 100 is below the percentage otherwise; kinds not named are all called."""
    terms: list[ColumnElement[bool]] = [Ticket.kind.not_in(list(shares))]
    for kind, share in shares.items():
        pct = round(max(0.0, min(1.0, share)) * 100)
        if pct >= 100:
            terms.append(Ticket.kind == kind)
        elif pct > 0:
            terms.append(and_(Ticket.kind == kind, Ticket.id % 100 < pct))
    return or_(*terms)


def queue(
    session: Session,
    who: Principal,
    f: FollowUpFilter,
    *,
    shares: Mapping[str, float] | None = None,
    limit: int = 30,
    offset: int = 0,
) -> list[Ticket]:
    """Closed tickets `who` may see and the sample takes, the most recently closed first, filtered by unit,
    category and channel."""
    if f.channel and f.channel not in Channel.values():
        raise Invalid(f"unknown channel: {f.channel}")
    q = select(Ticket).where(Ticket.state == TicketState.CLOSED.value, visible_to(who))
    if shares is not None:
        q = q.where(sampled(shares))
    q = _apply_filter(session, q, TicketFilter(unit=f.unit, category=f.category, channel=f.channel))
    q = q.order_by(Ticket.closed_at.desc().nulls_last(), Ticket.id.desc()).limit(limit).offset(offset)
    return list(session.scalars(q))


def apply_default_ratings(
    db: Database,
    engine: EngineCore,
    now: datetime,
    *,
    days: float,
    rating: str,
    batch: int = DEFAULT_BATCH,
) -> int:
    """Rate the tickets closed more than `days` ago and still unrated with `rating`, marked as a default (the
    timeline's follow_up event carries ``default: true`` and ``method: default``). One batch per transaction;
    on PostgreSQL the rows are claimed with SKIP LOCKED so that several workers share the work, and a ticket
    rated meanwhile is left alone (its state is read again under the lock). Returns the number rated."""
    Rating(rating)  # a bad setting fails here, not halfway through a batch
    cutoff = now - timedelta(days=days)
    done = 0
    with writing(db) as session:
        q = (
            select(Ticket.number)
            .where(Ticket.state == TicketState.CLOSED.value, Ticket.closed_at <= cutoff)
            .order_by(Ticket.closed_at, Ticket.id)
            .limit(batch)
        )
        if not db.is_sqlite:
            q = q.with_for_update(skip_locked=True)
        for number in session.scalars(q).all():
            t = engine._lock(session, number)
            if t.state != TicketState.CLOSED.value:
                continue
            payload = {"rating": rating, "method": "default", "default": True, "after_days": days}
            engine._ticket_step(session, t, Actor.system(), TicketAction.FOLLOW_UP, now, payload)
            t.rating, t.rated_at = rating, now
            done += 1
    return done


def workload(session: Session, since: datetime, until: datetime) -> list[dict[str, Any]]:
    """Per follow-up worker over [since, until]: calls answered (a rating recorded), calls unanswered, and the
    answer rate answered / (answered + unanswered); defaults (the system's) are not anyone's work."""
    answered = func.sum(case((TimelineEvent.action == TicketAction.FOLLOW_UP.value, 1), else_=0))
    unreached = func.sum(case((TimelineEvent.action == TicketAction.FOLLOW_UP_UNREACHED.value, 1), else_=0))
    rows = session.execute(
        select(User.id, User.username, User.display_name, answered, unreached)
        .join(User, User.id == TimelineEvent.actor_user_id)
        .where(
            TimelineEvent.action.in_([TicketAction.FOLLOW_UP.value, TicketAction.FOLLOW_UP_UNREACHED.value]),
            TimelineEvent.at >= since,
            TimelineEvent.at <= until,
        )
        .group_by(User.id, User.username, User.display_name)
        .order_by(User.username)
    ).all()
    out = []
    for uid, username, name, ok, missed in rows:
        ok, missed = int(ok or 0), int(missed or 0)
        out.append(
            {
                "user_id": uid,
                "username": username,
                "name": name,
                "answered": ok,
                "unreached": missed,
                "calls": ok + missed,
                "answer_rate": ok / (ok + missed) if ok + missed else None,
            }
        )
    return out


def waiting_count(session: Session, shares: Mapping[str, float]) -> int:
    """How many closed tickets wait on the desk (the sample)."""
    q = select(func.count()).where(Ticket.state == TicketState.CLOSED.value, sampled(shares))
    return int(session.scalar(q) or 0)
