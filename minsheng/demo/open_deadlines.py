"""Deadlines and timers of a seeded history's open assignments, as the clock subscriber would have left them.

The replay runs without the clock subscriber (it would cost a policy lookup, deadline rows and timers for each
of the ~40,000 historical assignments, nearly all of them long closed). :func:`plan_open_deadlines` gives the
open ones what the subscriber would have left them: deadlines counted from the dispatch on the city's calendar
with the policy of each ticket, met by the unit steps taken since, restarted by a reopen, shifted by a pause,
moved by an approved extension; unfired timers for what is still owed; and the due times mirrored on the
assignment and the ticket, so that inboxes count down and the worker raises warnings and overdue marks.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from minsheng.config import Settings
from minsheng.domain.states import ACTIVE_ASSIGNMENT_STATES
from minsheng.services.tickets import TicketEngine
from minsheng.services.timelimits.config import TimeLimitConfig
from minsheng.services.timelimits.policies import ladder_to_json
from minsheng.services.timelimits.subscriber import Clockwork
from minsheng.services.uow import writing
from minsheng.storage.db import Database
from minsheng.storage.models import Assignment, Category, Ticket, TimelineEvent
from minsheng.storage.timelimit_tables import StepDeadline, TimeLimitZoneArea, Timer
from minsheng.timelimits.calendar import WorkCalendar
from minsheng.timelimits.escalation import plan_timers
from minsheng.timelimits.policy import PolicySet, TimeLimitPolicy
from minsheng.timelimits.rules import AssignmentClock, StepClock

__all__ = ["plan_open_deadlines"]


@dataclass
class _Plan:
    """What the pass writes: deadline and timer rows, due times of assignments and tickets."""

    deadlines: list[dict[str, Any]] = field(default_factory=list)
    timers: list[dict[str, Any]] = field(default_factory=list)
    assignment_dues: list[dict[str, Any]] = field(default_factory=list)
    ticket_dues: list[dict[str, Any]] = field(default_factory=list)


def _chunks(items: Sequence[int], size: int = 900) -> Iterator[Sequence[int]]:
    # 900: under SQLite's smallest limit of bound parameters per statement on old builds (999).
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _zones(session: Session, clockwork: Clockwork, area_ids: Iterable[int | None]) -> dict[int, str | None]:
    """Policy zone of each area (none at all in the demo, unless an admin has mapped areas to zones)."""
    if session.scalar(select(TimeLimitZoneArea.area_id).limit(1)) is None:
        return {}
    probe = Ticket()
    out: dict[int, str | None] = {}
    for area_id in {a for a in area_ids if a is not None}:
        probe.area_id = area_id
        out[area_id] = clockwork.zone_of(session, probe)
    return out


def plan_open_deadlines(
    db: Database, now: datetime, config: TimeLimitConfig | None = None
) -> tuple[int, int]:
    """Deadlines and timers for every open assignment, as the clock subscriber would have planned them (see
    the module's docstring), under ``config`` (default: the preset MINSHENG_CLOCK_PRESET names). Returns
    (deadlines, timers) written."""
    with writing(db) as session:
        clockwork = Clockwork(TicketEngine(), config or TimeLimitConfig.from_preset(Settings().clock_preset))
        policies = clockwork.policy_set(session)
        calendar = clockwork.calendar(session)
        by_ticket, ticket_info = _open_assignments(session, clockwork, policies, calendar)
        _walk_timelines(session, by_ticket, ticket_info, calendar)
        plan = _Plan()
        for tid, assignments in by_ticket.items():
            state, policy = ticket_info[tid]
            for a in assignments:
                _plan_assignment(plan, tid, a, state, policy, now)
        _write(session, plan)
    return len(plan.deadlines), len(plan.timers)


def _open_assignments(
    session: Session, clockwork: Clockwork, policies: PolicySet, calendar: WorkCalendar
) -> tuple[dict[int, list[AssignmentClock]], dict[int, tuple[str, TimeLimitPolicy]]]:
    """The open assignments by ticket with their deadlines as planned at the dispatch, and each ticket's
    (state, policy)."""
    active = [x.value for x in ACTIVE_ASSIGNMENT_STATES]
    rows = session.execute(
        select(
            Assignment.id,
            Assignment.ticket_id,
            Assignment.role,
            Assignment.created_at,
            Ticket.state,
            Ticket.urgency,
            Ticket.area_id,
            Category.code,
        )
        .join(Ticket, Ticket.id == Assignment.ticket_id)
        .outerjoin(Category, Category.id == Ticket.category_id)
        .where(Assignment.state.in_(active))
        .order_by(Assignment.id)
    ).all()
    zones = _zones(session, clockwork, (r.area_id for r in rows))
    by_ticket: dict[int, list[AssignmentClock]] = {}
    ticket_info: dict[int, tuple[str, TimeLimitPolicy]] = {}
    for r in rows:
        policy = policies.policy_for(r.code, r.urgency, zones.get(r.area_id) if r.area_id else None)
        ticket_info[r.ticket_id] = (r.state, policy)
        a = AssignmentClock.start(r.id, r.role, r.created_at, policy, calendar)

        by_ticket.setdefault(r.ticket_id, []).append(a)
    return by_ticket, ticket_info


def _walk_timelines(
    session: Session,
    by_ticket: dict[int, list[AssignmentClock]],
    ticket_info: dict[int, tuple[str, TimeLimitPolicy]],
    calendar: WorkCalendar,
) -> None:
    """Walk each open ticket's timeline after the dispatch, as the subscriber saw it event by event."""
    for chunk in _chunks(sorted(by_ticket)):
        events = session.execute(
            select(
                TimelineEvent.ticket_id,
                TimelineEvent.at,
                TimelineEvent.machine,
                TimelineEvent.action,
                TimelineEvent.assignment_id,
                TimelineEvent.payload,
            )
            .where(TimelineEvent.ticket_id.in_(chunk))
            .order_by(TimelineEvent.ticket_id, TimelineEvent.seq)
        ).all()
        for ev in events:
            policy = ticket_info[ev.ticket_id][1]
            for a in by_ticket[ev.ticket_id]:
                if ev.at < a.created_at or (ev.machine == "assignment" and ev.assignment_id != a.id):
                    continue  # before this assignment, or another assignment's step
                assignment_id = a.id if ev.machine == "assignment" else None
                a.on_event(ev.action, assignment_id, ev.payload or {}, ev.at, policy, calendar)


def _plan_assignment(
    plan: _Plan, tid: int, a: AssignmentClock, state: str, policy: TimeLimitPolicy, now: datetime
) -> None:
    """One open assignment's deadline rows, the timers still owed, and its due times."""
    dues: dict[str, Any] = {"id": a.id}
    for step, sc in a.steps.items():
        d = sc.deadline
        plan.deadlines.append(
            {
                "ticket_id": tid,
                "assignment_id": a.id,
                "step": step,
                "started_at": d.started_at,
                "due_at": d.due_at,
                "unit": d.unit,
                "warn_shares": list(d.warn_shares),
                "warn_at": [x.isoformat() for x in d.warn_at],
                "ladder": ladder_to_json(policy.escalation.get(step)),
                "policy_name": policy.name[:200],
                "calendar_fallback": d.calendar_fallback,
                "generation": sc.generation,
                "met_at": sc.met_at,
            }
        )
        if step in ("sign", "resolve"):
            dues[f"{step}_due_at"] = d.due_at
        if (
            sc.met_at is None and state != "paused"
        ):  # met: its timers were dropped; paused: the clock stands still
            plan.timers.extend(_timer_rows(tid, a, step, sc, policy, now))
    if len(dues) > 1:
        dues.setdefault("sign_due_at", None)
        dues.setdefault("resolve_due_at", None)
        plan.assignment_dues.append(dues)
        if a.role == "lead" and dues["resolve_due_at"] is not None:
            plan.ticket_dues.append({"id": tid, "resolve_due_at": dues["resolve_due_at"]})


def _timer_rows(
    tid: int, a: AssignmentClock, step: str, sc: StepClock, policy: TimeLimitPolicy, now: datetime
) -> Iterator[dict[str, Any]]:
    d = sc.deadline
    specs = plan_timers(f"{a.id}.{sc.generation}", [d], policy.escalation.get(step), not_before=sc.planned_at)
    for spec in specs:
        # A warning of a deadline already passed would only arrive after its overdue mark.
        if spec.kind == "warning" and d.due_at <= now:
            continue
        yield {
            "key": spec.key,
            "ticket_id": tid,
            "assignment_id": a.id,
            "kind": spec.kind,
            "step": spec.step,
            "due_at": spec.due_at,
            "payload": dict(spec.payload),
            "created_at": sc.planned_at,
        }


def _write(session: Session, plan: _Plan) -> None:
    for i in range(0, len(plan.deadlines), 2000):
        session.execute(insert(StepDeadline), plan.deadlines[i : i + 2000])
    for i in range(0, len(plan.timers), 2000):
        session.execute(insert(Timer), plan.timers[i : i + 2000])
    if plan.assignment_dues:
        session.execute(update(Assignment), plan.assignment_dues)
    if plan.ticket_dues:
        session.execute(update(Ticket), plan.ticket_dues)
