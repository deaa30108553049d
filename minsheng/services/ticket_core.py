"""The core of the ticket engine: the one place states change and timeline events are appended.

Every step of the loop (`ticket_steps`, `ticket_intake`) goes through `EngineCore._ticket_step` or
`_assignment_transition`, which check the domain's transition tables, append a `TimelineEvent` and hand a
`DomainEvent` to the subscribers (time limits, outbox …) inside the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, selectinload

from minsheng.domain import transitions as tx
from minsheng.domain.roles import Actor, Role
from minsheng.domain.states import ACTIVE_ASSIGNMENT_STATES, AssignmentRole, AssignmentState, TicketState
from minsheng.domain.transitions import AssignmentAction, TicketAction
from minsheng.services.errors import NotFound, PermissionDenied
from minsheng.services.measures.facts import touch as touch_facts
from minsheng.services.ticket_ids import sqlite_event_id
from minsheng.storage.models import Assignment, Ticket, TimelineEvent


@dataclass
class DomainEvent:
    """A fact produced by a use case, handed to subscribers inside the same transaction (timers, outbox …)."""

    action: str
    ticket: Ticket
    event: TimelineEvent
    assignment: Assignment | None = None
    payload: dict[str, Any] = field(default_factory=dict)


Subscriber = Callable[[Session, DomainEvent, datetime], None]


class EngineCore:
    """Transitions, timeline, subscribers and ticket locks; the steps of the loop build on it."""

    def __init__(self) -> None:
        self.subscribers: list[Subscriber] = []

    def _ticket_step(
        self,
        session: Session,
        t: Ticket,
        actor: Actor,
        action: TicketAction,
        now: datetime,
        payload: dict[str, Any],
    ) -> TimelineEvent:
        check_role(action, actor)
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
            id=sqlite_event_id(session),
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
        # The daily measure facts of this ticket are brought up to date before the transaction commits.
        touch_facts(session, t, ev)
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
        t = session.scalar(locked(select(Ticket).where(Ticket.id == ticket_id)))
        assert t is not None
        return t

    def _lock(self, session: Session, number: str) -> Ticket:
        t = session.scalar(locked(select(Ticket).where(Ticket.number == number)))
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
        check_role(action, actor)
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


def locked(q: Select[Ticket]) -> Select[Ticket]:
    """Lock the ticket row and reload it and its assignments.

    The lock may have waited for another transaction, and the session may already hold an older copy of the
    row (read before the lock, e.g. for a permission check): without populate_existing that copy would win.
    """
    return (
        q.with_for_update()
        .options(selectinload(Ticket.assignments))
        .execution_options(populate_existing=True)
    )


def check_role(action: TicketAction, actor: Actor) -> None:
    try:
        tx.check_ticket_role(action, actor.role)
    except tx.Forbidden as e:
        raise PermissionDenied(str(e)) from None


def check_assignment_role(action: AssignmentAction, actor: Actor) -> None:
    try:
        tx.check_assignment_role(action, actor.role)
    except tx.Forbidden as e:
        raise PermissionDenied(str(e)) from None
