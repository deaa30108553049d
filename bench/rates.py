"""A year of rates and rankings at city scale: the measures service over the daily facts, next to the naive
GROUP BY over tickets, assignments and the timeline, in the same run (issue 15).

    python bench/rates.py --url sqlite:///var/rates.db --tickets 1000000
    python bench/rates.py --url postgresql://postgres@127.0.0.1/rates --tickets 10000000

The database is filled once (bench/rates_data.py: COPY on PostgreSQL, bulk inserts on SQLite; the facts computed
from the same timelines by the real rule) and reused by later runs with the same --tickets. Each query runs
--repeat times after one warm-up; the table shows medians. Results go to bench/results/rates-<backend>-<n>.json.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import print_table, write_results
from rates_data import (
    FactSink,
    TicketMaker,
    copy_text,
    created_times,
    ensure_org,
    payload_json,
    timeline_of,
)
from sqlalchemy import func, select, text

from minsheng.measures.periods import Period
from minsheng.measures.timeline import COUNTERS
from minsheng.services import measures
from minsheng.storage.db import Database, open_database
from minsheng.storage.measure_tables import KEY_COLUMNS
from minsheng.storage.migrate import upgrade
from minsheng.storage.models import Assignment, Ticket

TICKET_COLS = [
    "id",
    "number",
    "query_code_hash",
    "channel",
    "kind",
    "urgency",
    "category_id",
    "title",
    "detail",
    "area_id",
    "confidential",
    "public_consent",
    "state",
    "lead_unit_id",
    "created_at",
    "updated_at",
    "dispatched_at",
    "closed_at",
    "rating",
    "reopen_count",
    "return_count",
    "event_count",
]
ASSIGNMENT_COLS = [
    "id",
    "ticket_id",
    "unit_id",
    "role",
    "state",
    "created_at",
    "updated_at",
    "signed_at",
    "reported_at",
    "returned_at",
    "closed_at",
    "first_receiver",
    "sign_due_at",
    "resolve_due_at",
]
EVENT_COLS = [
    "id",
    "ticket_id",
    "seq",
    "assignment_id",
    "at",
    "machine",
    "action",
    "actor_name",
    "actor_role",
    "payload",
    "public",
]
FACT_COLS = [*KEY_COLUMNS, *COUNTERS]


# ---------------------------------------------------------------------------------------------- loading
class Writer:
    """Writes rows with COPY (PostgreSQL) or executemany on the raw connection (SQLite)."""

    def __init__(self, db: Database) -> None:
        self.pg = db.engine.dialect.name == "postgresql"
        self.raw = db.engine.raw_connection()
        self.conn: Any = self.raw.driver_connection
        if self.pg:
            self.conn.execute("SET session_replication_role = replica")  # no FK triggers during the load
        else:
            self.conn.execute("PRAGMA synchronous=OFF")

    def write(self, table: str, cols: list[str], rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        if self.pg:
            with self.conn.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as cp:
                cp.write(copy_text(rows).getvalue())
        else:
            marks = ", ".join("?" for _ in cols)
            self.conn.executemany(
                f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks})",
                [tuple(map(_lite, r)) for r in rows],
            )

    def commit(self) -> None:
        self.conn.commit()

    def close(self) -> None:
        self.commit()
        self.raw.close()


def _lite(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(v, bool):
        return int(v)
    return v.isoformat() if hasattr(v, "isoformat") else v


def load(db: Database, n: int, year: int, seed: int, log: Callable[[str], None]) -> dict[str, Any]:
    org = ensure_org(db)
    rng = random.Random(seed)
    now = datetime(year + 1, 1, 10, tzinfo=UTC)
    maker = TicketMaker(org, rng, now, 1, 1)
    sink = FactSink()
    w = Writer(db)
    t0 = time.perf_counter()
    counts = {"tickets": 0, "assignments": 0, "events": 0, "facts": 0}
    eid = 1
    batch: dict[str, list[tuple[Any, ...]]] = {"t": [], "a": [], "e": [], "f": []}

    def flush() -> None:
        w.write("tickets", TICKET_COLS, batch["t"])
        w.write("assignments", ASSIGNMENT_COLS, batch["a"])
        w.write("timeline_events", EVENT_COLS, batch["e"])
        w.write("measure_facts", FACT_COLS, batch["f"])
        w.commit()
        for k in batch:
            batch[k] = []

    for created in created_times(n, year, rng):
        g = maker.make(created)
        t = g.ticket
        batch["t"].append(
            (
                t["id"],
                t["number"],
                "x",
                t["channel"],
                t["kind"],
                "normal",
                t["category_id"],
                "诉求",
                "诉求内容",
                t["area_id"],
                False,
                False,
                t["state"],
                t["lead_unit_id"],
                created,
                t["closed_at"] or created,
                t["dispatched_at"],
                t["closed_at"],
                t["rating"],
                t["reopen_count"],
                t["return_count"],
                len(g.events),
            )
        )
        for a in g.assignments:
            batch["a"].append(
                (
                    a["id"],
                    a["ticket_id"],
                    a["unit_id"],
                    a["role"],
                    a["state"],
                    a["created_at"],
                    a["created_at"],
                    a["signed_at"],
                    a["reported_at"],
                    a["returned_at"],
                    a["closed_at"],
                    False,
                    a["sign_due_at"],
                    a["resolve_due_at"],
                )
            )
        for seq, at, action, aid, payload in g.events:
            machine = "assignment" if aid else "ticket"
            batch["e"].append(
                (eid, t["id"], seq, aid, at, machine, action, "", "system", payload_json(payload), True)
            )
            eid += 1
        batch["f"] += sink.add(timeline_of(g))
        counts["tickets"] += 1
        counts["assignments"] += len(g.assignments)
        counts["events"] += len(g.events)
        if len(batch["t"]) >= 20_000:
            counts["facts"] += len(batch["f"])
            flush()
            if counts["tickets"] % 200_000 == 0:
                log(f"  {counts['tickets']:,} tickets in {time.perf_counter() - t0:.0f} s")
    batch["f"] += sink.flush()
    counts["facts"] += len(batch["f"])
    flush()
    w.close()
    _analyze(db)
    counts["load_seconds"] = round(time.perf_counter() - t0, 1)
    return counts


def grow(db: Database, base: int, times: int, log: Callable[[str], None]) -> dict[str, Any]:
    """Copy the ``base`` tickets (with their assignments and timelines) ``times - 1`` more times inside the
    database, ids shifted, and multiply the facts by ``times``: exact, since a copy has the copied ticket's keys
    and counters and the facts are sums. Far faster than drawing the tickets again (COPY of Python rows)."""
    t0 = time.perf_counter()
    with db.engine.connect() as c:
        if db.engine.dialect.name == "postgresql":
            c.exec_driver_sql("SET session_replication_role = replica")
        n_a = c.exec_driver_sql("SELECT max(id) FROM assignments").scalar() or 0
        n_e = c.exec_driver_sql("SELECT max(id) FROM timeline_events").scalar() or 0
        t_cols = ", ".join(TICKET_COLS)
        a_cols = ", ".join(ASSIGNMENT_COLS)
        e_cols = ", ".join(EVENT_COLS)
        for k in range(1, times):
            shifted_t = t_cols.replace("id, number", f"id + {k * base}, number || 'r{k}'", 1)
            c.exec_driver_sql(
                f"INSERT INTO tickets ({t_cols}) SELECT {shifted_t} FROM tickets WHERE id <= {base}"
            )
            shifted_a = a_cols.replace("id, ticket_id", f"id + {k * n_a}, ticket_id + {k * base}", 1)
            c.exec_driver_sql(
                f"INSERT INTO assignments ({a_cols}) SELECT {shifted_a} FROM assignments WHERE id <= {n_a}"
            )
            shifted_e = e_cols.replace(
                "id, ticket_id, seq, assignment_id",
                f"id + {k * n_e}, ticket_id + {k * base}, seq, assignment_id + {k * n_a}",
                1,
            )
            c.exec_driver_sql(
                f"INSERT INTO timeline_events ({e_cols}) SELECT {shifted_e} FROM timeline_events WHERE id <= {n_e}"
            )
            c.commit()
            log(f"  copy {k} of {times - 1} in {time.perf_counter() - t0:.0f} s")
        c.exec_driver_sql(f"UPDATE measure_facts SET {', '.join(f'{x} = {x} * {times}' for x in COUNTERS)}")
        c.commit()
    _analyze(db)
    return {"grown_from": base, "times": times, "grow_seconds": round(time.perf_counter() - t0, 1)}


def _analyze(db: Database) -> None:
    with db.engine.connect() as c:
        if db.engine.dialect.name == "postgresql":
            for table in ("tickets", "assignments", "timeline_events"):
                c.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}','id'), (SELECT max(id) FROM {table}))"
                )
            c.commit()
            c.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
        else:
            c.exec_driver_sql("ANALYZE")
            c.commit()


# ---------------------------------------------------------------------------------------------- queries
def naive_units(db: Database, p: Period) -> int:
    """Ranking of units the naive way: ticket outcomes by lead unit, assignment steps by unit, and the mean time
    to sign from the timeline, over the year's tickets."""
    start, end = p.utc_bounds()
    with db.read_sessions() as s:
        led = s.execute(
            select(
                Ticket.lead_unit_id,
                func.count(),
                func.sum(text("CASE WHEN tickets.state IN ('closed','rated') THEN 1 ELSE 0 END")),
                func.count(Ticket.rating),
                func.sum(
                    text("CASE WHEN tickets.rating IN ('satisfied','basically_satisfied') THEN 1 ELSE 0 END")
                ),
                func.sum(text("CASE WHEN tickets.reopen_count > 0 THEN 1 ELSE 0 END")),
            )
            .where(Ticket.created_at >= start, Ticket.created_at < end)
            .group_by(Ticket.lead_unit_id)
        ).all()
        steps = s.execute(
            select(
                Assignment.unit_id,
                func.count(),
                func.count(Assignment.signed_at),
                func.count(Assignment.reported_at),
                func.count(Assignment.returned_at),
            )
            .join(Ticket, Ticket.id == Assignment.ticket_id)
            .where(Ticket.created_at >= start, Ticket.created_at < end)
            .group_by(Assignment.unit_id)
        ).all()
        epoch = _epoch(db)
        signs = s.execute(
            text(
                f"SELECT a.unit_id, count(*), avg({epoch('e.at')} - {epoch('a.created_at')}) "
                "FROM timeline_events e JOIN assignments a ON a.id = e.assignment_id "
                "JOIN tickets t ON t.id = e.ticket_id "
                "WHERE e.action = 'sign' AND t.created_at >= :s AND t.created_at < :e GROUP BY a.unit_id"
            ),
            {"s": _bind(db, start), "e": _bind(db, end)},
        ).all()
    return len(led) + len(steps) + len(signs)


def naive_areas(db: Database, p: Period) -> int:
    """Ranking of streets the naive way: ticket outcomes grouped by area over the year's tickets."""
    start, end = p.utc_bounds()
    with db.read_sessions() as s:
        rows = s.execute(
            select(
                Ticket.area_id,
                func.count(),
                func.sum(text("CASE WHEN tickets.state IN ('closed','rated') THEN 1 ELSE 0 END")),
                func.count(Ticket.rating),
                func.sum(
                    text("CASE WHEN tickets.rating IN ('satisfied','basically_satisfied') THEN 1 ELSE 0 END")
                ),
            )
            .where(Ticket.created_at >= start, Ticket.created_at < end)
            .group_by(Ticket.area_id)
        ).all()
    return len(rows)


def naive_months(db: Database, p: Period) -> int:
    """The city's months the naive way: outcomes grouped by month of intake."""
    start, end = p.utc_bounds()
    month = (
        "strftime('%Y-%m', tickets.created_at)" if db.is_sqlite else "date_trunc('month', tickets.created_at)"
    )
    with db.read_sessions() as s:
        rows = s.execute(
            select(
                text(month),
                func.count(),
                func.sum(text("CASE WHEN tickets.state IN ('closed','rated') THEN 1 ELSE 0 END")),
                func.count(Ticket.rating),
            )
            .where(Ticket.created_at >= start, Ticket.created_at < end)
            .group_by(text("1"))
        ).all()
    return len(rows)


def _epoch(db: Database) -> Callable[[str], str]:
    if db.is_sqlite:
        return lambda col: f"julianday({col}) * 86400.0"
    return lambda col: f"extract(epoch from {col})"


def _bind(db: Database, at: datetime) -> Any:
    return at.strftime("%Y-%m-%d %H:%M:%S.%f") if db.is_sqlite else at


def facts_queries(db: Database, p: Period) -> dict[str, Callable[[], int]]:
    ms = measures.MeasureSettings()

    def run(fn: Callable[[Any], Any]) -> Callable[[], int]:
        def go() -> int:
            with db.read_sessions() as s:
                out = fn(s)
            return len(out.rows) if hasattr(out, "rows") else len(out)

        return go

    return {
        "ranking departments (composite)": run(lambda s: measures.ranking(s, p, "department", ms)),
        "ranking districts (composite)": run(lambda s: measures.ranking(s, p, "district", ms)),
        "ranking streets (completion_rate)": run(
            lambda s: measures.ranking(s, p, "street", ms, "completion_rate")
        ),
        "table city by month (+prev, last year)": run(
            lambda s: measures.measure_table(s, p, measures.Scope(), "month", ms)
        ),
        "table city by unit (+prev, last year)": run(
            lambda s: measures.measure_table(s, p, measures.Scope(), "unit", ms)
        ),
        "table one district by category": run(
            lambda s: measures.measure_table(s, p, measures.Scope(area_code="R03"), "category", ms)
        ),
    }


def timed(fn: Callable[[], int], repeat: int) -> tuple[float, int]:
    fn()  # warm-up (caches, compiled statements)
    times = []
    rows = 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        rows = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True)
    ap.add_argument("--tickets", type=int, default=1_000_000)
    ap.add_argument("--year", type=int, default=2026)
    ap.add_argument("--seed", type=int, default=15)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--naive-repeat", type=int, default=3)
    ap.add_argument(
        "--grow-from",
        type=int,
        default=0,
        help="reach --tickets by copying a database of this many tickets inside the database (see grow())",
    )
    args = ap.parse_args()
    upgrade(args.url)
    db = open_database(args.url, pool_size=2)
    with db.read_sessions() as s:
        have = s.scalar(select(func.count()).select_from(Ticket)) or 0
    load_info: dict[str, Any] = {"reused": True, "tickets": have}
    if have == 0:
        print(f"loading {args.tickets:,} tickets …")
        load_info = load(db, args.tickets, args.year, args.seed, print)
    elif args.grow_from and have == args.grow_from and args.tickets % have == 0:
        print(f"growing {have:,} tickets to {args.tickets:,} …")
        load_info = {"reused": True, "tickets": have, **grow(db, have, args.tickets // have, print)}
    elif have != args.tickets:
        raise SystemExit(f"the database holds {have:,} tickets, not {args.tickets:,}: use an empty one")
    with db.read_sessions() as s:
        fact_rows = dict(s.execute(text("SELECT cube, count(*) FROM measure_facts GROUP BY cube")).all())
    p = Period.year(args.year)
    rows = []
    results: dict[str, Any] = {}
    for name, fn in facts_queries(db, p).items():
        median, n = timed(fn, args.repeat)
        rows.append(("facts", name, n, median))
        results[f"facts: {name}"] = median
    naive = {
        "units (tickets + assignments + timeline)": naive_units,
        "streets (tickets)": naive_areas,
        "months (tickets)": naive_months,
    }
    for name, q in naive.items():
        median, n = timed(lambda q=q: q(db, p), args.naive_repeat)
        rows.append(("naive", name, n, median))
        results[f"naive: {name}"] = median
    facts_rankings = sum(v for k, v in results.items() if k.startswith("facts: ranking") or "by month" in k)
    naive_total = sum(v for k, v in results.items() if k.startswith("naive"))
    print_table(
        f"A year of rates and rankings: {args.tickets:,} tickets on {db.engine.dialect.name} (medians, s)",
        ["how", "query", "rows", "seconds"],
        [
            *rows,
            ("facts", "rankings + months together", "", facts_rankings),
            ("naive", "together", "", naive_total),
        ],
    )
    print(f"naive / facts: {naive_total / facts_rankings:.0f}x; fact rows per cube: {fact_rows}")
    backend = db.engine.dialect.name
    path = write_results(
        f"rates-{backend}-{args.tickets}",
        {
            "backend": backend,
            "tickets": args.tickets,
            "year": args.year,
            "load": load_info,
            "fact_rows_per_cube": fact_rows,
            "medians_seconds": results,
            "facts_rankings_and_months_seconds": facts_rankings,
            "naive_seconds": naive_total,
            "command": " ".join(sys.argv),
        },
    )
    print(f"results: {path}")
    db.dispose()


if __name__ == "__main__":
    main()
