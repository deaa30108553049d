"""`minsheng worker run`: a platform in the worker role, and the loop until SIGINT or SIGTERM.

The signal only sets the loop's stop flag: the pass in progress ends after the message it is sending (the
outbox rows it claimed and did not send are handed back), so the process ends within one send's timeout of
SIGTERM, well inside systemd's TimeoutStopSec."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from collections.abc import Callable

from minsheng.bootstrap import Platform, Role, build
from minsheng.config import Settings
from minsheng.services.background import DEFAULT_BATCH, PassLimits, run_loop, run_once
from minsheng.services.report_jobs import ReportJob
from minsheng.services.triage.jobs import run_triage_jobs


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def run_one_pass(settings: Settings, batch: int = DEFAULT_BATCH) -> list[str]:
    """One pass of everything a worker does; returns what it did, one line per part."""
    platform = build(settings, role=Role.TOOL if settings.triage_mode != "deferred" else Role.WORKER)
    try:
        lines = []
        if settings.triage_mode == "deferred":
            # As in the loop, but once and in this thread: the triage thread is not started.
            platform.triage.start()
            done = run_triage_jobs(platform.db, platform.engine, platform.clock.now())
            lines.append(f"triaged {done.triaged}, failed {done.failed}")
        stats = run_once(
            platform.db,
            platform.clock.now(),
            batch,
            worker_id(),
            clockwork=platform.clockwork,
            senders=platform.senders,
            retry=platform.retry,
            limits=PassLimits.from_settings(settings),
        )
        lines.append(
            f"fired {stats.fired}, skipped {stats.skipped}, errors {stats.errors}, sent {stats.sent}, "
            f"retrying {stats.retrying}, dead {stats.dead}"
        )
        return lines
    finally:
        platform.stop()


def run_forever(settings: Settings, interval: float, say: Callable[[str], None]) -> None:
    """The worker loop in this thread until SIGINT or SIGTERM; the triage thread alongside when deferred."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    platform: Platform = build(settings, role=Role.WORKER).start()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    me = worker_id()
    say(f"worker {me}: every {interval} s, channels {', '.join(sorted(platform.senders)) or 'in-app only'}")
    try:
        run_loop(
            platform.db,
            platform.clock,
            platform.clockwork,
            platform.senders,
            interval=interval,
            stop=stop,
            retry=platform.retry,
            worker_id=me,
            limits=PassLimits.from_settings(settings),
            on_pass=ReportJob(platform.db, platform.clock, settings, platform.senders),
        )
    finally:
        platform.stop()
