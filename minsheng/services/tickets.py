"""The ticket engine: intake and every step of the closed loop, each checked against the domain's tables.

This is the one path that changes a ticket's or an assignment's state, and it always appends a timeline event.
Callers pass an open write session (one transaction per use case, see `services.uow`), the actor and `now`.

The engine is built in layers, one module each: `ticket_core` (transitions, timeline, subscribers, locks),
`ticket_steps` (the loop after intake), `ticket_intake` (intake and deferred triage) and `ticket_ids` (ids and
numbers taken up front). This module assembles `TicketEngine` and runs intake as its own transaction (`submit`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from minsheng.domain.roles import Actor
from minsheng.services import schemas as s
from minsheng.services.ticket_core import DomainEvent, Subscriber
from minsheng.services.ticket_ids import RESERVE_KEY
from minsheng.services.ticket_intake import (
    CLAIMED_KEY,
    PREPARED_KEY,
    IntakeSteps,
    TriageDecision,
    TriageHook,
    TriagePrepare,
    triage_request,
)
from minsheng.storage.db import Database
from minsheng.storage.models import Ticket

__all__ = [
    "CLAIMED_KEY",
    "PREPARED_KEY",
    "RESERVE_KEY",
    "DomainEvent",
    "Subscriber",
    "TicketEngine",
    "TriageDecision",
    "TriageHook",
    "TriagePrepare",
    "submit",
    "triage_request",
]


class TicketEngine(IntakeSteps):
    """Holds the subscribers and triage hook; every public method is one step of the loop."""


_NOT_PREPARED: Any = object()


def submit(
    db: Database,
    engine: TicketEngine,
    actor: Actor,
    req: s.IntakeRequest,
    now: datetime,
    render: Callable[[Session, Ticket], Any] | None = None,
    *,
    prepared: Any = _NOT_PREPARED,
) -> tuple[Any, str | None, bool]:
    """Intake as its own transaction; a concurrent duplicate of the same idempotency key returns the first.

    Returns (ticket number — or what `render` made of the ticket inside the transaction —, query code or None
    when replayed, created). `prepared` is the triage analysis when the caller has made it already.
    """
    if prepared is _NOT_PREPARED:
        prepared = engine.prepare_triage(req, now)
    for attempt in range(3):
        try:
            with db.write_sessions() as session, session.begin():
                if prepared is not None:
                    session.info[PREPARED_KEY] = (req, prepared)
                # A fresh key is the common case: skip the look-up and let the unique index catch a replay.
                ticket, code, created = engine.intake(session, actor, req, now, check_key=attempt > 0)
                out = render(session, ticket) if render else ticket.number
            return out, code, created
        except IntegrityError:
            # Only the idempotency key can collide here; the loser re-reads the winner's ticket.
            if not req.idempotency_key or attempt == 2:
                raise
    raise AssertionError("unreachable")
