"""One ticket's contribution to the daily facts, computed from its timeline alone.

A ticket contributes integer counters (`COUNTERS`) to fact rows keyed by (local day of its intake, unit,
area, category, channel, kind). Counters about the ticket as a whole go to the row of its lead unit (0 before
any dispatch); counters about an assignment go to the row of that assignment's unit. The facts of a period
are the sums of these contributions, and every measure is a ratio of sums (`minsheng.measures.values`):
so the facts kept in the database, event by event, must always equal this function applied to every ticket
again, which is what `minsheng measures rebuild` does and what the property test checks.

Inputs are plain dataclasses (`TicketTimeline`), so unit tests build timelines by hand. Definitions:
docs/METRICS.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from minsheng.measures.periods import DEFAULT_ZONE, local_day

#: Upper edges (seconds) of the duration histogram's buckets; the last bucket holds everything longer.
BUCKET_EDGES: tuple[int, ...] = (
    300,
    900,
    1800,
    3600,
    7200,
    14400,
    28800,
    86400,
    172800,
    432000,
    864000,
    1728000,
)
N_BUCKETS = len(BUCKET_EDGES) + 1
TIMED_STEPS: tuple[str, ...] = ("sign", "contact", "arrive", "feedback", "close")
RATINGS: tuple[str, ...] = ("satisfied", "basically_satisfied", "basically_dissatisfied", "dissatisfied")

TICKET_COUNTERS: tuple[str, ...] = (
    "tickets",
    "repeats",
    "transferred",
    "answered",
    "triaged",
    "dispatched",
    "closed",
    "closed_first_time",
    "closed_ever",
    "submitted",
    "reopened",
    "reopen_events",
    "complained",
    "complained_or_dissatisfied",
    "rated",
    *(f"rated_{r}" for r in RATINGS),
    "responded",
    "overdue",
)
ASSIGNMENT_COUNTERS: tuple[str, ...] = ("assignments", "assignments_due", "signed", "returned", "reported")
STEP_COUNTERS: tuple[str, ...] = tuple(
    f"{step}_{what}"
    for step in TIMED_STEPS
    for what in ("n", "seconds", "work_seconds", "due", "on_time", *(f"h{i}" for i in range(N_BUCKETS)))
)
#: Every counter of a fact row, in column order.
COUNTERS: tuple[str, ...] = TICKET_COUNTERS + ASSIGNMENT_COUNTERS + STEP_COUNTERS
#: Counters that hold seconds (may exceed 32 bits when summed over a city's year).
SECONDS_COUNTERS: frozenset[str] = frozenset(c for c in COUNTERS if c.endswith("seconds"))

# The events that end or meet a step, per step as the time limits name them.
_DONE_BY: Mapping[str, frozenset[str]] = {
    "sign": frozenset({"sign"}),
    "contact": frozenset({"contact"}),
    "arrive": frozenset({"arrive"}),
    "feedback": frozenset({"feedback"}),
    "resolve": frozenset({"request_close", "close"}),
}

#: (day, unit id, area id, category id, channel, kind); 0 or "" where the ticket has none.
FactKey = tuple[date, int, int, int, str, str]
Contribution = dict[FactKey, dict[str, int]]


class WorkingTime(Protocol):
    """What the measures need of a working calendar (`minsheng.timelimits.calendar.WorkCalendar` is one)."""

    def working_time_between(self, a: datetime, b: datetime) -> timedelta: ...


@dataclass(frozen=True)
class TicketInfo:
    """The ticket's own fields that key its facts."""

    id: int
    created_at: datetime
    channel: str
    kind: str
    area_id: int | None = None
    category_id: int | None = None


@dataclass(frozen=True)
class AssignmentInfo:
    """One assignment: which unit, lead or assist, created when."""

    id: int
    unit_id: int
    role: str
    created_at: datetime


@dataclass(frozen=True)
class Event:
    """One timeline event (the fields the measures read). ``payload`` may hold rating, step, …"""

    seq: int
    at: datetime
    action: str
    assignment_id: int | None = None
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StepLimit:
    """The current deadline of one step of one assignment (the time limits' `StepDeadline`)."""

    assignment_id: int
    step: str
    started_at: datetime
    due_at: datetime


@dataclass
class TicketTimeline:
    """Everything one ticket's contribution is computed from."""

    ticket: TicketInfo
    events: Sequence[Event]
    assignments: Sequence[AssignmentInfo] = ()
    deadlines: Sequence[StepLimit] = ()


def bucket_of(seconds: float) -> int:
    """The histogram bucket of a duration."""
    for i, edge in enumerate(BUCKET_EDGES):
        if seconds <= edge:
            return i
    return len(BUCKET_EDGES)


def paused_spans(events: Sequence[Event]) -> list[tuple[datetime, datetime | None]]:
    """The ticket's pauses as (from, to) spans; ``to`` is None for a pause still running."""
    spans: list[tuple[datetime, datetime | None]] = []
    start: datetime | None = None
    for ev in events:
        if ev.action == "pause" and start is None:
            start = ev.at
        elif ev.action == "resume" and start is not None:
            spans.append((start, ev.at))
            start = None
    if start is not None:
        spans.append((start, None))
    return spans


def _overlap(
    a: datetime, b: datetime, spans: Sequence[tuple[datetime, datetime | None]]
) -> list[tuple[datetime, datetime]]:
    out = []
    for s, e in spans:
        lo, hi = max(a, s), min(b, e or b)
        if hi > lo:
            out.append((lo, hi))
    return out


def duration(
    a: datetime,
    b: datetime,
    spans: Sequence[tuple[datetime, datetime | None]],
    calendar: WorkingTime | None,
) -> tuple[int, int]:
    """(natural, working) whole seconds from ``a`` to ``b`` with the paused spans taken out.

    Without a calendar the working time is the natural time.
    """
    if b <= a:
        return 0, 0
    paused = _overlap(a, b, spans)
    natural = (b - a).total_seconds() - sum((hi - lo).total_seconds() for lo, hi in paused)
    if calendar is None:
        work = natural
    else:
        work = calendar.working_time_between(a, b).total_seconds() - sum(
            calendar.working_time_between(lo, hi).total_seconds() for lo, hi in paused
        )
    return int(max(natural, 0)), int(max(work, 0))


def _add_duration(row: dict[str, int], step: str, natural: int, work: int) -> None:
    row[f"{step}_n"] = row.get(f"{step}_n", 0) + 1
    row[f"{step}_seconds"] = row.get(f"{step}_seconds", 0) + natural
    row[f"{step}_work_seconds"] = row.get(f"{step}_work_seconds", 0) + work
    key = f"{step}_h{bucket_of(natural)}"
    row[key] = row.get(key, 0) + 1


def _bump(row: dict[str, int], name: str, n: int = 1) -> None:
    if n:
        row[name] = row.get(name, 0) + n


@dataclass
class _TicketFold:
    """What the ticket-level counters need, read off the events in order."""

    closed: bool = False
    closed_ever: bool = False
    closed_at: datetime | None = None
    closed_by_review: bool = False
    answered: bool = False
    submitted: bool = False
    reopened: bool = False
    reopen_events: int = 0
    dispatched: bool = False
    transferred: bool = False
    repeat: bool = False
    complained: bool = False
    rating: str | None = None
    overdue: bool = False
    returned: bool = False

    def apply(self, ev: Event) -> None:
        a = ev.action
        if a in ("review_accept", "answer_directly"):
            self.closed = self.closed_ever = True
            self.closed_at = ev.at
            self.closed_by_review = a == "review_accept"
            self.answered = self.answered or a == "answer_directly"
            self.submitted = self.submitted or a == "review_accept"
        elif a == "lead_requested_close":
            self.submitted = True
        elif a == "review_reject":
            self.reopened = True
            self.reopen_events += 1
        elif a == "reopen" and ev.assignment_id is None:
            # (The lead's assignment is reopened too, by an event of its own: counted once, here.)
            self.closed = False
            self.closed_at = None
            self.rating = None
            self.reopened = True
            self.reopen_events += 1
        elif a in ("rate", "follow_up") and ev.payload.get("rating") in RATINGS:
            self.rating = str(ev.payload["rating"])
        elif a == "rating_excluded":
            # An unreasonable request approved by a second person (services/supervision/checks.py): the
            # rating before it is not counted (docs/METRICS.md, "Supervision measures"); a later one is.
            self.rating = None
        elif a in ("dispatch", "redispatch"):
            self.dispatched = True
        elif a == "transfer":
            self.transferred = True
        elif a in ("mark_repeat", "merge"):
            self.repeat = True
        elif a == "repeat_linked" and self.closed_ever:
            self.complained = True
        elif a == "overdue":
            self.overdue = True
        elif a == "return":
            self.returned = True


def _ticket_counters(fold: _TicketFold) -> dict[str, int]:
    dissatisfied = fold.rating in ("basically_dissatisfied", "dissatisfied")
    row: dict[str, int] = {"tickets": 1}
    flags = {
        "repeats": fold.repeat,
        "transferred": fold.transferred,
        "answered": fold.answered,
        "triaged": fold.dispatched or fold.transferred or fold.answered or fold.repeat,
        "dispatched": fold.dispatched,
        "closed": fold.closed,
        "closed_first_time": fold.closed and not (fold.reopened or fold.returned),
        "closed_ever": fold.closed_ever,
        "submitted": fold.submitted,
        "reopened": fold.reopened,
        "complained": fold.complained,
        "complained_or_dissatisfied": fold.complained or dissatisfied,
        "rated": fold.rating is not None,
        "overdue": fold.overdue,
    }
    for name, flag in flags.items():
        _bump(row, name, int(flag))
    _bump(row, "reopen_events", fold.reopen_events)
    if fold.rating is not None:
        _bump(row, f"rated_{fold.rating}")
    return row


def _done_at(
    events: Sequence[Event], assignment_id: int, actions: frozenset[str], since: datetime
) -> datetime | None:
    for ev in events:
        if ev.assignment_id == assignment_id and ev.action in actions and ev.at >= since:
            return ev.at
    return None


def _overdue_since(events: Sequence[Event], assignment_id: int, step: str, since: datetime) -> bool:
    return any(
        ev.action == "overdue"
        and ev.assignment_id == assignment_id
        and ev.payload.get("step") == step
        and ev.at >= since
        for ev in events
    )


def step_outcome(events: Sequence[Event], limit: StepLimit) -> bool | None:
    """True: the step was done by its deadline; False: done late, or overdue and not done; None: neither yet.

    Only what the timeline shows counts: a step that is past due but whose overdue event has not been recorded
    (the worker fires it) is not counted until then.
    """
    done = _done_at(events, limit.assignment_id, _DONE_BY.get(limit.step, frozenset()), limit.started_at)
    if done is not None:
        return done <= limit.due_at
    if _overdue_since(events, limit.assignment_id, limit.step, limit.started_at):
        return False
    return None


def _count_outcome(row: dict[str, int], step: str, outcome: bool | None) -> None:
    if outcome is None:
        return
    _bump(row, f"{step}_due")
    _bump(row, f"{step}_on_time", int(outcome))


def _assignment_counters(
    tl: TicketTimeline,
    a: AssignmentInfo,
    spans: Sequence[tuple[datetime, datetime | None]],
    calendar: WorkingTime | None,
) -> dict[str, int]:
    mine = [ev for ev in tl.events if ev.assignment_id == a.id]
    actions = [ev.action for ev in mine]
    row: dict[str, int] = {"assignments": 1}
    signed = "sign" in actions
    returned = "return" in actions
    # Withdrawn (a redispatch, a merge) before the unit did anything: not due a signature.
    first_act = next((x for x in actions if x in ("sign", "return", "cancel")), None)
    _bump(row, "assignments_due", int(first_act != "cancel"))
    _bump(row, "signed", int(signed))
    _bump(row, "returned", int(returned))
    _bump(row, "reported", int(signed and "feedback" in actions))
    for step in ("sign", "contact", "arrive", "feedback"):
        first = next((ev.at for ev in mine if ev.action == step), None)
        if first is not None:
            _add_duration(row, step, *duration(a.created_at, first, spans, calendar))
    for limit in tl.deadlines:
        if limit.assignment_id == a.id and limit.step in ("sign", "contact", "arrive", "feedback"):
            _count_outcome(row, limit.step, step_outcome(tl.events, limit))
    return row


def _lead(tl: TicketTimeline) -> AssignmentInfo | None:
    leads = [a for a in tl.assignments if a.role == "lead"]
    return max(leads, key=lambda a: (a.created_at, a.id)) if leads else None


def _responded(tl: TicketTimeline, lead: AssignmentInfo) -> bool:
    """The lead unit contacted the citizen by the contact deadline (signed by the sign deadline where the
    policy sets no contact step); with no deadline at all, it contacted or signed at some time."""
    limits = {x.step: x for x in tl.deadlines if x.assignment_id == lead.id}
    for step in ("contact", "sign"):
        if step in limits:
            return step_outcome(tl.events, limits[step]) is True
    return any(ev.assignment_id == lead.id and ev.action in ("contact", "sign") for ev in tl.events)


def contribution(
    tl: TicketTimeline, calendar: WorkingTime | None = None, zone: str = DEFAULT_ZONE
) -> Contribution:
    """The counters this ticket adds to the facts, per fact key (only non-zero counters are listed)."""
    events = sorted(tl.events, key=lambda e: e.seq)
    tl = TicketTimeline(tl.ticket, events, tl.assignments, tl.deadlines)
    t = tl.ticket
    day = local_day(t.created_at, zone)

    def key(unit_id: int) -> FactKey:
        return (day, unit_id, t.area_id or 0, t.category_id or 0, t.channel, t.kind)

    fold = _TicketFold()
    for ev in events:
        fold.apply(ev)
    spans = paused_spans(events)
    lead = _lead(tl)
    out: Contribution = {}
    ticket_row = _ticket_counters(fold)
    if lead is not None and fold.dispatched:
        _bump(ticket_row, "responded", int(_responded(tl, lead)))
    if fold.closed and fold.closed_by_review and fold.closed_at is not None:
        _add_duration(ticket_row, "close", *duration(t.created_at, fold.closed_at, spans, calendar))
    if lead is not None:
        resolve = next((x for x in tl.deadlines if x.assignment_id == lead.id and x.step == "resolve"), None)
        if resolve is not None:
            _count_outcome(ticket_row, "close", step_outcome(events, resolve))
    out[key(lead.unit_id if lead is not None else 0)] = ticket_row
    for a in tl.assignments:
        row = out.setdefault(key(a.unit_id), {})
        for name, n in _assignment_counters(tl, a, spans, calendar).items():
            _bump(row, name, n)
    return out


def merge_into(
    total: dict[Any, dict[str, int]], part: Mapping[Any, Mapping[str, int]], sign: int = 1
) -> None:
    """Add (sign=1) or take away (sign=-1) a contribution's counters into ``total``, dropping zeros."""
    for k, counters in part.items():
        row = total.setdefault(k, {})
        for name, n in counters.items():
            v = row.get(name, 0) + sign * n
            if v:
                row[name] = v
            else:
                row.pop(name, None)
        if not row:
            total.pop(k, None)
