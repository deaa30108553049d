"""The daily facts, kept exact in the transaction of every timeline event, and rebuilt from the raw timeline.

How a change reaches the facts: every timeline event goes through `EngineCore._record`, which calls `touch`
with the ticket (and deferred triage calls it when it moves a ticket's area or category). The touched tickets
are remembered on the session; just before the transaction commits (`before_commit`, also at the release of a
savepoint), `write_pending` recomputes each touched ticket's contribution from its timeline
(`minsheng.measures.timeline.contribution`), takes away what the ticket contributed before (its row in
`measure_contributions`) and adds the new one, as one upsert per batch of fact rows
(``ON CONFLICT DO UPDATE SET n = n + excluded.n``, safe with several processes on PostgreSQL; fact keys are
written in sorted order, so two transactions never wait for each other in opposite orders).

Recomputing a touched ticket from its whole timeline, rather than applying each event on its own, keeps one
definition of every counter (the pure one) and makes the maintained facts equal a rebuild by construction; it
costs one read of the ticket's events per transaction. A ticket registered in this transaction with no
assignment yet (every intake) needs no read at all.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, event, func, insert, select, text
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session, SessionTransaction

from minsheng.measures.periods import DEFAULT_ZONE, Period
from minsheng.measures.timeline import (
    COUNTERS,
    AssignmentInfo,
    Contribution,
    Event,
    FactKey,
    StepLimit,
    TicketInfo,
    TicketTimeline,
    WorkingTime,
    contribution,
    merge_into,
)
from minsheng.storage import dialect
from minsheng.storage.bulk import add_counts
from minsheng.storage.measure_tables import KEY_COLUMNS, MeasureContribution, measure_facts
from minsheng.storage.models import Assignment, Ticket, TimelineEvent
from minsheng.storage.timelimit_tables import CalendarDay, StepDeadline
from minsheng.timelimits.calendar import CalendarEntry, WorkCalendar

PENDING_KEY = "measures_pending"
_LISTENING_KEY = "measures_listening"
#: Set on a session whose writer rebuilds the facts itself when it is done (the demo's replay of a year).
DEFERRED_KEY = "measures_deferred"
CHUNK = 500  # tickets per read (IN lists) and per contributions upsert
#: The events the measures read; the others (warnings, notes, attachments …) are never loaded.
RELEVANT_ACTIONS: tuple[str, ...] = (
    "review_accept",
    "answer_directly",
    "lead_requested_close",
    "review_reject",
    "reopen",
    "rate",
    "follow_up",
    "rating_excluded",  # a rating judged an unreasonable request (services/supervision/checks.py)
    "dispatch",
    "redispatch",
    "transfer",
    "mark_repeat",
    "merge",
    "repeat_linked",
    "overdue",
    "pause",
    "resume",
    "sign",
    "return",
    "contact",
    "arrive",
    "feedback",
    "request_close",
    "close",
    "cancel",
)
_RELEVANT = frozenset(RELEVANT_ACTIONS)

#: The cubes of `measure_facts` (see `minsheng.storage.measure_tables`): which keys each keeps. Cubes 11-15 are
#: 1-5 by month (``day`` is the first of the month): a year of a city reads 12 rows per unit instead of 365.
CUBES: dict[int, frozenset[str]] = {
    0: frozenset({"unit", "area", "category", "channel", "kind"}),
    1: frozenset({"unit"}),
    2: frozenset({"area"}),
    3: frozenset({"category"}),
    4: frozenset({"channel", "kind"}),
    5: frozenset(),
}
MONTHLY: dict[int, int] = {1: 11, 2: 12, 3: 13, 4: 14, 5: 15}
CubeKey = tuple[int, date, int, int, int, str, str]


def cube_keys(k: FactKey) -> list[CubeKey]:
    """The rows of every cube that a detailed fact key adds to."""
    day, unit, area, category, channel, kind = k
    month = day.replace(day=1)
    out: list[CubeKey] = [(0, day, unit, area, category, channel, kind)]
    for d, base in ((day, 0), (month, 10)):
        out += [
            (base + 1, d, unit, 0, 0, "", ""),
            (base + 2, d, 0, area, 0, "", ""),
            (base + 3, d, 0, 0, category, "", ""),
            (base + 4, d, 0, 0, 0, channel, kind),
            (base + 5, d, 0, 0, 0, "", ""),
        ]
    return out


# ---------------------------------------------------------------------------------------------- the hook
@dataclass
class _Touched:
    ticket: Ticket
    new: bool
    events: list[TimelineEvent] = field(default_factory=list)


def touch(session: Session, ticket: Ticket, ev: TimelineEvent | None = None) -> None:
    """Remember that ``ticket`` changed in this transaction: its facts are brought up to date before commit."""
    if session.info.get(DEFERRED_KEY):
        return
    pending: dict[int, _Touched] | None = session.info.get(PENDING_KEY)
    if pending is None:
        pending = session.info[PENDING_KEY] = {}
        if not session.info.get(_LISTENING_KEY):
            session.info[_LISTENING_KEY] = True
            event.listen(session, "before_commit", write_pending)
            event.listen(session, "after_soft_rollback", _forget)
    entry = pending.get(ticket.id)
    if entry is None:
        entry = pending[ticket.id] = _Touched(ticket, False)
    if ev is not None:
        # The intake event is the ticket's first: a ticket whose first event is in this transaction is new.
        entry.new = entry.new or ev.seq == 1
        entry.events.append(ev)


def _forget(session: Session, previous: SessionTransaction) -> None:
    if not previous.nested:
        session.info.pop(PENDING_KEY, None)
    else:
        # What a rolled-back savepoint added is gone: read those tickets from the database instead.
        for entry in (session.info.get(PENDING_KEY) or {}).values():
            entry.new = False


def write_pending(session: Session) -> None:
    """Bring the facts of the tickets touched in this transaction up to date (called before commit)."""
    pending: dict[int, _Touched] | None = session.info.pop(PENDING_KEY, None)
    if not pending:
        return
    session.flush()
    fast: list[TicketTimeline] = []
    slow: list[int] = []
    known: dict[int, Ticket] = {}
    for tid, entry in pending.items():
        tl = _from_session(entry)
        if tl is not None:
            fast.append(tl)
            continue
        slow.append(tid)
        t = entry.ticket
        if _alive(t) and "assignments" in sa_inspect(t).dict:
            known[tid] = (
                t  # its fields and assignments are in the session: only events and deadlines are read
            )
    apply_changes(session, fast, slow, known)


def _alive(obj: Any) -> bool:
    state = sa_inspect(obj)
    return bool(state.persistent or state.pending)


def _from_session(entry: _Touched) -> TicketTimeline | None:
    """A new ticket without assignments, from the objects of this session (no read); None otherwise."""
    t = entry.ticket
    if not entry.new or not _alive(t) or "assignments" not in sa_inspect(t).dict or t.assignments:
        return None
    events = [ev for ev in entry.events if _alive(ev)]
    if not events or events[0].seq != 1 or len(events) != (t.event_count or 0):
        return None
    return TicketTimeline(
        _ticket_info(t.id, t.created_at, t.channel, t.kind, t.area_id, t.category_id),
        [
            _event(ev.seq, ev.at, ev.action, ev.assignment_id, ev.payload)
            for ev in events
            if ev.action in _RELEVANT
        ],
    )


def _ticket_info(
    tid: int, created_at: datetime, channel: str, kind: str, area_id: int | None, category_id: int | None
) -> TicketInfo:
    return TicketInfo(tid, created_at, channel, kind, area_id, category_id)


def _event(
    seq: int, at: datetime, action: str, assignment_id: int | None, payload: Mapping[str, Any] | None
) -> Event:
    p = payload or {}
    small = {k: p[k] for k in ("rating", "step") if k in p}
    return Event(seq, at, action, assignment_id, small)


# ---------------------------------------------------------------------------------------------- loading
def load_timelines(
    session: Session, ticket_ids: Sequence[int], known: Mapping[int, Ticket] | None = None
) -> list[TicketTimeline]:
    """The timelines of these tickets as the measures read them (tickets that do not exist are left out).
    Tickets in ``known`` (loaded, with their assignments) are taken from the session instead of read."""
    out: list[TicketTimeline] = []
    for i in range(0, len(ticket_ids), CHUNK):
        out += _load_chunk(session, list(ticket_ids[i : i + CHUNK]), known or {})
    return out


def _load_chunk(session: Session, ids: list[int], known: Mapping[int, Ticket]) -> list[TicketTimeline]:
    unknown = [i for i in ids if i not in known]
    tickets = [
        (t.id, t.created_at, t.channel, t.kind, t.area_id, t.category_id)
        for i in ids
        if (t := known.get(i)) is not None
    ]
    assignments: dict[int, list[AssignmentInfo]] = defaultdict(list)
    for tid, t in known.items():
        if tid in ids:
            assignments[tid] = [AssignmentInfo(a.id, a.unit_id, a.role, a.created_at) for a in t.assignments]
    if unknown:
        tickets += session.execute(
            select(
                Ticket.id, Ticket.created_at, Ticket.channel, Ticket.kind, Ticket.area_id, Ticket.category_id
            ).where(Ticket.id.in_(unknown))
        ).tuples()
        for aid, tid, unit_id, role, created_at in session.execute(
            select(
                Assignment.id,
                Assignment.ticket_id,
                Assignment.unit_id,
                Assignment.role,
                Assignment.created_at,
            ).where(Assignment.ticket_id.in_(unknown))
        ):
            assignments[tid].append(AssignmentInfo(aid, unit_id, role, created_at))
    events: dict[int, list[Event]] = defaultdict(list)
    for tid, seq, at, action, aid, rating, step in session.execute(
        select(
            TimelineEvent.ticket_id,
            TimelineEvent.seq,
            TimelineEvent.at,
            TimelineEvent.action,
            TimelineEvent.assignment_id,
            TimelineEvent.payload["rating"].as_string(),
            TimelineEvent.payload["step"].as_string(),
        ).where(TimelineEvent.ticket_id.in_(ids), TimelineEvent.action.in_(RELEVANT_ACTIONS))
    ):
        payload = {k: v for k, v in (("rating", rating), ("step", step)) if v is not None}
        events[tid].append(Event(seq, at, action, aid, payload))
    limits: dict[int, list[StepLimit]] = defaultdict(list)
    if any(assignments.values()) or unknown:
        for tid, aid, step, started, due in session.execute(
            select(
                StepDeadline.ticket_id,
                StepDeadline.assignment_id,
                StepDeadline.step,
                StepDeadline.started_at,
                StepDeadline.due_at,
            ).where(StepDeadline.ticket_id.in_(ids))
        ):
            limits[tid].append(StepLimit(aid, step, started, due))
    return [
        TicketTimeline(
            _ticket_info(*row),
            sorted(events[row[0]], key=lambda e: e.seq),
            assignments[row[0]],
            limits[row[0]],
        )
        for row in tickets
    ]


_calendar_cache: dict[str, tuple[Any, WorkCalendar, float]] = {}
#: How long this process trusts its copy of the calendar without asking whether the table changed.
CALENDAR_RECHECK_SECONDS = 5.0
_TIMED_ACTIONS = frozenset({"sign", "contact", "arrive", "feedback", "review_accept"})


def calendar(session: Session) -> WorkCalendar:
    """The city's working calendar (statutory + local entries, default hours), cached until its table changes
    (looked at most every few seconds: a calendar edit is followed by a rebuild anyway, docs/METRICS.md)."""
    key = str(session.get_bind().engine.url)
    hit = _calendar_cache.get(key)
    if hit is not None and time.monotonic() - hit[2] < CALENDAR_RECHECK_SECONDS:
        return hit[1]
    version = tuple(
        session.execute(
            select(func.count(), func.max(CalendarDay.created_at), func.max(CalendarDay.id))
        ).one()
    )
    if hit is not None and hit[0] == version:
        _calendar_cache[key] = (version, hit[1], time.monotonic())
        return hit[1]
    entries = [CalendarEntry(d.day, d.kind, d.name) for d in session.scalars(select(CalendarDay))]  # type: ignore[arg-type]
    cal = WorkCalendar(entries, zone=DEFAULT_ZONE)
    _calendar_cache[key] = (version, cal, time.monotonic())
    return cal


def _needs_calendar(timelines: Iterable[TicketTimeline]) -> bool:
    """Whether any duration is measured (working time needs the calendar)."""
    return any(ev.action in _TIMED_ACTIONS for tl in timelines for ev in tl.events)


def compute(timelines: Sequence[TicketTimeline], cal: WorkingTime | None) -> dict[int, Contribution]:
    return {tl.ticket.id: contribution(tl, cal) for tl in timelines}


# ---------------------------------------------------------------------------------------------- writing
def apply_changes(
    session: Session,
    fast: Sequence[TicketTimeline],
    slow_ids: Sequence[int],
    known: Mapping[int, Ticket] | None = None,
) -> None:
    """Replace the contributions of these tickets: ``fast`` are new tickets given in full, ``slow_ids`` are read
    (those in ``known`` partly from the session)."""
    ids = sorted({*(tl.ticket.id for tl in fast), *slow_ids})
    old = _old_contributions(session, ids)
    timelines = list(fast) + load_timelines(session, sorted(set(slow_ids)), known)
    cal = calendar(session) if _needs_calendar(timelines) else None
    new = compute(timelines, cal)
    delta: dict[FactKey, dict[str, int]] = {}
    changed: list[dict[str, Any]] = []
    for tid in ids:
        before = old.get(tid, {})
        after = new.get(tid, {})
        if before == after:
            continue
        merge_into(delta, after)
        merge_into(delta, before, -1)
        changed.append({"ticket_id": tid, "day": _day_of(after, before), "rows": encode(after)})
    if changed:
        _upsert_contributions(session, changed)
    upsert_facts(session, expand(delta))


def _day_of(*contribs: Contribution) -> date:
    for c in contribs:
        for k in c:
            return k[0]
    return date.min


def _old_contributions(session: Session, ids: list[int]) -> dict[int, Contribution]:
    """What these tickets contribute now; on PostgreSQL their rows are locked (a rebuild waits, or is waited for)."""
    out: dict[int, Contribution] = {}
    for i in range(0, len(ids), CHUNK):
        q = select(MeasureContribution.ticket_id, MeasureContribution.rows).where(
            MeasureContribution.ticket_id.in_(ids[i : i + CHUNK])
        )
        for tid, rows in session.execute(dialect.lock_rows(session, q)):
            out[tid] = decode(rows)
    return out


def encode(c: Contribution) -> list[Any]:
    return [[k[0].isoformat(), *k[1:], v] for k, v in sorted(c.items())]


def decode(rows: list[Any]) -> Contribution:
    return {
        (date.fromisoformat(r[0]), int(r[1]), int(r[2]), int(r[3]), str(r[4]), str(r[5])): dict(r[6])
        for r in rows or []
    }


def expand(delta: Mapping[FactKey, Mapping[str, int]]) -> dict[CubeKey, dict[str, int]]:
    """The detailed delta spread over every cube, zero rows dropped."""
    out: dict[CubeKey, dict[str, int]] = {}
    for k, counters in delta.items():
        for ck in cube_keys(k):
            merge_into(out, {ck: counters})
    return out


def _upsert_contributions(session: Session, rows: list[dict[str, Any]]) -> None:
    ins = dialect.insert(session)(MeasureContribution)
    stmt = ins.on_conflict_do_update(
        index_elements=["ticket_id"], set_={"rows": ins.excluded.rows, "day": ins.excluded.day}
    )
    for i in range(0, len(rows), CHUNK):
        session.execute(stmt, rows[i : i + CHUNK])


def upsert_facts(session: Session, rows: Mapping[CubeKey, Mapping[str, int]]) -> None:
    """Add counters to fact rows (creating them), in key order: INSERT … ON CONFLICT DO UPDATE SET n = n + …"""
    if not rows:
        return
    values = [
        {**dict(zip(KEY_COLUMNS, k, strict=True)), **{c: counters.get(c, 0) for c in COUNTERS}}
        for k, counters in sorted(rows.items())
    ]
    # Only the counters this batch changes are updated: fewer assignments on busy rows.
    touched = sorted({c for counters in rows.values() for c in counters})
    add_counts(session, measure_facts, KEY_COLUMNS, COUNTERS, values, changed=touched)


# ---------------------------------------------------------------------------------------------- rebuild
@dataclass
class RebuildReport:
    tickets: int = 0
    fact_rows: int = 0
    since: date | None = None


def rebuild_facts(
    session: Session,
    *,
    since: date | None = None,
    progress: Callable[[int, int], None] | None = None,
    chunk: int = 2000,
    flush_rows: int = 200_000,
) -> RebuildReport:
    """Recompute the facts from the raw timeline: of every ticket, or of the tickets taken in from the month of
    local day ``since`` on (the facts of earlier months are kept). Idempotent; runs in the caller's transaction.

    On PostgreSQL the contributions table is locked for the rebuild: a step taken meanwhile waits for it and
    then applies its change to the rebuilt facts. On SQLite the rebuild holds the write lock throughout.
    """
    if dialect.is_postgresql(session):
        session.execute(text("LOCK TABLE measure_contributions IN EXCLUSIVE MODE"))
    # The monthly cubes hold whole months: a partial rebuild starts at the first of a month.
    since = since.replace(day=1) if since is not None else None
    start = Period(since, since + timedelta(days=1)).utc_bounds()[0] if since else None
    if since is None:
        session.execute(delete(measure_facts))
        session.execute(delete(MeasureContribution))
    else:
        session.execute(delete(measure_facts).where(measure_facts.c.day >= since))
        session.execute(delete(MeasureContribution).where(MeasureContribution.day >= since))
    cond = [Ticket.created_at >= start] if start is not None else []
    total = session.scalar(select(func.count()).select_from(Ticket).where(*cond)) or 0
    report = RebuildReport(since=since)
    pending: dict[CubeKey, dict[str, int]] = {}
    last_id: int | None = None
    while True:
        q = select(Ticket.id).where(*cond).order_by(Ticket.id).limit(chunk)
        if last_id is not None:
            q = q.where(Ticket.id > last_id)
        ids = list(session.scalars(q))
        if not ids:
            break
        last_id = ids[-1]
        timelines = load_timelines(session, ids)
        cal = calendar(session) if _needs_calendar(timelines) else None
        contribs = compute(timelines, cal)
        session.execute(
            insert(MeasureContribution),
            [{"ticket_id": tid, "day": _day_of(c), "rows": encode(c)} for tid, c in contribs.items()],
        )
        for c in contribs.values():
            for k, counters in c.items():
                for ck in cube_keys(k):
                    row = pending.setdefault(ck, {})
                    for name, n in counters.items():
                        row[name] = row.get(name, 0) + n
        report.tickets += len(ids)
        if len(pending) >= flush_rows:
            report.fact_rows += len(pending)
            upsert_facts(session, pending)
            pending = {}
        if progress is not None:
            progress(report.tickets, total)
    report.fact_rows += len(pending)
    upsert_facts(session, pending)
    return report


def facts_of(session: Session, cube: int | None = None) -> dict[CubeKey, dict[str, int]]:
    """The fact rows (of one cube, or all) as {key: {counter: n}} without zeros: what tests compare."""
    out: dict[CubeKey, dict[str, int]] = {}
    q = select(measure_facts)
    if cube is not None:
        q = q.where(measure_facts.c.cube == cube)
    for row in session.execute(q).mappings():
        counters = {c: int(row[c]) for c in COUNTERS if row[c]}
        if counters:
            out[tuple(row[k] for k in KEY_COLUMNS)] = counters  # type: ignore[assignment]
    return out


def recompute_all(session: Session) -> dict[CubeKey, dict[str, int]]:
    """Every cube's facts recomputed from the raw timeline in memory, without touching the tables."""
    ids = list(session.scalars(select(Ticket.id).order_by(Ticket.id)))
    timelines = load_timelines(session, ids)
    cal = calendar(session) if _needs_calendar(timelines) else None
    total: dict[FactKey, dict[str, int]] = {}
    for c in compute(timelines, cal).values():
        merge_into(total, c)
    return expand(total)


def compare_facts(session: Session) -> list[tuple[CubeKey, dict[str, int], dict[str, int]]]:
    """The fact rows whose counters differ from a recomputation: (key, kept, recomputed), sorted by key."""
    kept = facts_of(session)
    again = recompute_all(session)
    return [
        (k, kept.get(k, {}), again.get(k, {}))
        for k in sorted(set(kept) | set(again))
        if kept.get(k) != again.get(k)
    ]
