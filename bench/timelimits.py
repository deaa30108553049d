"""Benchmark of the worker's timer scan: cost grows with what is due, not with what is open.

Run: ``.venv/bin/python bench/timelimits.py [--url URL] [--open 1000000] [--due 10000] [--small 100000]``.
Open tickets, their pending assignments, sign deadlines and one escalation timer each are bulk-inserted with Core
(not through the engine; shaped like the engine's output). ``--due`` of the timers are already due. Measured:

1. one `run_once` pass over the big database (all due timers fired, each once);
2. the same number due among ``--small`` open tickets (the ratio of the two pass times);
3. deadline-to-notification latency: the worker loop at its default interval, timers coming due at random
   moments of a ``--latency-seconds`` window; latency = wall time at the end of the pass that fired a timer
   minus its ``due_at`` (p50/p99).

Results go to bench/results/clock.json.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console
from rich.table import Table
from sqlalchemy import func, insert, select

from minsheng.config import Settings
from minsheng.domain.clock import SystemClock
from minsheng.services.background import RunStats, run_loop, run_once
from minsheng.services.tickets import TicketEngine
from minsheng.services.timelimits.config import TimeLimitConfig
from minsheng.services.timelimits.subscriber import Clockwork
from minsheng.storage.db import Database, open_database
from minsheng.storage.migrate import upgrade
from minsheng.storage.models import Assignment, Ticket, TimelineEvent, Unit
from minsheng.storage.timelimit_tables import StepDeadline, Timer

RESULTS = Path(__file__).resolve().parent / "results" / "clock.json"
BATCH = 20_000


def load_open_tickets(
    db: Database,
    n_open: int,
    n_due: int,
    now: datetime,
    *,
    seed: int = 0,
    due_within: tuple[float, float] = (-3600.0, -60.0),
) -> None:
    """``n_open`` dispatched, unsigned tickets with one escalation timer each; ``n_due`` of them due at ``now``
    (``due_within`` seconds around ``now``), the rest due 1-30 days later."""
    from bench.bulkload import ensure_org

    ensure_org(db, now)
    rng = random.Random(seed)
    with db.read_sessions() as s:
        units = list(s.scalars(select(Unit.id)))
        tid0 = (s.scalar(select(func.max(Ticket.id))) or 0) + 1
        aid0 = (s.scalar(select(func.max(Assignment.id))) or 0) + 1
    due_ids = set(rng.sample(range(n_open), n_due))
    for lo in range(0, n_open, BATCH):
        tickets, assigns, deadlines, timers = [], [], [], []
        for i in range(lo, min(lo + BATCH, n_open)):
            tid, aid = tid0 + i, aid0 + i
            if i in due_ids:
                due = now + timedelta(seconds=rng.uniform(*due_within))
            else:
                due = now + timedelta(days=rng.uniform(1, 30))
            created = due - timedelta(minutes=45)
            tickets.append(
                {
                    "id": tid,
                    "number": f"9{tid:015d}",
                    "query_code_hash": "x",
                    "channel": "phone",
                    "kind": "complaint",
                    "urgency": "normal",
                    "title": f"基准工单{tid}",
                    "detail": "市民反映路灯不亮，请尽快处理。",
                    "confidential": False,
                    "public_consent": False,
                    "state": "dispatched",
                    "created_at": created,
                    "updated_at": created,
                    "dispatched_at": created,
                    "reopen_count": 0,
                    "return_count": 0,
                    "event_count": 0,
                }
            )
            unit = rng.choice(units)
            assigns.append(
                {
                    "id": aid,
                    "ticket_id": tid,
                    "unit_id": unit,
                    "role": "lead",
                    "state": "pending",
                    "created_at": created,
                    "updated_at": created,
                    "first_receiver": False,
                    "sign_due_at": due - timedelta(minutes=30),
                }
            )
            deadlines.append(
                {
                    "ticket_id": tid,
                    "assignment_id": aid,
                    "step": "sign",
                    "started_at": created,
                    "due_at": due - timedelta(minutes=30),
                    "unit": "minutes",
                    "warn_shares": [],
                    "warn_at": [],
                    "ladder": [],
                    "policy_name": "bench",
                    "calendar_fallback": False,
                    "generation": 0,
                }
            )
            timers.append(
                {
                    "key": f"{aid}.0:sign:escalation:1",
                    "ticket_id": tid,
                    "assignment_id": aid,
                    "kind": "escalation",
                    "step": "sign",
                    "due_at": due,
                    "payload": {
                        "subject_id": f"{aid}.0",
                        "step": "sign",
                        "deadline_at": (due - timedelta(minutes=30)).isoformat(),
                        "index": 1,
                        "target": "unit_leader",
                        "action": "notify",
                        "name": "推送单位领导",
                    },
                    "created_at": created,
                }
            )
        with db.write_sessions() as s, s.begin():
            for model, rows in (
                (Ticket, tickets),
                (Assignment, assigns),
                (StepDeadline, deadlines),
                (Timer, timers),
            ):
                s.execute(insert(model.__table__), rows)  # type: ignore[attr-defined]
    with db.engine.connect() as c:
        c.exec_driver_sql("ANALYZE")
        c.commit()


def fresh_db(url: str | None, tmp: Path, name: str) -> tuple[Database, str]:
    url = url or f"sqlite:///{tmp / name}.db"
    upgrade(url)
    return open_database(url), url


def one_pass(db: Database, n_open: int, n_due: int, now: datetime) -> dict[str, Any]:
    t0 = time.perf_counter()
    load_open_tickets(db, n_open, n_due, now)
    load_s = time.perf_counter() - t0
    clockwork = Clockwork(TicketEngine(), TimeLimitConfig())
    t0 = time.perf_counter()
    stats = run_once(db, now, clockwork=clockwork, worker_id="bench")
    pass_s = time.perf_counter() - t0
    with db.read_sessions() as s:
        fired = s.scalar(select(func.count()).select_from(Timer).where(Timer.fired_at.is_not(None)))
        events = s.scalar(
            select(func.count()).select_from(TimelineEvent).where(TimelineEvent.action == "escalation")
        )
    assert stats.fired == n_due == fired == events, (stats, fired, events)
    # A second pass finds nothing: the scan touches only what is due.
    t0 = time.perf_counter()
    again = run_once(db, now, clockwork=clockwork, worker_id="bench")
    empty_s = time.perf_counter() - t0
    assert again.fired == 0
    return {"open": n_open, "due": n_due, "load_s": load_s, "pass_s": pass_s, "empty_pass_s": empty_s}


def latency(db: Database, n_timers: int, window_s: float, interval: float) -> dict[str, Any]:
    """Timers due at random moments of the next ``window_s`` seconds; the loop runs at ``interval``."""
    start = datetime.now(UTC) + timedelta(seconds=2)
    load_open_tickets(db, n_timers, n_timers, start, seed=1, due_within=(0.0, window_s))
    clockwork = Clockwork(TicketEngine(), TimeLimitConfig())
    pass_ends: dict[datetime, float] = {}
    lock = threading.Lock()
    clock = SystemClock()
    stop = threading.Event()
    last_now: list[datetime] = []

    class Recording(SystemClock):
        def now(self) -> datetime:
            at = clock.now()
            last_now.append(at)
            return at

    def on_pass(_: RunStats) -> None:
        with lock:
            pass_ends[last_now[-1]] = time.time()

    thread = threading.Thread(
        target=run_loop,
        args=(db, Recording(), clockwork, {}),
        kwargs={"interval": interval, "stop": stop, "on_pass": on_pass},
    )
    thread.start()
    deadline = time.time() + window_s + 2 + interval * 3 + 30
    while time.time() < deadline:
        with db.read_sessions() as s:
            left = s.scalar(select(func.count()).select_from(Timer).where(Timer.fired_at.is_(None)))
        if not left:
            break
        stop.wait(0.5)
    stop.set()
    thread.join()
    with db.read_sessions() as s:
        rows = s.execute(select(Timer.due_at, Timer.fired_at)).all()
    lat = sorted(pass_ends[fired] - due.timestamp() for due, fired in rows if fired is not None)
    return {
        "timers": n_timers,
        "fired": len(lat),
        "interval_s": interval,
        "p50_s": statistics.median(lat),
        "p99_s": lat[int(len(lat) * 0.99) - 1] if len(lat) > 1 else lat[0],
        "max_s": lat[-1],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", help="database URL (default: fresh SQLite files in a temporary directory)")
    ap.add_argument("--open", type=int, default=1_000_000)
    ap.add_argument("--due", type=int, default=10_000)
    ap.add_argument("--small", type=int, default=100_000)
    ap.add_argument("--latency-timers", type=int, default=1_000)
    ap.add_argument("--latency-seconds", type=float, default=30.0)
    args = ap.parse_args()
    console = Console()
    interval = Settings().worker_interval_seconds
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as tmp:
        if args.url:
            raise SystemExit("--url: give an empty database per run; this script creates three SQLite files")
        results: dict[str, Any] = {"backend": "sqlite", "interval_s": interval}
        db, _ = fresh_db(None, Path(tmp), "big")
        results["big"] = one_pass(db, args.open, args.due, now)
        db.dispose()
        db, _ = fresh_db(None, Path(tmp), "small")
        results["small"] = one_pass(db, args.small, args.due, now)
        db.dispose()
        db, _ = fresh_db(None, Path(tmp), "latency")
        results["latency"] = latency(db, args.latency_timers, args.latency_seconds, interval)
        db.dispose()
    results["ratio_big_over_small"] = results["big"]["pass_s"] / results["small"]["pass_s"]
    table = Table(title="minsheng clock worker")
    table.add_column("measure")
    table.add_column("value", justify="right")
    b, s, lat = results["big"], results["small"], results["latency"]
    table.add_row(f"one pass: {b['due']:,} due among {b['open']:,} open", f"{b['pass_s']:.2f} s")
    table.add_row(f"one pass: {s['due']:,} due among {s['open']:,} open", f"{s['pass_s']:.2f} s")
    table.add_row("ratio (big / small)", f"{results['ratio_big_over_small']:.2f}")
    table.add_row(f"empty pass among {b['open']:,} open", f"{b['empty_pass_s'] * 1000:.1f} ms")
    table.add_row(f"latency p50 (interval {interval} s)", f"{lat['p50_s']:.2f} s")
    table.add_row("latency p99 (target ≤ 5 s)", f"{lat['p99_s']:.2f} s")
    table.add_row("latency max", f"{lat['max_s']:.2f} s")
    table.add_row("bulk load of the big database", f"{b['load_s']:.0f} s")
    console.print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    console.print(f"written {RESULTS}")


if __name__ == "__main__":
    main()
