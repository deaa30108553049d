"""The time-limit subscriber: deadlines and timers kept in step with every ticket event.

`Clockwork` runs inside the transaction of each engine step and applies the rules of `minsheng.timelimits.rules`:

- a new assignment: resolve the policy of (category, urgency, zone), compute the deadlines on the working
  calendar (statutory + local entries), store them (`StepDeadline`, mirrored into ``Assignment.sign_due_at`` /
  ``resolve_due_at`` and ``Ticket.resolve_due_at``), plan the timers (warnings, overdue, ladder steps) and tell
  the unit;
- a unit step done (sign, contact, arrive, feedback) meets its deadline and drops its unfired timers;
  request_close, close, cancel and return meet all of the assignment's;
- pause drops the unfired timers; resume shifts the deadlines by the pause and plans them again;
- an approved extension extends the resolve deadline; a reopen (回流) sets fresh feedback/resolve deadlines;
- the citizen gets an SMS on intake (number + query code) and on closing (with the rating request).

The worker's half, firing the timers, is `minsheng.services.timelimits.firing`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from minsheng.domain.states import ACTIVE_ASSIGNMENT_STATES, AssignmentState
from minsheng.services.ticket_core import DomainEvent, EngineCore
from minsheng.services.timelimits.city import failure_rules
from minsheng.services.timelimits.config import TimeLimitConfig
from minsheng.services.timelimits.failures import STEP_LABELS, repeated_failure
from minsheng.services.timelimits.messages import Messenger, Pass
from minsheng.services.timelimits.policies import PolicyBook, ladder_from_json, ladder_to_json
from minsheng.storage import dialect
from minsheng.storage.models import Assignment, Ticket
from minsheng.storage.timelimit_tables import StepDeadline, Timer
from minsheng.timelimits.calendar import WorkCalendar
from minsheng.timelimits.escalation import plan_timers
from minsheng.timelimits.policy import Deadline, PolicySet, TimeLimitPolicy
from minsheng.timelimits.rules import Change, effect_of, extended, reopen_deadlines, shifted, start_deadlines


def deadline_of(row: StepDeadline) -> Deadline:
    return Deadline(
        row.step,
        row.due_at,
        tuple(datetime.fromisoformat(x) for x in row.warn_at),
        row.started_at,
        row.unit,  # type: ignore[arg-type]
        tuple(row.warn_shares),
        row.calendar_fallback,
    )


def _store_deadline(row: StepDeadline, d: Deadline) -> None:
    row.due_at = d.due_at
    row.started_at = d.started_at
    row.unit = d.unit
    row.warn_at = [x.isoformat() for x in d.warn_at]
    row.warn_shares = list(d.warn_shares)
    row.calendar_fallback = d.calendar_fallback


def deadline_rows(session: Session, assignment_ids: Sequence[int]) -> list[StepDeadline]:
    """The stored deadlines of the assignments, in the order they were made."""
    if not assignment_ids:
        return []
    q = select(StepDeadline).where(StepDeadline.assignment_id.in_(assignment_ids)).order_by(StepDeadline.id)
    return list(session.scalars(q))


class Clockwork:
    """Engine subscriber; also what the worker fires timers with. One per application (small caches, no
    sessions): the engine it records clock events through, the configuration, the policy book, the messenger."""

    def __init__(self, engine: EngineCore, config: TimeLimitConfig | None = None) -> None:
        self.engine = engine
        self.config = config or TimeLimitConfig()
        self.policies = PolicyBook(self.config)
        self.messages = Messenger(self.config)

    # ------------------------------------------------------------------------------------- lookups
    def policy_set(self, session: Session) -> PolicySet:
        return self.policies.policy_set(session)

    def calendar(self, session: Session) -> WorkCalendar:
        return self.policies.calendar(session)

    def zone_of(self, session: Session, t: Ticket) -> str | None:
        return self.policies.zone_of(session, t)

    def policy_for(self, session: Session, t: Ticket) -> TimeLimitPolicy:
        return self.policies.policy_for(session, t)

    # ---------------------------------------------------------------------------------- subscriber
    def __call__(self, session: Session, ev: DomainEvent, now: datetime) -> None:
        a, t, action = ev.assignment, ev.ticket, ev.action
        if action == "intake":
            extra = {"query_code": ev.payload.get("query_code")}
            self.messages.citizen_sms(session, t, "ticket_accepted_sms", extra, now)
            return
        if action in ("review_accept", "answer_directly"):
            ctx = {"rating_url": self.config.rating_url}
            self.messages.citizen_sms(session, t, "ticket_closed_sms", ctx, now, suffix=str(t.reopen_count))
            return
        if action == "return" and a is not None:
            self.count_return(session, t, a, now)
        effect = effect_of(action, a.role if a is not None else None, ev.payload)
        if effect is None:
            return
        if effect.change is Change.HOLD:
            self._drop_unfired(session, [x.id for x in t.assignments])
        elif effect.change is Change.SHIFT:
            assert effect.paused_from is not None
            self.shift_for_pause(session, t, effect.paused_from, now)
        elif effect.change is Change.EXTEND:
            self.extend_resolve(session, t, effect.delta, now)
        elif a is not None and effect.change is Change.START:
            self.start(session, t, a, now)
        elif a is not None and effect.change is Change.MEET:
            self.meet(session, a, effect.steps, now)
        elif a is not None and effect.change is Change.RESTART:
            self.restart(session, t, a, now)

    def count_return(self, session: Session, t: Ticket, a: Assignment, now: datetime) -> None:
        """A unit returning a ticket is a failure where the city's repeated-failure ladder counts returns."""
        rules, _stored = failure_rules(session, self.config)
        ladder = rules.ladder()
        if ladder is None or not rules.returns:
            return
        p = Pass(now, self.messages.overrides(session))
        ctx = {
            "ticket_number": t.number,
            "unit_name": a.unit.name,
            "step_label": STEP_LABELS["return"],
            "due_at": now,
            "category_name": self.messages.category_name(session, t, p.categories),
            "summary": t.title,
        }
        repeated_failure(self, session, p, ladder, t, a, "return", now, f"{t.id}:{a.id}:return", ctx)

    def start(self, session: Session, t: Ticket, a: Assignment, now: datetime) -> dict[str, Deadline]:
        """Deadlines and timers of a new assignment."""
        policy = self.policy_for(session, t)
        deadlines = start_deadlines(policy, a.role, now, self.calendar(session))
        rows = []
        for step, d in deadlines.items():
            row = StepDeadline(
                ticket_id=t.id,
                assignment_id=a.id,
                step=step,
                ladder=ladder_to_json(policy.escalation.get(step)),
                policy_name=policy.name[:200],
                generation=0,
            )
            _store_deadline(row, d)
            session.add(row)
            rows.append(row)
        session.flush()
        self._mirror(t, a, deadlines)
        for row in rows:
            self._replan(session, t, row, now)
        if "sign" in deadlines:
            self.messages.notify_new_assignment(session, t, a, deadlines["sign"].due_at, now)
        return deadlines

    def meet(self, session: Session, a: Assignment, steps: Iterable[str] | None, now: datetime) -> None:
        """Steps done (None: everything the assignment owed): their deadlines are met, their timers dropped."""
        q = update(StepDeadline).where(StepDeadline.assignment_id == a.id, StepDeadline.met_at.is_(None))
        d = delete(Timer).where(Timer.assignment_id == a.id, Timer.fired_at.is_(None))
        if steps is not None:
            wanted = list(steps)
            q = q.where(StepDeadline.step.in_(wanted))
            d = d.where(Timer.step.in_(wanted))
        session.execute(q.values(met_at=now))
        session.execute(d)

    def restart(self, session: Session, t: Ticket, a: Assignment, now: datetime) -> None:
        """A reopen: fresh feedback/resolve deadlines counted from now, with timers that fire anew."""
        policy = self.policy_for(session, t)
        deadlines = reopen_deadlines(policy, now, self.calendar(session))
        existing = {r.step: r for r in deadline_rows(session, [a.id])}
        for step, dl in deadlines.items():
            row = existing.get(step)
            if row is None:
                row = StepDeadline(ticket_id=t.id, assignment_id=a.id, step=step, generation=0)
                session.add(row)
            else:
                row.generation += 1
            row.ladder = ladder_to_json(policy.escalation.get(step))
            row.policy_name = policy.name[:200]
            row.met_at = None
            _store_deadline(row, dl)
            session.flush()
            self._replan(session, t, row, now)
        self._mirror(t, a, deadlines)

    def shift_for_pause(self, session: Session, t: Ticket, paused_from: datetime, now: datetime) -> None:
        cal = self.calendar(session)
        for a in self._active(t):
            moved: dict[str, Deadline] = {}
            for row in deadline_rows(session, [a.id]):
                if row.met_at is not None:
                    continue
                moved_deadline = shifted(deadline_of(row), paused_from, now, cal)
                _store_deadline(row, moved_deadline)
                moved[row.step] = moved_deadline
                self._replan(session, t, row, now)
            self._mirror(t, a, moved)

    def extend_resolve(self, session: Session, t: Ticket, delta: timedelta, now: datetime) -> None:
        """An approved extension: the resolve deadlines move by ``delta`` in the policy's kind of time (see
        `extended`), their timers fire anew, and the assignments' and ticket's ``resolve_due_at`` follow.
        """
        if delta <= timedelta(0):
            return
        cal = self.calendar(session)
        active = {a.id: a for a in self._active(t)}
        for row in deadline_rows(session, list(active)):
            if row.step != "resolve" or row.met_at is not None:
                continue
            moved = extended(deadline_of(row), delta, cal)
            _store_deadline(row, moved)
            row.generation += 1
            self._replan(session, t, row, now)
            self._mirror(t, active[row.assignment_id], {"resolve": moved})

    # --------------------------------------------------------------------------------------- helpers
    @staticmethod
    def _active(t: Ticket) -> list[Assignment]:
        return [a for a in t.assignments if AssignmentState(a.state) in ACTIVE_ASSIGNMENT_STATES]

    @staticmethod
    def _mirror(t: Ticket, a: Assignment, deadlines: Mapping[str, Deadline]) -> None:
        if "sign" in deadlines:
            a.sign_due_at = deadlines["sign"].due_at
        if "resolve" in deadlines:
            a.resolve_due_at = deadlines["resolve"].due_at
            if a.role == "lead":
                t.resolve_due_at = a.resolve_due_at

    @staticmethod
    def _drop_unfired(session: Session, assignment_ids: Sequence[int]) -> None:
        if assignment_ids:
            session.execute(
                delete(Timer).where(Timer.assignment_id.in_(assignment_ids), Timer.fired_at.is_(None))
            )

    def _replan(self, session: Session, t: Ticket, row: StepDeadline, now: datetime) -> None:
        """Replace the unfired timers of one deadline; keys already fired stay fired (ON CONFLICT DO NOTHING)."""
        session.execute(
            delete(Timer).where(
                Timer.assignment_id == row.assignment_id, Timer.step == row.step, Timer.fired_at.is_(None)
            )
        )
        if t.state == "paused":
            return  # a paused ticket's clock stands still; resume plans again
        subject = f"{row.assignment_id}.{row.generation}"
        specs = plan_timers(subject, [deadline_of(row)], ladder_from_json(row.ladder), not_before=now)
        if not specs:
            return
        values = [
            {
                "key": spec.key,
                "ticket_id": row.ticket_id,
                "assignment_id": row.assignment_id,
                "kind": spec.kind,
                "step": spec.step,
                "due_at": spec.due_at,
                "payload": dict(spec.payload),
                "created_at": now,
            }
            for spec in specs
        ]
        session.execute(
            dialect.insert(session)(Timer).values(values).on_conflict_do_nothing(index_elements=["key"])
        )
