"""The follow-up desk (回访): closed tickets waiting for the citizen's rating, newest closing first.

Newest first because a call about last week's repair still reaches someone who remembers it; the oldest are
not lost, they are answered by the default rating (see docs/METRICS.md) rather than kept on top for a year.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from minsheng.domain.states import Channel, TicketState
from minsheng.services.auth import Principal
from minsheng.services.errors import Invalid
from minsheng.services.queries import TicketFilter, _apply_filter, visible_to
from minsheng.storage.models import Ticket


@dataclass(frozen=True)
class FollowUpFilter:
    """The desk's filters: the lead unit's code, a category code (with its subtree) and a channel."""

    unit: str | None = None
    category: str | None = None
    channel: str | None = None


def queue(
    session: Session, who: Principal, f: FollowUpFilter, *, limit: int = 30, offset: int = 0
) -> list[Ticket]:
    """Closed tickets `who` may see, the most recently closed first, filtered by unit, category and channel."""
    if f.channel and f.channel not in Channel.values():
        raise Invalid(f"unknown channel: {f.channel}")
    q = select(Ticket).where(Ticket.state == TicketState.CLOSED.value, visible_to(who))
    q = _apply_filter(session, q, TicketFilter(unit=f.unit, category=f.category, channel=f.channel))
    q = q.order_by(Ticket.closed_at.desc().nulls_last(), Ticket.id.desc()).limit(limit).offset(offset)
    return list(session.scalars(q))
