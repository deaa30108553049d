"""The composition root: builds every part of a running minsheng once, from `Settings`.

The API, the pages, the CLI and the worker take what they need from a `Platform`; nothing else wires parts
together. Building does no I/O (no connection, no model, no thread): `start()` does, and callers run it off the
event loop (the web app from its lifespan, in a worker thread). `stop()` ends the threads, the intake writer
last but one (it commits what it holds), and releases the database if the platform opened it.

Which threads run where:
- `Role.WEB` (`minsheng serve`): the intake writer; with `embedded_worker` (the default) the timer and outbox
  worker, and with deferred triage the triage thread.
- `Role.WORKER` (`minsheng worker run`): the timer and outbox loop runs in the caller's thread; with deferred
  triage a triage thread takes its share of the jobs.
- `Role.TOOL` (other CLI commands, tests, benchmarks): no threads.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from minsheng.config import Settings
from minsheng.domain.clock import Clock, SystemClock
from minsheng.notify.channels import Sender
from minsheng.notify.delivery import RetryPolicy
from minsheng.services import audit, kb, org, partners, supervision
from minsheng.services.background import PassLimits, TimerWorker
from minsheng.services.channels.email import MailPoller
from minsheng.services.channels.notices import ChannelNotices
from minsheng.services.intake_writer import IntakeWriter
from minsheng.services.notifications import build_senders, retry_policy
from minsheng.services.report_jobs import ReportJob
from minsheng.services.tickets import TicketEngine
from minsheng.services.timelimits.config import TimeLimitConfig
from minsheng.services.timelimits.subscriber import Clockwork
from minsheng.services.triage.jobs import TriageWorker
from minsheng.services.triage.runtime import TriageRuntime
from minsheng.storage.db import Database, open_database

log = logging.getLogger("minsheng.bootstrap")


class Role(enum.Enum):
    WEB = "web"
    WORKER = "worker"
    TOOL = "tool"


@dataclass
class Platform:
    """Everything built at start-up and shared by requests, jobs and commands of one process."""

    settings: Settings
    db: Database
    clock: Clock
    engine: TicketEngine
    intake: IntakeWriter
    clockwork: Clockwork
    triage: TriageRuntime
    senders: dict[str, Sender]
    retry: RetryPolicy
    role: Role
    owns_db: bool = True
    triage_worker: TriageWorker | None = None
    timer_worker: TimerWorker | None = None
    _stops: list[Callable[[], None]] = field(default_factory=list)

    # ------------------------------------------------------------------------------------------ lifecycle
    def start(self) -> Platform:
        """Load what needs the database (full-text index, model, recent tickets) and start the threads.

        Blocking: never call it on the event loop's thread."""
        self._stops.append(self.intake.stop)
        if self.role is Role.TOOL:
            return self
        deferred = self.settings.triage_mode == "deferred"
        if self.role is Role.WEB:
            with self.db.write_sessions() as session, session.begin():
                kb.ensure_fts(session)
        if self.role is Role.WEB or deferred:
            self.triage.start()
        embedded = self.role is Role.WEB and self.settings.embedded_worker
        if deferred and (embedded or self.role is Role.WORKER):
            web = self.role is Role.WEB
            self.triage_worker = TriageWorker(
                self.db,
                self.engine,
                self.clock,
                interval=self.settings.worker_interval_seconds
                if web
                else self.settings.triage_interval_seconds,
                busy=self.intake.busy if web else None,
                max_lag=self.settings.triage_max_lag_seconds,
            ).start()
            if web:
                self.intake.on_commit = self.triage_worker.wake
            self._stops.append(self.triage_worker.stop)
        if embedded:
            self.timer_worker = TimerWorker(
                self.db,
                self.clock,
                self.clockwork,
                self.senders,
                retry=self.retry,
                interval=self.settings.worker_interval_seconds,
                limits=PassLimits.from_settings(self.settings),
                on_pass=ReportJob(self.db, self.clock, self.settings, self.senders),
            )
            self.timer_worker.start()
            self._stops.append(self.timer_worker.stop)
        if self.settings.imap_host and (embedded or self.role is Role.WORKER):  # the e-mail channel
            self._stops.append(
                MailPoller(self.db, self.engine, self.clock, self.settings, self.senders).start()
            )
        return self

    def on_stop(self, stop: Callable[[], None]) -> None:
        """Something an entry point started that must end with the platform (before the database closes)."""
        self._stops.append(stop)

    def stop(self) -> None:
        """End the threads, newest first; then close the database if this platform opened it."""
        while self._stops:
            stop = self._stops.pop()
            try:
                stop()
            except Exception:  # one part failing to stop must not keep the others running
                log.exception("stopping %s failed", stop)
        if self.owns_db:
            self.db.dispose()


def build(
    settings: Settings | None = None,
    *,
    role: Role = Role.TOOL,
    clock: Clock | None = None,
    db: Database | None = None,
) -> Platform:
    """Build a platform (no I/O). `db` and `clock` may be given (tests); the platform then leaves `db` open."""
    settings = settings or Settings()
    database = db or open_database(settings.database_url, pool_size=settings.pool_size)
    clock = clock or SystemClock()
    engine = TicketEngine()
    senders = build_senders(settings)
    clockwork = Clockwork(engine, TimeLimitConfig.from_settings(settings, senders))
    engine.subscribers.append(clockwork)
    engine.subscribers.append(ChannelNotices(settings.hotline_name, senders))  # mail back to mail
    engine.subscribers.extend(supervision.subscribers(engine, clockwork.config.channels))  # watch, checks
    partners.install(engine, senders, database, settings)  # 110 and peer hotlines (issue 16)
    triage = TriageRuntime(database, settings, engine, clock)
    if role is Role.WEB or (role is Role.WORKER and settings.triage_mode == "deferred"):
        # Tools (imports, seeding, simulations) register tickets without triage, as a city's history is.
        engine.triage = triage.hook
        engine.triage_prepare = triage.prepare
        engine.triage_prepare_many = triage.prepare_many
        engine.defer_triage = settings.triage_mode == "deferred"
    # Any change to areas, categories or units, through any entry point, refreshes this process's snapshot.
    org.watch_changes(database, triage.mark_stale)
    audit.record_changes(database, clock)  # every administrative change, with its actor (issue 14)
    return Platform(
        settings=settings,
        db=database,
        clock=clock,
        engine=engine,
        intake=IntakeWriter(database, engine, max_batch=settings.intake_batch),
        clockwork=clockwork,
        triage=triage,
        senders=senders,
        retry=retry_policy(settings),
        role=role,
        owns_db=db is None,
    )
