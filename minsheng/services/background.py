"""Background work: one pass (`run_once`) and the loop around it (`run_loop`; `TimerWorker` runs it on a thread
of the web process, `minsheng worker run` in a process of its own).

A pass fires the due timers (`minsheng.services.timelimits.firing.fire_due`: claimed a batch at a time, each
batch one transaction) and then delivers due outbox rows, outside any transaction
(`minsheng.services.notifications.deliver_due`). A broken row, a bad template or an unreachable gateway is
logged and recorded, never fatal.

Delivery is bounded per pass (`PassLimits`: at most `notify_batch` messages and `notify_seconds` seconds), and
the stop flag is looked at before each message. A long outbox (a storm of escalations, a slow gateway) is then
worked off over several passes, which follow each other without the loop's pause, each one firing the timers come
due meanwhile first: timers are never held back by more than one pass's delivery budget, and a stop request
(SIGTERM) ends the pass after the message being sent. The loop also deletes old failed logins now and then
(`services.auth.prune_login_failures`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from minsheng.config import Settings
from minsheng.domain.clock import Clock
from minsheng.notify.channels import Sender
from minsheng.notify.delivery import RetryPolicy
from minsheng.services.auth import prune_login_failures
from minsheng.services.followup import apply_default_ratings
from minsheng.services.notifications import deliver_due
from minsheng.services.partners.deadlines import check_acks
from minsheng.services.supervision.orders import check_overdue_answers
from minsheng.services.tickets import TicketEngine
from minsheng.services.timelimits.config import TimeLimitConfig
from minsheng.services.timelimits.firing import fire_due
from minsheng.services.timelimits.subscriber import Clockwork
from minsheng.storage.db import Database

log = logging.getLogger("minsheng.background")

DEFAULT_BATCH = 500
# Outbox rows claimed at a time within a pass: a claim is a lease of 5 minutes, so a worker never holds more
# than it sends soon (a slow gateway would otherwise let leases run out and a second worker send them again).
CLAIM_CHUNK = 50
# How often one worker deletes old failed logins (and once at its start).
PRUNE_EVERY_SECONDS = 3600.0


@dataclass(frozen=True)
class PassLimits:
    """How much outbox delivery one pass does before it ends (`Settings.worker_notify_*`)."""

    notify_batch: int = 200
    notify_seconds: float | None = 5.0
    keep_login_failures_days: int = 30
    # The follow-up desk's default rating (`Settings.followup_default_*`); None: none is given.
    default_rating_days: float | None = None
    default_rating: str = "satisfied"

    @classmethod
    def from_settings(cls, settings: Settings) -> PassLimits:
        return cls(
            settings.worker_notify_batch,
            settings.worker_notify_seconds,
            settings.login_failure_keep_days,
            settings.followup_default_days,
            settings.followup_default_rating,
        )


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
    attempted: int = 0
    # Delivery ended on its bound (count, time or stop) rather than on an empty outbox: more may be due.
    more: bool = False


def run_once(
    db: Database,
    now: datetime,
    batch: int = DEFAULT_BATCH,
    worker_id: str = "worker",
    *,
    clockwork: Clockwork | None = None,
    senders: Mapping[str, Sender] | None = None,
    retry: RetryPolicy | None = None,
    limits: PassLimits | None = None,
    stop: threading.Event | None = None,
    monotonic: Callable[[], float] = time.monotonic,
) -> RunStats:
    """One pass: fire due timers, then deliver due outbox rows (when ``senders`` is given) within ``limits``.

    ``monotonic`` measures the pass's delivery time (tests give a fake one)."""
    clockwork = clockwork or Clockwork(TicketEngine(), TimeLimitConfig())
    limits = limits or PassLimits()
    fired = fire_due(db, now, clockwork, batch=batch, worker_id=worker_id, stop=stop)
    stats = RunStats(fired.fired, fired.skipped, fired.errors, fired.busy, fired.batches)
    if stop is not None and stop.is_set():
        return stats  # the rest waits for the next worker
    check_acks(db, now, clockwork.engine)  # partner transfers still unacknowledged warn, then escalate
    check_overdue_answers(db, now, clockwork.engine, clockwork.config.channels)  # 督办 answers past due
    if limits.default_rating_days is not None:
        apply_default_ratings(
            db, clockwork.engine, now, days=limits.default_rating_days, rating=limits.default_rating
        )
    if senders is not None:
        _deliver(db, now, senders, retry, worker_id, limits, stop, monotonic, stats)
    return stats


def _deliver(
    db: Database,
    now: datetime,
    senders: Mapping[str, Sender],
    retry: RetryPolicy | None,
    worker_id: str,
    limits: PassLimits,
    stop: threading.Event | None,
    monotonic: Callable[[], float],
    stats: RunStats,
) -> None:
    started = monotonic()

    def halt() -> bool:
        if stop is not None and stop.is_set():
            return True
        return limits.notify_seconds is not None and monotonic() - started >= limits.notify_seconds

    while True:
        left = limits.notify_batch - stats.attempted
        if left <= 0 or halt():
            stats.more = stats.attempted > 0  # a bound was met after some work: the next pass goes on at once
            return
        want = min(CLAIM_CHUNK, left)
        d = deliver_due(db, now, senders, retry=retry, worker_id=worker_id, limit=want, halt=halt)
        stats.attempted += d.attempted
        stats.sent += d.sent
        stats.retrying += d.retrying
        stats.dead += d.dead
        stats.problems.extend(d.errors)
        if d.released:
            stats.more = stats.attempted > 0
            return
        if d.claimed < want:
            return  # nothing more due


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
    limits: PassLimits | None = None,
    monotonic: Callable[[], float] = time.monotonic,
) -> None:
    """Run passes until ``stop`` is set: every ``interval`` seconds, or at once after a pass that left outbox
    rows due (so timers are looked at between slices of a long outbox). A failed pass is logged and retried."""
    stop = stop or threading.Event()
    limits = limits or PassLimits()
    next_prune = monotonic()
    while not stop.is_set():
        more = False
        try:
            if monotonic() >= next_prune:
                next_prune = monotonic() + PRUNE_EVERY_SECONDS
                _prune(db, clock.now(), limits)
            stats = run_once(
                db,
                clock.now(),
                worker_id=worker_id,
                clockwork=clockwork,
                senders=senders,
                retry=retry,
                limits=limits,
                stop=stop,
                monotonic=monotonic,
            )
            more = stats.more
            # After a stop request nothing more starts (SIGTERM ends the worker within one send's timeout):
            # whatever `on_pass` does (a report to make) waits for the next start.
            if on_pass is not None and not stop.is_set():
                on_pass(stats)
            _log_pass(stats)
        except Exception:  # the database may be briefly unavailable; the next pass tries again
            log.exception("worker pass failed")
        if not more:
            stop.wait(interval)


def _prune(db: Database, now: datetime, limits: PassLimits) -> None:
    """Housekeeping between passes: the record of failed logins is kept `keep_login_failures_days`."""
    pruned = prune_login_failures(db, now, limits.keep_login_failures_days)
    if pruned:
        log.info("deleted %d failed logins older than %d days", pruned, limits.keep_login_failures_days)


def _log_pass(stats: RunStats) -> None:
    if stats.fired or stats.errors or stats.sent or stats.dead:
        log.info(
            "pass: fired %d, skipped %d, errors %d, sent %d, retrying %d, dead %d%s",
            stats.fired,
            stats.skipped,
            stats.errors,
            stats.sent,
            stats.retrying,
            stats.dead,
            ", more due" if stats.more else "",
        )


class TimerWorker:
    """The loop as a daemon thread of the web process (the embedded worker of a single-machine setup)."""

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
        limits: PassLimits | None = None,
        on_pass: Callable[[RunStats], None] | None = None,
    ) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=run_loop,
            args=(db, clock, clockwork, senders),
            kwargs={
                "interval": interval,
                "stop": self._stop,
                "retry": retry,
                "worker_id": worker_id,
                "limits": limits,
                "on_pass": on_pass,
            },
            name="minsheng-worker",
            daemon=True,
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
