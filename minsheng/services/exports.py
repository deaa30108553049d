"""Tables to XLSX: the one exporter behind every "导出 Excel" button and the sheets of the periodic report.

A table is its headers and rows of plain values (text, numbers, dates, None); a column may say how its numbers
read (a rate as a percentage, hours with one decimal), so the workbook holds the figures themselves, formatted as
the page shows them, not their text. Text is always stored as text: a citizen's title that starts with "=" is
never a formula (formula injection), and control characters that XLSX cannot hold are dropped.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Literal
from urllib.parse import quote

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

Format = Literal["text", "int", "pct", "hours", "decimal", "number", "datetime"]
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# Display times in the hotline's zone (China has no daylight saving time); XLSX has no time zones.
_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")
_NUMBER_FORMATS: dict[str, str] = {
    "int": "0",
    "pct": "0.0%",
    "hours": "0.0",
    "decimal": "0.0",
    "number": "0.00",
    "datetime": "yyyy-mm-dd hh:mm",
}
_BAD_SHEET_CHARS = re.compile(r"[\[\]:*?/\\]")
# XML 1.0 allows no control characters but tab, newline and carriage return.
_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_HEADER_FILL = PatternFill("solid", fgColor="DCE6F2")
MAX_ROWS = 100_000  # a sheet bigger than this is a query to run elsewhere, not a page's table


@dataclass(frozen=True)
class Column:
    label: str
    fmt: Format = "text"
    width: int | None = None


@dataclass(frozen=True)
class Cell:
    """A value whose format differs from its column's (a table of mixed figures: counts, rates, hours)."""

    value: Any
    fmt: Format


@dataclass
class ExportTable:
    """One sheet: a title (the sheet's name and its first line), columns, rows, and notes under the table."""

    title: str
    columns: Sequence[Column]
    rows: Sequence[Sequence[Any]]
    notes: Sequence[str] = field(default_factory=tuple)

    @classmethod
    def simple(cls, title: str, headers: Iterable[str], rows: Sequence[Sequence[Any]]) -> ExportTable:
        return cls(title, [Column(h) for h in headers], rows)


def sheet_title(title: str, taken: set[str]) -> str:
    """A valid, unique sheet name: at most 31 characters, none of []:*?/\\."""
    base = _BAD_SHEET_CHARS.sub("_", title).strip("'") or "Sheet"
    base = base[:31]
    name, n = base, 2
    while name.lower() in taken:
        suffix = f"({n})"
        name = base[: 31 - len(suffix)] + suffix
        n += 1
    taken.add(name.lower())
    return name


def cell_value(value: Any, fmt: Format) -> Any:
    """What goes into a cell: numbers as numbers, aware times as local naive times, text cleaned."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, datetime):
        return value.astimezone(_TZ).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, date | int | float):
        return value
    return _ILLEGAL.sub("", str(value))


def _width(values: Iterable[Any], label: str) -> int:
    longest = len(label) * 2
    for v in values:
        if v is None:
            continue
        text = str(v)
        # CJK characters are about twice as wide as Latin ones in Excel's default font.
        longest = max(longest, sum(2 if ord(c) > 0x2E80 else 1 for c in text[:60]))
    return max(6, min(60, longest + 2))


def write_table(wb: Workbook, table: ExportTable, taken: set[str]) -> None:
    ws = wb.create_sheet(sheet_title(table.title, taken))
    ws.append([table.title])
    ws["A1"].font = Font(bold=True, size=13)
    header_row = 2
    ws.append([c.label for c in table.columns])
    for i in range(1, len(table.columns) + 1):
        cell = ws.cell(row=header_row, column=i)
        cell.font = Font(bold=True)
        cell.fill = _HEADER_FILL
        cell.alignment = Alignment(vertical="center", wrap_text=True)
    for r, row in enumerate(table.rows[:MAX_ROWS], start=header_row + 1):
        for i, col in enumerate(table.columns, start=1):
            raw = row[i - 1] if i - 1 < len(row) else None
            fmt = col.fmt
            if isinstance(raw, Cell):
                raw, fmt = raw.value, raw.fmt
            value = cell_value(raw, fmt)
            cell = ws.cell(row=r, column=i)
            cell.value = value
            if isinstance(value, str):
                cell.data_type = "s"  # never a formula, whatever the text starts with
            elif fmt in _NUMBER_FORMATS and value is not None:
                cell.number_format = _NUMBER_FORMATS[fmt]
    last = header_row + min(len(table.rows), MAX_ROWS)
    for note in table.notes:
        last += 1
        ws.cell(row=last + 1, column=1, value=_ILLEGAL.sub("", note)).data_type = "s"
    ws.freeze_panes = ws.cell(row=header_row + 1, column=1)
    for i, col in enumerate(table.columns, start=1):
        values = (_plain(row[i - 1]) for row in table.rows[:500] if i - 1 < len(row))
        ws.column_dimensions[get_column_letter(i)].width = col.width or _width(values, col.label)


def _plain(v: Any) -> Any:
    return v.value if isinstance(v, Cell) else v


def to_xlsx(tables: Sequence[ExportTable] | ExportTable) -> bytes:
    """A workbook with one sheet per table, as bytes."""
    if isinstance(tables, ExportTable):
        tables = [tables]
    wb = Workbook()
    default = wb.active
    if default is not None:
        wb.remove(default)
    taken: set[str] = set()
    for t in tables:
        write_table(wb, t, taken)
    if not tables:
        wb.create_sheet("空")
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def download_name(stem: str, ext: str) -> str:
    """A file name for Content-Disposition: the stem kept to letters, digits, CJK, - and _."""
    clean = re.sub(r"[^\w\-]+", "_", stem, flags=re.UNICODE).strip("_") or "export"
    return f"{clean[:80]}.{ext}"


def content_disposition(filename: str) -> str:
    """An attachment header that carries a Chinese file name (RFC 6266/5987) and an ASCII fallback."""
    ascii_name = filename.encode("ascii", "ignore").decode() or "export"
    ascii_name = re.sub(r"[^A-Za-z0-9._-]+", "_", ascii_name).strip("_") or "export"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
