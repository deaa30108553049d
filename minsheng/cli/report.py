"""`minsheng report --period 2026-11 --format xlsx|pdf --out FILE`: the periodic report of the city (volumes and
channels, categories and hot topics, every unit's measures and rank, overdue and returned tickets, typical
cases), as the worker makes it on the first day of each period and the 统计分析 page offers it."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated

import typer

from minsheng.cli.common import BadInput, DatabaseUrl, console, guarded, load_settings, open_db, utcnow


class ReportFormat(enum.StrEnum):
    XLSX = "xlsx"
    PDF = "pdf"


@guarded
def report(
    period: Annotated[
        str,
        typer.Option(
            help="Month 2026-11, quarter 2026-Q4, year 2026, week 2026-W48, day 2026-11-03 or range "
            "2026-11-01..2026-11-15."
        ),
    ],
    format: Annotated[ReportFormat, typer.Option("--format", help="xlsx or pdf.")] = ReportFormat.PDF,
    out: Annotated[
        Path | None, typer.Option(help="File to write (default: 民声报告_<period>.<format> here).")
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Write the report of a period as XLSX or PDF."""
    from minsheng.measures.periods import Period, PeriodError
    from minsheng.services.report_render import report_pdf, report_xlsx
    from minsheng.services.reports import build_report

    try:
        p = Period.parse(period)
    except PeriodError as e:
        raise BadInput(str(e)) from None
    target = out or Path(f"民声报告_{p}.{format.value}")
    if target.is_dir():
        target = target / f"民声报告_{p}.{format.value}"
    if not target.parent.is_dir():
        raise BadInput(f"no such folder: {target.parent}")
    settings = load_settings(database_url)
    with open_db(settings) as db, db.read_sessions() as session, session.begin():
        r = build_report(session, p, utcnow(), settings)
    data = report_xlsx(r) if format is ReportFormat.XLSX else report_pdf(r)
    try:
        target.write_bytes(data)
    except OSError as e:
        raise BadInput(f"cannot write {target}: {e.strerror}") from None
    console.print(f"[green]✓[/] {r.title}: {target} ({len(data):,} bytes)", highlight=False)
    for line in r.headline:
        console.print(f"  {line}", highlight=False)
