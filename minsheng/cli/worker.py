"""`minsheng worker run`: the background worker as its own process (fires timers, delivers the outbox, and
with ``MINSHENG_TRIAGE_MODE=deferred`` triages the tickets intake has stored)."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from typing import Annotated, Any

import typer

app = typer.Typer(
    help="Background worker: timers (warnings, escalations) and notification delivery.", no_args_is_help=True
)


@app.command("run")
def run(
    database_url: Annotated[str | None, typer.Option("--database-url", help="Database URL.")] = None,
    interval: Annotated[float | None, typer.Option(min=0.1, help="Seconds between passes.")] = None,
    once: Annotated[bool, typer.Option(help="Run one pass and exit.")] = False,
    batch: Annotated[int, typer.Option(min=1, max=10_000, help="Timers per transaction.")] = 500,
    triage_interval: Annotated[
        float, typer.Option(min=0.01, help="Seconds between looks for triage jobs (deferred triage).")
    ] = 0.2,
) -> None:
    """Run the worker loop until interrupted (many may run against one PostgreSQL)."""
    from minsheng.config import Settings
    from minsheng.domain.clock import SystemClock
    from minsheng.services.notifications import NotifySettings
    from minsheng.services.tickets import TicketEngine
    from minsheng.services.timelimits.config import ClockConfig
    from minsheng.services.timelimits.subscriber import Clockwork
    from minsheng.storage.db import open_database
    from minsheng.worker.run import run_loop, run_once

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    kw: dict[str, Any] = {"database_url": database_url} if database_url else {}
    settings = Settings(**kw)
    ns = NotifySettings()
    senders = ns.senders()
    db = open_database(settings.database_url, pool_size=4)
    engine = TicketEngine()
    clockwork = Clockwork(engine, ClockConfig.from_settings(ns, senders))
    engine.subscribers.append(clockwork)
    worker_id = f"{socket.gethostname()}:{os.getpid()}"
    clock = SystemClock()
    triage = None
    if settings.triage_mode == "deferred":
        # Intake leaves triage to workers: this one takes its share of the jobs (SKIP LOCKED on PostgreSQL).
        from minsheng.services.triage_jobs import TriageWorker, run_triage_jobs
        from minsheng.services.triage_service import TriageRuntime

        runtime = TriageRuntime(db, settings, engine, clock).start()
        engine.triage = runtime.hook
        engine.triage_prepare = runtime.prepare
        engine.triage_prepare_many = runtime.prepare_many
        engine.defer_triage = True
        if once:
            done = run_triage_jobs(db, engine, clock.now())
            typer.echo(f"triaged {done.triaged}, failed {done.failed}")
        else:
            triage = TriageWorker(db, engine, clock, interval=triage_interval).start()
    try:
        if once:
            stats = run_once(
                db,
                clock.now(),
                batch,
                worker_id,
                clockwork=clockwork,
                senders=senders,
                retry=ns.retry_policy(),
            )
            typer.echo(
                f"fired {stats.fired}, skipped {stats.skipped}, errors {stats.errors}, sent {stats.sent}, "
                f"retrying {stats.retrying}, dead {stats.dead}"
            )
            return
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        typer.echo(
            f"worker {worker_id}: every {interval or settings.worker_interval_seconds} s, channels "
            f"{', '.join(sorted(senders)) or 'in-app only'}"
        )
        run_loop(
            db,
            clock,
            clockwork,
            senders,
            interval=interval or settings.worker_interval_seconds,
            stop=stop,
            retry=ns.retry_policy(),
            worker_id=worker_id,
        )
    finally:
        if triage is not None:
            triage.stop()
        db.dispose()
