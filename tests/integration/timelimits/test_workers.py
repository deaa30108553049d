"""Many workers, one PostgreSQL: 10,000 due escalations fired by two concurrent workers, each exactly once."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from bench.timelimits import load_open_tickets
from minsheng.services.background import run_once
from minsheng.services.tickets import TicketEngine
from minsheng.services.timelimits.config import TimeLimitConfig
from minsheng.services.timelimits.subscriber import Clockwork
from minsheng.storage.db import Database
from minsheng.storage.models import TimelineEvent
from minsheng.storage.timelimit_tables import Timer

N = 10_000


@pytest.mark.postgres
def test_two_workers_fire_every_escalation_exactly_once(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip(
            "SKIP LOCKED between concurrent workers is a PostgreSQL matter (SQLite serialises writers)"
        )
    now = datetime(2026, 11, 21, 1, 0, tzinfo=UTC)
    load_open_tickets(db, N, N, now)
    clockwork = Clockwork(TicketEngine(), TimeLimitConfig())
    fired: dict[str, int] = {}
    failures: list[BaseException] = []

    def worker(name: str) -> None:
        try:
            total = 0
            while True:
                stats = run_once(db, now, batch=250, worker_id=name, clockwork=clockwork)
                total += stats.fired
                if stats.fired == 0 and stats.busy == 0:
                    break
            fired[name] = total
        except BaseException as err:  # surfaced in the main thread
            failures.append(err)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not failures, failures
    assert sum(fired.values()) == N
    with db.read_sessions() as session:
        assert session.scalar(select(func.count()).select_from(Timer).where(Timer.fired_at.is_(None))) == 0
        per_worker = dict(
            session.execute(select(Timer.locked_by, func.count()).group_by(Timer.locked_by)).all()
        )
        events = list(
            session.scalars(select(TimelineEvent.payload).where(TimelineEvent.action == "escalation"))
        )
    assert per_worker == fired
    keys = [p["timer"] for p in events]
    assert len(keys) == len(set(keys)) == N
