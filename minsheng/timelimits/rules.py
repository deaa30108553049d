"""The time-limit rules of the loop: which deadlines an assignment owes and what each ticket event does to them.

One rule set for both planners of deadlines: the time-limit subscriber
(`minsheng.services.timelimits.subscriber`), which keeps them in the database as each event happens, and the
demo seeder, which replays history without the subscriber and plans the open tickets' deadlines afterwards
from their timelines (`AssignmentClock`). Both ask `effect_of` what an event changes and take the deadlines
from `start_deadlines` / `reopen_deadlines` / `shifted` / `extended`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from minsheng.timelimits.calendar import WorkCalendar
from minsheng.timelimits.policy import Deadline, TimeLimitPolicy, compute_deadlines, extend, shift_for_pause

# Which deadlines a unit step meets. 嘉兴's "instructions within 3 min" are given with the unit's first report.
DONE_BY: Mapping[str, frozenset[str]] = {
    "sign": frozenset({"sign"}),
    "contact": frozenset({"contact"}),
    "arrive": frozenset({"arrive"}),
    "feedback": frozenset({"feedback", "instruct"}),
}
# Steps after which the assignment owes nothing more (until a reopen).
ENDS_ASSIGNMENT = frozenset({"request_close", "close", "cancel", "return"})
# An assisting unit signs, then reports back; that report is the end of its part.
ASSIST_STEPS = frozenset({"sign", "feedback", "resolve"})
# A reopen (回流) sends the work back: the unit owes a new report and a new result, not a new signature.
REOPEN_STEPS = ("feedback", "resolve")


class Change(Enum):
    START = "start"  # a new assignment: its deadlines begin
    MEET = "meet"  # steps done: their deadlines are met
    RESTART = "restart"  # a reopen: fresh feedback and resolve deadlines from now
    HOLD = "hold"  # a pause: the clock stands still (no timers; deadlines kept)
    SHIFT = "shift"  # a resume: the unmet deadlines move by the pause
    EXTEND = "extend"  # an approved extension: the unmet resolve deadlines move


@dataclass(frozen=True)
class Effect:
    """What one ticket event does to deadlines."""

    change: Change
    steps: frozenset[str] | None = None  # MEET: the steps met; None: everything the assignment owes
    paused_from: datetime | None = None  # SHIFT: when the pause began
    delta: timedelta = timedelta(0)  # EXTEND: the wall-clock time granted


def effect_of(action: str, assignment_role: str | None, payload: Mapping[str, Any]) -> Effect | None:
    """The effect of one event, None when it changes no deadline.

    ``assignment_role`` is the role (lead, assist) of the assignment the event belongs to, None for an event of
    the whole ticket (pause, resume, extension …).
    """
    if assignment_role is not None:
        if action == "assignment_created":
            return Effect(Change.START)
        if action in DONE_BY:
            # An assisting unit's steps settle everything it owes at once.
            return Effect(Change.MEET, DONE_BY[action] if assignment_role != "assist" else None)
        if action in ENDS_ASSIGNMENT:
            return Effect(Change.MEET)
        if action == "reopen":
            return Effect(Change.RESTART)
        return None
    if action == "pause":
        return Effect(Change.HOLD)
    if action == "resume":
        paused_from = payload.get("paused_from")
        return Effect(Change.SHIFT, paused_from=datetime.fromisoformat(paused_from)) if paused_from else None
    if action == "decide_extension" and payload.get("approved"):
        delta = timedelta(hours=float(payload.get("hours") or 0))
        return Effect(Change.EXTEND, delta=delta) if delta > timedelta(0) else None
    return None


def owed_steps(policy: TimeLimitPolicy, role: str) -> list[str]:
    """The steps a new assignment of ``role`` owes under ``policy``."""
    return [s for s in policy.limits if role != "assist" or s in ASSIST_STEPS]


def start_deadlines(
    policy: TimeLimitPolicy, role: str, at: datetime, calendar: WorkCalendar
) -> dict[str, Deadline]:
    """The deadlines of an assignment created at ``at``."""
    return compute_deadlines(policy, at, calendar, steps=owed_steps(policy, role))


def reopen_deadlines(policy: TimeLimitPolicy, at: datetime, calendar: WorkCalendar) -> dict[str, Deadline]:
    """The fresh deadlines of an assignment reopened at ``at``."""
    return compute_deadlines(policy, at, calendar, steps=[s for s in REOPEN_STEPS if s in policy.limits])


def shifted(d: Deadline, paused_from: datetime, at: datetime, calendar: WorkCalendar) -> Deadline:
    """An unmet deadline after a pause from ``paused_from`` to ``at``."""
    return shift_for_pause(d, paused_from, at, calendar=calendar)


def extended(d: Deadline, delta: timedelta, calendar: WorkCalendar) -> Deadline:
    """An unmet resolve deadline after an approved extension of ``delta``, counted in the deadline's own
    kind of time: wall-clock for a natural limit, working hours for a working-hour limit, and whole working
    days (every 24 hours asked, rounded up) for a working-day limit, so that "72 hours" under a working-day
    policy is three working days and never ends on a rest day.
    """
    hours = delta / timedelta(hours=1)
    if d.unit == "working_hours":
        return extend(d, hours, calendar, unit="working_hours")
    if d.unit == "working_days":
        return extend(d, math.ceil(hours / 24 - 1e-9), calendar, unit="working_days")
    return extend(d, delta, calendar)


@dataclass
class StepClock:
    """One step deadline of one assignment: met or not, and which plan of its timers is current."""

    deadline: Deadline
    planned_at: datetime  # when its timers were last planned
    generation: int = 0  # bumped whenever the deadline is planned anew (its timers' keys change)
    met_at: datetime | None = None


@dataclass
class AssignmentClock:
    """An assignment's deadlines kept in memory, event by event, as the subscriber keeps them in the database."""

    id: int
    role: str
    created_at: datetime
    steps: dict[str, StepClock] = field(default_factory=dict)

    @classmethod
    def start(
        cls, ident: int, role: str, at: datetime, policy: TimeLimitPolicy, calendar: WorkCalendar
    ) -> AssignmentClock:
        deadlines = start_deadlines(policy, role, at, calendar)
        return cls(ident, role, at, {step: StepClock(d, at) for step, d in deadlines.items()})

    def on_event(
        self,
        action: str,
        assignment_id: int | None,
        payload: Mapping[str, Any],
        at: datetime,
        policy: TimeLimitPolicy,
        calendar: WorkCalendar,
    ) -> None:
        """One timeline event of the ticket: ``assignment_id`` names the assignment it belongs to (None: the
        whole ticket); another assignment's events change nothing here."""
        if assignment_id is not None and assignment_id != self.id:
            return
        effect = effect_of(action, self.role if assignment_id is not None else None, payload)
        if effect is not None:
            self.apply(effect, at, policy, calendar)

    def apply(self, effect: Effect, at: datetime, policy: TimeLimitPolicy, calendar: WorkCalendar) -> None:
        unmet = [sc for sc in self.steps.values() if sc.met_at is None]
        if effect.change is Change.MEET:
            for step in self.steps if effect.steps is None else effect.steps:
                sc = self.steps.get(step)
                if sc is not None and sc.met_at is None:
                    sc.met_at = at
        elif effect.change is Change.RESTART:
            for step, d in reopen_deadlines(policy, at, calendar).items():
                old = self.steps.get(step)
                self.steps[step] = StepClock(d, at, old.generation + 1 if old else 0)
        elif effect.change is Change.SHIFT:
            assert effect.paused_from is not None
            for sc in unmet:
                sc.deadline = shifted(sc.deadline, effect.paused_from, at, calendar)
                sc.planned_at = at
        elif effect.change is Change.EXTEND:
            sc = self.steps.get("resolve")
            if sc is not None and sc.met_at is None:
                sc.deadline = extended(sc.deadline, effect.delta, calendar)
                sc.generation += 1
                sc.planned_at = at
