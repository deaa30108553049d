"""Group commit for intake: one writer thread per process takes the requests that arrive together and
registers them in one transaction.

Why: every intake is a short write transaction. On SQLite they queue for one database lock; taken one by one by
a pool of request threads, each waiting thread costs a lock hand-over and a share of the GIL, so most of an
intake's time was spent queueing rather than writing. One writer that drains the queue pays for BEGIN, COMMIT
and the hand-over once per batch, and the request threads are not needed at all: the HTTP handler awaits a
future. On PostgreSQL the same batching turns one WAL flush per ticket into one per batch.

The tickets of a batch go through the engine's ordinary `intake`, so the rules, hooks and timeline are the
same as for a single intake. If anything in a batch fails (an unknown category code, an idempotency key sent
twice at once, a lost connection), the batch is rolled back and each of its requests is retried on its own with
`submit`, so one bad request never fails or delays the answer of the others beyond that retry, and an accepted
ticket is only reported after its commit.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import anyio
from sqlalchemy.orm import Session

from minsheng.domain.roles import Actor
from minsheng.services import schemas as s
from minsheng.services.tickets import PREPARED_KEY, RESERVE_KEY, TicketEngine, submit
from minsheng.storage.db import Database
from minsheng.storage.models import Ticket

log = logging.getLogger(__name__)

Render = Callable[[Session, Ticket], Any]
Result = tuple[Any, str | None, bool]

#: Batches are capped so that other writers of the process (steps of the loop, the worker) never wait long
#: for the database lock behind a burst of intakes.
MAX_BATCH = 32


@dataclass
class _Job:
    actor: Actor
    req: s.IntakeRequest
    now: datetime
    prepared: Any
    render: Render | None
    done: Callable[[Result | None, BaseException | None], None]


class IntakeWriter:
    """The process's intake writer; `submit` is awaited by async handlers, `submit_sync` by threads."""

    def __init__(self, db: Database, engine: TicketEngine, *, max_batch: int = MAX_BATCH) -> None:
        self.db = db
        self.engine = engine
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.batches = 0
        self.fallbacks = 0
        #: Called after every commit of the writer (deferred triage wakes up on it).
        self.on_commit: Callable[[], None] | None = None
        self._last_write = 0.0

    def busy(self, within: float = 0.05) -> bool:
        """Whether requests are queued or a batch was written within the last ``within`` seconds."""
        return not self._queue.empty() or time.monotonic() - self._last_write < within

    # ------------------------------------------------------------------------------------------ callers
    async def submit(
        self, actor: Actor, req: s.IntakeRequest, now: datetime, render: Render | None = None
    ) -> Result:
        """Register a request; returns like `tickets.submit` once the ticket is committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Result] = loop.create_future()

        def settle(result: Result | None, error: BaseException | None) -> None:
            if not future.done():
                if error is not None:
                    future.set_exception(error)
                else:
                    future.set_result(result)  # type: ignore[arg-type]

        def done(result: Result | None, error: BaseException | None) -> None:
            loop.call_soon_threadsafe(settle, result, error)

        # The analysis reads other processes' recent tickets and runs the classifier: blocking work, so it
        # runs in a worker thread, never on the event loop.
        await anyio.to_thread.run_sync(self._put, actor, req, now, render, done)
        return await future

    def submit_sync(
        self, actor: Actor, req: s.IntakeRequest, now: datetime, render: Render | None = None
    ) -> Result:
        """The same for a caller on a thread (form pages): blocks until committed."""
        box: list[Any] = []
        ready = threading.Event()

        def done(result: Result | None, error: BaseException | None) -> None:
            box[:] = [result, error]
            ready.set()

        self._put(actor, req, now, render, done)
        ready.wait()
        if box[1] is not None:
            raise box[1]
        return box[0]  # type: ignore[no-any-return]

    def _put(
        self,
        actor: Actor,
        req: s.IntakeRequest,
        now: datetime,
        render: Render | None,
        done: Callable[[Result | None, BaseException | None], None],
    ) -> None:
        # The analysis needs no database: it runs on the caller's side, so the writer only writes.
        prepared = self.engine.prepare_triage(req, now)
        self._ensure_started()
        self._queue.put(_Job(actor, req, now, prepared, render, done))

    # ------------------------------------------------------------------------------------------ lifecycle
    def _ensure_started(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                t = threading.Thread(target=self._run, name="minsheng-intake-writer", daemon=True)
                t.start()
                self._thread = t

    def stop(self, timeout: float = 10.0) -> None:
        """Finish what is queued, then end the thread."""
        t = self._thread
        if t is None:
            return
        self._queue.put(None)
        t.join(timeout)
        self._thread = None

    # ------------------------------------------------------------------------------------------ the writer
    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stopping = True
                    break
                batch.append(job)
            try:
                self._write(batch)
            except BaseException as e:
                log.exception("intake writer: batch failed unexpectedly")
                for job in batch:
                    job.done(None, e)
            self._last_write = time.monotonic()
            if self.on_commit is not None:
                self.on_commit()

    def _write(self, batch: list[_Job]) -> None:
        if len(batch) > 1:
            results = self._write_together(batch)
            if results is not None:
                for job, r in zip(batch, results, strict=True):
                    job.done(r, None)
                return
            self.fallbacks += 1
        for job in batch:
            try:
                r = submit(
                    self.db, self.engine, job.actor, job.req, job.now, job.render, prepared=job.prepared
                )
            except Exception as e:
                job.done(None, e)
            else:
                job.done(r, None)

    def _write_together(self, batch: list[_Job]) -> list[Result] | None:
        """All in one transaction, or None (rolled back) if any of them failed."""
        results: list[Result] = []
        try:
            with self.db.write_sessions() as session, session.begin():
                session.info[RESERVE_KEY] = len(batch)
                for job in batch:
                    if job.prepared is not None:
                        session.info[PREPARED_KEY] = (job.req, job.prepared)
                    # check_key=False: a reused key hits the unique index, which sends the batch to the
                    # one-by-one path, where `submit` returns the first ticket.
                    ticket, code, created = self.engine.intake(
                        session, job.actor, job.req, job.now, check_key=False
                    )
                    out = job.render(session, ticket) if job.render else ticket.number
                    results.append((out, code, created))
        except Exception:
            log.debug("intake batch of %d rolled back; retrying one by one", len(batch), exc_info=True)
            return None
        self.batches += 1
        return results
