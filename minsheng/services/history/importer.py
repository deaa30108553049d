"""`import_tickets`: a history export read through its mapping and written in batches, one transaction each.

A batch that fails as a whole (a database error no row check foresaw) is rolled back and written again row by
row, so one bad row costs only itself: every refused row is reported with its row number, source id and
reason, and everything else is imported. Re-running a file imports only what is missing (the claims of
`storage.import_tables`); an interrupted run resumes where its last committed batch ended.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DBAPIError, IntegrityError

from minsheng.services import audit
from minsheng.services.history.mapping import HistoryMapping
from minsheng.services.history.org_lookup import OrgLookup
from minsheng.services.history.reader import open_source
from minsheng.services.history.rows import HistoricTicket, RowError, parse_row
from minsheng.services.history.writer import BatchOutcome, BatchWriter
from minsheng.services.importing import ImportFileError
from minsheng.services.uow import writing
from minsheng.storage.db import Database

Progress = Callable[[int, int | None], None]


@dataclass
class ImportResult:
    """Counts in and out of one run, and the refused rows."""

    source: str
    rows_read: int = 0
    imported: int = 0
    already: int = 0  # imported by an earlier run: nothing new made
    errors: list[tuple[int, str, str]] = field(default_factory=list)  # (row, source id, reason)
    states: Counter[str] = field(default_factory=Counter)
    created_units: list[str] = field(default_factory=list)
    created_categories: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def refused(self) -> int:
        return len(self.errors)

    def reasons(self) -> Counter[str]:
        """Refusals by reason, numbers and values left out ("created time is empty": 12)."""
        return Counter(_reason_kind(r) for _, _, r in self.errors)

    def summary(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "rows_read": self.rows_read,
            "imported": self.imported,
            "already_imported": self.already,
            "refused": self.refused,
            "refused_by_reason": dict(self.reasons().most_common()),
            "states": dict(sorted(self.states.items())),
            "created_units": len(self.created_units),
            "created_categories": len(self.created_categories),
            "seconds": round(self.seconds, 2),
        }


def _reason_kind(reason: str) -> str:
    words = [w for w in reason.split() if not any(c.isdigit() for c in w) and "'" not in w]
    return " ".join(words)[:80]


def import_tickets(
    db: Database,
    path: Path,
    mapping: HistoryMapping,
    now: datetime,
    *,
    batch_size: int = 1000,
    limit: int | None = None,
    default_created: datetime | None = None,
    progress: Progress | None = None,
) -> ImportResult:
    """Import the tickets of ``path`` (CSV or XLSX) through ``mapping``; see the module's docstring."""
    import time

    started = time.perf_counter()
    src = open_source(path)
    header = set(src.header)
    missing = sorted(mapping.source_id.columns() - header)
    if missing or not mapping.source_id.available(header):
        raise ImportFileError(f"{Path(path).name}: the source id column is missing ({', '.join(missing)})")
    if not mapping.times["created"].available(header) and default_created is None:
        raise ImportFileError(
            f"{Path(path).name}: no column gives the created time "
            f"({', '.join(sorted(mapping.times['created'].columns()))}); pass a default time"
        )
    result = ImportResult(mapping.source)
    lookup = OrgLookup(mapping.unit, mapping.category)
    writer = BatchWriter(mapping.source, lookup, now)
    total = min(src.estimate, limit) if src.estimate is not None and limit else (limit or src.estimate)
    seen: dict[str, int] = {}
    batch: list[HistoricTicket] = []
    for number, row in src.rows:
        if limit is not None and result.rows_read >= limit:
            break
        result.rows_read += 1
        try:
            t = parse_row(mapping, number, row, now, default_created)
        except RowError as e:
            result.errors.append((number, mapping.source_id.render(row), str(e)))
            continue
        first = seen.setdefault(t.source_id, number)
        if first != number:
            result.errors.append((number, t.source_id, f"same source id as row {first}"))
            continue
        batch.append(t)
        if len(batch) >= batch_size:
            _flush(db, writer, batch, result)
            batch = []
            if progress is not None:
                progress(result.rows_read, total)
    if batch:
        _flush(db, writer, batch, result)
    if progress is not None:
        progress(result.rows_read, result.rows_read)
    result.errors.sort()
    result.created_units = list(lookup.created_units)
    result.created_categories = list(lookup.created_categories)
    result.seconds = time.perf_counter() - started
    return result


def _flush(db: Database, writer: BatchWriter, batch: list[HistoricTicket], result: ImportResult) -> None:
    created = (len(writer.lookup.created_units), len(writer.lookup.created_categories))
    try:
        outcome = _write(db, writer, batch)
    except (DBAPIError, IntegrityError, ValueError):
        # Something no check foresaw: nothing of the batch was kept; write it again one row at a time.
        _undo_lookup(writer.lookup, created)
        outcome = BatchOutcome()
        for t in batch:
            before = (len(writer.lookup.created_units), len(writer.lookup.created_categories))
            try:
                one = _write(db, writer, [t])
            except (DBAPIError, IntegrityError, ValueError) as e:
                _undo_lookup(writer.lookup, before)
                outcome.errors.append((t.row, t.source_id, _db_message(e)))
                continue
            outcome.imported += one.imported
            outcome.already += one.already
            outcome.errors += one.errors
            outcome.states += one.states
    result.imported += len(outcome.imported)
    result.already += len(outcome.already)
    result.errors += outcome.errors
    result.states += outcome.states


def _write(db: Database, writer: BatchWriter, batch: list[HistoricTicket]) -> BatchOutcome:
    with writing(db) as session:
        session.info["actor"] = audit.CLI
        return writer.write(session, batch)


def _undo_lookup(lookup: OrgLookup, before: tuple[int, int]) -> None:
    lookup.forget()  # what the rolled-back transaction created is gone
    del lookup.created_units[before[0] :]
    del lookup.created_categories[before[1] :]


def _db_message(e: Exception) -> str:
    orig = getattr(e, "orig", None)
    text = str(orig if orig is not None else e).strip().splitlines()
    return f"database refused the row: {text[0] if text else type(e).__name__}"[:300]


# ------------------------------------------------------------------------------------------ error report
def write_error_report(result: ImportResult, path: Path) -> None:
    """The refused rows as CSV (row, source_id, error) or, for a .json path, JSON with the counts."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        data = {
            **result.summary(),
            "errors": [{"row": r, "source_id": s, "error": e} for r, s, e in result.errors],
        }
        path.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
        return
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f)
        w.writerow(["row", "source_id", "error"])
        w.writerows(result.errors)
