"""`minsheng import calls FILE`: the telephony system's call records (话单) from CSV or XLSX, in batches, each
record linked to the ticket registered during the call (services.channels.calls); refused rows are listed and
stop nothing (exit 1 when any was refused). A record already imported (same call_id) is skipped."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress
from rich.table import Table

from minsheng.cli.common import (
    EXIT_FAILED,
    BadInput,
    DatabaseUrl,
    console,
    guarded,
    load_settings,
    open_db,
    utcnow,
)

BATCH = 500


@guarded
def import_calls_command(
    file: Annotated[
        Path, typer.Argument(help="CSV or XLSX: call_id, caller, started_at, duration_seconds, agent")
    ],
    database_url: DatabaseUrl = None,
) -> None:
    """Columns: call_id, caller, started_at, duration_seconds, agent, recording_ref, ticket_number (or 话单编号,
    主叫号码, 开始时间, 通话时长, 坐席, 录音, 工单编号). Times without a zone are Beijing time."""
    from minsheng.services.channels.calls import import_batch, read_file
    from minsheng.services.uow import writing

    if not file.is_file():
        raise BadInput(f"file not found: {file}")
    records, errors = read_file(file)
    totals = {"added": 0, "skipped": 0, "linked": 0}
    with open_db(load_settings(database_url)) as db, Progress(console=console, transient=True) as bar:
        task = bar.add_task("calls", total=len(records))
        for start in range(0, len(records), BATCH):
            chunk = [r for _, r in records[start : start + BATCH]]
            with writing(db) as session:
                done = import_batch(session, chunk, utcnow())
            for k in totals:
                totals[k] += done[k]
            bar.advance(task, len(chunk))
    console.print(
        f"calls: added {totals['added']}, already there {totals['skipped']}, linked to a ticket "
        f"{totals['linked']}, refused {len(errors)}"
    )
    if errors:
        table = Table(title="refused rows")
        table.add_column("row", justify="right")
        table.add_column("reason")
        for number, reason in errors[:200]:
            table.add_row(str(number), reason)
        console.print(table)
        raise typer.Exit(EXIT_FAILED)
