"""Render time of every page with N tickets in the database, against the trivial /api/v1/ping of the same server.

Usage:
    python bench/pages.py                          # 1,000,000 tickets in var/bench-pages-1000000.db (filled once)
    python bench/pages.py --tickets 20000          # a smaller city
    python bench/pages.py --url postgresql://...   # a prepared, migrated and bulk-loaded database

The database is filled by `bench/bulkload.py` (`bulk_load(url, n, seed)`) when it holds fewer tickets than asked.
The server is uvicorn in a thread on a free loopback port; each page is fetched sequentially over one
keep-alive connection, after warm-up requests. Prints a Rich table, writes bench/results/pages.json.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bulkload import BENCH_PASSWORD, bulk_load  # noqa: E402
from minsheng.asgi import create_app  # noqa: E402
from minsheng.config import Settings  # noqa: E402
from minsheng.storage.db import open_database  # noqa: E402
from minsheng.storage.models import Assignment, Ticket, Unit  # noqa: E402

TARGET_MS = 300.0
HANDLER = "bench_h00"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def ticket_count(url: str) -> int:
    db = open_database(url)
    try:
        with db.read_sessions() as s:
            return int(
                s.scalar(select(func.max(Ticket.id))) or 0
            )  # max(id), not count(*): never count a table
    except Exception:
        return 0
    finally:
        db.dispose()


def pages(url: str) -> list[tuple[str, str | None, str, str, dict[str, str] | None]]:
    """(name, user, method, path, form) for every page; numbers picked from the data."""
    db = open_database(url)
    with db.read_sessions() as s:
        latest = s.scalar(select(Ticket.number).order_by(Ticket.id.desc()).limit(1))
        unit_id = s.scalar(select(Unit.id).where(Unit.code == "U00"))
        mine = s.scalar(
            select(Ticket.number)
            .join(Assignment, Assignment.ticket_id == Ticket.id)
            .where(Assignment.unit_id == unit_id)
            .order_by(Assignment.id.desc())
            .limit(1)
        )
        phone = s.scalar(select(Ticket.citizen_phone).where(Ticket.citizen_phone.is_not(None)).limit(1))
    db.dispose()
    suggest = {"detail": "幸福路路灯坏了，晚上很黑", "citizen_phone": phone or ""}
    return [
        ("portal /", None, "GET", "/", None),
        ("track /track", None, "GET", "/track", None),
        ("public board /public", None, "GET", "/public", None),
        ("service guide /help?q=", None, "GET", "/help?q=路灯", None),
        ("login /login", None, "GET", "/login", None),
        ("desk /desk", "bench_operator", "GET", "/desk", None),
        ("desk suggestions", "bench_operator", "POST", "/desk/suggest", suggest),
        ("queue /queue", "bench_dispatcher", "GET", "/queue", None),
        ("inbox /inbox", HANDLER, "GET", "/inbox", None),
        ("board /board", "bench_supervisor", "GET", "/board", None),
        ("follow-up /followup", "bench_followup", "GET", "/followup", None),
        ("ticket list /tickets", "bench_supervisor", "GET", "/tickets", None),
        ("ticket list, search", "bench_supervisor", "GET", "/tickets?q=路灯", None),
        ("ticket page", "bench_supervisor", "GET", f"/tickets/{latest}", None),
        ("ticket page (unit)", HANDLER, "GET", f"/tickets/{mine}", None),
        ("knowledge base /kb", "bench_operator", "GET", "/kb?q=路灯", None),
        ("big screen /screen", "bench_leader", "GET", "/screen", None),
        ("screen data (cached)", "bench_leader", "GET", "/screen/data", None),
        ("admin /admin", "bench_admin", "GET", "/admin", None),
        ("admin areas", "bench_admin", "GET", "/admin/areas", None),
        ("admin units", "bench_admin", "GET", "/admin/units", None),
        ("admin users", "bench_admin", "GET", "/admin/users", None),
        ("admin categories", "bench_admin", "GET", "/admin/categories", None),
        ("api ping (ceiling)", None, "GET", "/api/v1/ping", None),
    ]


def run(url: str, n_requests: int, warmup: int) -> list[dict[str, Any]]:
    data_dir = ROOT / "var" / "bench-pages-data"
    settings = Settings(database_url=url, data_dir=data_dir, embedded_worker=False, environment="test")
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    clients: dict[str | None, httpx.Client] = {}
    results = []
    try:
        for name, user, method, path, form in pages(url):
            c = clients.get(user)
            if c is None:
                c = clients[user] = httpx.Client(base_url=base, timeout=60)
                if user:
                    r = c.post("/api/v1/auth/login", json={"username": user, "password": BENCH_PASSWORD})
                    r.raise_for_status()
                    c.headers["X-CSRF-Token"] = r.json()["csrf_token"]
            times = []
            status = 0
            for i in range(warmup + n_requests):
                t0 = time.perf_counter()
                r = c.request(method, path, data=form) if form else c.request(method, path)
                dt = (time.perf_counter() - t0) * 1000
                status = r.status_code
                if i >= warmup:
                    times.append(dt)
            times.sort()
            p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
            results.append(
                {
                    "page": name,
                    "path": path,
                    "status": status,
                    "p50_ms": round(statistics.median(times), 2),
                    "p95_ms": round(p95, 2),
                    "max_ms": round(times[-1], 2),
                    "n": len(times),
                }
            )
    finally:
        for c in clients.values():
            c.close()
        server.should_exit = True
        thread.join(timeout=10)
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tickets", type=int, default=1_000_000)
    ap.add_argument("--url", help="a prepared database URL (else a SQLite file under var/)")
    ap.add_argument("--requests", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "pages.json")
    args = ap.parse_args()
    url = args.url or f"sqlite:///{ROOT / 'var' / f'bench-pages-{args.tickets}.db'}"
    console = Console()
    have = ticket_count(url)
    if have < args.tickets:
        console.print(f"filling {url} with {args.tickets - have:,} tickets (bench/bulkload.py) …")
        t0 = time.monotonic()
        bulk_load(url, args.tickets - have, seed=0)
        console.print(f"filled in {time.monotonic() - t0:.0f} s")
    results = run(url, args.requests, args.warmup)
    ping = next(r for r in results if r["path"] == "/api/v1/ping")
    table = Table(
        title=f"page render time, {max(have, args.tickets):,} tickets, {args.requests} requests each"
    )
    for col in ("page", "status", "p50 ms", "p95 ms", "max ms", "× ping p50", "< 300 ms p95"):
        table.add_column(col, justify="left" if col == "page" else "right")
    for r in results:
        ok = r["p95_ms"] < TARGET_MS and r["status"] == 200
        table.add_row(
            r["page"],
            str(r["status"]),
            f"{r['p50_ms']:.1f}",
            f"{r['p95_ms']:.1f}",
            f"{r['max_ms']:.1f}",
            f"{r['p50_ms'] / ping['p50_ms']:.1f}",
            "[green]yes[/]" if ok else "[red]NO[/]",
        )
    console.print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    backend = url.split(":", 1)[0]
    args.out.write_text(
        json.dumps(
            {
                "tickets": max(have, args.tickets),
                "backend": backend,
                "requests": args.requests,
                "target_p95_ms": TARGET_MS,
                "pages": results,
            },
            ensure_ascii=False,
            indent=1,
        )
    )
    console.print(f"wrote {args.out}")
    return 0 if all(r["p95_ms"] < TARGET_MS and r["status"] == 200 for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
