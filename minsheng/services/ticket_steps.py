"""The steps of the loop after intake: the desk's (dispatch, link, pause, extension, review, follow-up, reopen …)
and the units' (sign, return, contact, arrive, feedback, request_close), each one transaction's worth of checks,
state changes and timeline events through `EngineCore`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from minsheng.domain import transitions as tx
from minsheng.domain.roles import Actor, Role
from minsheng.domain.states import (
    ACTIVE_ASSIGNMENT_STATES,
    AssignmentRole,
    AssignmentState,
    ExtensionState,
    Rating,
    TicketState,
)
from minsheng.domain.transitions import AssignmentAction, TicketAction
from minsheng.services import schemas as s
from minsheng.services.errors import Conflict, Invalid, NotFound, PermissionDenied, ServiceError
from minsheng.services.org import dispatchable_units
from minsheng.services.ticket_core import (
    DomainEvent,
    EngineCore,
    check_assignment_role,
    check_role,
    locked,
)
from minsheng.storage.models import Assignment, Attachment, Extension, Ticket, TimelineEvent, Unit, User


class LoopSteps(EngineCore):
    """Every step of the loop after intake; each public method is one step."""

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
        check_role(action, actor)
        to_state = tx.next_ticket_state(TicketState(t.state), action)
        cancelled = []
        if action is TicketAction.REDISPATCH:
            for a in self._active_assignments(t):
                self._assignment_transition(session, t, a, Actor.system(), AssignmentAction.CANCEL, now, {})
                cancelled.append(a.unit.code)
        self._refuse_units_still_on(t, [lead, *assists])
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

    def _refuse_units_still_on(self, t: Ticket, units: list[Unit]) -> None:
        # After a lead's return the assisting units' assignments stay active; a unit holds one active
        # assignment per ticket (uq_assignments_active_unit), so naming it again is the dispatcher's conflict.
        active = {a.unit_id for a in self._active_assignments(t)}
        busy = [u for u in units if u.id in active]
        if busy:
            names = ", ".join(f"{u.code} {u.name}" for u in busy)
            raise Conflict(
                f"unit(s) still working on this ticket: {names}; choose another unit, or redispatch "
                "(which cancels the active assignments first)",
                state=t.state,
                units=[u.code for u in busy],
            )

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
            session.scalar(locked(select(Ticket).where(Ticket.id == tid)))
        t = session.get_one(Ticket, this_id)
        target = session.get_one(Ticket, other_id)
        if target.state == TicketState.MERGED.value:
            raise Conflict(
                f"ticket {target.number} is itself merged; link to {target.number}'s master instead"
            )
        check_role(action, actor)
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

    def confer(self, session: Session, actor: Actor, number: str, p: s.Conference, now: datetime) -> Ticket:
        t = self._lock(session, number)
        if p.participants:
            known = set(session.scalars(select(Unit.code).where(Unit.code.in_(p.participants))))
            missing = [c for c in p.participants if c not in known]
            if missing:
                raise NotFound(f"unknown unit(s): {', '.join(missing)}")
        self._check_unit_scope_lead(t, actor, TicketAction.CONFER)
        self._ticket_step(
            session,
            t,
            actor,
            TicketAction.CONFER,
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
        before = t.resolve_due_at
        self._ticket_step(session, t, actor, TicketAction.DECIDE_EXTENSION, now, payload)
        ext.state = state.value
        ext.decided_by_user_id = actor.user_id
        ext.decided_at = now
        ext.decision_note = p.note
        # The time-limit engine moves the deadlines in the policy's kind of time as the step is recorded;
        # without a stored deadline to move (no policy applied) the extension is wall-clock hours.
        if p.approve and t.resolve_due_at == before:
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
        """The citizen's own rating. A follow-up call records what staff heard (and rates the ticket, so that the
        measures count it); the citizen keeps the last word: a rating sent after a follow-up replaces the
        follow-up's (a dissatisfied one can then reopen the ticket). A citizen rates once."""
        t = self._lock(session, number)
        payload = {"rating": p.rating.value, "comment": p.comment}
        if t.state == TicketState.RATED.value:
            rated_by_citizen = session.scalar(
                select(TimelineEvent.id)
                .where(TimelineEvent.ticket_id == t.id, TimelineEvent.action == TicketAction.RATE.value)
                .limit(1)
            )
            if rated_by_citizen is not None:
                raise Conflict("this ticket has already been rated by the citizen", state=t.state, allowed=[])
            # Rated by a follow-up only: the citizen's rating is recorded over it, the state stays RATED.
            check_role(TicketAction.RATE, actor)
            payload["replaces"] = t.rating
            ev = self._record(session, t, actor, TicketAction.RATE.value, t.state, t.state, now, payload)
            self._publish(session, DomainEvent(TicketAction.RATE.value, t, ev, None, payload), now)
            t.updated_at = now
        else:
            self._ticket_step(session, t, actor, TicketAction.RATE, now, payload)
        t.rating = p.rating.value
        t.rated_at = now
        return t

    def reopen(self, session: Session, actor: Actor, number: str, p: s.WithReason, now: datetime) -> Ticket:
        t = self._lock(session, number)
        refused = _reopen_refusal(t)
        if refused is not None:
            raise refused
        lead = self._lead(t, include_closed=True)
        assert lead is not None  # _reopen_refusal looked for it
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
        check_assignment_role(action, actor)
        if actor.role is Role.HANDLER and actor.unit_id != a.unit_id:
            raise PermissionDenied("this assignment belongs to another unit")
        payload = params.model_dump(mode="json")
        is_lead = a.role == AssignmentRole.LEAD.value
        # Legality first, so that an illegal step always answers with the allowed ones.
        tx.next_assignment_state(AssignmentState(a.state), action, TicketState(t.state))
        self._check_unit_step(session, t, a, action, params)
        self._assignment_transition(session, t, a, actor, action, now, payload)
        if isinstance(params, s.Feedback) and params.attachment_ids:
            _publish_photos(session, t, a, params.attachment_ids)
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

    def _check_unit_step(
        self,
        session: Session,
        t: Ticket,
        a: Assignment,
        action: AssignmentAction,
        params: BaseModel,
    ) -> None:
        """What a legal unit step also needs: the assignment's own situation (`_unit_refusal`), attachments of
        this ticket."""
        refused = _unit_refusal(t, a, action)
        if refused is not None:
            raise refused()
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


def _publish_photos(session: Session, t: Ticket, a: Assignment, ids: list[int]) -> None:
    """A unit's feedback is public, and so are the photos it names that the unit's own people uploaded: the
    console's feedback form records its photos as public notes, and a photo uploaded through the API first
    (an internal note on its own) becomes public once a feedback names it. Photos of others (the centre's
    notes) stay as they were."""
    theirs = (
        select(Attachment.event_id)
        .join(User, User.id == Attachment.uploaded_by_user_id)
        .where(Attachment.ticket_id == t.id, Attachment.id.in_(ids), User.unit_id == a.unit_id)
    )
    session.execute(
        update(TimelineEvent)
        .where(TimelineEvent.id.in_(theirs), TimelineEvent.ticket_id == t.id, TimelineEvent.public.is_(False))
        .values(public=True)
        .execution_options(synchronize_session="fetch")
    )


# ---------------------------------------------------------------------- what is offered
# The steps a view offers (`allowed_actions`) are those the steps above would accept from the viewer now: the
# state machines' legal steps, less what the viewer's role, its unit's current assignments and the ticket's
# situation refuse. One rule per refusal, shared with the step that raises it, so that nothing offered answers
# 403 or 409 (tests/integration/test_offered_steps.py tries every step in every situation).


def _active(t: Ticket) -> list[Assignment]:
    return [x for x in t.assignments if AssignmentState(x.state) in ACTIVE_ASSIGNMENT_STATES]


def _unit_refusal(t: Ticket, a: Assignment, action: AssignmentAction) -> Callable[[], ServiceError] | None:
    """Why a legal unit step is refused for this assignment's situation (the error, made when raised), or None."""
    if action is AssignmentAction.RETURN and a.first_receiver:
        return lambda: Conflict(
            "首接责任制: the first-receiving unit handles this ticket while ownership is settled; "
            "ask a supervisor for a consultation instead of returning it",
            allowed=offered_unit_steps(t, a),
        )
    if action is AssignmentAction.REQUEST_CLOSE:
        if a.role != AssignmentRole.LEAD.value:
            return lambda: PermissionDenied(
                "only the lead unit requests closing; assisting units give feedback"
            )
        waiting = [
            x.unit.name
            for x in _active(t)
            if x.role == AssignmentRole.ASSIST.value and x.state != AssignmentState.REPORTED.value
        ]
        if waiting:
            return lambda: Conflict(
                f"assisting units have not reported yet: {', '.join(waiting)}", waiting=waiting
            )
    return None


def offered_unit_steps(t: Ticket, a: Assignment, who: Actor | None = None) -> list[str]:
    """The unit steps `assignment_step` accepts now on ``a`` (from ``who``, when given: a handler of its unit)."""
    if who is not None and (who.role is not Role.HANDLER or who.unit_id != a.unit_id):
        return []
    legal = tx.allowed_assignment_actions(AssignmentState(a.state), TicketState(t.state))
    return [x for x in legal if _unit_refusal(t, a, AssignmentAction(x)) is None]


def _reopen_refusal(t: Ticket) -> Conflict | None:
    if t.state == TicketState.RATED.value and not (t.rating and Rating(t.rating).is_dissatisfied):
        return Conflict(
            "only a dissatisfied rating reopens a rated ticket", state=t.state, rating=t.rating, allowed=[]
        )
    if EngineCore._lead(t, include_closed=True) is None:
        return Conflict(
            "this ticket was never handled by a unit (answered directly): open a new ticket instead"
        )
    return None


# A handler's unit takes these steps of the whole ticket only as the lead of a current assignment, `confer` with
# any current assignment (`EngineCore._check_unit_scope_lead`).
_LEAD_ONLY = frozenset({TicketAction.PAUSE, TicketAction.RESUME, TicketAction.REQUEST_EXTENSION})


def _ticket_refused(t: Ticket, who: Actor | None, action: TicketAction, pending_extension: bool) -> bool:
    if who is not None:
        if who.role not in tx.TICKET_ACTION_ROLES[action]:
            return True
        if who.role is Role.HANDLER and action in (*_LEAD_ONLY, TicketAction.CONFER):
            mine = [x for x in _active(t) if x.unit_id == who.unit_id]
            lead = any(x.role == AssignmentRole.LEAD.value for x in mine)
            if not mine or (action in _LEAD_ONLY and not lead):
                return True
    if action is TicketAction.REOPEN:
        return _reopen_refusal(t) is not None
    if action is TicketAction.REQUEST_EXTENSION:
        return pending_extension
    if action is TicketAction.DECIDE_EXTENSION:
        return not pending_extension
    return False


def offered_ticket_steps(t: Ticket, who: Actor | None, *, pending_extension: bool) -> list[str]:
    """The ticket steps accepted now (from ``who``, when given). ``pending_extension``: an extension request
    waits for a decision. Steps that name another ticket or unit (dispatch, merge …) are offered; their
    parameters are checked when taken."""
    return [
        x
        for x in tx.allowed_ticket_actions(TicketState(t.state))
        if not _ticket_refused(t, who, TicketAction(x), pending_extension)
    ]
