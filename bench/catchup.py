"""Benchmark of how a process reads the tickets other processes took (``TriageRuntime.catch_up``).

Every API process and worker keeps its own repeat index and cluster detector; every ``recent_sync_seconds``
(2 s) it reads what the others took since its last look. Two costs matter:

- **idle look**: nothing new, ``W`` tickets inside the look-back window (margin 30 s + 2 s). This is paid every
  2 s by every process; during a flood of 1,200 tickets/s the window holds ~38,000 tickets.
- **new tickets**: ``K`` tickets another process took since the last look, read and indexed. The benchmark's
  tickets are alike (few templates, 30 categories, 40 streets), so they also form cluster warnings: the first
  process to read them stores those (``first look``); for a process that looks after it they are stored already
  (``later look``), which is the usual case, the process that took a ticket having stored its clusters at intake.

Baseline, same process and same rows: a full rebuild of the recent-ticket state (``TriageRuntime.reload``, what a
process does at start-up) over the same number of tickets. Medians of ``--repeat`` runs; ratios to the rebuild.

    .venv/bin/python bench/catchup.py [--backends sqlite,postgresql] [--quick]

Results go to bench/results/catchup.json.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from common import print_table, write_results
from sqlalchemy import func, select

from bench.bulkload import bulk_load
from bench.intake import drop_database, make_database
from minsheng.config import Settings
from minsheng.domain.clock import FixedClock
from minsheng.services.tickets import TicketEngine
from minsheng.services.triage.runtime import TriageRuntime
from minsheng.services.triage.settings import TriageConfig
from minsheng.storage.db import open_database
from minsheng.storage.triage_tables import ClusterWarning

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
WINDOW = timedelta(seconds=30)


def _runtime(url: str, tmp: Path, clock: FixedClock) -> TriageRuntime:
    settings = Settings(database_url=url, data_dir=tmp, model_dir=None)
    config = TriageConfig(recent_sync_seconds=0.0)
    return TriageRuntime(open_database(url), settings, TicketEngine(), clock, config=config)


def _median_ms(fn: Any, repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), result


def run(backend: str, sizes: list[int], repeat: int, tmp: Path) -> list[dict[str, Any]]:
    out = []
    for n in sizes:
        url, name = make_database(backend, tmp / f"{backend}-{n}")  # a fresh database per size
        try:
            clock = FixedClock(NOW)
            bulk_load(url, n, now=NOW, span=WINDOW)  # n tickets of the last 30 s
            rt = _runtime(url, tmp, clock)
            rt.start()
            first = _runtime(url, tmp, clock).start()
            rebuild_ms, _ = _median_ms(rt.reload, repeat)
            assert len(rt.recent.repeats) == n
            idle_ms, read = _median_ms(lambda rt=rt: rt.catch_up(force=True), repeat)
            assert read == 0
            # Other processes take n more tickets in the next 30 s; `first`, then `rt`, read them in one look.
            clock.advance(WINDOW)
            bulk_load(url, n, seed=1, now=clock.now(), span=WINDOW)
            t = time.perf_counter()
            got = first.catch_up(force=True)
            first_ms = (time.perf_counter() - t) * 1000
            with first.db.read_sessions() as session:
                stored = session.scalar(select(func.count()).select_from(ClusterWarning)) or 0
            t = time.perf_counter()
            got_later = rt.catch_up(force=True)
            new_ms = (time.perf_counter() - t) * 1000
            assert got == got_later == n, (got, got_later, n)
            out.append(
                {
                    "backend": backend,
                    "tickets_in_window": n,
                    "rebuild_ms": rebuild_ms,
                    "idle_look_ms": idle_ms,
                    "idle_ratio": idle_ms / rebuild_ms,
                    "new_tickets": n,
                    "first_look_ms": first_ms,
                    "first_look_warnings_stored": stored,
                    "new_look_ms": new_ms,
                    "new_ratio": new_ms / rebuild_ms,
                    "new_per_ticket_us": new_ms * 1000 / n,
                }
            )
        finally:
            drop_database(name)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--sizes", default="1000,10000,40000")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="one small size, 3 repeats")
    args = ap.parse_args()
    logging.disable(logging.INFO)
    sizes = [1000] if args.quick else [int(x) for x in args.sizes.split(",")]
    repeat = 3 if args.quick else args.repeat
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as d:
        for backend in args.backends.split(","):
            print(f"{backend}…", flush=True)
            rows += run(backend, sizes, repeat, Path(d))
    print_table(
        "catch-up: reading other processes' tickets (median ms; ratio to a full rebuild of the same tickets)",
        [
            "backend",
            "tickets in window",
            "rebuild",
            "idle look",
            "ratio",
            "first look (warnings stored)",
            "later look",
            "ratio",
            "µs/ticket",
        ],
        [
            [
                r["backend"],
                f"{r['tickets_in_window']:,}",
                f"{r['rebuild_ms']:.1f}",
                f"{r['idle_look_ms']:.1f}",
                f"{r['idle_ratio']:.3f}",
                f"{r['first_look_ms']:.1f} ({r['first_look_warnings_stored']})",
                f"{r['new_look_ms']:.1f}",
                f"{r['new_ratio']:.2f}",
                f"{r['new_per_ticket_us']:.0f}",
            ]
            for r in rows
        ],
    )
    path = write_results(
        "catchup",
        {"runs": rows, "repeat": repeat, "window_seconds": WINDOW.total_seconds(), "look_every_seconds": 2},
    )
    print(f"written {path}")


if __name__ == "__main__":
    main()
