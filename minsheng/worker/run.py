"""One worker pass (`run_once`) and the loop around it (`run_loop`, `EmbeddedWorker` for `minsheng serve`).

A pass claims due timers (``due_at <= now AND fired_at IS NULL``, oldest first, ``batch`` at a time) through the
partial index, with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL so that many workers share the work without
firing anything twice (on SQLite, BEGIN IMMEDIATE serialises writers). Each batch is one transaction: timeline
events, inbox rows, outbox rows and the fired marks commit together. The outbox is delivered afterwards, outside
any transaction. A broken row, a bad template or an unreachable gateway is logged and recorded, never fatal.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select

from minsheng.domain.clock import Clock
from minsheng.notify.channels import Sender
from minsheng.notify.delivery import RetryPolicy
from minsheng.services.clockwork import ClockConfig, Clockwork, FireStats
from minsheng.services.notifications import deliver_due
from minsheng.services.tickets import TicketEngine
from minsheng.storage.clock_tables import Timer
from minsheng.storage.db import Database

log = logging.getLogger("minsheng.worker")

DEFAULT_BATCH = 500


@dataclass
class RunStats:
    fired: int = 0
    skipped: int = 0
    errors: int = 0
    busy: int = 0
    batches: int = 0
    sent: int = 0
    retrying: int = 0
    dead: int = 0
    problems: list[str] = field(default_factory=list)


def fire_due(
    db: Database,
    now: datetime,
    clockwork: Clockwork,
    *,
    batch: int = DEFAULT_BATCH,
    worker_id: str = "worker",
) -> RunStats:
    """Fire every timer due at ``now`` that no other worker holds."""
    stats = RunStats()
    q = (
        select(Timer)
        .where(Timer.fired_at.is_(None), Timer.due_at <= now)
        .order_by(Timer.due_at, Timer.id)
        .limit(batch)
    )
    if not db.is_sqlite:
        q = q.with_for_update(skip_locked=True)
    while True:
        try:
            with db.write_sessions() as session, session.begin():
                timers = list(session.scalars(q))
                if not timers:
                    break
                result: FireStats = clockwork.fire_batch(session, timers, now, worker_id, careful=False)
        except Exception:
            # Some row of the batch is broken: do the batch again, one savepoint per timer, so that only that
            # row is marked as failed (and the worker goes on).
            log.warning("batch failed; firing it again timer by timer", exc_info=True)
            with db.write_sessions() as session, session.begin():
                timers = list(session.scalars(q))
                if not timers:
                    break
                result = clockwork.fire_batch(session, timers, now, worker_id, careful=True)
        stats.batches += 1
        stats.fired += result.fired
        stats.skipped += result.skipped
        stats.errors += result.errors
        stats.busy += result.busy
        if result.busy == len(timers):
            break  # all held by others (their tickets are locked): they are being handled
    return stats


def run_once(
    db: Database,
    now: datetime,
    batch: int = DEFAULT_BATCH,
    worker_id: str = "worker",
    *,
    clockwork: Clockwork | None = None,
    senders: Mapping[str, Sender] | None = None,
    retry: RetryPolicy | None = None,
) -> RunStats:
    """One pass: fire due timers, then deliver due outbox rows (when ``senders`` is given)."""
    clockwork = clockwork or Clockwork(TicketEngine(), ClockConfig())
    stats = fire_due(db, now, clockwork, batch=batch, worker_id=worker_id)
    if senders is not None:
        while True:
            d = deliver_due(db, now, senders, retry=retry, worker_id=worker_id, limit=batch)
            stats.sent += d.sent
            stats.retrying += d.retrying
            stats.dead += d.dead
            stats.problems.extend(d.errors)
            if d.attempted < batch:
                break
    return stats


def run_loop(
    db: Database,
    clock: Clock,
    clockwork: Clockwork,
    senders: Mapping[str, Sender],
    *,
    interval: float = 2.0,
    stop: threading.Event | None = None,
    retry: RetryPolicy | None = None,
    worker_id: str = "worker",
    on_pass: Callable[[RunStats], None] | None = None,
) -> None:
    """Run passes every ``interval`` seconds until ``stop`` is set; a failed pass is logged and retried."""
    stop = stop or threading.Event()
    while not stop.is_set():
        try:
            stats = run_once(
                db, clock.now(), worker_id=worker_id, clockwork=clockwork, senders=senders, retry=retry
            )
            if on_pass is not None:
                on_pass(stats)
            if stats.fired or stats.errors or stats.sent or stats.dead:
                log.info(
                    "pass: fired %d, skipped %d, errors %d, sent %d, retrying %d, dead %d",
                    stats.fired,
                    stats.skipped,
                    stats.errors,
                    stats.sent,
                    stats.retrying,
                    stats.dead,
                )
        except Exception:  # the database may be briefly unavailable; the next pass tries again
            log.exception("worker pass failed")
        stop.wait(interval)


class EmbeddedWorker:
    """The worker as a daemon thread of the web process (the single-machine SQLite setup)."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        clockwork: Clockwork,
        senders: Mapping[str, Sender],
        *,
        retry: RetryPolicy | None = None,
        interval: float = 2.0,
        worker_id: str = "embedded",
    ) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=run_loop,
            args=(db, clock, clockwork, senders),
            kwargs={"interval": interval, "stop": self._stop, "retry": retry, "worker_id": worker_id},
            name="minsheng-worker",
            daemon=True,
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
