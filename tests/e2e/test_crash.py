"""`kill -9` of a live server in the middle of an intake flood, then a restart on the same database (both stores).

Nothing acknowledged is lost and nothing happens twice:
- every ticket that got a 2xx before the kill is stored exactly once (by its idempotency key and by its text);
- a client retrying every request with its key gets the same ticket (same number, `created: false`) for the
  acknowledged ones and exactly one ticket for the others (stored before the kill or now);
- with deferred triage, the jobs left at the kill are done after the restart (none left, every ticket triaged);
- timers resume: those due during the downtime fire after the restart; each fired timer has exactly one
  timeline event (warning, overdue, press, escalation), and each in-app notification is stored once per
  recipient and event;
- the outbox resumes: the kill lands while a delivery is in flight (the robot receiver holds it); the batch it
  had claimed stays leased and goes out when the lease ends (a worker pass with the clock injected 6 minutes on),
  each row sent once. The one message whose answer the kill cut off reaches the receiver a second time with the
  same message id, which is how a gateway recognises the retry (minsheng.notify.delivery); no other does.

Time limits of seconds (a policy of 0.05 minutes to sign, its ladder 0–4 s after) make timers come due while the
flood runs. Prints the phases' timings (docs/BENCHMARKS.md, "Soak and crash").
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from minsheng.bootstrap import Role, build
from minsheng.config import Settings
from minsheng.domain.clock import FixedClock
from minsheng.services.background import run_once
from minsheng.services.notifications import CLAIM_LEASE
from minsheng.services.timelimits.admin import PolicySpec, create_policy
from minsheng.storage.db import Database, open_database
from minsheng.storage.models import Ticket, TimelineEvent
from minsheng.storage.timelimit_tables import Notification, OutboxMessage, Timer
from minsheng.storage.triage_tables import TriageJob
from tests.e2e.live.flood import IntakeFlood, replay
from tests.e2e.live.receiver import Receiver, robot_receiver
from tests.e2e.live.server import LiveServer, free_port, seed_small_city, start_server

THREADS = 6
MIN_ACKED = 120  # acknowledged tickets before the kill
MIN_FIRED = 5  # timers fired before the kill
CLOCK_ACTIONS = ("warning", "overdue", "press", "escalation")

# Seconds, not hours: a dispatched ticket's sign timers come due while the flood runs.
FAST_POLICY = PolicySpec(
    name="crash test: seconds",
    limits={"sign": {"amount": 0.05, "unit": "minutes"}},
    warn_at=[0.5],
    escalation={
        "sign": [
            {"after_minutes": 0, "action": "press", "target": "unit", "name": "催办"},
            {"after_minutes": 0.03, "action": "notify", "target": "unit_leader", "name": "单位领导"},
            {"after_minutes": 0.06, "action": "notify", "target": "district_leader", "name": "区领导"},
        ]
    },
)


def now() -> datetime:
    return datetime.now(UTC)


def count(db: Database, q: Any) -> int:
    with db.read_sessions() as s:
        return int(s.scalar(q) or 0)


def fired(db: Database) -> int:
    return count(db, select(func.count()).select_from(Timer).where(Timer.fired_at.is_not(None)))


def wait_for(what: str, check: Any, timeout: float, every: float = 0.1) -> float:
    t0 = time.monotonic()
    while not check():
        assert time.monotonic() - t0 < timeout, f"waited {timeout} s for {what}"
        time.sleep(every)
    return time.monotonic() - t0


class Dispatcher:
    """Dispatches acknowledged tickets to 城管局 as they come (so timers are planned), until stopped or cut off."""

    def __init__(self, client: httpx.Client, flood: IntakeFlood) -> None:
        self.client, self.flood = client, flood
        self.done: set[str] = set()
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Dispatcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        while not self._stop.is_set():
            todo = [a.number for a in self.flood.acked() if a.number and a.number not in self.done]
            for number in todo[:20]:
                try:
                    r = self.client.post(f"/api/v1/tickets/{number}/dispatch", json={"lead_unit": "CGJ"})
                except httpx.HTTPError:
                    return
                self.done.add(number)
                if r.status_code != 200:
                    self.failures.append(f"{number}: {r.status_code} {r.text[:200]}")
            self._stop.wait(0.05)


def _kill_in_the_middle(
    server: LiveServer, db: Database, rx: Receiver, timings: dict[str, float]
) -> tuple[IntakeFlood, Dispatcher, dict[str, Any]]:
    """Flood, dispatch, and kill -9 once enough is acknowledged and fired, with a delivery in flight."""
    flood = IntakeFlood([server.login("operator1") for _ in range(THREADS)], tag="crash").start()
    dispatcher = Dispatcher(server.login("dispatcher1"), flood).start()
    t0 = time.monotonic()
    try:
        wait_for(
            f"{MIN_ACKED} acknowledged tickets and {MIN_FIRED} fired timers",
            lambda: flood.acknowledged >= MIN_ACKED and fired(db) >= MIN_FIRED,
            timeout=40,
            every=0.05,
        )
        rx.arm()
        assert rx.holding.wait(20), "no delivery reached the receiver to hold"
        server.kill()
    finally:
        rx.release()
        flood.stop()
        dispatcher.stop()
    timings["flood until kill"] = time.monotonic() - t0
    with db.read_sessions() as s:
        at_kill = {
            "tickets": s.scalar(select(func.count()).select_from(Ticket)),
            "triage jobs": s.scalar(select(func.count()).select_from(TriageJob)),
            "timers fired": s.scalar(
                select(func.count()).select_from(Timer).where(Timer.fired_at.is_not(None))
            ),
            "outbox leased": s.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.status == "pending", OutboxMessage.locked_by.is_not(None))
            ),
        }
    return flood, dispatcher, at_kill


def _tickets_by_detail(db: Database) -> dict[str, list[tuple[str, str | None]]]:
    out: dict[str, list[tuple[str, str | None]]] = {}
    with db.read_sessions() as s:
        for detail, number, key in s.execute(select(Ticket.detail, Ticket.number, Ticket.idempotency_key)):
            out.setdefault(detail, []).append((number, key))
    return out


def _once_per_key(db: Database) -> None:
    """Each fired timer is one timeline event; each in-app notification one row per recipient and event."""
    with db.read_sessions() as s:
        timers = {
            k: o for k, o in s.execute(select(Timer.key, Timer.outcome).where(Timer.fired_at.is_not(None)))
        }
        events = Counter(
            str((p or {}).get("timer"))
            for p in s.scalars(select(TimelineEvent.payload).where(TimelineEvent.action.in_(CLOCK_ACTIONS)))
        )
        inbox = Counter(
            s.execute(select(Notification.source, Notification.user_id, Notification.unit_id)).all()
        )
    twice = {k: n for k, n in events.items() if n > 1}
    assert not twice, f"timers whose event was recorded more than once: {list(twice.items())[:5]}"
    unknown = set(events) - set(timers)
    assert not unknown, f"clock events of no fired timer: {sorted(unknown)[:5]}"
    missing = [k for k, o in timers.items() if o == "fired" and events[k] != 1]
    assert not missing, f"fired timers without their event: {missing[:5]}"
    again = {k: n for k, n in inbox.items() if n > 1}
    assert not again, f"in-app notifications stored twice: {list(again.items())[:5]}"


def test_kill_9_under_an_intake_flood_loses_nothing_and_repeats_nothing(db_url: str, tmp_path: Path) -> None:
    timings: dict[str, float] = {}
    t_all = time.monotonic()
    seed_small_city(db_url)
    db = open_database(db_url)
    with db.write_sessions() as s, s.begin():
        create_policy(s, FAST_POLICY, now())
    port = free_port()
    try:
        with robot_receiver() as rx:
            env = {
                "MINSHENG_TRIAGE_MODE": "deferred",
                "MINSHENG_WECOM_WEBHOOK_URL": rx.url,
                "MINSHENG_WORKER_INTERVAL_SECONDS": "0.3",
                "MINSHENG_SEND_TIMEOUT_SECONDS": "30",
            }
            t0 = time.monotonic()
            first = start_server(db_url, tmp_path / "server", port=port, **env)
            timings["start"] = time.monotonic() - t0
            try:
                flood, dispatcher, at_kill = _kill_in_the_middle(first, db, rx, timings)
            finally:
                first.ensure_gone()
            held = rx.held
            acked = flood.acked()
            assert not flood.failures, flood.failures[:3]
            assert not dispatcher.failures, dispatcher.failures[:3]
            assert at_kill["triage jobs"] > 0, "no triage job was waiting at the kill: nothing to resume"
            assert at_kill["outbox leased"] > 0, "no outbox row was in flight at the kill"
            assert held is not None

            # What was acknowledged is there, once; what was not is there at most once.
            by_detail = _tickets_by_detail(db)
            for a in flood.attempts:
                rows = by_detail.get(a.body["detail"], [])
                if a.acknowledged:
                    assert rows == [(a.number, a.key)], f"acknowledged {a.key} → {a.number} stored as {rows}"
                else:
                    assert len(rows) <= 1, f"unacknowledged {a.key} stored {len(rows)} times"
            in_doubt = [a for a in flood.attempts if not a.acknowledged]
            stored_unacked = sum(1 for a in in_doubt if by_detail.get(a.body["detail"]))

            t0 = time.monotonic()
            second = start_server(db_url, tmp_path / "server", port=port, **env)
            timings["restart"] = time.monotonic() - t0
            try:
                t0 = time.monotonic()
                replayed = replay([second.login("operator1") for _ in range(THREADS)], flood.attempts)
                timings["replay"] = time.monotonic() - t0
                for r in replayed:
                    a = r.attempt
                    assert r.status in (200, 201), f"retry of {a.key}: {r.status} {r.error}"
                    if a.acknowledged:
                        assert (r.status, r.number, r.created) == (200, a.number, False), vars(r)
                by_detail = _tickets_by_detail(db)
                for r in replayed:
                    rows = by_detail.get(r.attempt.body["detail"], [])
                    assert rows == [(r.number, r.attempt.key)], f"{r.attempt.key}: {rows} after the retry"
                assert sum(len(v) for v in by_detail.values()) == len(flood.attempts)

                # Deferred triage resumes: no job left, every ticket triaged once.
                t0 = time.monotonic()
                wait_for(
                    "the triage jobs",
                    lambda: count(db, select(func.count()).select_from(TriageJob)) == 0,
                    timeout=30,
                )
                timings["triage drained"] = time.monotonic() - t0
                untriaged = count(db, select(func.count()).select_from(Ticket).where(Ticket.triage.is_(None)))
                assert untriaged == 0, f"{untriaged} tickets never triaged"

                # Timers and the outbox resume: everything due (except the leased batch) is done.
                def caught_up() -> bool:
                    t = now() - timedelta(seconds=1)
                    due = (
                        select(func.count())
                        .select_from(Timer)
                        .where(Timer.fired_at.is_(None), Timer.due_at <= t)
                    )
                    pending = (
                        select(func.count())
                        .select_from(OutboxMessage)
                        .where(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= t)
                    )
                    return count(db, due) == 0 and count(db, pending) == 0

                t0 = time.monotonic()
                wait_for("the timers and the outbox", caught_up, timeout=30)
                timings["timers caught up"] = time.monotonic() - t0
                fired_after = fired(db) - at_kill["timers fired"]
                assert fired_after > 0, "no timer fired after the restart"
                second.terminate(timeout=15)
            finally:
                second.ensure_gone()

            # The leased rows come due when the lease ends: one worker pass with the clock 6 minutes on.
            later = now() + CLAIM_LEASE + timedelta(minutes=1)
            settings = Settings(database_url=db_url, wecom_webhook_url=rx.url, environment="test")
            platform = build(settings, role=Role.TOOL, clock=FixedClock(later), db=db)
            # A pass is bounded (Settings.worker_notify_*): passes follow each other while rows are due.
            passes = []
            for _ in range(20):
                passes.append(
                    run_once(
                        db,
                        later,
                        clockwork=platform.clockwork,
                        senders=platform.senders,
                        retry=platform.retry,
                    )
                )
                if not passes[-1].more:
                    break
            platform.stop()
            assert all(p.dead == 0 and p.retrying == 0 for p in passes), passes

            with db.read_sessions() as s:
                outbox = Counter(s.scalars(select(OutboxMessage.message_id)))
                unsent = s.scalar(
                    select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status != "sent")
                )
            assert unsent == 0
            received = rx.counts()
            assert set(received) == set(outbox), "the receiver and the outbox disagree"
            twice = {m: n for m, n in received.items() if n > 1}
            assert twice == {held: 2}, f"delivered more than once: {twice} (held at the kill: {held})"
            _once_per_key(db)
    finally:
        db.dispose()
    timings["total"] = time.monotonic() - t_all
    print(
        f"\ncrash on {db_url.split(':')[0]}: {len(acked)} acknowledged, {len(in_doubt)} cut off "
        f"({stored_unacked} of them stored before the kill); at the kill {at_kill}; "
        f"fired after the restart {fired_after}; leased passes {passes}; "
        + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())
    )
