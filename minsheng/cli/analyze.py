"""`minsheng analyze …`: analyses of request data exported from any system, without a database.

``minsheng analyze hotspots`` reads a CSV or XLSX of requests and prints the hot topics (:mod:`minsheng.hotspots`)
as one JSON object ``{"hotspots": [...]}`` on standard output (nothing else goes there: messages go to standard
error), or writes them to ``--out`` as JSON or as an XLSX workbook.
"""

from __future__ import annotations

import json
import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from minsheng.cli.common import BadInput, err_console, guarded

if TYPE_CHECKING:
    from minsheng.hotspots import Hotspot, Request

app = typer.Typer(help="Analyse request data from a file (CSV or XLSX): hot topics and places.")

XLSX_HEADERS = ("排名", "热度", "地点", "人群", "概述", "件数", "首次", "最近", "工单编号")


class Format(StrEnum):
    json = "json"
    xlsx = "xlsx"


@app.callback()
def _analyze() -> None:
    """Analyse request data from a file (CSV or XLSX)."""


@app.command("hotspots")
@guarded
def hotspots(
    data: Annotated[Path, typer.Option("--data", help="CSV or XLSX file of requests.")],
    id_column: Annotated[str, typer.Option("--id-column", help="Column holding each request's id.")],
    text_column: Annotated[
        list[str],
        typer.Option("--text-column", help="Column of request text; repeat (title first, then detail)."),
    ],
    time_column: Annotated[
        str, typer.Option("--time-column", help="Column holding when the request came in.")
    ],
    citizen_column: Annotated[
        str | None,
        typer.Option("--citizen-column", help="Column identifying who asked (counts distinct citizens)."),
    ] = None,
    area_column: Annotated[
        str | None, typer.Option("--area-column", help="Column of a known area (code or name).")
    ] = None,
    support_column: Annotated[
        str | None, typer.Option("--support-column", help="Column of agreement counts (点赞).")
    ] = None,
    against_column: Annotated[
        str | None, typer.Option("--against-column", help="Column of disagreement counts (反对).")
    ] = None,
    top: Annotated[int, typer.Option("--top", min=1, max=10_000, help="How many topics to give.")] = 20,
    fmt: Annotated[
        Format, typer.Option("--format", help="json (default) or xlsx (needs --out).")
    ] = Format.json,
    out: Annotated[Path | None, typer.Option("--out", help="Write here instead of standard output.")] = None,
) -> None:
    """Hot topics: many requests about one thing in one place, ranked by heat (docs/HOTSPOTS.md)."""
    from minsheng.hotspots import find_hotspots

    if fmt is Format.xlsx and out is None:
        raise BadInput("--format xlsx writes a workbook: give --out FILE.xlsx")
    started = time.perf_counter()
    requests = read_requests(
        data, id_column, text_column, time_column, citizen_column, area_column, support_column, against_column
    )
    with err_console.status(f"analysing {len(requests)} requests…"):
        found = find_hotspots(requests, top=top)
    err_console.print(
        f"{len(found)} hot topics from {len(requests)} requests in {time.perf_counter() - started:.1f} s",
        highlight=False,
    )
    if fmt is Format.xlsx:
        assert out is not None
        write_xlsx(found, out)
        return
    body = json.dumps({"hotspots": [h.as_json() for h in found]}, ensure_ascii=False, indent=2) + "\n"
    if out is None:
        sys.stdout.write(body)
        sys.stdout.flush()
        return
    try:
        out.write_text(body, encoding="utf-8")
    except OSError as e:
        raise BadInput(f"cannot write {out}: {e.strerror or e}") from None


def read_requests(
    data: Path,
    id_column: str,
    text_columns: list[str],
    time_column: str,
    citizen_column: str | None = None,
    area_column: str | None = None,
    support_column: str | None = None,
    against_column: str | None = None,
) -> list[Request]:
    """The rows of ``data`` as requests; a missing file or column, or an unreadable time or count, is BadInput."""
    from minsheng.hotspots import Request
    from minsheng.hotspots.times import parse_time
    from minsheng.triage.datafile import DataFileError, read_table

    optional = [c for c in (citizen_column, area_column, support_column, against_column) if c]
    columns = list(dict.fromkeys([id_column, *text_columns, time_column, *optional]))
    try:
        rows = read_table(data, columns)
    except DataFileError as e:
        raise BadInput(str(e)) from None
    out: list[Request] = []
    for n, row in enumerate(rows, start=2):  # row 1 is the header
        try:
            at = parse_time(row[time_column])
        except ValueError as e:
            raise BadInput(
                f"{data}: row {n} ({id_column} {row[id_column]!r}), column {time_column!r}: {e}"
            ) from None
        out.append(
            Request(
                id=row[id_column].strip() or f"row{n}",
                texts=tuple(row[c] for c in text_columns),
                at=at,
                citizen=(row[citizen_column].strip() or None) if citizen_column else None,
                area=(row[area_column].strip() or None) if area_column else None,
                area_name=(row[area_column].strip() or None) if area_column else None,
                support=_count(row, support_column, data, n),
                against=_count(row, against_column, data, n),
            )
        )
    _check_times(out, data)
    return out


def _count(row: dict[str, str], column: str | None, data: Path, n: int) -> int:
    if not column or not row[column].strip():
        return 0
    try:
        value = float(row[column])
    except ValueError:
        raise BadInput(f"{data}: row {n}, column {column!r}: not a number: {row[column]!r}") from None
    if value < 0 or value != value or value == float("inf"):
        raise BadInput(f"{data}: row {n}, column {column!r}: not a count: {row[column]!r}")
    return int(value)


def _check_times(requests: list[Request], data: Path) -> None:
    aware = {r.at.tzinfo is not None for r in requests}
    if len(aware) > 1:
        raise BadInput(f"{data}: some times carry a UTC offset and some do not; give all or none")


def write_xlsx(found: list[Hotspot], out: Path) -> None:
    """The topics as one sheet (Chinese headers: the workbook is for people), times as Excel dates."""
    import openpyxl
    from openpyxl.utils import get_column_letter

    book = openpyxl.Workbook()
    sheet: Any = book.active
    sheet.title = "热点"
    sheet.append(XLSX_HEADERS)
    for h in found:
        sheet.append(
            [
                h.rank,
                h.heat,
                h.place or "",
                h.crowd or "",
                h.summary,
                h.count,
                h.first.replace(tzinfo=None),
                h.last.replace(tzinfo=None),
                ", ".join(h.ticket_ids),
            ]
        )
    for col, width in zip(range(1, len(XLSX_HEADERS) + 1), (6, 8, 28, 18, 60, 6, 18, 18, 40), strict=True):
        sheet.column_dimensions[get_column_letter(col)].width = width
    for row in sheet.iter_rows(min_row=2, min_col=7, max_col=8):
        for cell in row:
            cell.number_format = "yyyy-mm-dd hh:mm"
    try:
        book.save(out)
    except OSError as e:
        raise BadInput(f"cannot write {out}: {e.strerror or e}") from None
