"""`minsheng import tickets FILE --mapping M`: a city's ticket history from CSV or XLSX (issue 16 §4).

Mounted on `minsheng import` by `cli/imports.py`. Prints the counts in and out; refused rows are listed and,
with ``--errors``, written to a CSV or JSON report. Exit 0 when every row was imported or already there, 1
when some were refused (the others are imported all the same), 2 on bad input (file, mapping).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from minsheng.cli.common import (
    EXIT_FAILED,
    BadInput,
    DatabaseUrl,
    console,
    guarded,
    load_settings,
    open_db,
    progress_bar,
    utcnow,
)

MappingOpt = Annotated[
    str,
    typer.Option(
        "--mapping",
        help="A mapping TOML file, or a ready-made one by name: nyc311, message_board.",
    ),
]


@guarded
def import_tickets_command(
    file: Annotated[
        Path, typer.Argument(help="A .csv (UTF-8 or GB18030) or .xlsx export with a header row.")
    ],
    mapping: MappingOpt,
    database_url: DatabaseUrl = None,
    errors: Annotated[
        Path | None, typer.Option("--errors", help="Write the refused rows here (.csv or .json).")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Read at most this many rows.")] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=20000, help="Rows per transaction.")] = 1000,
    default_time: Annotated[
        str | None,
        typer.Option(help="Created time of rows that have none (ISO 8601, local to the mapping's zone)."),
    ] = None,
) -> None:
    """Import closed and open tickets with their times, units, categories, replies and ratings."""
    from minsheng.services.history import MappingError, import_tickets, load_mapping, write_error_report
    from minsheng.services.history.mapping import parse_time

    if not file.is_file():
        raise BadInput(f"file not found: {file}")
    try:
        m = load_mapping(mapping)
    except MappingError as e:
        raise BadInput(str(e)) from None
    default_created: datetime | None = None
    if default_time:
        try:
            default_created = parse_time(default_time, m.zone, ())
        except ValueError:
            raise BadInput(f"--default-time '{default_time}' is not an ISO 8601 time") from None
    settings = load_settings(database_url)
    with open_db(settings) as db, progress_bar() as bar:
        task = bar.add_task(f"{file.name} → tickets", total=None)

        def progress(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=max(total or 0, done) or None)

        result = import_tickets(
            db,
            file,
            m,
            utcnow(),
            batch_size=batch_size,
            limit=limit,
            default_created=default_created,
            progress=progress,
        )
    _print(result)
    if errors is not None:
        write_error_report(result, errors)
        console.print(f"refused rows written to {errors}")
    if result.refused:
        raise typer.Exit(EXIT_FAILED)


def _print(result) -> None:  # type: ignore[no-untyped-def]
    rate = result.rows_read / result.seconds if result.seconds else 0.0
    console.print(
        f"{result.source}: read {result.rows_read} rows, imported {result.imported}, "
        f"already imported {result.already}, refused {result.refused} "
        f"({result.seconds:.1f} s, {rate:,.0f} rows/s)"
    )
    if result.states:
        console.print("states: " + ", ".join(f"{k} {v}" for k, v in sorted(result.states.items())))
    if result.created_units or result.created_categories:
        console.print(
            f"created {len(result.created_units)} unit(s) and {len(result.created_categories)} category(ies)"
        )
    if result.errors:
        table = Table(title="refused rows")
        table.add_column("row", justify="right")
        table.add_column("source id")
        table.add_column("reason")
        for row, sid, reason in result.errors[:50]:
            table.add_row(str(row), sid, reason)
        console.print(table)
        if len(result.errors) > 50:
            console.print(f"… and {len(result.errors) - 50} more (--errors FILE writes them all)")
