"""Benchmark of a flood: thousands of calls about one burst main in one street, taken one by one with triage inline.

Each call joins one growing cluster warning (一类事预警). What must not happen is that the n-th call costs more
than the first because the cluster already has n members: the detector links it to the cluster once, the
warning's members are stored one row each and the call's note names only itself (with the count). Baseline,
same process, same store, same intake path: as many unrelated calls (different wording, no category), which
join no cluster.

Figures: median ms per call over the first and the last 10 % of the flood, their ratio (growth; 1.0 is flat),
the flood's median over the baseline's, and the bytes of cluster notes per call. The city is the small test city
of tests/integration/triage (a classifier stub answers one category with confidence 0.99 for the flood).

    .venv/bin/python bench/flood.py [--backends sqlite,postgresql] [--sizes 500,2000] [--quick]

Results go to bench/results/flood.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from common import print_table, write_results
from sqlalchemy import func, select

from bench.intake import drop_database, make_database
from minsheng.config import Settings
from minsheng.domain.clock import FixedClock
from minsheng.domain.roles import Actor, Role
from minsheng.services import schemas as s
from minsheng.services.tickets import TicketEngine, submit
from minsheng.services.triage.runtime import TriageRuntime
from minsheng.storage.db import open_database
from minsheng.storage.migrate import upgrade
from minsheng.storage.models import TimelineEvent
from minsheng.storage.triage_tables import ClusterWarning
from tests.integration.triage.conftest import FakeClassifier, build_city

NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
OPERATOR = Actor(role=Role.OPERATOR, name="话务员")
TOPICS = [
    "路灯不亮",
    "孩子上学报名",
    "医院排队太久",
    "井盖丢了",
    "公交站牌倒了",
    "楼上装修噪音",
    "垃圾没人清运",
]
# Unrelated wording for the baseline: random characters share too few bigrams to link.
COMMON = (
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种"
    "面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本"
    "去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比"
    "或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总"
    "次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做"
    "必战先回则任取据处理府研"
)


@contextmanager
def city_store(backend: str, path: Path) -> Iterator[str]:
    """A fresh, migrated store holding the small test city, dropped afterwards; yields its URL."""
    url, name = make_database(backend, path)
    try:
        upgrade(url)
        setup = open_database(url)
        with setup.write_sessions() as session, session.begin():
            build_city(session, NOW)
        setup.dispose()
        yield url
    finally:
        drop_database(name)


def _flood_request(i: int, rng: random.Random) -> s.IntakeRequest:
    detail = (
        f"幸福路街道锦绣花园小区从早上开始停水，{rng.randint(1, 30)}号楼一滴水都没有，什么时候恢复？（{i}）"
    )
    return s.IntakeRequest(title="小区停水", detail=detail, address="幸福路街道锦绣花园小区")


def _other_request(i: int, rng: random.Random) -> s.IntakeRequest:
    topic = TOPICS[i % len(TOPICS)]
    words = "".join(rng.choice(COMMON) for _ in range(24))
    return s.IntakeRequest(title=topic, detail=f"{topic}：{words}", address="幸福路街道锦绣花园小区")


def _take(url: str, tmp: Path, n: int, flood: bool) -> dict[str, Any]:
    db = open_database(url)
    clock = FixedClock(NOW)
    engine = TicketEngine()
    # No category for the baseline: same intake, but nothing links its calls.
    classifier = FakeClassifier("020101", 0.99 if flood else 0.2)
    settings = Settings(database_url=url, data_dir=tmp, model_dir=None)
    rt = TriageRuntime(db, settings, engine, clock, classifier=classifier).start()
    engine.triage, engine.triage_prepare, engine.triage_prepare_many = rt.hook, rt.prepare, rt.prepare_many
    rng = random.Random(7)
    make = _flood_request if flood else _other_request
    times = []
    for i in range(n):
        req = make(i, rng)
        clock.advance(timedelta(seconds=1))
        t = time.perf_counter()
        submit(db, engine, OPERATOR, req, clock.now())
        times.append((time.perf_counter() - t) * 1000)
    with db.read_sessions() as session:
        payloads = session.scalars(
            select(TimelineEvent.payload).where(TimelineEvent.action == "cluster_warning")
        )
        note_bytes = sum(len(json.dumps(p, ensure_ascii=False).encode()) for p in payloads)
        clusters = session.scalar(select(func.count()).select_from(ClusterWarning)) or 0
        members = session.scalar(select(func.max(ClusterWarning.member_count))) or 0
    db.dispose()
    k = max(1, n // 10)
    return {
        "first_ms": statistics.median(times[:k]),
        "last_ms": statistics.median(times[-k:]),
        "median_ms": statistics.median(times),
        "note_bytes_per_call": note_bytes / n,
        "clusters": clusters,
        "largest_cluster": members,
    }


def run(backend: str, sizes: list[int], tmp: Path) -> list[dict[str, Any]]:
    out = []
    for n in sizes:
        result: dict[str, Any] = {"backend": backend, "calls": n}
        # Alternated, each on a fresh store, so that drift on a shared machine falls on both alike.
        for label, flood in (("baseline", False), ("flood", True)):
            with city_store(backend, tmp / f"{backend}-{n}-{label}") as url:
                result[label] = _take(url, tmp, n, flood)
        f, b = result["flood"], result["baseline"]
        assert f["clusters"] == 1 and f["largest_cluster"] == n, f
        assert b["clusters"] == 0, b
        result["growth"] = f["last_ms"] / f["first_ms"]
        result["flood_over_baseline"] = f["median_ms"] / b["median_ms"]
        out.append(result)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--sizes", default="500,2000")
    ap.add_argument("--quick", action="store_true", help="300 calls on SQLite")
    args = ap.parse_args()
    logging.disable(logging.INFO)
    sizes = [300] if args.quick else [int(x) for x in args.sizes.split(",")]
    backends = ["sqlite"] if args.quick else args.backends.split(",")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as d:
        for backend in backends:
            print(f"{backend}…", flush=True)
            rows += run(backend, sizes, Path(d))
    print_table(
        "a flood in one street: median ms per call, inline triage (baseline: as many unrelated calls)",
        [
            "backend",
            "calls",
            "baseline",
            "flood first 10 %",
            "flood last 10 %",
            "growth",
            "flood/baseline",
            "note bytes/call",
        ],
        [
            [
                r["backend"],
                f"{r['calls']:,}",
                f"{r['baseline']['median_ms']:.1f}",
                f"{r['flood']['first_ms']:.1f}",
                f"{r['flood']['last_ms']:.1f}",
                f"{r['growth']:.2f}",
                f"{r['flood_over_baseline']:.2f}",
                f"{r['flood']['note_bytes_per_call']:,.0f}",
            ]
            for r in rows
        ],
    )
    write_results("flood", {"rows": rows})


if __name__ == "__main__":
    main()
