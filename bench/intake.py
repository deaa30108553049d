"""Intake throughput over real HTTP, and list/inbox latency at city scale.

Part 1: uvicorn on loopback serves the real app; `wrk` (a C load generator, so the client costs little of the
2 cores) posts tickets with unique idempotency keys from 50 concurrent connections, and then hits the trivial
`/api/v1/ping` of the same server: the framework's ceiling, measured in the same run. Tickets/s, p50, p99 and
the ratio to the ceiling are reported for SQLite and PostgreSQL.

Part 2: with N tickets bulk-loaded (default 1,000,000), the list and inbox queries a console would make are
timed over HTTP (sequential requests, p50/p95).

Intake runs once per triage mode: ``inline`` (the analysis inside the intake transaction) and ``deferred`` (intake
stores the ticket and a triage job; the web process's triage thread follows, yielding to intake for up to 30 s).
For deferred, the triage backlog when the load stops and the seconds until it is drained are reported too.

Usage: python bench/intake.py [--quick] [--backends sqlite,postgresql] [--tickets 1000000] [--duration 15]
       [--triage-modes inline,deferred] [--workers 1] [--with-model]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bulkload import BENCH_PASSWORD, bulk_load, ensure_org  # noqa: E402
from minsheng.services import auth  # noqa: E402
from minsheng.storage.db import open_database  # noqa: E402
from minsheng.storage.migrate import upgrade  # noqa: E402
from minsheng.storage.models import User  # noqa: E402

RESULTS = ROOT / "bench" / "results"
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
console = Console(width=180)

WRK_POST = r"""
counter = 0
local thread_id = 0
setup = function(thread)
  thread:set("tid", thread_id)
  thread_id = thread_id + 1
end
init = function(args)
  math.randomseed(os.time() + tid * 7919)
  prefix = string.format("%08x-%d-", math.random(0, 0x7fffffff), tid)
end
request = function()
  counter = counter + 1
  local body = string.format(
    '{"channel":"phone","kind":"complaint","title":"路灯不亮","detail":"幸福路%d号附近的路灯已经坏了一个星期，晚上行人很不安全，请尽快维修。","citizen_phone":"139%08d","idempotency_key":"%s%d"}',
    counter, counter, prefix, counter)
  return wrk.format("POST", "/api/v1/tickets", nil, body)
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_database(backend: str, tmp: Path) -> tuple[str, str | None]:
    tmp.mkdir(parents=True, exist_ok=True)
    if backend == "sqlite":
        return f"sqlite:///{tmp / 'bench.db'}", None
    from sqlalchemy import create_engine, text

    name = f"minsheng_bench_{os.getpid()}"
    eng = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        c.execute(text(f'CREATE DATABASE "{name}"'))
    eng.dispose()
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}", name


def drop_database(name: str | None) -> None:
    if not name:
        return
    from sqlalchemy import create_engine, text

    eng = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    eng.dispose()


def bearer_token(url: str, username: str) -> str:
    from datetime import UTC, datetime

    from sqlalchemy import select

    db = open_database(url)
    with db.write_sessions() as s, s.begin():
        user = s.scalar(select(User).where(User.username == username))
        assert user is not None
        token = auth.issue_token(s, user, "bench", datetime.now(UTC))
    db.dispose()
    return token


class Server:
    """uvicorn serving the real app in a child process."""

    def __init__(self, url: str, workers: int, data_dir: Path, triage_mode: str = "inline") -> None:
        self.port = free_port()
        env = {
            **os.environ,
            "MINSHENG_DATABASE_URL": url,
            "MINSHENG_DATA_DIR": str(data_dir),
            # Deferred triage runs in the web processes' own triage thread, part of the embedded worker.
            "MINSHENG_EMBEDDED_WORKER": "true" if triage_mode == "deferred" else "false",
            "MINSHENG_AUTO_DISPATCH": "false",
            "MINSHENG_ENVIRONMENT": "benchmark",
            "MINSHENG_TRIAGE_MODE": triage_mode,
        }
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "minsheng.asgi:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(workers),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            env=env,
            cwd=ROOT,
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("server did not start")

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def parse_ms(value: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", value)
    if not m:
        return float("nan")
    n, unit = float(m.group(1)), m.group(2)
    return n / 1000 if unit == "us" else n * 1000 if unit == "s" else n


def run_wrk(url: str, token: str, seconds: int, connections: int, script: str | None) -> dict[str, Any]:
    cmd = ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--latency"]
    cmd += ["-H", f"Authorization: Bearer {token}", "-H", "Content-Type: application/json"]
    if script:
        cmd += ["-s", script]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lat = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.M))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": rps,
        "p50_ms": parse_ms(lat.get("50", "nan")),
        "p99_ms": parse_ms(lat.get("99", "nan")),
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": errors.group(1) if errors else "",
    }


def wait_for_triage(url: str, timeout: float = 600) -> tuple[float, int, int]:
    """Seconds until no triage job is left, the jobs left when the load stopped, and the tickets triaged."""
    from sqlalchemy import func, select

    from minsheng.storage.models import Ticket
    from minsheng.storage.triage_tables import TriageJob

    db = open_database(url)
    try:
        t0 = time.perf_counter()
        backlog = -1
        while True:
            with db.read_sessions() as s:
                left = s.scalar(select(func.count()).select_from(TriageJob)) or 0
            if backlog < 0:
                backlog = left
            if left == 0 or time.perf_counter() - t0 > timeout:
                break
            time.sleep(0.2)
        drain = time.perf_counter() - t0
        with db.read_sessions() as s:
            triaged = (
                s.scalar(select(func.count()).select_from(Ticket).where(Ticket.triage.is_not(None))) or 0
            )
        return drain, backlog, triaged
    finally:
        db.dispose()


def train_bench_model(data_dir: Path) -> None:
    """A classifier trained on 3,000 requests of the demo city, where the server finds it (<data dir>/models)."""
    from bench.classify import _generated
    from minsheng.services.triage.training import CURRENT_FILE
    from minsheng.triage import classifier as clf

    texts, labels = _generated(3000)
    model = clf.train_classifier(texts, labels, folds=3)
    models = data_dir / "models"
    clf.save_model(model, models / "versions" / "bench")
    (models / CURRENT_FILE).write_text("bench", encoding="utf-8")


def intake_bench(
    backend: str,
    seconds: int,
    connections: int,
    workers: int,
    tmp: Path,
    triage_mode: str = "inline",
    with_model: bool = False,
) -> dict[str, Any]:
    url, name = make_database(backend, tmp)
    try:
        upgrade(url)
        db = open_database(url)
        from datetime import UTC, datetime

        ensure_org(db, datetime.now(UTC))
        db.dispose()
        token = bearer_token(url, "bench_operator")
        script = tmp / "post.lua"
        script.write_text(WRK_POST)
        if with_model:
            train_bench_model(tmp / "data")
        server = Server(url, workers, tmp / "data", triage_mode)
        drain: tuple[float, int, int] | None = None
        try:
            run_wrk(f"{server.base}/api/v1/ping", token, 2, connections, None)  # warm-up
            ceiling = run_wrk(f"{server.base}/api/v1/ping", token, seconds, connections, None)
            intake = run_wrk(f"{server.base}/api/v1/tickets", token, seconds, connections, str(script))
            if triage_mode == "deferred":
                # Triage follows the burst: how far behind it was, and how long it took to catch up.
                drain = wait_for_triage(url)
            ceiling2 = run_wrk(f"{server.base}/api/v1/ping", token, seconds, connections, None)
        finally:
            server.stop()
        db = open_database(url)
        from sqlalchemy import func, select

        from minsheng.storage.models import Ticket

        with db.read_sessions() as s:
            stored = s.scalar(select(func.count()).select_from(Ticket)) or 0
            distinct = s.scalar(select(func.count(func.distinct(Ticket.number)))) or 0
        db.dispose()
        ceiling_rps = statistics.median([ceiling["rps"], ceiling2["rps"]])
        return {
            "backend": backend,
            "triage_mode": triage_mode,
            "model": with_model,
            "triage_backlog_at_end": drain[1] if drain else 0,
            "triage_drain_seconds": drain[0] if drain else 0.0,
            "tickets_triaged": drain[2] if drain else None,
            "connections": connections,
            "workers": workers,
            "seconds": seconds,
            "ceiling": {"first": ceiling, "second": ceiling2, "median_rps": ceiling_rps},
            "intake": intake,
            "ratio_to_ceiling": intake["rps"] / ceiling_rps if ceiling_rps else None,
            "tickets_stored": stored,
            "numbers_distinct": distinct,
        }
    finally:
        drop_database(name)


def query_bench(backend: str, n: int, samples: int, tmp: Path) -> dict[str, Any]:
    url, name = make_database(backend, tmp)
    try:
        t0 = time.perf_counter()
        bulk_load(url, n)
        load_s = time.perf_counter() - t0
        server = Server(url, 1, tmp / "data")
        try:
            with httpx.Client(base_url=server.base, timeout=30) as c:
                tokens = {}
                for who in ("bench_dispatcher", "bench_h07", "bench_leader"):
                    r = c.post("/api/v1/auth/login", json={"username": who, "password": BENCH_PASSWORD})
                    r.raise_for_status()
                    tokens[who] = r.cookies
                queries: dict[str, tuple[str, str, dict[str, Any]]] = {
                    "ping (baseline)": ("bench_leader", "/api/v1/ping", {}),
                    "list newest": ("bench_leader", "/api/v1/tickets", {"limit": 20}),
                    "list by state": (
                        "bench_leader",
                        "/api/v1/tickets",
                        {"state": "in_progress", "limit": 20},
                    ),
                    "list by area": ("bench_leader", "/api/v1/tickets", {"area": "B2", "limit": 20}),
                    "list by category+state": (
                        "bench_leader",
                        "/api/v1/tickets",
                        {"category": "K3", "state": "dispatched", "limit": 20},
                    ),
                    "list by unit": ("bench_leader", "/api/v1/tickets", {"unit": "U07", "limit": 20}),
                    "list page 2": ("bench_leader", "/api/v1/tickets", {"limit": 20, "cursor": None}),
                    "dispatch queue": ("bench_dispatcher", "/api/v1/queue", {"limit": 20}),
                    "unit inbox": ("bench_h07", "/api/v1/inbox", {"limit": 50}),
                    "handler list": ("bench_h07", "/api/v1/tickets", {"limit": 20}),
                    "one ticket": ("bench_leader", "/api/v1/tickets/{number}", {}),
                }
                first = c.get("/api/v1/tickets", params={"limit": 20}, cookies=tokens["bench_leader"]).json()
                cursor = first["next_cursor"]
                number = first["items"][5]["number"]
                out: dict[str, Any] = {}
                for label, (who, path, params) in queries.items():
                    if "cursor" in params:
                        params = {**params, "cursor": cursor}
                    p = path.replace("{number}", number)
                    times = []
                    for _ in range(samples):
                        t = time.perf_counter()
                        r = c.get(p, params=params, cookies=tokens[who])
                        times.append((time.perf_counter() - t) * 1000)
                        assert r.status_code == 200, (label, r.status_code, r.text[:200])
                    times.sort()
                    out[label] = {
                        "p50_ms": statistics.median(times),
                        "p95_ms": times[int(0.95 * (len(times) - 1))],
                        "n": samples,
                    }
        finally:
            server.stop()
        return {"backend": backend, "tickets": n, "load_seconds": load_s, "queries": out}
    finally:
        drop_database(name)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="short runs and 50,000 tickets")
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--tickets", type=int, default=1_000_000)
    ap.add_argument("--duration", type=int, default=15)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--samples", type=int, default=60)
    ap.add_argument("--skip-queries", action="store_true")
    ap.add_argument("--skip-intake", action="store_true")
    ap.add_argument(
        "--with-model",
        action="store_true",
        help="load a classifier (trained on 3,000 generated requests) so that triage classifies every ticket",
    )
    ap.add_argument(
        "--triage-modes",
        default="inline,deferred",
        help="inline: triage inside intake; deferred: intake stores a job, triage follows (drain measured)",
    )
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed for the load: apt-get install wrk")
    if args.quick:
        args.tickets, args.duration, args.samples = 50_000, 5, 30
    backends = [b for b in args.backends.split(",") if b]
    results: dict[str, Any] = {"intake": [], "queries": [], "args": vars(args)}
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        for b in backends:
            if not args.skip_intake:
                for mode in [m for m in args.triage_modes.split(",") if m]:
                    console.print(f"[bold]intake on {b}, triage {mode}[/] …")
                    results["intake"].append(
                        intake_bench(
                            b,
                            args.duration,
                            args.connections,
                            args.workers,
                            tmp / f"{b}-{mode}",
                            mode,
                            args.with_model,
                        )
                    )
            if not args.skip_queries:
                console.print(f"[bold]queries on {b} with {args.tickets:,} tickets[/] …")
                results["queries"].append(query_bench(b, args.tickets, args.samples, tmp / f"q{b}"))
    if results["intake"]:
        model = "a classifier loaded" if args.with_model else "no classifier"
        t = Table(
            title=f"Intake over HTTP ({args.connections} connections, wrk, {args.duration}s each, {model})"
        )
        for col in (
            "backend",
            "triage",
            "tickets/s",
            "p50 ms",
            "p99 ms",
            "ping/s (ceiling)",
            "ratio",
            "non-2xx",
            "stored",
            "triage backlog → drained in",
        ):
            t.add_column(col)
        for r in results["intake"]:
            i = r["intake"]
            t.add_row(
                r["backend"],
                r["triage_mode"],
                f"{i['rps']:.0f}",
                f"{i['p50_ms']:.1f}",
                f"{i['p99_ms']:.1f}",
                f"{r['ceiling']['median_rps']:.0f}",
                f"{r['ratio_to_ceiling']:.2f}",
                str(i["non_2xx"]),
                f"{r['tickets_stored']} ({r['numbers_distinct']} distinct)",
                f"{r['triage_backlog_at_end']} → {r['triage_drain_seconds']:.1f}s ({r['tickets_triaged']} triaged)"
                if r["triage_mode"] == "deferred"
                else "–",
            )
        console.print(t)
    for q in results["queries"]:
        t = Table(
            title=f"Queries over HTTP, {q['backend']}, {q['tickets']:,} tickets (loaded in {q['load_seconds']:.0f}s)"
        )
        for col in ("query", "p50 ms", "p95 ms", "p95 / ping p95"):
            t.add_column(col)
        base = q["queries"]["ping (baseline)"]["p95_ms"]
        for label, v in q["queries"].items():
            t.add_row(label, f"{v['p50_ms']:.1f}", f"{v['p95_ms']:.1f}", f"{v['p95_ms'] / base:.1f}")
        console.print(t)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "intake.json").write_text(json.dumps(results, indent=2, default=str))
    console.print(f"written {RESULTS / 'intake.json'}")


if __name__ == "__main__":
    main()
