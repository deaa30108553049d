"""The ready-made mappings on the shared samples (issue 16 §4 "Must show"), on SQLite and PostgreSQL: the
message board (taidi2020c/messages_with_replies.csv) and the four NYC 311 exports, a slice of each, with the
counts in and out, the states and times checked row by row against the source, and a re-run that makes nothing.
Data is read at run time from the shared folder and the test is skipped where it is absent.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from minsheng.services.history import import_tickets, load_mapping
from minsheng.services.history.mapping import column_key
from minsheng.services.measures import facts_of, recompute_all
from minsheng.services.triage.training import training_data
from minsheng.services.uow import reading
from minsheng.storage.db import Database
from minsheng.storage.models import Category, Ticket, TimelineEvent, Unit

NOW = datetime(2026, 11, 21, 1, 0, tzinfo=UTC)
NY = ZoneInfo("America/New_York")
SH = ZoneInfo("Asia/Shanghai")
SLICE = 120
NYC_FILES = (
    "nyc311_2013-12-25_agencies.csv",
    "nyc311_2018-01_dohmh.csv",
    "nyc311_2022-05-01_hour.csv",
    "nyc311_2024-05-26_api_export.csv",
)
OPEN_STATUSES = {"open", "assigned", "pending", "started", "in progress"}


def source_rows(path: Path, n: int) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        rows = []
        for row in reader:
            rows.append({column_key(k): (v or "").strip() for k, v in row.items()})
            if len(rows) == n:
                break
    return rows


def by_external_id(db: Database) -> dict[str, Ticket]:
    with reading(db) as session:
        tickets = {t.external_id: t for t in session.scalars(select(Ticket)) if t.external_id}
        session.expunge_all()
    return tickets


def test_message_board_and_nyc_samples(db: Database, shared_data: Path) -> None:
    board = shared_data / "taidi2020c" / "messages_with_replies.csv"
    m = load_mapping("message_board")
    r = import_tickets(db, board, m, NOW, limit=SLICE, batch_size=50)
    assert (r.rows_read, r.imported, r.already, r.refused) == (SLICE, SLICE, 0, 0)
    assert dict(r.states) == {"closed": SLICE}  # every message of the sample has its reply
    tickets = by_external_id(db)
    for row in source_rows(board, SLICE):
        t = tickets[row["id"]]
        assert (t.channel, t.state, t.title) == ("web", "closed", row["title"][:200])
        assert t.created_at == m.parse_time(row["time"]) and t.closed_at == m.parse_time(row["replytime"])
        assert t.created_at.astimezone(SH).strftime("%H:%M:%S") == row["time"].split()[-1].zfill(8)
    with reading(db) as session:
        feedback = session.scalars(
            select(TimelineEvent.payload)
            .join(Ticket)
            .where(Ticket.external_id == row["id"], TimelineEvent.action == "feedback")
        ).one()
        assert feedback["text"] == row["reply"]

    nyc = load_mapping("nyc311")
    counts = {}
    for name in NYC_FILES:
        path = shared_data / "nyc311" / name
        default = datetime(2013, 12, 25, 12, 0, tzinfo=NY) if "2013" in name else None
        r = import_tickets(db, path, nyc, NOW, limit=SLICE, batch_size=40, default_created=default)
        counts[name] = (r.rows_read, r.imported, r.refused)
        assert r.rows_read == SLICE and r.imported + r.refused + r.already == SLICE
        tickets = by_external_id(db)
        refused = {sid for _, sid, _ in r.errors}
        for row in source_rows(path, SLICE):
            key = row["uniquekey"]
            if key in refused:
                continue
            t = tickets[key]
            status = row["status"].casefold()
            assert (t.state in ("closed", "rated")) == (status == "closed"), (key, status, t.state)
            assert (t.state == "in_progress") == (status in ("started", "in progress"))
            if "createddate" in row:
                assert t.created_at == nyc.parse_time(row["createddate"])
            else:
                assert t.created_at == default
            if status == "closed" and row.get("closeddate"):
                assert t.closed_at == nyc.parse_time(row["closeddate"])
        # A re-run makes nothing new.
        again = import_tickets(db, path, nyc, NOW, limit=SLICE, default_created=default)
        assert (again.imported, again.already) == (0, r.imported)
    # Every sample row is readable by the mapping: nothing refused.
    assert counts == {name: (SLICE, SLICE, 0) for name in NYC_FILES}

    with reading(db) as session:
        units = set(session.scalars(select(Unit.code)))
        assert {"board_reply", "nyc-NYPD", "nyc-DOHMH", "nyc-DOT"} <= units
        root = session.scalars(select(Category).where(Category.code == "nyc311")).one()
        assert (root.name, root.level) == ("NYC 311", 1)
        assert session.scalar(select(func.count()).select_from(Ticket)) == SLICE + sum(
            imported for _, imported, _ in counts.values()
        )
        # Closed NYC tickets train the classifier on their complaint type (level 2 under the root).
        texts, labels = training_data(session, level=2)
        assert len(texts) > 100 and len(set(labels)) > 5 and all(lab.startswith("nyc311.") for lab in labels)
        assert facts_of(session) == recompute_all(session)
