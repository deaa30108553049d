"""Deferred triage (``MINSHENG_TRIAGE_MODE=deferred``): intake stores the ticket and a triage job in one
transaction and answers; this module takes the jobs up, oldest first, and applies the decision intake would have
made (category, area, kind, urgency, explanation, cluster notes, automatic dispatch by the system).

Why: the analysis costs more CPU than storing the ticket, so a burst of calls is answered at the rate tickets can
be stored and triaged moments later (docs/TRIAGE.md): by the web process's own thread (`TriageWorker`, which yields
to intake for up to ``triage_max_lag_seconds``), or by `minsheng worker run` processes sharing the jobs.

Exactly once: a job row is deleted in the transaction that applies its decision. On PostgreSQL a batch is
claimed with ``SKIP LOCKED`` and analysed inside its transaction (only the job and ticket rows are locked). On
SQLite, whose writers take one database lock, the batch is read and analysed first and then claimed by
``DELETE … RETURNING`` inside a short write transaction: a job another process claimed first is not applied.
A batch that fails is retried job by job; a job that fails ``MAX_ATTEMPTS`` times is given a queue decision with
the error, so the ticket waits for a dispatcher like any other.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, selectinload

from minsheng.domain.clock import Clock
from minsheng.services import schemas as s
from minsheng.services.tickets import CLAIMED_KEY, PREPARED_KEY, TicketEngine
from minsheng.storage import dialect
from minsheng.storage.db import Database
from minsheng.storage.models import Ticket
from minsheng.storage.triage_tables import TriageJob

log = logging.getLogger("minsheng.triage.jobs")

DEFAULT_BATCH = 64
MAX_ATTEMPTS = 3


@dataclass
class TriageRunStats:
    triaged: int = 0
    failed: int = 0
    batches: int = 0


@dataclass
class _Work:
    ticket_id: int
    req: s.IntakeRequest
    prepared: Any


def run_triage_jobs(
    db: Database, engine: TicketEngine, now: datetime, *, batch: int = DEFAULT_BATCH, max_batches: int = 0
) -> TriageRunStats:
    """Triage waiting tickets, oldest first, until none is left (or ``max_batches`` batches, if > 0)."""
    stats = TriageRunStats()
    # Jobs that failed in this run are left for the next one: a broken job costs one attempt per run.
    failed: set[int] = set()
    while not max_batches or stats.batches < max_batches:
        try:
            n = _one_batch(db, engine, now, batch, failed)
        except Exception:
            log.warning("triage batch failed; retrying its jobs one by one", exc_info=True)
            n = _one_by_one(db, engine, now, batch, stats, failed)
        if n == 0:
            break
        stats.batches += 1
        stats.triaged += n
    return stats


def pending_jobs(db: Database) -> tuple[int, datetime | None]:
    """How many tickets wait for triage, and when the oldest of them was taken in."""
    with db.read_sessions() as session:
        count = session.scalar(select(func.count()).select_from(TriageJob)) or 0
        oldest = session.scalar(select(TriageJob.created_at).order_by(TriageJob.ticket_id).limit(1))
    return count, oldest


def backlog(db: Database, now: datetime) -> dict[str, Any]:
    """The deferred backlog as operators watch it: tickets waiting, the oldest's intake time, its wait so far."""
    waiting, oldest = pending_jobs(db)
    lag = (now - oldest).total_seconds() if oldest is not None else 0.0
    return {"waiting": waiting, "oldest_at": oldest, "lag_seconds": max(0.0, lag)}


def _jobs_query(limit: int, skip: set[int]) -> Any:
    q = select(TriageJob.ticket_id, TriageJob.request, TriageJob.created_at)
    if skip:
        q = q.where(TriageJob.ticket_id.not_in(sorted(skip)))
    return q.order_by(TriageJob.ticket_id).limit(limit)


def _analyse(engine: TicketEngine, rows: list[Any]) -> list[_Work]:
    reqs = []
    for _, request, _ in rows:
        try:
            req = s.IntakeRequest.model_validate(request)
        except ValidationError:
            # Intake took it (an internal caller may hand over text beyond the API's limits): triage what it holds.
            req = s.IntakeRequest.model_construct(**request)
        reqs.append(req)
    at = [row[2] for row in rows]
    if engine.triage_prepare_many is not None:
        prepared = engine.triage_prepare_many(reqs, at)
    elif engine.triage_prepare is not None:
        prepared = [engine.triage_prepare(req, when) for req, when in zip(reqs, at, strict=True)]
    else:
        prepared = [None] * len(reqs)
    return [_Work(int(row[0]), req, p) for row, req, p in zip(rows, reqs, prepared, strict=True)]


def _one_batch(db: Database, engine: TicketEngine, now: datetime, batch: int, skip: set[int]) -> int:
    if db.is_sqlite:
        # Analyse before taking the write lock: intake waits for that lock, not for our CPU.
        with db.read_sessions() as session:
            rows = list(session.execute(_jobs_query(batch, skip)))
        if not rows:
            return 0
        work = _analyse(engine, rows)
        with db.write_sessions() as session, session.begin():
            ids = [w.ticket_id for w in work]
            claimed = set(
                session.scalars(
                    delete(TriageJob).where(TriageJob.ticket_id.in_(ids)).returning(TriageJob.ticket_id)
                )
            )
            _apply(session, engine, [w for w in work if w.ticket_id in claimed], now)
        return len(rows)
    with db.write_sessions() as session, session.begin():
        rows = list(session.execute(_jobs_query(batch, skip).with_for_update(skip_locked=True)))
        if not rows:
            return 0
        work = _analyse(engine, rows)
        session.execute(delete(TriageJob).where(TriageJob.ticket_id.in_([w.ticket_id for w in work])))
        _apply(session, engine, work, now)
    return len(rows)


def _apply(session: Session, engine: TicketEngine, work: list[_Work], now: datetime) -> None:
    if not work:
        return
    q = (
        select(Ticket)
        .where(Ticket.id.in_([w.ticket_id for w in work]))
        .options(selectinload(Ticket.assignments))
    )
    # A dispatcher may be acting on the same ticket: its step and ours take turns.
    q = dialect.lock_rows(session, q)
    tickets = {t.id: t for t in session.scalars(q)}
    session.info.setdefault(CLAIMED_KEY, set()).update(w.ticket_id for w in work)
    for w in work:
        t = tickets.get(w.ticket_id)
        if t is None:
            continue  # deleted with its ticket (cascade) in the meantime
        if w.prepared is not None:
            session.info[PREPARED_KEY] = (w.req, w.prepared)
        engine.triage_stored(session, t, w.req, now)
        session.info.pop(PREPARED_KEY, None)


def _one_by_one(
    db: Database, engine: TicketEngine, now: datetime, batch: int, stats: TriageRunStats, failed: set[int]
) -> int:
    """After a failed batch: each job in its own transaction; a failing one is counted, then given up."""
    with db.read_sessions() as session:
        rows = list(session.execute(_jobs_query(batch, failed)))
    for row in rows:
        try:
            with db.write_sessions() as session, session.begin():
                locked = select(TriageJob.ticket_id).where(TriageJob.ticket_id == row[0])
                if not db.is_sqlite:
                    locked = locked.with_for_update(skip_locked=True)
                if session.scalar(locked) is None:
                    continue
                work = _analyse(engine, [row])
                session.execute(delete(TriageJob).where(TriageJob.ticket_id == row[0]))
                _apply(session, engine, work, now)
        except Exception as e:
            log.exception("triage of ticket id %s failed", row[0])
            stats.failed += 1
            failed.add(int(row[0]))
            _record_failure(db, int(row[0]), f"{type(e).__name__}: {e}")
    return len(rows)


def _record_failure(db: Database, ticket_id: int, error: str) -> None:
    with db.write_sessions() as session, session.begin():
        job = session.get(TriageJob, ticket_id)
        if job is None:
            return
        job.attempts += 1
        job.last_error = error[:2000]
        if job.attempts < MAX_ATTEMPTS:
            return
        # Given up: the ticket waits in the dispatchers' queue, with the reason on its triage explanation.
        session.delete(job)
        session.execute(
            update(Ticket)
            .where(Ticket.id == ticket_id, Ticket.triage.is_(None))
            .values(
                triage={
                    "version": 1,
                    "decision": "queue",
                    "reasons": [{"code": "error", "message": f"分诊失败 {MAX_ATTEMPTS} 次：{error[:500]}"}],
                }
            )
        )


class TriageWorker:
    """A thread that takes triage jobs up as they come (woken by the intake writer) and on a timer.

    ``busy`` tells it when intake is working (the intake writer's batches): it then waits, at most until the
    oldest job has waited ``max_lag`` seconds, so that a burst of calls is taken in first and triaged after it.
    """

    def __init__(
        self,
        db: Database,
        engine: TicketEngine,
        clock: Clock,
        *,
        interval: float = 1.0,
        batch: int = DEFAULT_BATCH,
        busy: Callable[[], bool] | None = None,
        max_lag: float = 30.0,
        name: str = "minsheng-triage",
    ) -> None:
        self.db, self.engine, self.clock = db, engine, clock
        self.interval, self.batch, self.busy, self.max_lag = interval, batch, busy, max_lag
        self.stats = TriageRunStats()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> TriageWorker:
        self._thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _yielding(self) -> bool:
        if self.busy is None or not self.busy():
            return False
        with self.db.read_sessions() as session:
            oldest = session.scalar(select(TriageJob.created_at).order_by(TriageJob.ticket_id).limit(1))
        return oldest is not None and (self.clock.now() - oldest).total_seconds() < self.max_lag

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            try:
                while not self._stop.is_set() and self._yielding():
                    time.sleep(0.05)
                r = run_triage_jobs(self.db, self.engine, self.clock.now(), batch=self.batch, max_batches=1)
                self.stats.triaged += r.triaged
                self.stats.failed += r.failed
                self.stats.batches += r.batches
                if r.triaged:
                    self._wake.set()  # more may be waiting: go on without sleeping
            except Exception:  # the database may be briefly unavailable; the next round tries again
                log.exception("triage round failed")
