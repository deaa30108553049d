"""Benchmark of intake's look at the newest tickets of other processes (`TriageRuntime._read_fresh`).

Each API process reads the tickets the others took every ``recent_sync_seconds`` (2 s); in between, intake lists
the ids above the highest it has read and compares the text of those it has not indexed. This measures what
that look costs and what it finds, with triage inline. Every complaint is called in twice, one call after the
other (two neighbours about the same thing), in one community; the calls are taken in turn by P processes, each of
which reads the others' tickets every ``--sync-every`` calls of its own (as a 2 s look would at a few calls a
second), so with P = 2 the second call of each pair lands on the other process:

* ``look``: as shipped;
* ``no look``: the same runtimes with the look switched off (as before it existed), the baseline.

Both run in the same process on fresh stores, alternated round by round. Figures: the median ms per call of each,
their ratio, the median ms of the look's read (timed around it, so it can be read on a noisy host where the
ratio cannot; it runs inside the intake transaction), and the share of second calls that were offered the first
as a repeat.

    .venv/bin/python bench/intake_look.py [--backends sqlite,postgresql] [--calls 300] [--rounds 3]
                                          [--sync-every 10]

Results go to bench/results/intake_look.json.
"""

from __future__ import annotations

import argparse
import logging
import random
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from common import print_table, write_results
from flood import COMMON, NOW, OPERATOR, TOPICS, city_store
from sqlalchemy import select

from minsheng.config import Settings
from minsheng.domain.clock import FixedClock
from minsheng.services import schemas as s
from minsheng.services.tickets import TicketEngine, submit
from minsheng.services.triage.runtime import TriageRuntime
from minsheng.services.triage.settings import TriageConfig
from minsheng.storage.db import open_database
from minsheng.storage.models import Ticket
from tests.integration.triage.conftest import FakeClassifier

# Reads happen only where the bench forces them (`--sync-every`); intake looks at every call (its default is at
# most every 0.1 s, which at a few calls a second is every call).
SLOW = TriageConfig(recent_sync_seconds=3600.0, fresh_look_seconds=0.0)
ADDRESS = "幸福路街道锦绣花园小区"


def _no_look(*args: Any, **kwargs: Any) -> list[Any]:
    return []


def _no_read(*args: Any, **kwargs: Any) -> None:
    return None


def _timed(look: Any, spent: list[float]) -> Any:
    def timed(*args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return look(*args, **kwargs)
        finally:
            spent.append((time.perf_counter() - t) * 1000)

    return timed


def _pair_text(k: int, rng: random.Random) -> str:
    topic = TOPICS[k % len(TOPICS)]
    return f"{topic}：" + "".join(rng.choice(COMMON) for _ in range(30))


def _take(url: str, tmp: Path, calls: int, processes: int, look: bool, sync_every: int) -> dict[str, Any]:
    clock = FixedClock(NOW)
    desks = []
    looks: list[float] = []
    for _ in range(processes):
        db = open_database(url)
        engine = TicketEngine()
        settings = Settings(database_url=url, data_dir=tmp, model_dir=None)
        rt = TriageRuntime(
            db, settings, engine, clock, config=SLOW, classifier=FakeClassifier("020101", 0.99)
        ).start()
        if look:
            rt._read_fresh = _timed(rt._read_fresh, looks)  # type: ignore[method-assign]
        else:
            rt._read_fresh = _no_read  # type: ignore[method-assign]
            rt._fresh_repeats = _no_look  # type: ignore[method-assign]
        engine.triage, engine.triage_prepare, engine.triage_prepare_many = (
            rt.hook,
            rt.prepare,
            rt.prepare_many,
        )
        desks.append((db, engine, rt))
    rng = random.Random(7)
    times, found = [], 0
    first, text = "", ""
    for i in range(calls):
        db, engine, rt = desks[i % processes]
        if i // processes % sync_every == sync_every - 1:
            rt.catch_up(force=True)
        if i % 2 == 0:
            text = _pair_text(i // 2, rng)
        req = s.IntakeRequest(title=text[:4], detail=text + "！" * (i % 2), address=ADDRESS)
        clock.advance(timedelta(seconds=1))
        t = time.perf_counter()
        number, _, _ = submit(db, engine, OPERATOR, req, clock.now())
        times.append((time.perf_counter() - t) * 1000)
        if i % 2 == 0:
            first = number
            continue
        with db.read_sessions() as session:
            triage = session.scalar(select(Ticket.triage).where(Ticket.number == number)) or {}
        found += first in {r["number"] for r in triage.get("repeats", [])}
    for db, _, _ in desks:
        db.dispose()
    return {
        "median_ms": statistics.median(times),
        "look_ms": statistics.median(looks) if looks else None,
        "found": found / (calls // 2),
    }


def run(backend: str, calls: int, rounds: int, sync_every: int, tmp: Path) -> list[dict[str, Any]]:
    out = []
    for processes in (1, 2):
        samples: dict[str, list[dict[str, Any]]] = {"look": [], "no look": []}
        for r in range(rounds):
            order = ("look", "no look") if r % 2 == 0 else ("no look", "look")
            for label in order:
                with city_store(backend, tmp / f"{backend}-{processes}-{r}-{label.replace(' ', '')}") as url:
                    samples[label].append(_take(url, tmp, calls, processes, label == "look", sync_every))
        row: dict[str, Any] = {"backend": backend, "processes": processes, "calls": calls, "rounds": rounds}
        row["sync_every"] = sync_every
        for label, runs in samples.items():
            row[label] = {
                "median_ms": statistics.median(x["median_ms"] for x in runs),
                "found": statistics.median(x["found"] for x in runs),
            }
        row["look_ms"] = statistics.median(x["look_ms"] for x in samples["look"])
        row["ratio"] = row["look"]["median_ms"] / row["no look"]["median_ms"]
        out.append(row)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sync-every", type=int, default=10, help="a process's own calls between its looks")
    args = ap.parse_args()
    logging.disable(logging.INFO)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends.split(","):
            rows += run(backend, args.calls, args.rounds, args.sync_every, Path(tmp))
    print_table(
        f"intake's look at other processes' newest tickets: {args.calls // 2} complaints called in twice, taken in "
        f"turn by P processes reading each other every {args.sync_every} calls, median of {args.rounds} rounds",
        [
            "backend",
            "P",
            "ms/call look",
            "ms/call no look",
            "ratio",
            "the read, ms",
            "second call finds first: look",
            "no look",
        ],
        [
            [
                r["backend"],
                r["processes"],
                f"{r['look']['median_ms']:.2f}",
                f"{r['no look']['median_ms']:.2f}",
                f"{r['ratio']:.2f}",
                f"{r['look_ms']:.3f}",
                f"{r['look']['found']:.0%}",
                f"{r['no look']['found']:.0%}",
            ]
            for r in rows
        ],
    )
    write_results("intake_look", {"runs": rows})


if __name__ == "__main__":
    main()
