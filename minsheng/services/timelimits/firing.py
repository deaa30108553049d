"""The worker's half of the time limits: claim due timers and fire them.

`fire_due` claims due timers (``due_at <= now AND fired_at IS NULL``, oldest first, ``batch`` at a time) through
the partial index, with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL so that many workers share the work without
firing anything twice (on SQLite, BEGIN IMMEDIATE serialises writers). Each batch is one transaction: each due
timer becomes one timeline event (warning, overdue, press, escalation) and notifications to whoever is on duty,
and is marked fired in the same transaction. A broken row or a bad template is logged and recorded, never fatal.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from minsheng.domain.roles import Actor, Role
from minsheng.domain.states import ACTIVE_ASSIGNMENT_STATES, AssignmentState
from minsheng.services.timelimits.city import failure_rules
from minsheng.services.timelimits.failures import STEP_LABELS, TARGET_LABELS, repeated_failure
from minsheng.services.timelimits.messages import Pass
from minsheng.services.timelimits.subscriber import Clockwork, deadline_rows
from minsheng.storage import dialect
from minsheng.storage.db import Database
from minsheng.storage.models import Ticket
from minsheng.storage.timelimit_tables import StepDeadline, Timer
from minsheng.timelimits.escalation import TimerSpec, timer_fired

log = logging.getLogger("minsheng.timelimits")

CLOCK_ACTOR = Actor(role=Role.SYSTEM, name="时限监控")


@dataclass
class FireStats:
    fired: int = 0
    skipped: int = 0
    errors: int = 0
    busy: int = 0
    events: int = 0
    batches: int = 0

    def add(self, other: FireStats) -> None:
        self.fired += other.fired
        self.skipped += other.skipped
        self.errors += other.errors
        self.busy += other.busy
        self.events += other.events
        self.batches += other.batches


# ---------------------------------------------------------------------------------------------- claiming
def claim_due(session: Session, now: datetime, batch: int) -> list[Timer]:
    """Up to ``batch`` timers due at ``now`` that no other worker holds, oldest first (locked until commit)."""
    q = (
        select(Timer)
        .where(Timer.fired_at.is_(None), Timer.due_at <= now)
        .order_by(Timer.due_at, Timer.id)
        .limit(batch)
    )
    return list(session.scalars(dialect.lock_rows(session, q, skip_locked=True)))


def fire_due(
    db: Database,
    now: datetime,
    clockwork: Clockwork,
    *,
    batch: int,
    worker_id: str,
    stop: threading.Event | None = None,
) -> FireStats:
    """Fire every timer due at ``now`` that no other worker holds, one transaction per batch; a stop request
    ends it between batches (a backlog after downtime is thousands of timers: SIGTERM must not wait for it)."""
    stats = FireStats()
    while stop is None or not stop.is_set():
        try:
            with db.write_sessions() as session, session.begin():
                timers = claim_due(session, now, batch)
                if not timers:
                    break
                result = fire_batch(clockwork, session, timers, now, worker_id, careful=False)
        except Exception:
            # Some row of the batch is broken: do the batch again, one savepoint per timer, so that only that
            # row is marked as failed (and the worker goes on).
            log.warning("batch failed; firing it again timer by timer", exc_info=True)
            with db.write_sessions() as session, session.begin():
                timers = claim_due(session, now, batch)
                if not timers:
                    break
                result = fire_batch(clockwork, session, timers, now, worker_id, careful=True)
        result.batches = 1
        stats.add(result)
        if result.busy == len(timers):
            break  # all held by others (their tickets are locked): they are being handled
    return stats


# ------------------------------------------------------------------------------------------------ firing
def _mark(tm: Timer, now: datetime, worker_id: str, outcome: str, errors: list[str]) -> None:
    tm.fired_at = now
    tm.locked_by = worker_id
    tm.outcome = outcome
    tm.error = "; ".join(errors)[:2000] or None


def fire_batch(
    cw: Clockwork,
    session: Session,
    timers: Sequence[Timer],
    now: datetime,
    worker_id: str,
    *,
    careful: bool = True,
) -> FireStats:
    """Fire claimed timers: each becomes its event and messages, and is marked fired, or left when its
    ticket is locked by someone else (a step in progress or another worker) for the next pass."""
    stats = FireStats()
    if not timers:
        return stats
    ticket_ids = sorted({tm.ticket_id for tm in timers})
    lock_q = select(Ticket.id).where(Ticket.id.in_(ticket_ids))
    if dialect.is_postgresql(session):
        # Never wait for a ticket lock while holding timer locks: an engine step holding the ticket may be
        # about to delete these very timers (that would be a deadlock).
        lock_q = lock_q.with_for_update(skip_locked=True)
    got = set(session.scalars(lock_q))
    tickets = {t.id: t for t in session.scalars(select(Ticket).where(Ticket.id.in_(got)))} if got else {}
    assignment_ids = [tm.assignment_id for tm in timers if tm.assignment_id is not None]
    rows = {(r.assignment_id, r.step): r for r in deadline_rows(session, sorted(set(assignment_ids)))}
    p = Pass(now, cw.messages.overrides(session))
    for tm in timers:
        t = tickets.get(tm.ticket_id)
        if t is None:
            stats.busy += 1
            continue
        p.errors = []
        row = rows.get((tm.assignment_id or 0, tm.step))
        if not careful:
            # The fast path: one flush for the whole batch. Any error rolls the batch back and the caller
            # runs it again with careful=True, where each timer has its own savepoint.
            outcome = _fire_one(cw, session, p, tm, t, row)
            _mark(tm, now, worker_id, outcome, p.errors)
            stats.fired += outcome == "fired"
            stats.skipped += outcome != "fired"
            continue
        try:
            with session.begin_nested():
                outcome = _fire_one(cw, session, p, tm, t, row)
                _mark(tm, now, worker_id, outcome, p.errors)
            if outcome == "fired":
                stats.fired += 1
            else:
                stats.skipped += 1
        except Exception as err:  # a broken row must not stop the others
            log.exception("timer %s could not fire", tm.key)
            with session.begin_nested():
                session.execute(
                    update(Timer)
                    .where(Timer.id == tm.id)
                    .values(
                        fired_at=now,
                        locked_by=worker_id,
                        outcome="error",
                        error=f"{type(err).__name__}: {err}"[:2000],
                    )
                )
            stats.errors += 1
    return stats


def _fire_one(
    cw: Clockwork, session: Session, p: Pass, tm: Timer, t: Ticket, row: StepDeadline | None
) -> str:
    a = next((x for x in t.assignments if x.id == tm.assignment_id), None)
    if a is None or AssignmentState(a.state) not in ACTIVE_ASSIGNMENT_STATES or t.state == "paused":
        return "skipped"
    subject = str(tm.payload.get("subject_id", ""))
    if row is None or row.met_at is not None or subject != f"{row.assignment_id}.{row.generation}":
        return "skipped"  # the step was done or re-planned after this timer was claimed
    fired = timer_fired(TimerSpec(tm.kind, tm.step, tm.due_at, tm.payload))  # type: ignore[arg-type]
    action = "press" if fired.kind == "escalation" and fired.action == "press" else fired.kind
    due = fired.deadline_at or row.due_at
    payload: dict[str, Any] = {
        "step": fired.step,
        "step_label": STEP_LABELS.get(fired.step, fired.step),
        "kind": fired.kind,
        "target": fired.target,
        "target_label": TARGET_LABELS.get(fired.target, fired.target),
        "index": fired.index,
        "name": fired.name or None,
        "due_at": due.isoformat(),
        "timer": tm.key,
        "unit": a.unit.code,
    }
    if fired.kind == "warning":
        payload["share"] = tm.payload.get("share")
    cw.engine.record_note(session, t, CLOCK_ACTOR, action, p.now, payload, assignment=a)
    ctx: dict[str, Any] = {
        "ticket_number": t.number,
        "unit_name": a.unit.name,
        "step_label": payload["step_label"],
        "due_at": due,
        "category_name": cw.messages.category_name(session, t, p.categories),
        "summary": t.title,
    }
    notify = cw.messages.notify
    if fired.kind == "warning":
        notify(session, p, t, a.unit, "unit", "warning", {**ctx, "remaining": due - p.now}, tm.key)
    elif fired.kind == "overdue":
        notify(session, p, t, a.unit, "unit", "overdue", {**ctx, "overdue_by": p.now - due}, tm.key)
        # The ladder is read from the store each time (a primary-key read): an admin's edit applies at once.
        rules, _stored = failure_rules(session, cw.config)
        ladder = rules.ladder()
        if ladder is not None and fired.step in rules.steps:
            repeated_failure(cw, session, p, ladder, t, a, tm.step, tm.due_at, tm.key, ctx)
    else:
        esc = {
            **ctx,
            "overdue_by": p.now - due,
            "target_label": payload["target_label"],
            "level_name": fired.name,
        }
        notify(session, p, t, a.unit, fired.target, "escalation", esc, tm.key)
    return "fired"
