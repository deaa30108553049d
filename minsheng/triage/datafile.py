"""Reading labelled ticket tables (CSV or XLSX) for training and evaluating the classifier.

Cities export their history from whatever system they ran before: CSV in UTF-8 or GBK, with or without a BOM,
or an Excel workbook. :func:`read_table` accepts all of these and returns plain dicts of the requested columns.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

__all__ = ["DataFileError", "read_table"]

_ENCODINGS = ("utf-8-sig", "gb18030")


class DataFileError(ValueError):
    """A data file is missing, unreadable, or lacks a requested column."""


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    last_error: Exception | None = None
    for encoding in _ENCODINGS:
        try:
            with path.open(encoding=encoding, newline="") as fh:
                rows = list(csv.reader(fh))
        except UnicodeDecodeError as exc:
            last_error = exc
            continue
        if not rows:
            return [], []
        return [h.strip() for h in rows[0]], rows[1:]
    raise DataFileError(f"{path}: not UTF-8 or GB18030 text ({last_error})")


def _read_xlsx(path: Path) -> tuple[list[str], list[list[str]]]:
    import openpyxl

    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises zipfile, KeyError and its own errors on damaged files
        raise DataFileError(f"{path}: not a readable XLSX workbook ({type(exc).__name__}: {exc})") from exc
    try:
        sheet = workbook.active
        if sheet is None:
            return [], []
        rows = [[_cell(v) for v in row] for row in sheet.iter_rows(values_only=True)]
    finally:
        workbook.close()
    if not rows:
        return [], []
    return [h.strip() for h in rows[0]], rows[1:]


def read_table(path: str | Path, columns: Sequence[str]) -> list[dict[str, str]]:
    """Rows of ``path`` (CSV, or XLSX's first sheet) as dicts holding only ``columns``; empty cells are ``""``.

    Raises :class:`DataFileError` when the file is missing or unreadable, or a column is absent (the message
    lists the columns that exist).
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        header, rows = _read_xlsx(path)
    elif suffix in (".csv", ".txt", ".tsv", ""):
        header, rows = _read_csv(path)
    else:
        raise DataFileError(f"{path}: unsupported file type {suffix!r} (use .csv or .xlsx)")
    missing = [c for c in columns if c not in header]
    if missing:
        raise DataFileError(f"{path}: no column {', '.join(map(repr, missing))}; columns are {header}")
    index = {c: header.index(c) for c in columns}
    out: list[dict[str, str]] = []
    for row in rows:
        if not any(cell.strip() for cell in row if cell):
            continue
        out.append({c: (row[i] if i < len(row) else "") for c, i in index.items()})
    return out
