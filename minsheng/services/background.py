"""Background work: one pass (`run_once`) and the loop around it (`run_loop`; `TimerWorker` runs it on a thread
of the web process, `minsheng worker run` in a process of its own).

A pass fires the due timers (`minsheng.services.timelimits.firing.fire_due`: claimed a batch at a time, each
batch one transaction) and then delivers the due outbox rows, outside any transaction
(`minsheng.services.notifications.deliver_due`). A broken row, a bad template or an unreachable gateway is
logged and recorded, never fatal.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from minsheng.domain.clock import Clock
from minsheng.notify.channels import Sender
from minsheng.notify.delivery import RetryPolicy
from minsheng.services.notifications import deliver_due
from minsheng.services.tickets import TicketEngine
from minsheng.services.timelimits.config import TimeLimitConfig
from minsheng.services.timelimits.firing import fire_due
from minsheng.services.timelimits.subscriber import Clockwork
from minsheng.storage.db import Database

log = logging.getLogger("minsheng.background")

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
    clockwork = clockwork or Clockwork(TicketEngine(), TimeLimitConfig())
    fired = fire_due(db, now, clockwork, batch=batch, worker_id=worker_id)
    stats = RunStats(fired.fired, fired.skipped, fired.errors, fired.busy, fired.batches)
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
