"""Time-limit policies (时限) per category (inherited) × urgency × zone, and the deadlines they give.

A `TimeLimitPolicy` says, for some steps (sign, contact, arrive, feedback, resolve, or any other step
name such as 嘉兴's ``instruct``), how much time a unit has, in natural time (minutes, hours, natural
days) or working time (working hours, working days on a `WorkCalendar`). A `PolicySet` resolves the
policy of one ticket, step by step:

    for each category from the ticket's own up to the root, then "no category" (the city-wide default):
        (category, urgency, zone), (category, urgency, any zone),
        (category, any urgency, zone), (category, any urgency, any zone)

The first candidate that defines a step supplies that step; so a category that only sets ``resolve``
keeps the default ``sign`` limit, the most specific category wins, and within one category urgency
beats zone beats generic.
``zone`` is an admin-defined class of areas (e.g. ``"urban"`` for 嘉兴's 主城区); the caller maps area → zone.

Deadlines are computed from a start instant (dispatch time; the reopen time after 回流). All steps start at
``start`` unless ``starts`` gives a step its own start. Warnings fire when a share of the limit's time is used
(measured in the limit's own kind of time: wall-clock for natural limits, working time for working limits).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Literal

from minsheng.timelimits.calendar import WorkCalendar
from minsheng.timelimits.escalation import EscalationLadder

TimeUnit = Literal["minutes", "hours", "natural_days", "working_hours", "working_days"]
UNITS: tuple[str, ...] = ("minutes", "hours", "natural_days", "working_hours", "working_days")
NATURAL_UNITS = frozenset({"minutes", "hours", "natural_days"})
STANDARD_STEPS: tuple[str, ...] = ("sign", "contact", "arrive", "feedback", "resolve")
DEFAULT_WARN_AT: tuple[float, ...] = (0.8,)


class PolicyError(ValueError):
    """A policy that cannot be used as given; the message names the offending field and value."""


def _check_amount(amount: object, unit: str, where: str) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int | float) or not math.isfinite(amount):
        raise PolicyError(f"{where}: amount must be a number (got {amount!r})")
    if amount <= 0:
        raise PolicyError(f"{where}: amount must be greater than zero (got {amount!r} {unit})")
    if unit == "working_days" and amount != int(amount):
        raise PolicyError(f"{where}: working_days must be a whole number (got {amount!r})")


@dataclass(frozen=True)
class TimeLimit:
    step: str
    amount: float
    unit: TimeUnit

    def __post_init__(self) -> None:
        if not isinstance(self.step, str) or not self.step.strip():
            raise PolicyError(f"time limit needs a step name (got {self.step!r})")
        if self.unit not in UNITS:
            raise PolicyError(
                f"time limit for {self.step!r}: unknown unit {self.unit!r} (use one of {', '.join(UNITS)})"
            )
        _check_amount(self.amount, self.unit, f"time limit for {self.step!r}")

    @property
    def natural(self) -> bool:
        return self.unit in NATURAL_UNITS

    def due_from(self, start: datetime, calendar: WorkCalendar) -> datetime:
        return add_amount(start, self.amount, self.unit, calendar)


def add_amount(start: datetime, amount: float, unit: str, calendar: WorkCalendar) -> datetime:
    """``start`` + ``amount`` ``unit`` (natural days are 24-hour periods of wall-clock time)."""
    if start.tzinfo is None:
        raise ValueError(f"start must be timezone-aware (got naive {start.isoformat()})")
    start = start.astimezone(UTC)
    if unit == "minutes":
        return start + timedelta(minutes=amount)
    if unit == "hours":
        return start + timedelta(hours=amount)
    if unit == "natural_days":
        return start + timedelta(days=amount)
    if unit == "working_hours":
        return calendar.add_working_hours(start, amount)
    if unit == "working_days":
        return calendar.add_working_days(start, int(amount))
    raise PolicyError(f"unknown unit {unit!r} (use one of {', '.join(UNITS)})")


def limits_of(*limits: TimeLimit) -> dict[str, TimeLimit]:
    """``{limit.step: limit}``: the usual way to write a policy's limits by hand."""
    return {limit.step: limit for limit in limits}


def _check_warn_at(warn_at: object, where: str) -> tuple[float, ...]:
    if not isinstance(warn_at, tuple | list):
        raise PolicyError(f"{where}: warn_at must be a tuple of shares (got {warn_at!r})")
    shares: list[float] = []
    for share in warn_at:
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share < 1:
            raise PolicyError(f"{where}: warning share {share!r} must be strictly between 0 and 1")
        shares.append(float(share))
    if len(set(shares)) != len(shares):
        raise PolicyError(f"{where}: warning shares repeat ({warn_at!r})")
    return tuple(sorted(shares))


@dataclass(frozen=True)
class TimeLimitPolicy:
    """Limits for some steps; ``None`` keys mean "any". ``warn_at=None`` inherits (default 0.8)."""

    category_code: str | None
    urgency: str | None
    limits: Mapping[str, TimeLimit]
    warn_at: tuple[float, ...] | None = None
    escalation: Mapping[str, EscalationLadder] = field(default_factory=dict)
    zone: str | None = None
    name: str = ""

    def __post_init__(self) -> None:
        where = f"policy {self.key!r}" + (f" ({self.name})" if self.name else "")
        if isinstance(self.limits, Iterable) and not isinstance(self.limits, Mapping):
            # A list of TimeLimit is the natural way to write a policy by hand.
            object.__setattr__(self, "limits", {lim.step: lim for lim in self.limits})
        for step, limit in self.limits.items():
            if not isinstance(limit, TimeLimit):
                raise PolicyError(f"{where}: limit for {step!r} is not a TimeLimit ({limit!r})")
            if limit.step != step:
                raise PolicyError(f"{where}: limit filed under {step!r} is for step {limit.step!r}")
        if self.warn_at is not None:
            object.__setattr__(self, "warn_at", _check_warn_at(self.warn_at, where))
        for step, ladder in self.escalation.items():
            if not isinstance(ladder, EscalationLadder):
                raise PolicyError(f"{where}: escalation for {step!r} is not an EscalationLadder")

    @property
    def key(self) -> tuple[str | None, str | None, str | None]:
        return (self.category_code, self.urgency, self.zone)

    @property
    def effective_warn_at(self) -> tuple[float, ...]:
        return DEFAULT_WARN_AT if self.warn_at is None else self.warn_at


class PolicySet:
    """All policies of a city plus the category tree (child code → parent code, roots map to None)."""

    def __init__(
        self, policies: Iterable[TimeLimitPolicy], category_parents: Mapping[str, str | None] | None = None
    ) -> None:
        self.category_parents: dict[str, str | None] = dict(category_parents or {})
        self.policies: dict[tuple[str | None, str | None, str | None], TimeLimitPolicy] = {}
        for policy in policies:
            if policy.key in self.policies:
                raise PolicyError(f"two policies for the same category/urgency/zone {policy.key!r}")
            self.policies[policy.key] = policy
        for code in self.category_parents:
            self.lineage(code)

    def lineage(self, category_code: str | None) -> list[str | None]:
        """``[category, parent, …, root, None]``; refuses a cycle in the tree."""
        chain: list[str | None] = []
        code = category_code
        while code is not None:
            if code in chain:
                raise PolicyError(f"category tree has a cycle: {' → '.join(map(str, [*chain, code]))}")
            chain.append(code)
            code = self.category_parents.get(code)
        chain.append(None)
        return chain

    def candidates(
        self, category_code: str | None, urgency: str | None, zone: str | None = None
    ) -> list[TimeLimitPolicy]:
        """Matching policies, most specific first (the order documented in the module docstring)."""
        urgencies = [urgency, None] if urgency is not None else [None]
        zones = [zone, None] if zone is not None else [None]
        found = []
        for code in self.lineage(category_code):
            for u in urgencies:
                for z in zones:
                    policy = self.policies.get((code, u, z))
                    if policy is not None:
                        found.append(policy)
        return found

    def policy_for(
        self, category_code: str | None, urgency: str | None = None, zone: str | None = None
    ) -> TimeLimitPolicy:
        """The merged policy of one ticket; with no match at all, a policy without limits (no deadlines)."""
        limits: dict[str, TimeLimit] = {}
        ladders: dict[str, EscalationLadder] = {}
        warn_at: tuple[float, ...] | None = None
        names = []
        for policy in self.candidates(category_code, urgency, zone):
            for step, limit in policy.limits.items():
                limits.setdefault(step, limit)
            for step, ladder in policy.escalation.items():
                ladders.setdefault(step, ladder)
            if warn_at is None:
                warn_at = policy.warn_at
            if policy.name:
                names.append(policy.name)
        return TimeLimitPolicy(
            category_code,
            urgency,
            limits,
            warn_at if warn_at is not None else DEFAULT_WARN_AT,
            ladders,
            zone,
            " < ".join(names),
        )


@dataclass(frozen=True)
class Deadline:
    """One step's deadline. ``warn_at`` are the warning instants (shares of ``warn_shares``), all UTC."""

    step: str
    due_at: datetime
    warn_at: tuple[datetime, ...]
    started_at: datetime
    unit: TimeUnit
    warn_shares: tuple[float, ...] = ()
    calendar_fallback: bool = False

    @property
    def natural(self) -> bool:
        return self.unit in NATURAL_UNITS


def _warnings(
    start: datetime, due: datetime, unit: str, shares: Iterable[float], calendar: WorkCalendar
) -> tuple[datetime, ...]:
    if unit in NATURAL_UNITS:
        span = due - start
        return tuple(start + span * share for share in shares)
    working = calendar.working_time_between(start, due)
    return tuple(calendar.add_working_hours(start, working * share) for share in shares)


def _deadline(
    step: str,
    start: datetime,
    due: datetime,
    unit: TimeUnit,
    shares: tuple[float, ...],
    calendar: WorkCalendar,
) -> Deadline:
    start = start.astimezone(UTC)
    fallback = unit not in NATURAL_UNITS and calendar.uses_fallback_between(start, due)
    return Deadline(step, due, _warnings(start, due, unit, shares, calendar), start, unit, shares, fallback)


def compute_deadlines(
    policy: TimeLimitPolicy,
    start: datetime,
    calendar: WorkCalendar,
    *,
    starts: Mapping[str, datetime] | None = None,
    steps: Iterable[str] | None = None,
) -> dict[str, Deadline]:
    """Deadlines for every step of ``policy`` (or only ``steps``), counted from ``start`` or ``starts[step]``.

    A reopen (回流) is the same call with the reopen instant as ``start``: fresh deadlines, fresh warnings.
    """
    wanted = set(policy.limits) if steps is None else set(steps)
    shares = policy.effective_warn_at
    result: dict[str, Deadline] = {}
    for step, limit in policy.limits.items():
        if step not in wanted:
            continue
        step_start = (starts or {}).get(step, start)
        due = limit.due_from(step_start, calendar)
        result[step] = _deadline(step, step_start, due, limit.unit, shares, calendar)
    return result


def shift_for_pause(
    deadline: Deadline,
    paused_from: datetime,
    resumed_at: datetime,
    unit: str | None = None,
    calendar: WorkCalendar | None = None,
) -> Deadline:
    """The deadline after a pause (挂起) from ``paused_from`` to ``resumed_at``.

    Natural-time limits move by the wall-clock length of the pause; working-time limits by the working
    time inside the pause (a pause over a weekend moves a working-day deadline by nothing). Only the part
    of the pause before the deadline counts: a pause that starts after the deadline has passed cannot
    make a late unit on time. Warnings already due when the pause began stay where they were.
    """
    unit = unit or deadline.unit
    if resumed_at < paused_from:
        raise ValueError(
            f"pause resumes ({resumed_at.isoformat()}) before it starts ({paused_from.isoformat()})"
        )
    end = min(resumed_at, deadline.due_at)
    if end <= paused_from:
        return deadline
    if unit in NATURAL_UNITS:
        wall = end - paused_from

        def move(at: datetime) -> datetime:
            return at + wall
    else:
        if calendar is None:
            raise ValueError(f"a {unit} deadline needs the calendar to shift for a pause")
        working = calendar.working_time_between(paused_from, end)

        def move(at: datetime) -> datetime:
            return calendar.add_working_hours(at, working) if working else at

    warn_at = tuple(at if at <= paused_from else move(at) for at in deadline.warn_at)
    return replace(deadline, due_at=move(deadline.due_at), warn_at=warn_at)


def extend(
    deadline: Deadline,
    amount: float | timedelta,
    calendar: WorkCalendar | None = None,
    unit: str | None = None,
) -> Deadline:
    """The deadline after an approved extension (延期) of ``amount`` ``unit`` (default: the deadline's).

    A ``timedelta`` is wall-clock time. Warnings are recomputed as shares of the new, longer span from the
    original start; the caller drops warning timers that are already in the past (see `plan_timers`).
    """
    unit = unit or deadline.unit
    if calendar is None and not (
        deadline.natural and (isinstance(amount, timedelta) or unit in NATURAL_UNITS)
    ):
        raise ValueError("a working-time deadline or extension needs the calendar")
    # Natural time never consults the calendar; this placeholder only satisfies the signatures below.
    cal = calendar or WorkCalendar(statutory=False)
    if isinstance(amount, timedelta):
        if amount <= timedelta(0):
            raise PolicyError(f"extension must be longer than zero (got {amount})")
        due = deadline.due_at + amount
    else:
        if unit not in UNITS:
            raise PolicyError(f"extension: unknown unit {unit!r} (use one of {', '.join(UNITS)})")
        _check_amount(amount, unit, "extension")
        due = add_amount(deadline.due_at, amount, unit, cal)
    extended = _deadline(deadline.step, deadline.started_at, due, deadline.unit, deadline.warn_shares, cal)
    return replace(extended, calendar_fallback=extended.calendar_fallback or deadline.calendar_fallback)
