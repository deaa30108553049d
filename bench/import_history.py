"""History import at city scale (issue 16 §4): `minsheng import tickets` of N rows of NYC 311 shape, per store.

The rows are synthetic: the 924 + 1000 rows of the shared 2022 and 2024 NYC samples, replicated with new ids,
intake times spread over a year in time order as exports come (time of day kept), close times shifted with them, positions jittered; the
columns are those of the NYC portal export that the ready-made mapping reads. The CSV is written once to
var/bench/ and reused.

Measured per store, in the same run: (1) the import of all N rows through `import_tickets` (parse, claims,
tickets, assignments, timelines, measure facts; commit per batch), with the rate of the first 10 % noted on the
way; (2) the baseline: the same rows' ticket rows alone, written into an empty tickets table in batches of the
same size the way the import writes them (`storage.bulk.insert_rows`: COPY on PostgreSQL, executemany on
SQLite), with no claims, events, assignments or facts. The ratio import/baseline is what to compare across
machines; on a shared, loaded machine the absolute rates move with the load.

Usage: python bench/import_history.py --rows 1000000 [--stores sqlite,postgresql] [--batch 2000]
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, SHARED_DATA, print_table, skip, write_results

COLUMNS = [
    "Unique Key", "Created Date", "Closed Date", "Agency", "Agency Name", "Complaint Type", "Descriptor",
    "Location Type", "Incident Address", "City", "Status", "Resolution Description", "Open Data Channel Type",
    "Latitude", "Longitude",
]  # fmt: skip
FMT = "%m/%d/%Y %I:%M:%S %p"
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def sample_rows() -> list[dict[str, str]]:
    from minsheng.services.history.mapping import column_key

    rows = []
    for name in ("nyc311_2022-05-01_hour.csv", "nyc311_2024-05-26_api_export.csv"):
        path = SHARED_DATA / "nyc311" / name
        if not path.is_file():
            skip(f"shared sample absent: {path}")
        with path.open(encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                rows.append({column_key(k): (v or "").strip() for k, v in row.items()})
    return rows


def _time(text: str) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return datetime.strptime(text, FMT)


def synthetic_csv(n: int, seed: int = 16) -> Path:
    out = ROOT / "var" / "bench" / f"nyc311_synthetic_{n}.csv"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    base = sample_rows()
    year = datetime(2023, 1, 1)
    tmp = out.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for i in range(n):
            src = base[i % len(base)]
            created0 = _time(src["createddate"])
            assert created0 is not None
            created = (
                year + timedelta(days=rng.randrange(365)) + (created0 - created0.replace(hour=0, minute=0))
            )
            closed0 = _time(src.get("closeddate", ""))
            closed = created + (closed0 - created0) if closed0 and closed0 >= created0 else None
            lat, lon = src.get("latitude", ""), src.get("longitude", "")
            if lat and lon:
                lat = f"{float(lat) + rng.uniform(-0.01, 0.01):.6f}"
                lon = f"{float(lon) + rng.uniform(-0.01, 0.01):.6f}"
            status = src["status"] if closed or src["status"].lower() != "closed" else "In Progress"
            w.writerow(
                [
                    str(100_000_000 + i), created.strftime(FMT), closed.strftime(FMT) if closed else "",
                    src["agency"], src["agencyname"], src["complainttype"], src["descriptor"],
                    src.get("locationtype", ""), src.get("incidentaddress", ""), src.get("city", ""), status,
                    src.get("resolutiondescription", ""), src.get("opendatachanneltype", ""), lat, lon,
                ]
            )  # fmt: skip
    tmp.replace(out)
    return out


def fresh_url(store: str, name: str) -> str:
    from sqlalchemy import create_engine, text

    if store == "sqlite":
        path = ROOT / "var" / "bench" / f"{name}.db"
        for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            p.unlink(missing_ok=True)
        return f"sqlite:///{path}"
    engine = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with engine.connect() as c:
        c.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        c.execute(text(f"CREATE DATABASE {name}"))
    engine.dispose()
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def baseline(store: str, path: Path, n: int, batch: int) -> dict[str, Any]:
    """The same rows' ticket rows alone, written in batches into an empty tickets table as the import writes them."""
    from minsheng.services.history import load_mapping
    from minsheng.services.history.reader import open_source
    from minsheng.services.history.rows import parse_row
    from minsheng.services.uow import writing
    from minsheng.storage.bulk import insert_rows
    from minsheng.storage.db import open_database
    from minsheng.storage.migrate import upgrade
    from minsheng.storage.models import Ticket

    url = fresh_url(store, "bench_import_baseline")
    upgrade(url)
    db = open_database(url)
    m = load_mapping("nyc311")
    now = datetime.now(UTC)
    src = open_source(path)
    rows: list[dict[str, Any]] = []
    for number, raw in src.rows:
        t = parse_row(m, number, raw, now)
        rows.append(
            {
                "id": len(rows) + 1, "number": f"B{len(rows):011d}", "query_code_hash": "-",
                "channel": t.channel, "external_id": t.source_id, "kind": t.kind, "urgency": t.urgency,
                "title": t.title, "detail": t.detail, "address": t.address, "lat": t.lat, "lon": t.lon,
                "state": t.state, "created_at": t.created, "updated_at": t.created, "closed_at":
                t.times.get("closed"), "reopen_count": 0, "return_count": 0, "event_count": 0,
                "confidential": False, "public_consent": False,
            }
        )  # fmt: skip
        if len(rows) == n:
            break
    started = time.perf_counter()
    for i in range(0, len(rows), batch):
        with writing(db) as session:
            insert_rows(session, Ticket, rows[i : i + batch])
    seconds = time.perf_counter() - started
    db.dispose()
    return {"rows": len(rows), "seconds": round(seconds, 1), "rows_per_s": round(len(rows) / seconds, 1)}


def run_import(store: str, path: Path, n: int, batch: int) -> dict[str, Any]:
    from sqlalchemy import func, select

    from minsheng.services.history import import_tickets, load_mapping
    from minsheng.services.uow import reading
    from minsheng.storage.db import open_database
    from minsheng.storage.migrate import upgrade
    from minsheng.storage.models import Ticket, TimelineEvent

    url = fresh_url(store, "bench_import_history")
    upgrade(url)
    db = open_database(url)
    marks: dict[str, float] = {}
    started = time.perf_counter()
    tenth = n // 10

    def progress(done: int, total: int | None) -> None:
        if done >= tenth and "first_tenth" not in marks:
            marks["first_tenth"] = time.perf_counter() - started
            marks["first_tenth_rows"] = done
        if done and done % (n // 20 or 1) < batch:
            rate = done / (time.perf_counter() - started)
            print(f"  {store}: {done:,} rows, {rate:,.0f} rows/s", flush=True)

    r = import_tickets(db, path, load_mapping("nyc311"), datetime.now(UTC), batch_size=batch, limit=n,
                       progress=progress)  # fmt: skip
    seconds = time.perf_counter() - started
    with reading(db) as session:
        tickets = session.scalar(select(func.count()).select_from(Ticket))
        events = session.scalar(select(func.count()).select_from(TimelineEvent))
    db.dispose()
    out = {
        **r.summary(),
        "seconds": round(seconds, 1),
        "rows_per_s": round(r.rows_read / seconds, 1),
        "tickets_in_db": tickets,
        "events_in_db": events,
    }
    if "first_tenth" in marks:
        out["first_tenth_rows_per_s"] = round(marks["first_tenth_rows"] / marks["first_tenth"], 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--baseline-rows", type=int, default=100_000)
    ap.add_argument("--stores", default="sqlite,postgresql")
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--generate-only", action="store_true", help="Write the synthetic CSV and stop.")
    args = ap.parse_args()
    if args.generate_only:
        print(synthetic_csv(args.rows))
        return
    path = synthetic_csv(args.rows)
    # One results file per set of stores: the stores may be measured by separate processes.
    name = "import_history_" + "_".join(args.stores.split(","))
    print(f"synthetic CSV: {path} ({path.stat().st_size / 1e6:.0f} MB)")
    results: dict[str, Any] = {"rows": args.rows, "batch": args.batch, "file": path.name, "stores": {}}
    table = []
    for store in args.stores.split(","):
        base = baseline(store, path, min(args.baseline_rows, args.rows), args.batch)
        print(f"{store} baseline: {base}", flush=True)
        imp = run_import(store, path, args.rows, args.batch)
        print(f"{store} import: {imp}", flush=True)
        ratio = imp["rows_per_s"] / base["rows_per_s"]
        results["stores"][store] = {"import": imp, "baseline_tickets_only": base, "ratio": round(ratio, 3)}
        write_results(name, results)  # after each store: a long run keeps what it measured
        table.append(
            [
                store, f"{imp['rows_read']:,}", f"{imp['imported']:,}", imp["refused"], imp["seconds"],
                imp["rows_per_s"], imp.get("first_tenth_rows_per_s", "-"), base["rows_per_s"], round(ratio, 3),
            ]
        )  # fmt: skip
    print_table(
        f"History import of {args.rows:,} NYC-shaped rows (batch {args.batch})",
        ["store", "rows", "imported", "refused", "s", "rows/s", "rows/s first 10 %", "baseline rows/s",
         "import/baseline"],
        table,
    )  # fmt: skip
    print(f"results: {write_results(name, results)}")


if __name__ == "__main__":
    main()
