"""Escalation ladders (督办层级), warnings and the timer plan the worker stores and fires.

Everything here is pure: plain dataclasses in, plain dataclasses out, ``now`` always passed in.

The worker's loop, in short:

1. when deadlines are set (dispatch, pause/resume, extension, reopen), replace the subject's unfired
   timers with ``plan_timers(subject_id, deadlines, policy.escalation, not_before=now)``; store each
   `TimerSpec` as a row with an indexed ``due_at`` and a unique ``key``;
2. when a step is done (the unit signed, arrived, …), delete the unfired timers whose ``step`` is
   that step (their keys start with ``timer_key_prefix(subject_id, step)``);
3. each pass, take rows with ``due_at <= now``, turn each into a `TimerFired` with
   ``timer_fired(spec)``, write the timeline event and the outbox messages, and mark the row fired in
   the same transaction. The unique key makes a step fire once even if two workers race.

`due_steps` / `due_warnings` / `due_events` answer the same question without stored rows (tests, a rescan).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from minsheng.timelimits.policy import Deadline

Action = Literal["press", "notify"]
TimerKind = Literal["warning", "overdue", "escalation"]
ACTIONS: tuple[str, ...] = ("press", "notify")
# Standard targets; any other non-empty string is a role (e.g. "duty_commander", "department_leader").
STANDARD_TARGETS: tuple[str, ...] = (
    "unit",
    "unit_leader",
    "district_leader",
    "city_leader",
    "deputy_mayor",
    "mayor",
)


_KIND_ORDER = {"warning": 0, "overdue": 1, "escalation": 2}


class EscalationError(ValueError):
    """A ladder that cannot be used as given."""


@dataclass(frozen=True)
class EscalationStep:
    """Fire ``action`` at ``target`` once the deadline is ``after`` behind us."""

    after: timedelta
    action: Action
    target: str
    name: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.after, timedelta) or self.after < timedelta(0):
            raise EscalationError(f"escalation step {self.name!r}: 'after' must be a timedelta >= 0")
        if self.action not in ACTIONS:
            raise EscalationError(
                f"escalation step {self.name!r}: unknown action {self.action!r} (use press or notify)"
            )
        if not isinstance(self.target, str) or not self.target.strip():
            raise EscalationError(f"escalation step {self.name!r}: target must be a non-empty role name")


@dataclass(frozen=True)
class EscalationLadder:
    steps: tuple[EscalationStep, ...] = ()

    def __post_init__(self) -> None:
        steps = tuple(self.steps)
        object.__setattr__(self, "steps", steps)
        for earlier, later in itertools.pairwise(steps):
            if later.after < earlier.after:
                raise EscalationError(
                    f"escalation steps must be in order: {later.name or later.target!r} "
                    f"({later.after}) comes after {earlier.name or earlier.target!r} ({earlier.after})"
                )

    def due_at(self, deadline_at: datetime, index: int) -> datetime:
        return deadline_at + self.steps[index].after


def due_steps(
    ladder: EscalationLadder, deadline_at: datetime, now: datetime, fired: AbstractSet[int]
) -> list[tuple[int, EscalationStep]]:
    """Steps due at ``now`` not yet fired, in ladder order; the caller adds their indexes to ``fired``."""
    return [
        (i, step) for i, step in enumerate(ladder.steps) if i not in fired and deadline_at + step.after <= now
    ]


def due_warnings(
    warn_at: Sequence[datetime], now: datetime, fired: AbstractSet[int]
) -> list[tuple[int, datetime]]:
    """Warnings due at ``now`` that have not fired yet, earliest first."""
    return sorted(
        ((i, at) for i, at in enumerate(warn_at) if i not in fired and at <= now), key=lambda item: item[1]
    )


@dataclass(frozen=True)
class TimerSpec:
    """One timer row to store. ``payload`` is JSON-ready (strings, numbers, None)."""

    kind: TimerKind
    step: str
    due_at: datetime
    payload: Mapping[str, Any] = field(default_factory=dict)

    @property
    def subject_id(self) -> str:
        return str(self.payload["subject_id"])

    @property
    def key(self) -> str:
        """Unique per subject, step, kind and index: store it with a unique constraint."""
        return f"{timer_key_prefix(self.subject_id, self.step)}{self.kind}:{self.payload.get('index', 0)}"


def timer_key_prefix(subject_id: str | int, step: str) -> str:
    return f"{subject_id}:{step}:"


@dataclass(frozen=True)
class TimerFired:
    """What happened when a timer fired: becomes a timeline event and notifications."""

    kind: TimerKind
    step: str
    target: str
    at: datetime
    subject_id: str
    action: str = "notify"
    index: int = 0
    name: str = ""
    deadline_at: datetime | None = None
    key: str = ""


def plan_timers(
    subject_id: str | int,
    deadlines: Mapping[str, Deadline] | Iterable[Deadline],
    ladder: EscalationLadder | Mapping[str, EscalationLadder] | None = None,
    *,
    not_before: datetime | None = None,
) -> list[TimerSpec]:
    """Timers for ``deadlines``: each warning, the overdue mark at the deadline, and each escalation step.

    ``ladder`` is one ladder for every step or a ladder per step (a policy's ``escalation``). With
    ``not_before``, warnings already in the past are left out (after an extension they would be stale);
    overdue and escalation timers are always kept, so a late subject still climbs its ladder.
    """
    items = deadlines.values() if isinstance(deadlines, Mapping) else deadlines
    sid = str(subject_id)
    specs: list[TimerSpec] = []
    for deadline in items:
        base = {"subject_id": sid, "step": deadline.step, "deadline_at": deadline.due_at.isoformat()}
        for i, at in enumerate(deadline.warn_at):
            if not_before is not None and at < not_before:
                continue
            share = deadline.warn_shares[i] if i < len(deadline.warn_shares) else None
            payload = {**base, "index": i, "target": "unit", "action": "notify", "share": share, "name": ""}
            specs.append(TimerSpec("warning", deadline.step, at, payload))
        payload = {**base, "index": 0, "target": "unit", "action": "notify", "name": ""}
        specs.append(TimerSpec("overdue", deadline.step, deadline.due_at, payload))
        step_ladder = ladder.get(deadline.step) if isinstance(ladder, Mapping) else ladder
        for i, step in enumerate(step_ladder.steps if step_ladder else ()):
            payload = {**base, "index": i, "target": step.target, "action": step.action, "name": step.name}
            specs.append(TimerSpec("escalation", deadline.step, deadline.due_at + step.after, payload))
    # At one instant the overdue mark must precede the escalations it triggers.
    specs.sort(key=lambda s: (s.due_at, s.step, _KIND_ORDER[s.kind], s.payload["index"]))
    return specs


def timer_fired(spec: TimerSpec) -> TimerFired:
    p = spec.payload
    deadline_at = p.get("deadline_at")
    return TimerFired(
        kind=spec.kind,
        step=spec.step,
        target=str(p.get("target", "unit")),
        at=spec.due_at,
        subject_id=spec.subject_id,
        action=str(p.get("action", "notify")),
        index=int(p.get("index", 0)),
        name=str(p.get("name", "")),
        deadline_at=datetime.fromisoformat(deadline_at) if isinstance(deadline_at, str) else None,
        key=spec.key,
    )


def due_events(
    subject_id: str | int,
    deadlines: Mapping[str, Deadline] | Iterable[Deadline],
    ladder: EscalationLadder | Mapping[str, EscalationLadder] | None,
    now: datetime,
    fired_keys: AbstractSet[str],
) -> list[TimerFired]:
    """Everything due at ``now`` whose key is not in ``fired_keys``, in order (stateless form of the loop)."""
    return [
        timer_fired(spec)
        for spec in plan_timers(subject_id, deadlines, ladder)
        if spec.due_at <= now and spec.key not in fired_keys
    ]


@dataclass(frozen=True)
class RepeatedFailureLadder:
    """黔西: a unit's failures within ``period`` climb ``steps`` (1st → steps[0], …; the last repeats)."""

    period: timedelta
    steps: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(self.steps))
        if not isinstance(self.period, timedelta) or self.period <= timedelta(0):
            raise EscalationError(f"repeated-failure period must be longer than zero (got {self.period!r})")
        if not self.steps or not all(isinstance(t, str) and t.strip() for t in self.steps):
            raise EscalationError("repeated-failure ladder needs at least one non-empty target")

    def failure_number(self, previous_failure_times: Iterable[datetime], now: datetime) -> int:
        """1 for the first failure in the window ``(now - period, now]``, 2 for the second, …"""
        start = now - self.period
        return 1 + sum(1 for t in previous_failure_times if start < t <= now)

    def target_for_failure(self, previous_failure_times: Iterable[datetime], now: datetime) -> str:
        """Whom the failure happening at ``now`` goes to, given the unit's earlier failures."""
        number = self.failure_number(previous_failure_times, now)
        return self.steps[min(number, len(self.steps)) - 1]
