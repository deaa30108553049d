"""The ticket engine: intake and every step of the closed loop, each checked against the domain's tables.

This is the one path that changes a ticket's or an assignment's state, and it always appends a timeline event.
Callers pass an open write session (one transaction per use case, see `services.uow`), the actor and `now`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from pydantic import BaseModel
from sqlalchemy import Engine, Select, Table, bindparam, func, select, text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from minsheng.domain import transitions as tx
from minsheng.domain.numbering import format_ticket_number, hash_query_code, new_query_code, numbering_day
from minsheng.domain.roles import Actor, Role
from minsheng.domain.states import (
    ACTIVE_ASSIGNMENT_STATES,
    AssignmentRole,
    AssignmentState,
    ExtensionState,
    Kind,
    Rating,
    TicketState,
    Urgency,
)
from minsheng.domain.transitions import AssignmentAction, TicketAction
from minsheng.services import schemas as s
from minsheng.services.errors import Conflict, Invalid, NotFound, PermissionDenied
from minsheng.services.org import dispatchable_units
from minsheng.storage.db import Database
from minsheng.storage.models import (
    Area,
    Assignment,
    Attachment,
    Category,
    Extension,
    Ticket,
    TicketCounter,
    TimelineEvent,
    Unit,
)
from minsheng.storage.triage_tables import TriageJob


@dataclass
class DomainEvent:
    """A fact produced by a use case, handed to subscribers inside the same transaction (timers, outbox …)."""

    action: str
    ticket: Ticket
    event: TimelineEvent
    assignment: Assignment | None = None
    payload: dict[str, Any] = field(default_factory=dict)


Subscriber = Callable[[Session, DomainEvent, datetime], None]


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


class TicketEngine:
    """Holds the subscribers and triage hook; every public method is one step of the loop."""

    def __init__(self) -> None:
        self.subscribers: list[Subscriber] = []
        self.triage: TriageHook | None = None
        # Analysis that needs no database runs before the intake transaction: on SQLite every writer waits
        # for the one holding the lock, so work done outside it is work that does not queue.
        self.triage_prepare: TriagePrepare | None = None
        # The same for a batch of requests (deferred triage's jobs), where the analysis can share work.
        self.triage_prepare_many: Callable[[list[s.IntakeRequest], list[datetime]], list[Any]] | None = None
        # Deferred triage (MINSHENG_TRIAGE_MODE=deferred): intake only stores the ticket and a triage job;
        # `triage_stored` makes the same decision moments later, outside the intake's transaction.
        self.defer_triage = False
        self._known_sequences: set[str] = set()
        self._id_sequence: str | None = None

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
        _check_role(TicketAction.INTAKE, actor)
        fingerprint = None
        if req.idempotency_key:
            fingerprint = hashlib.sha256(
                json.dumps(req.fingerprint_fields(), sort_keys=True, ensure_ascii=False).encode()
            ).hexdigest()
        if req.idempotency_key and check_key:
            existing = session.scalar(select(Ticket).where(Ticket.idempotency_key == req.idempotency_key))
            if existing is not None:
                if existing.idempotency_hash != fingerprint:
                    raise Conflict(
                        "this idempotency key was already used for a different submission",
                        ticket=existing.number,
                    )
                return existing, None, False
        category = _category_by_code(session, req.category_code) if req.category_code else None
        area = _area_by_code(session, req.area_code) if req.area_code else None
        code = new_query_code()
        title = (req.title or "").strip() or _title_from(req.detail)
        ident, number = self._next_ids(session, now)
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
            session.add(TriageJob(ticket_id=ident, request=triage_request(req), created_at=now, attempts=0))
        if decision is not None:
            if decision.after is not None:
                decision.after()
            if decision.dispatch is not None:
                self.dispatch(
                    session, Actor.system("自动派单"), ticket.number, decision.dispatch, now, auto=True
                )
        return ticket, code, True

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

    def _next_ids(self, session: Session, now: datetime) -> tuple[int, str]:
        """The new ticket's id and number.

        The intake writer tells how many tickets its transaction will take (`RESERVE_KEY`): they are reserved
        in one statement, and the following intakes of the transaction take theirs from the reserve.
        """
        day = numbering_day(now)
        key = f"{day:%Y%m%d}"
        tx_now = session.get_transaction()
        pool = session.info.get(_ID_POOL_KEY)
        if pool is not None and pool[0] is tx_now and pool[1] == key and pool[2]:
            return pool[2].pop()  # type: ignore[no-any-return]
        n = max(1, int(session.info.pop(RESERVE_KEY, 1)))
        conn = session.connection()
        if conn.dialect.name == "postgresql":
            # A sequence per day: nextval takes no row lock and survives crashes without reuse, so
            # concurrent intakes do not queue on one counter row until they commit. Rolled-back intakes
            # leave gaps; numbers stay unique. The id comes from the table's own sequence, in the same trip.
            name = f"ticket_number_{key}"
            if name not in self._known_sequences:
                ensure_day_sequence(conn.engine, name)
                self._known_sequences.add(name)
            if self._id_sequence is None:
                self._id_sequence = str(
                    conn.execute(text("SELECT pg_get_serial_sequence('tickets', 'id')")).scalar_one()
                )
            rows = conn.execute(
                text(f"SELECT nextval('{self._id_sequence}'), nextval('{name}') FROM generate_series(1, :n)"),
                {"n": n},
            ).all()
            pairs = sorted((int(ident), int(seq)) for ident, seq in rows)
        else:
            # Core statements on the session's connection: the ORM's bulk path would cost more than they do.
            ident = _sqlite_take_ids(session, "tickets", n)
            last = int(conn.execute(_COUNTER_UPSERT, {"day": key, "n": n}).scalar_one())
            pairs = [(ident + k, last - n + 1 + k) for k in range(n)]
        out = [(ident, format_ticket_number(day, seq)) for ident, seq in pairs]
        session.info[_ID_POOL_KEY] = (tx_now, key, out[:0:-1])
        return out[0]

    # ------------------------------------------------------------------ desk steps
    def answer_directly(
        self, session: Session, actor: Actor, number: str, p: s.AnswerDirectly, now: datetime
    ) -> Ticket:
        t = self._lock(session, number)
        self._ticket_step(session, t, actor, TicketAction.ANSWER_DIRECTLY, now, {"answer": p.answer})
        t.closed_at = now
        return t

    def transfer(self, session: Session, actor: Actor, number: str, p: s.Transfer, now: datetime) -> Ticket:
        t = self._lock(session, number)
        self._ticket_step(
            session, t, actor, TicketAction.TRANSFER, now, {"target": p.target.value, "note": p.note}
        )
        t.transfer_target = p.target.value
        return t

    def dispatch(
        self, session: Session, actor: Actor, number: str, p: s.Dispatch, now: datetime, *, auto: bool = False
    ) -> Ticket:
        t = self._lock(session, number)
        action = TicketAction.REDISPATCH if isinstance(p, s.Redispatch) else TicketAction.DISPATCH
        lead, assists = self._dispatch_units(session, p)
        _check_role(action, actor)
        to_state = tx.next_ticket_state(TicketState(t.state), action)
        cancelled = []
        if action is TicketAction.REDISPATCH:
            for a in self._active_assignments(t):
                self._assignment_transition(session, t, a, Actor.system(), AssignmentAction.CANCEL, now, {})
                cancelled.append(a.unit.code)
        payload: dict[str, Any] = {
            "lead_unit": lead.code,
            "lead_unit_name": lead.name,
            "assist_units": [u.code for u in assists],
            "note": p.note,
            "auto": auto,
        }
        if isinstance(p, s.Redispatch):
            payload["reason"] = p.reason
            payload["cancelled_units"] = cancelled
        if t.triage and auto:
            payload["explanation"] = t.triage
        from_state = t.state
        t.state = to_state.value
        t.lead_unit_id = lead.id
        t.dispatched_at = t.dispatched_at or now
        t.updated_at = now
        ev = self._record(session, t, actor, action.value, from_state, to_state.value, now, payload)
        created = [self._new_assignment(session, t, lead, AssignmentRole.LEAD, now, p.first_receiver)]
        created += [self._new_assignment(session, t, u, AssignmentRole.ASSIST, now, False) for u in assists]
        self._publish(session, DomainEvent(action.value, t, ev, None, payload), now)
        for a in created:
            self._publish(session, DomainEvent("assignment_created", t, ev, a, {}), now)
        return t

    def _dispatch_units(self, session: Session, p: s.Dispatch) -> tuple[Unit, list[Unit]]:
        return dispatchable_units(session, p.lead_unit, p.assist_units)

    def _new_assignment(
        self, session: Session, t: Ticket, unit: Unit, role: AssignmentRole, now: datetime, first: bool
    ) -> Assignment:
        # Through the relationship, so the ticket's collection holds it once whether or not it was loaded.
        a = Assignment(
            ticket=t,
            unit_id=unit.id,
            unit=unit,
            role=role.value,
            state=AssignmentState.PENDING.value,
            created_at=now,
            updated_at=now,
            first_receiver=first,
        )
        session.add(a)
        session.flush()
        return a

    def link(
        self,
        session: Session,
        actor: Actor,
        number: str,
        p: s.LinkTicket,
        now: datetime,
        action: TicketAction,
    ) -> Ticket:
        """Mark a ticket as a repeat of, or merge it into, another ticket."""
        if p.ticket == number:
            raise Invalid("a ticket cannot be linked to itself")
        other_id = session.scalar(select(Ticket.id).where(Ticket.number == p.ticket))
        this_id = session.scalar(select(Ticket.id).where(Ticket.number == number))
        if this_id is None or other_id is None:
            raise NotFound(f"ticket {number if this_id is None else p.ticket} not found")
        # Lock both rows in id order so that two opposite links cannot deadlock.
        for tid in sorted((this_id, other_id)):
            session.scalar(_locked(select(Ticket).where(Ticket.id == tid)))
        t = session.get_one(Ticket, this_id)
        target = session.get_one(Ticket, other_id)
        if target.state == TicketState.MERGED.value:
            raise Conflict(
                f"ticket {target.number} is itself merged; link to {target.number}'s master instead"
            )
        _check_role(action, actor)
        to_state = tx.next_ticket_state(TicketState(t.state), action)
        for a in self._active_assignments(t):
            self._assignment_transition(session, t, a, Actor.system(), AssignmentAction.CANCEL, now, {})
        from_state = t.state
        t.state = to_state.value
        t.repeat_of_id = target.id
        t.updated_at = now
        payload = {"ticket": target.number, "note": p.note}
        ev = self._record(session, t, actor, action.value, from_state, to_state.value, now, payload)
        self._record(
            session,
            target,
            actor,
            "repeat_linked",
            None,
            None,
            now,
            {"ticket": t.number, "how": action.value},
        )
        self._publish(session, DomainEvent(action.value, t, ev, None, payload), now)
        return t

    def consult(self, session: Session, actor: Actor, number: str, p: s.Consult, now: datetime) -> Ticket:
        t = self._lock(session, number)
        if p.participants:
            known = set(session.scalars(select(Unit.code).where(Unit.code.in_(p.participants))))
            missing = [c for c in p.participants if c not in known]
            if missing:
                raise NotFound(f"unknown unit(s): {', '.join(missing)}")
        self._check_unit_scope_lead(t, actor, TicketAction.CONSULT)
        self._ticket_step(
            session,
            t,
            actor,
            TicketAction.CONSULT,
            now,
            {"participants": p.participants, "decision": p.decision},
        )
        return t

    def pause(self, session: Session, actor: Actor, number: str, p: s.WithReason, now: datetime) -> Ticket:
        t = self._lock(session, number)
        self._check_unit_scope_lead(t, actor, TicketAction.PAUSE)
        self._ticket_step(session, t, actor, TicketAction.PAUSE, now, {"reason": p.reason})
        t.paused_at = now
        return t

    def resume(self, session: Session, actor: Actor, number: str, p: s.WithNote, now: datetime) -> Ticket:
        t = self._lock(session, number)
        self._check_unit_scope_lead(t, actor, TicketAction.RESUME)
        paused_from = t.paused_at
        paused_seconds = (now - paused_from).total_seconds() if paused_from else 0.0
        payload: dict[str, Any] = {
            "note": p.note,
            "paused_from": paused_from.isoformat() if paused_from else None,
        }
        payload["paused_seconds"] = paused_seconds
        self._ticket_step(session, t, actor, TicketAction.RESUME, now, payload)
        t.paused_at = None
        return t

    def request_extension(
        self, session: Session, actor: Actor, number: str, p: s.RequestExtension, now: datetime
    ) -> Extension:
        t = self._lock(session, number)
        self._check_unit_scope_lead(t, actor, TicketAction.REQUEST_EXTENSION, lead_only=True)
        pending = session.scalar(
            select(Extension).where(
                Extension.ticket_id == t.id, Extension.state == ExtensionState.PENDING.value
            )
        )
        if pending is not None:
            raise Conflict("an extension request is already waiting for a decision", extension_id=pending.id)
        lead = self._lead(t)
        ext = Extension(
            ticket_id=t.id,
            assignment_id=lead.id if lead else None,
            hours=p.hours,
            reason=p.reason,
            state=ExtensionState.PENDING.value,
            requested_by_user_id=actor.user_id,
            requested_at=now,
        )
        session.add(ext)
        session.flush()
        self._ticket_step(
            session,
            t,
            actor,
            TicketAction.REQUEST_EXTENSION,
            now,
            {"extension_id": ext.id, "hours": p.hours, "reason": p.reason},
        )
        return ext

    def decide_extension(
        self, session: Session, actor: Actor, number: str, p: s.DecideExtension, now: datetime
    ) -> Extension:
        t = self._lock(session, number)
        q = select(Extension).where(
            Extension.ticket_id == t.id, Extension.state == ExtensionState.PENDING.value
        )
        if p.extension_id is not None:
            q = q.where(Extension.id == p.extension_id)
        ext = session.scalar(q)
        if ext is None:
            raise Conflict("no pending extension request to decide on this ticket")
        state = ExtensionState.APPROVED if p.approve else ExtensionState.REFUSED
        payload = {"extension_id": ext.id, "approved": p.approve, "hours": ext.hours, "note": p.note}
        self._ticket_step(session, t, actor, TicketAction.DECIDE_EXTENSION, now, payload)
        ext.state = state.value
        ext.decided_by_user_id = actor.user_id
        ext.decided_at = now
        ext.decision_note = p.note
        if p.approve:
            delta = timedelta(hours=ext.hours)
            if t.resolve_due_at is not None:
                t.resolve_due_at += delta
            for a in self._active_assignments(t):
                if a.resolve_due_at is not None:
                    a.resolve_due_at += delta
        return ext

    def review(
        self, session: Session, actor: Actor, number: str, accept: bool, note: str | None, now: datetime
    ) -> Ticket:
        t = self._lock(session, number)
        if accept:
            self._ticket_step(session, t, actor, TicketAction.REVIEW_ACCEPT, now, {"note": note})
            t.closed_at = now
            for a in self._active_assignments(t):
                self._assignment_transition(session, t, a, Actor.system(), AssignmentAction.CLOSE, now, {})
        else:
            self._ticket_step(
                session, t, actor, TicketAction.REVIEW_REJECT, now, {"reason": note, "counted": True}
            )
            t.reopen_count += 1
            lead = self._lead(t)
            if lead is not None:
                self._assignment_transition(
                    session, t, lead, Actor.system(), AssignmentAction.REOPEN, now, {}
                )
        return t

    def follow_up(self, session: Session, actor: Actor, number: str, p: s.FollowUp, now: datetime) -> Ticket:
        t = self._lock(session, number)
        payload = {"rating": p.rating.value, "comment": p.comment, "method": p.method}
        self._ticket_step(session, t, actor, TicketAction.FOLLOW_UP, now, payload)
        t.rating = p.rating.value
        t.rated_at = now
        return t

    def follow_up_unreached(
        self, session: Session, actor: Actor, number: str, p: s.WithNote, now: datetime
    ) -> Ticket:
        t = self._lock(session, number)
        self._ticket_step(session, t, actor, TicketAction.FOLLOW_UP_UNREACHED, now, {"note": p.note})
        return t

    def rate(self, session: Session, actor: Actor, number: str, p: s.Rate, now: datetime) -> Ticket:
        t = self._lock(session, number)
        self._ticket_step(
            session, t, actor, TicketAction.RATE, now, {"rating": p.rating.value, "comment": p.comment}
        )
        t.rating = p.rating.value
        t.rated_at = now
        return t

    def reopen(self, session: Session, actor: Actor, number: str, p: s.WithReason, now: datetime) -> Ticket:
        t = self._lock(session, number)
        if t.state == TicketState.RATED.value and not (t.rating and Rating(t.rating).is_dissatisfied):
            raise Conflict(
                "only a dissatisfied rating reopens a rated ticket",
                state=t.state,
                rating=t.rating,
                allowed=[],
            )
        lead = self._lead(t, include_closed=True)
        if lead is None:
            raise Conflict(
                "this ticket was never handled by a unit (answered directly): open a new ticket instead"
            )
        self._ticket_step(
            session,
            t,
            actor,
            TicketAction.REOPEN,
            now,
            {"reason": p.reason, "counted": True, "rating": t.rating},
        )
        t.reopen_count += 1
        t.closed_at = None
        t.rating = None
        t.rated_at = None
        self._assignment_transition(session, t, lead, Actor.system(), AssignmentAction.REOPEN, now, {})
        return t

    # ------------------------------------------------------------------ unit steps
    def assignment_step(
        self,
        session: Session,
        actor: Actor,
        assignment_id: int,
        action: AssignmentAction,
        params: BaseModel,
        now: datetime,
    ) -> Assignment:
        t = self._lock_assignment_ticket(session, assignment_id)
        a = next(x for x in t.assignments if x.id == assignment_id)
        if action not in tx.REQUESTABLE_ASSIGNMENT_ACTIONS:
            raise PermissionDenied(f"'{action.value}' is taken by the system, not requested")
        _check_assignment_role(action, actor)
        if actor.role is Role.HANDLER and actor.unit_id != a.unit_id:
            raise PermissionDenied("this assignment belongs to another unit")
        payload = params.model_dump(mode="json")
        is_lead = a.role == AssignmentRole.LEAD.value
        # Legality first, so that an illegal step always answers with the allowed ones.
        tx.next_assignment_state(AssignmentState(a.state), action, TicketState(t.state))
        if action is AssignmentAction.RETURN and a.first_receiver:
            raise Conflict(
                "首接责任制: the first-receiving unit handles this ticket while ownership is settled; "
                "ask a supervisor for a consultation instead of returning it",
                allowed=tx.allowed_assignment_actions(AssignmentState(a.state), TicketState(t.state)),
            )
        if action is AssignmentAction.REQUEST_CLOSE:
            if not is_lead:
                raise PermissionDenied("only the lead unit requests closing; assisting units give feedback")
            waiting = [
                x.unit.name
                for x in self._active_assignments(t)
                if x.role == AssignmentRole.ASSIST.value and x.state != AssignmentState.REPORTED.value
            ]
            if waiting:
                raise Conflict(
                    f"assisting units have not reported yet: {', '.join(waiting)}", waiting=waiting
                )
        if action is AssignmentAction.FEEDBACK and isinstance(params, s.Feedback) and params.attachment_ids:
            owned = set(
                session.scalars(
                    select(Attachment.id).where(
                        Attachment.ticket_id == t.id, Attachment.id.in_(params.attachment_ids)
                    )
                )
            )
            missing = [i for i in params.attachment_ids if i not in owned]
            if missing:
                raise NotFound(f"attachment(s) not found on this ticket: {missing}")
        self._assignment_transition(session, t, a, actor, action, now, payload)
        stamp = {
            AssignmentAction.SIGN: "signed_at",
            AssignmentAction.CONTACT: "contacted_at",
            AssignmentAction.ARRIVE: "arrived_at",
            AssignmentAction.FEEDBACK: "reported_at",
            AssignmentAction.REQUEST_CLOSE: "close_requested_at",
            AssignmentAction.RETURN: "returned_at",
        }[action]
        if getattr(a, stamp) is None or action in (AssignmentAction.FEEDBACK, AssignmentAction.RETURN):
            setattr(a, stamp, now)
        if action is AssignmentAction.RETURN:
            a.return_reason = payload.get("reason")
            t.return_count += 1
        if is_lead:
            consequence = {
                AssignmentAction.SIGN: TicketAction.LEAD_SIGNED,
                AssignmentAction.RETURN: TicketAction.LEAD_RETURNED,
                AssignmentAction.REQUEST_CLOSE: TicketAction.LEAD_REQUESTED_CLOSE,
            }.get(action)
            if consequence is not None and TicketState(t.state) in tx.TICKET_TRANSITIONS[consequence]:
                self._ticket_step(
                    session, t, Actor.system(), consequence, now, {"assignment_id": a.id, "unit": a.unit.code}
                )
        return a

    # ------------------------------------------------------------------ core
    def _ticket_step(
        self,
        session: Session,
        t: Ticket,
        actor: Actor,
        action: TicketAction,
        now: datetime,
        payload: dict[str, Any],
    ) -> TimelineEvent:
        _check_role(action, actor)
        to_state = tx.next_ticket_state(TicketState(t.state), action)
        from_state = t.state
        t.state = to_state.value
        t.updated_at = now
        ev = self._record(session, t, actor, action.value, from_state, to_state.value, now, payload)
        self._publish(session, DomainEvent(action.value, t, ev, None, payload), now)
        return ev

    def _assignment_transition(
        self,
        session: Session,
        t: Ticket,
        a: Assignment,
        actor: Actor,
        action: AssignmentAction,
        now: datetime,
        payload: dict[str, Any],
    ) -> TimelineEvent:
        to_state = tx.next_assignment_state(AssignmentState(a.state), action, TicketState(t.state))
        from_state = a.state
        a.state = to_state.value
        a.updated_at = now
        if action is AssignmentAction.CLOSE:
            a.closed_at = now
        payload = {**payload, "unit": a.unit.code, "unit_name": a.unit.name, "assignment_role": a.role}
        ev = self._record(
            session, t, actor, action.value, from_state, to_state.value, now, payload, assignment=a
        )
        self._publish(session, DomainEvent(action.value, t, ev, a, payload), now)
        return ev

    def _record(
        self,
        session: Session,
        t: Ticket,
        actor: Actor,
        action: str,
        from_state: str | None,
        to_state: str | None,
        now: datetime,
        payload: dict[str, Any],
        *,
        assignment: Assignment | None = None,
        public: bool = True,
    ) -> TimelineEvent:
        t.event_count = (t.event_count or 0) + 1
        ev = TimelineEvent(
            id=_sqlite_event_id(session),
            ticket_id=t.id,
            seq=t.event_count,
            assignment_id=assignment.id if assignment else None,
            at=now,
            machine="assignment" if assignment else "ticket",
            action=action,
            actor_user_id=actor.user_id,
            actor_name=actor.name,
            actor_role=actor.role.value,
            actor_unit_id=actor.unit_id,
            from_state=from_state,
            to_state=to_state,
            payload={k: v for k, v in payload.items() if v is not None},
            public=public,
        )
        session.add(ev)
        return ev

    def record_note(
        self,
        session: Session,
        t: Ticket,
        actor: Actor,
        action: str,
        now: datetime,
        payload: dict[str, Any],
        *,
        assignment: Assignment | None = None,
        public: bool = False,
    ) -> TimelineEvent:
        """Append a timeline event that changes no state (warnings, escalations, attachments …)."""
        return self._record(
            session, t, actor, action, None, None, now, payload, assignment=assignment, public=public
        )

    def _publish(self, session: Session, event: DomainEvent, now: datetime) -> None:
        for sub in self.subscribers:
            sub(session, event, now)

    def _lock_assignment_ticket(self, session: Session, assignment_id: int) -> Ticket:
        """Lock the ticket an assignment belongs to, with its assignments reloaded (see `_lock`)."""
        ticket_id = session.scalar(select(Assignment.ticket_id).where(Assignment.id == assignment_id))
        if ticket_id is None:
            raise NotFound(f"assignment {assignment_id} not found")
        t = session.scalar(_locked(select(Ticket).where(Ticket.id == ticket_id)))
        assert t is not None
        return t

    def _lock(self, session: Session, number: str) -> Ticket:
        t = session.scalar(_locked(select(Ticket).where(Ticket.number == number)))
        if t is None:
            raise NotFound(f"ticket {number} not found")
        return t

    @staticmethod
    def _active_assignments(t: Ticket) -> list[Assignment]:
        return [a for a in t.assignments if AssignmentState(a.state) in ACTIVE_ASSIGNMENT_STATES]

    @staticmethod
    def _lead(t: Ticket, include_closed: bool = False) -> Assignment | None:
        states = set(ACTIVE_ASSIGNMENT_STATES)
        if include_closed:
            states.add(AssignmentState.CLOSED)
        leads = [a for a in t.assignments if a.role == AssignmentRole.LEAD.value and a.state in states]
        return leads[-1] if leads else None

    def _check_unit_scope_lead(
        self, t: Ticket, actor: Actor, action: TicketAction, *, lead_only: bool = False
    ) -> None:
        """A handler acts on the whole ticket only for its own unit's assignment (the lead one if lead_only)."""
        _check_role(action, actor)
        if actor.role is not Role.HANDLER:
            return
        mine = [a for a in self._active_assignments(t) if a.unit_id == actor.unit_id]
        if not mine or (lead_only and all(a.role != AssignmentRole.LEAD.value for a in mine)):
            raise PermissionDenied(
                "this ticket is not assigned to your unit" + (" as lead" if lead_only else "")
            )
        if action in (TicketAction.PAUSE, TicketAction.RESUME) and all(
            a.role != AssignmentRole.LEAD.value for a in mine
        ):
            raise PermissionDenied("only the lead unit may pause or resume a ticket")


def _locked(q: Select[Ticket]) -> Select[Ticket]:
    """Lock the ticket row and reload it and its assignments.

    The lock may have waited for another transaction, and the session may already hold an older copy of the
    row (read before the lock, e.g. for a permission check): without populate_existing that copy would win.
    """
    return (
        q.with_for_update()
        .options(selectinload(Ticket.assignments))
        .execution_options(populate_existing=True)
    )


def _check_role(action: TicketAction, actor: Actor) -> None:
    try:
        tx.check_ticket_role(action, actor.role)
    except tx.Forbidden as e:
        raise PermissionDenied(str(e)) from None


def _check_assignment_role(action: AssignmentAction, actor: Actor) -> None:
    try:
        tx.check_assignment_role(action, actor.role)
    except tx.Forbidden as e:
        raise PermissionDenied(str(e)) from None


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


def ensure_day_sequence(engine: Engine, name: str) -> None:
    """Create the day's number sequence on PostgreSQL if missing (idempotent, race-safe).

    It starts after the highest number already stored for that day, so tickets written by importers or
    seeders without the sequence are never numbered twice.
    """
    day = name.rsplit("_", 1)[1]
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if conn.execute(text("SELECT to_regclass(:n)"), {"n": name}).scalar() is not None:
            return
        highest = conn.execute(
            select(func.max(Ticket.number)).where(Ticket.number >= day, Ticket.number < day + "~")
        ).scalar()
        start = int(highest[8:]) + 1 if highest else 1
        # A concurrent intake may create it between the check and the create.
        with contextlib.suppress(IntegrityError):
            conn.execute(text(f"CREATE SEQUENCE IF NOT EXISTS {name} START WITH {start}"))


def _sqlite_event_id(session: Session) -> int | None:
    """On SQLite, the new timeline event's id, counted on within the transaction; elsewhere None (the sequence).

    Why: SQLite offers the ORM no way to match the ids of a multi-row INSERT … RETURNING to its rows, so events
    without an id are inserted one statement each. `_record` is the only place events are made.
    """
    if session.get_bind().dialect.name != "sqlite":
        return None
    return _sqlite_take_ids(session, "timeline_events", 1)


def _sqlite_take_ids(session: Session, table: str, n: int) -> int:
    """The first of ``n`` new ids of ``table`` (SQLite), counted on from ``max(id)`` once per transaction.

    SQLite writers hold the database lock for the whole transaction (BEGIN IMMEDIATE), so the highest id cannot
    move under us: later rows of the same transaction count on from the first look-up.
    """
    tx = session.get_transaction()
    key = f"minsheng_next_id_{table}"
    cached = session.info.get(key)
    if cached is not None and cached[0] is tx:
        ident = int(cached[1])
    else:
        ident = int(
            session.connection().execute(text(f"SELECT coalesce(max(id), 0) + 1 FROM {table}")).scalar_one()
        )
    session.info[key] = (tx, ident + n)
    return ident


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


_NOT_PREPARED: Any = object()
_ID_POOL_KEY = "minsheng_ticket_id_pool"
#: session.info key: how many intakes the transaction is about to make (set by the intake writer).
RESERVE_KEY = "minsheng_intake_reserve"
_COUNTER_TABLE = cast(Table, TicketCounter.__table__)
_COUNTER_UPSERT = (
    sqlite_insert(_COUNTER_TABLE)
    .values(day=bindparam("day"), last=bindparam("n"))
    .on_conflict_do_update(index_elements=["day"], set_={"last": _COUNTER_TABLE.c.last + bindparam("n")})
    .returning(_COUNTER_TABLE.c.last)
)


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
