"""不满意 → 核查: every dissatisfied rating (basically dissatisfied or dissatisfied, by follow-up, by the citizen
or by default) opens a check by the follow-up or supervision staff (`CheckOpener`, an engine subscriber), with
one of three outcomes:

- ``reopen``: the ticket goes back to its unit for handling (the engine's reopen step);
- ``explained``: an unreasonable request (不合理诉求) with its justification. A SECOND person (not the one who
  explained it) approves it; the approval records a ``rating_excluded`` timeline event, and the measures then
  count the ticket as not rated (`minsheng.measures.timeline`: the rule in docs/METRICS.md, "Supervision
  measures"). A refusal opens the check again;
- ``referred``: referred for accountability (问责), with a record of to whom and why.

Timeline: ``check_opened``, ``check_explained``, ``check_refused``, ``rating_excluded``, ``check_referred``
and, for a reopen, ``check_reopen`` followed by the engine's own reopen events.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from minsheng.domain.roles import Actor, Role
from minsheng.domain.states import Rating
from minsheng.services import schemas as s
from minsheng.services.auth import Principal
from minsheng.services.errors import Conflict, Invalid, NotFound, PermissionDenied
from minsheng.services.queries import visible_to
from minsheng.services.supervision.common import allow, clean, tell
from minsheng.services.ticket_core import DomainEvent, EngineCore
from minsheng.services.tickets import TicketEngine
from minsheng.storage.models import Ticket, Unit
from minsheng.storage.supervision_tables import RatingCheck

OUTCOMES: dict[str, str] = {"reopen": "重新办理", "explained": "不合理诉求（已解释）", "referred": "移交问责"}
STATES: dict[str, str] = {"open": "待核查", "explained": "待复核", "closed": "已办结"}
RATING_ACTIONS = frozenset({"follow_up", "rate"})


class CheckOpener:
    """Engine subscriber: a dissatisfied rating opens a check, unless one is still pending for the ticket."""

    def __init__(self, engine: EngineCore) -> None:
        self.engine = engine

    def __call__(self, session: Session, event: DomainEvent, now: datetime) -> None:
        if event.action not in RATING_ACTIONS:
            return
        rating = event.payload.get("rating")
        if rating not in Rating.values() or not Rating(rating).is_dissatisfied:
            return
        t = event.ticket
        pending = select(RatingCheck.id).where(RatingCheck.ticket_id == t.id, RatingCheck.state != "closed")
        if session.scalar(pending) is not None:
            return
        check = RatingCheck(
            ticket_id=t.id,
            unit_id=t.lead_unit_id,
            rating=rating,
            rating_seq=event.event.seq,
            opened_at=now,
            state="open",
        )
        session.add(check)
        session.flush()
        payload = {"check": check.id, "rating": rating}
        self.engine.record_note(session, t, Actor.system("核查"), "check_opened", now, payload)


def _load(session: Session, check_id: int) -> RatingCheck:
    row = session.scalar(select(RatingCheck).where(RatingCheck.id == check_id).with_for_update())
    if row is None:
        raise NotFound(f"check {check_id} not found")
    return row


def decide(
    session: Session,
    engine: TicketEngine,
    who: Principal,
    check_id: int,
    outcome: str,
    now: datetime,
    *,
    justification: str | None = None,
    referred_to: str | None = None,
    channels: frozenset[str] = frozenset(),
) -> RatingCheck:
    """Decide an open check: reopen, explained (to be approved by a second person) or referred."""
    allow(who, "check")
    if outcome not in OUTCOMES:
        raise Invalid(f"unknown outcome: {outcome}")
    check = _load(session, check_id)
    if check.state != "open":
        raise Conflict("this check is not open")
    t = session.get(Ticket, check.ticket_id)
    assert t is not None
    number = t.number
    note = (justification or "").strip()[:2000] or None
    check.decided_at, check.decided_by_user_id, check.decided_by_name = now, who.user_id, who.display_name
    check.outcome = outcome
    if outcome == "explained":
        check.justification = clean(justification, "justification")
        check.state = "explained"
        payload: dict[str, Any] = {"check": check.id, "justification": check.justification}
        engine.record_note(session, engine._lock(session, number), who.actor, "check_explained", now, payload)
        return check
    if outcome == "referred":
        check.referred_to = clean(referred_to, "referred_to", 100)
        check.justification = note
        check.state = "closed"
        payload = {"check": check.id, "referred_to": check.referred_to, "note": note}
        engine.record_note(session, engine._lock(session, number), who.actor, "check_referred", now, payload)
        unit = session.get(Unit, check.unit_id) if check.unit_id else None
        tell(
            session,
            kind="check_referred",
            title=f"不满意核查移交问责：{number}",
            text=f"工单 {number} 的不满意评价经核查移交{check.referred_to}问责。{note or ''}",
            now=now,
            source=f"check-referred:{check.id}",
            ticket_id=t.id,
            unit=unit,
            leader=True,
            channels=channels,
        )
        return check
    # reopen
    check.justification = note
    check.state = "closed"
    engine.record_note(
        session,
        engine._lock(session, number),
        who.actor,
        "check_reopen",
        now,
        {"check": check.id, "note": note},
    )
    engine.reopen(session, who.actor, number, s.WithReason(reason=note or "不满意核查：重新办理"), now)
    return check


def approve(
    session: Session,
    engine: EngineCore,
    who: Principal,
    check_id: int,
    approve: bool,
    now: datetime,
    note: str | None = None,
) -> RatingCheck:
    """A second person approves (the rating is then excluded from the unit's satisfaction rate) or refuses
    (the check is open again) an explanation as an unreasonable request."""
    allow(who, "approve")
    check = _load(session, check_id)
    if check.state != "explained":
        raise Conflict("this check waits for no approval")
    if check.decided_by_user_id == who.user_id:
        raise PermissionDenied(
            "a second person approves an unreasonable request, not the one who explained it"
        )
    t = session.get(Ticket, check.ticket_id)
    assert t is not None
    locked = engine._lock(session, t.number)
    note = (note or "").strip()[:500] or None
    if approve:
        check.state = "closed"
        check.approved_at, check.approved_by_user_id, check.approved_by_name = (
            now,
            who.user_id,
            who.display_name,
        )
        payload = {"check": check.id, "rating": check.rating, "rating_seq": check.rating_seq, "note": note}
        engine.record_note(session, locked, who.actor, "rating_excluded", now, payload)
    else:
        check.state, check.outcome = "open", None
        check.decided_at = check.decided_by_user_id = check.decided_by_name = None
        engine.record_note(
            session, locked, who.actor, "check_refused", now, {"check": check.id, "note": note}
        )
    return check


def check_json(row: RatingCheck, number: str, unit_name: str | None) -> dict[str, Any]:
    return {
        "id": row.id,
        "ticket": number,
        "unit_name": unit_name,
        "rating": row.rating,
        "opened_at": row.opened_at,
        "state": row.state,
        "state_label": STATES.get(row.state, row.state),
        "outcome": row.outcome,
        "outcome_label": OUTCOMES.get(row.outcome or "", ""),
        "justification": row.justification,
        "referred_to": row.referred_to,
        "decided_at": row.decided_at,
        "decided_by": row.decided_by_name,
        "decided_by_user_id": row.decided_by_user_id,
        "approved_at": row.approved_at,
        "approved_by": row.approved_by_name,
    }


def list_checks(
    session: Session,
    who: Principal,
    *,
    state: str | None = None,
    ticket_id: int | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    if who.role not in (Role.FOLLOWUP, Role.SUPERVISOR, Role.LEADER, Role.ADMIN):
        raise PermissionDenied(f"role '{who.role.value}' may not read checks")
    if state is not None and state not in STATES:
        raise Invalid(f"unknown state: {state}")
    q = (
        select(RatingCheck, Ticket.number, Unit.name)
        .join(Ticket, Ticket.id == RatingCheck.ticket_id)
        .outerjoin(Unit, Unit.id == RatingCheck.unit_id)
        .where(visible_to(who))
    )
    if state is not None:
        q = q.where(RatingCheck.state == state)
    if ticket_id is not None:
        q = q.where(RatingCheck.ticket_id == ticket_id)
    q = q.order_by(RatingCheck.opened_at.desc(), RatingCheck.id.desc()).limit(limit)
    return [check_json(row, number, unit_name) for row, number, unit_name in session.execute(q).all()]
