"""`minsheng import …`: areas, units, users or categories from a CSV or XLSX file, row by row, the refused rows
listed (exit 1 when any was refused; with ``--strict`` nothing is written then)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from minsheng.cli.common import (
    EXIT_FAILED,
    BadInput,
    DatabaseUrl,
    console,
    fail,
    guarded,
    load_settings,
    open_db,
    utcnow,
)

app = typer.Typer(help="Import areas, units, users or categories from CSV or XLSX.", no_args_is_help=True)


def _run_import(kind: str, file: Path, database_url: str | None, strict: bool) -> None:
    from minsheng.services import audit
    from minsheng.services.importing import IMPORTERS, ImportReport
    from minsheng.services.uow import writing

    if not file.is_file():
        raise BadInput(f"file not found: {file}")
    settings = load_settings(database_url)

    class _RollBack(Exception):
        pass

    report: ImportReport | None = None
    with open_db(settings) as db:
        audit.record_changes(db)  # an import changes units, areas, users …: the audit log names the CLI
        try:
            with writing(db) as session:
                session.info["actor"] = audit.CLI
                report = IMPORTERS[kind](session, file, utcnow())
                if strict and report.errors:
                    raise _RollBack
        except _RollBack:
            pass
    assert report is not None
    rolled_back = strict and bool(report.errors)
    verb = "would have" if rolled_back else ""
    console.print(
        f"{kind}: {verb} created {report.created}, updated {report.updated}, unchanged {report.skipped}, "
        f"refused {len(report.errors)}".replace(":  ", ": ")
    )
    if report.errors:
        table = Table(title="refused rows")
        table.add_column("row", justify="right")
        table.add_column("reason")
        for number, message in report.errors[:100]:
            table.add_row(str(number), message)
        console.print(table)
        if len(report.errors) > 100:
            console.print(f"… and {len(report.errors) - 100} more")
        if rolled_back:
            fail("--strict: nothing was written because some rows were refused", EXIT_FAILED)
        raise typer.Exit(EXIT_FAILED)


FileArg = Annotated[Path, typer.Argument(help="A .csv (UTF-8 or GB18030) or .xlsx file with a header row.")]
Strict = Annotated[bool, typer.Option(help="Write nothing unless every row is accepted.")]


@app.command("areas")
@guarded
def import_areas(file: FileArg, database_url: DatabaseUrl = None, strict: Strict = False) -> None:
    """Columns: code, name, level, parent_code, aliases (a|b), polygon (GeoJSON), lat, lon."""
    _run_import("areas", file, database_url, strict)


@app.command("units")
@guarded
def import_units(file: FileArg, database_url: DatabaseUrl = None, strict: Strict = False) -> None:
    """Columns: code, name, kind, parent_code, area_code, duty_tier, phone, leader_name."""
    _run_import("units", file, database_url, strict)


@app.command("users")
@guarded
def import_users(file: FileArg, database_url: DatabaseUrl = None, strict: Strict = False) -> None:
    """Columns: username, display_name, role, unit_code, phone, password."""
    _run_import("users", file, database_url, strict)


@app.command("categories")
@guarded
def import_categories(file: FileArg, database_url: DatabaseUrl = None, strict: Strict = False) -> None:
    """Columns: code, name, parent_code; or 一级分类, 二级分类, 三级分类 (codes are generated)."""
    _run_import("categories", file, database_url, strict)


# A city's ticket history (issue 16): its own module, mounted here.
from minsheng.cli.import_tickets import import_tickets_command  # noqa: E402

app.command("tickets")(import_tickets_command)


# Call records of the telephony system (issue 16, channels): their own module, mounted here.
from minsheng.cli.import_calls import import_calls_command  # noqa: E402

app.command("calls")(import_calls_command)
