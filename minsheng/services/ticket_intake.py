"""Intake: a request becomes a ticket (number, query code, idempotency, triage inline or deferred), and the
deferred triage of a stored ticket. The steps after intake are `LoopSteps`'."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from minsheng.domain.numbering import hash_query_code, new_query_code
from minsheng.domain.roles import Actor
from minsheng.domain.states import Kind, TicketState, Urgency
from minsheng.domain.transitions import TicketAction
from minsheng.services import schemas as s
from minsheng.services.errors import Conflict, NotFound
from minsheng.services.measures.facts import touch as touch_facts
from minsheng.services.ticket_core import DomainEvent, check_role
from minsheng.services.ticket_ids import TicketIds
from minsheng.services.ticket_steps import LoopSteps
from minsheng.storage.models import Area, Category, Ticket
from minsheng.storage.triage_tables import TriageJob


@dataclass
class TriageDecision:
    """What intake learned from the triage hook (issue 3 plugs in here)."""

    category_code: str | None = None
    area_code: str | None = None
    kind: str | None = None
    urgency: str | None = None
    dispatch: s.Dispatch | None = None
    explanation: dict[str, Any] = field(default_factory=dict)
    #: Runs once the ticket is stored (it has an id and its intake event), before any dispatch.
    after: Callable[[], None] | None = None


# Called before the ticket's first flush: the ticket has its number but no id yet.
TriageHook = Callable[[Session, Ticket, s.IntakeRequest], TriageDecision | None]
TriagePrepare = Callable[[s.IntakeRequest, datetime], Any]
# session.info key under which `submit` hands the hook (request, analysis made before the transaction).
PREPARED_KEY = "triage_prepared"
# session.info key under which deferred triage names the ticket ids whose jobs its transaction has claimed: stored
# tickets that other connections still see as waiting, whatever this transaction's reads show.
CLAIMED_KEY = "triage_claimed"


class IntakeSteps(LoopSteps):
    """Intake and deferred triage on top of the loop's steps; holds the triage hooks and the id allocator."""

    def __init__(self) -> None:
        super().__init__()
        self.triage: TriageHook | None = None
        # Analysis that needs no database runs before the intake transaction: on SQLite every writer waits
        # for the one holding the lock, so work done outside it is work that does not queue.
        self.triage_prepare: TriagePrepare | None = None
        # The same for a batch of requests (deferred triage's jobs), where the analysis can share work.
        self.triage_prepare_many: Callable[[list[s.IntakeRequest], list[datetime]], list[Any]] | None = None
        # Deferred triage (MINSHENG_TRIAGE_MODE=deferred): intake only stores the ticket and a triage job;
        # `triage_stored` makes the same decision moments later, outside the intake's transaction.
        self.defer_triage = False
        self.ids = TicketIds()

    def prepare_triage(self, req: s.IntakeRequest, now: datetime) -> Any:
        """The analysis to make before an inline intake's transaction; None when there is none to make."""
        if self.triage_prepare is None or self.defer_triage or self.triage is None:
            return None
        return self.triage_prepare(req, now)

    # ------------------------------------------------------------------ intake
    def intake(
        self,
        session: Session,
        actor: Actor,
        req: s.IntakeRequest,
        now: datetime,
        *,
        check_key: bool = True,
    ) -> tuple[Ticket, str | None, bool]:
        """Register a request. Returns (ticket, query code or None when replayed, created).

        With check_key=False a reused idempotency key is left to the unique constraint: an IntegrityError at
        the next flush or the commit, which rolls back everything the transaction did; `submit` then retries
        with the check.
        """
        check_role(TicketAction.INTAKE, actor)
        fingerprint = _fingerprint(req)
        if req.idempotency_key and check_key:
            existing = _replayed(session, req, fingerprint)
            if existing is not None:
                return existing, None, False
        ticket, code = self._new_ticket(session, actor, req, now, fingerprint)
        asked = {"channel": ticket.channel, "kind": ticket.kind, "urgency": ticket.urgency}
        # Triage decides before the ticket's first flush, so its fields go into the INSERT instead of a second
        # UPDATE of the same row; what needs the stored ticket (cluster notes, dispatch) runs after.
        deferred = self.defer_triage and self.triage is not None
        decision = self.triage(session, ticket, req) if self.triage is not None and not deferred else None
        if decision is not None:
            self._apply_triage_fields(session, ticket, req, decision)
        # The id was taken up front, so the INSERT waits for the next flush and the tickets of one transaction
        # (the intake writer's batch) go to the database together.
        session.add(ticket)
        intake_ev = self._record(
            session, ticket, actor, TicketAction.INTAKE.value, None, TicketState.ACCEPTED.value, now, asked
        )
        # The query code exists only now (only its hash is stored): subscribers get it for the citizen's SMS,
        # in the event's payload, never in the timeline's.
        self._publish(session, DomainEvent("intake", ticket, intake_ev, None, {"query_code": code}), now)
        if deferred:
            session.add(
                TriageJob(ticket_id=ticket.id, request=triage_request(req), created_at=now, attempts=0)
            )
        if decision is not None:
            if decision.after is not None:
                decision.after()
            if decision.dispatch is not None:
                self.dispatch(
                    session, Actor.system("自动派单"), ticket.number, decision.dispatch, now, auto=True
                )
        return ticket, code, True

    def _new_ticket(
        self, session: Session, actor: Actor, req: s.IntakeRequest, now: datetime, fingerprint: str | None
    ) -> tuple[Ticket, str]:
        """The new ticket with its id and number taken (not yet added to the session), and its query code."""
        category = _category_by_code(session, req.category_code) if req.category_code else None
        area = _area_by_code(session, req.area_code) if req.area_code else None
        code = new_query_code()
        title = (req.title or "").strip() or _title_from(req.detail)
        ident, number = self.ids.take(session, now)
        ticket = Ticket(
            id=ident,
            number=number,
            query_code_hash=hash_query_code(code),
            channel=req.channel.value,
            external_id=req.external_id,
            kind=req.kind.value if req.kind else Kind.COMPLAINT.value,
            urgency=(req.urgency or Urgency.NORMAL).value,
            category_id=category.id if category else None,
            title=title[:200],
            detail=req.detail,
            address=req.address,
            lat=req.lat,
            lon=req.lon,
            area_id=area.id if area else None,
            citizen_name=req.citizen_name,
            citizen_phone=req.citizen_phone,
            citizen_id_number=req.citizen_id_number,
            confidential=req.confidential,
            public_consent=req.public_consent,
            state=TicketState.ACCEPTED.value,
            idempotency_key=req.idempotency_key,
            idempotency_hash=fingerprint,
            created_by_user_id=actor.user_id,
            created_at=now,
            updated_at=now,
            reopen_count=0,
            return_count=0,
            event_count=0,
        )
        # Known empty: reading it later must not cost a query (and, set as loaded, it costs the flush nothing).
        set_committed_value(ticket, "assignments", [])
        return ticket, code

    def triage_stored(
        self, session: Session, ticket: Ticket, req: s.IntakeRequest, now: datetime
    ) -> TriageDecision | None:
        """Deferred triage of a stored ticket: the decision intake would have made, applied now.

        The advisory fields (category, area, kind, urgency, explanation) are filled as at intake. The automatic
        dispatch only happens if the ticket still waits for one: a dispatcher may have acted in the meantime.
        """
        if self.triage is None:
            return None
        decision = self.triage(session, ticket, req)
        if decision is None:
            return None
        self._apply_triage_fields(session, ticket, req, decision)
        if decision.after is not None:
            decision.after()
        if decision.dispatch is not None and ticket.state == TicketState.ACCEPTED.value:
            self.dispatch(session, Actor.system("自动派单"), ticket.number, decision.dispatch, now, auto=True)
        return decision

    def _apply_triage_fields(
        self, session: Session, ticket: Ticket, req: s.IntakeRequest, d: TriageDecision
    ) -> None:
        with session.no_autoflush:
            if ticket.category_id is None and d.category_code:
                cat = session.scalar(select(Category.id).where(Category.code == d.category_code))
                ticket.category_id = cat
            if ticket.area_id is None and d.area_code:
                ticket.area_id = session.scalar(select(Area.id).where(Area.code == d.area_code))
        if req.kind is None and d.kind:
            ticket.kind = d.kind
        if req.urgency is None and d.urgency:
            ticket.urgency = d.urgency
        ticket.triage = d.explanation
        # Deferred triage moves a stored ticket's area or category without an event: its facts follow.
        touch_facts(session, ticket)


def _fingerprint(req: s.IntakeRequest) -> str | None:
    """What a replay of the request's idempotency key must match: a hash of the request's fields."""
    if not req.idempotency_key:
        return None
    return hashlib.sha256(
        json.dumps(req.fingerprint_fields(), sort_keys=True, ensure_ascii=False).encode()
    ).hexdigest()


def _replayed(session: Session, req: s.IntakeRequest, fingerprint: str | None) -> Ticket | None:
    """The ticket already taken in under the request's idempotency key; Conflict when the request differs."""
    existing = session.scalar(select(Ticket).where(Ticket.idempotency_key == req.idempotency_key))
    if existing is not None and existing.idempotency_hash != fingerprint:
        raise Conflict(
            "this idempotency key was already used for a different submission",
            ticket=existing.number,
        )
    return existing


def _category_by_code(session: Session, code: str) -> Category:
    c = session.scalar(select(Category).where(Category.code == code))
    if c is None:
        raise NotFound(f"unknown category '{code}'", field="category_code")
    return c


def _area_by_code(session: Session, code: str) -> Area:
    a = session.scalar(select(Area).where(Area.code == code))
    if a is None:
        raise NotFound(f"unknown area '{code}'", field="area_code")
    return a


def _title_from(detail: str) -> str:
    first = detail.strip().splitlines()[0] if detail.strip() else ""
    return (first[:30] + "…") if len(first) > 30 else first


#: What a deferred triage needs of the request: personal data is left out, the ticket row keeps it.
_TRIAGE_REQUEST_FIELDS = {
    "title",
    "detail",
    "address",
    "lat",
    "lon",
    "kind",
    "urgency",
    "category_code",
    "area_code",
    "channel",
}


def triage_request(req: s.IntakeRequest) -> dict[str, Any]:
    """The request as a deferred triage job stores it (JSON, without personal data)."""
    return req.model_dump(mode="json", include=_TRIAGE_REQUEST_FIELDS, exclude_none=True)
