"""Reading a history export row by row: CSV (UTF-8 or GB18030, any line ending) or the first sheet of an XLSX.

Unlike the organisation importer, which reads a file whole, this streams: a city's history is millions of rows.
Rows come as (row number, {normalised column name: text}); the header is row 1, as a spreadsheet shows it.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from minsheng.services.history.mapping import column_key
from minsheng.services.importing import XLSX_SUFFIXES, ImportFileError

Row = dict[str, str]
# Long texts (replies) exceed the csv module's default field limit of 128 KiB.
csv.field_size_limit(16 * 1024 * 1024)


@dataclass
class Source:
    """An open export: its (normalised) header and an iterator of its non-blank rows."""

    header: list[str]
    rows: Iterator[tuple[int, Row]]
    estimate: int | None  # rows, roughly (line breaks of a CSV), for the progress bar; None if unknown


def open_source(path: Path) -> Source:
    path = Path(path)
    if not path.is_file():
        raise ImportFileError(f"file not found: {path}")
    suffix = path.suffix.lower()
    if suffix in XLSX_SUFFIXES:
        return _open_xlsx(path)
    if suffix == ".xls":
        raise ImportFileError(f"{path.name}: the old .xls format is not supported; save it as .xlsx or .csv")
    return _open_csv(path)


def _encoding(path: Path) -> str:
    with path.open("rb") as f:
        head = f.read(1 << 20)
    if b"\x00" in head[:4096]:
        raise ImportFileError(f"{path.name} is not a text CSV file (is it a spreadsheet? use .xlsx)")
    try:
        head.decode("utf-8-sig")
        return "utf-8-sig"
    except UnicodeDecodeError as e:
        if e.start > len(head) - 4:  # a character cut by the end of the sample
            return "utf-8-sig"
    # Spreadsheet programs on Chinese Windows still save CSV as GB18030.
    return "gb18030"


def _open_csv(path: Path) -> Source:
    encoding = _encoding(path)
    f = path.open(encoding=encoding, newline="")  # closed by the row iterator
    reader = csv.reader(f)
    try:
        raw_header = next(reader)
    except StopIteration:
        f.close()
        raise ImportFileError(f"{path.name} is empty: expected a header row") from None
    except (csv.Error, UnicodeDecodeError) as e:
        f.close()
        raise ImportFileError(f"{path.name}: not a readable CSV file: {e}") from None
    header = _header(path, raw_header)

    def rows() -> Iterator[tuple[int, Row]]:
        number = 1
        try:
            for values in reader:
                number += 1
                if not any(v.strip() for v in values):
                    continue
                yield number, _row(header, values)
        except (csv.Error, UnicodeDecodeError) as e:
            raise ImportFileError(f"{path.name}: unreadable after row {number}: {e}") from None
        finally:
            f.close()

    return Source(header, rows(), _count_lines(path))


def _open_xlsx(path: Path) -> Source:
    from openpyxl import load_workbook  # only XLSX imports pay for it

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as e:  # openpyxl raises zipfile, KeyError or its own errors for a damaged file
        raise ImportFileError(
            f"{path.name}: not a readable XLSX workbook ({type(e).__name__}: {e})"
        ) from None
    if not wb.worksheets:
        wb.close()
        raise ImportFileError(f"{path.name} has no sheet")
    it = wb.worksheets[0].iter_rows(values_only=True)
    try:
        raw_header = [_cell(v) for v in next(it)]
    except StopIteration:
        wb.close()
        raise ImportFileError(f"{path.name} is empty: expected a header row") from None
    header = _header(path, raw_header)

    def rows() -> Iterator[tuple[int, Row]]:
        try:
            for number, values in enumerate(it, start=2):
                cells = [_cell(v) for v in values]
                if any(cells):
                    yield number, _row(header, cells)
        finally:
            wb.close()

    return Source(header, rows(), max(0, (wb.worksheets[0].max_row or 1) - 1) or None)


def _count_lines(path: Path) -> int:
    """Line breaks after the header (quoted multi-line cells make it an overestimate)."""
    n_lf = n_cr = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 22):
            n_lf += chunk.count(b"\n")
            n_cr += chunk.count(b"\r")
    return max(0, (n_lf or n_cr) - 1)


def _header(path: Path, raw: list[str]) -> list[str]:
    header = [column_key(h.strip().lstrip("\ufeff")) for h in raw]
    if not any(header):
        raise ImportFileError(f"{path.name}: the first row must hold the column names")
    dupes = sorted({h for h in header if h and header.count(h) > 1})
    if dupes:
        raise ImportFileError(f"{path.name}: repeated column(s): {', '.join(dupes)}")
    return header


def _row(header: list[str], values: list[str]) -> Row:
    return {h: (values[i].strip() if i < len(values) else "") for i, h in enumerate(header) if h}


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # spreadsheets turn ids such as 339901 into numbers
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value).strip()
