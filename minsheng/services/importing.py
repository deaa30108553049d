"""Import the organisation (areas, units, users, categories) from CSV or XLSX files, by header names.

Each importer takes an open write session (the caller commits once for the whole file) and returns an
:class:`ImportReport`. A file that cannot be read or lacks a required column raises
:class:`ImportFileError` before anything is written; a bad row is reported with its row number (the
header is row 1, as a spreadsheet shows it) and the other rows are still imported. Rows are upserted by
code, so re-importing a corrected file updates names in place. Parents may come after their children:
rows are resolved in passes, and rows whose parents refer to each other in a loop are refused as a cycle.

Categories also come in the three-column format of real taxonomies (一级分类, 二级分类, 三级分类; one
row per leaf): every node gets a hierarchical code ("01", "0103", "010307") allocated under its parent
in order of first appearance. A node that already exists under the same parent with the same name keeps
its code, so re-importing the file (or a longer version of it) is stable.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from minsheng.domain.states import AreaLevel
from minsheng.services import org
from minsheng.services.errors import Invalid, ServiceError
from minsheng.storage.models import Area, Category

TAXONOMY_HEADERS = ("一级分类", "二级分类", "三级分类")
XLSX_SUFFIXES = (".xlsx", ".xlsm")
MAX_NAME = 100


class ImportFileError(Invalid):
    """The file as a whole cannot be imported (unreadable, wrong format, missing columns)."""


@dataclass
class ImportReport:
    kind: str
    created: int = 0
    updated: int = 0
    skipped: int = 0  # rows (or, for the three-column taxonomy, nodes) already present and unchanged
    errors: list[tuple[int, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def count(self, outcome: str) -> None:
        if outcome == "created":
            self.created += 1
        elif outcome == "updated":
            self.updated += 1
        else:
            self.skipped += 1


class RowError(Exception):
    """A reason to refuse one row."""


Row = dict[str, str]


# -------------------------------------------------------------------------------------------- reading files
def read_table(path: Path) -> tuple[list[str], list[tuple[int, Row]]]:
    """Header names and non-blank rows (with row numbers) of a CSV file or of an XLSX file's first sheet."""
    path = Path(path)
    if not path.is_file():
        raise ImportFileError(f"file not found: {path}")
    suffix = path.suffix.lower()
    if suffix in XLSX_SUFFIXES:
        raw = _read_xlsx(path)
    elif suffix == ".xls":
        raise ImportFileError(f"{path.name}: the old .xls format is not supported; save it as .xlsx or .csv")
    else:
        raw = _read_csv(path)
    if not raw:
        raise ImportFileError(f"{path.name} is empty: expected a header row")
    header = [_clean_header(h) for h in raw[0]]
    if not any(header):
        raise ImportFileError(f"{path.name}: the first row must hold the column names")
    dupes = sorted({h for h in header if h and header.count(h) > 1})
    if dupes:
        raise ImportFileError(f"{path.name}: repeated column(s): {', '.join(dupes)}")
    rows: list[tuple[int, Row]] = []
    for number, values in enumerate(raw[1:], start=2):
        cells = [_cell_text(v) for v in values]
        if not any(cells):
            continue
        rows.append((number, {h: (cells[i] if i < len(cells) else "") for i, h in enumerate(header) if h}))
    return [h for h in header if h], rows


def _read_csv(path: Path) -> list[list[Any]]:
    data = path.read_bytes()
    if b"\x00" in data[:4096]:
        raise ImportFileError(f"{path.name} is not a text CSV file (is it a spreadsheet? use .xlsx)")
    # Spreadsheet programs on Chinese Windows still save CSV as GB18030, hence the second try.
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:  # pragma: no cover - gb18030 decodes nearly any byte string
        raise ImportFileError(f"{path.name}: cannot decode as UTF-8 or GB18030")
    try:
        return [row for row in csv.reader(io.StringIO(text, newline=""))]
    except csv.Error as e:
        raise ImportFileError(f"{path.name}: not a valid CSV file: {e}") from None


def _read_xlsx(path: Path) -> list[list[Any]]:
    from openpyxl import load_workbook  # imported here: only XLSX imports pay for it

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as e:  # openpyxl raises zipfile, KeyError or its own errors for a damaged file
        raise ImportFileError(
            f"{path.name}: not a readable XLSX workbook ({type(e).__name__}: {e})"
        ) from None
    try:
        if not wb.worksheets:
            raise ImportFileError(f"{path.name} has no sheet")
        return [list(r) for r in wb.worksheets[0].iter_rows(values_only=True)]
    finally:
        wb.close()


def _clean_header(value: Any) -> str:
    text = _cell_text(value)
    # ASCII headers are matched case-insensitively ("Code" = "code"); Chinese headers are left as they are.
    return text.lower() if text.isascii() else text


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    # Spreadsheets turn codes such as 339901 into numbers; read them back without a trailing ".0".
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _require(path: Path, header: list[str], columns: Iterable[str], kind: str) -> None:
    missing = [c for c in columns if c not in header]
    if missing:
        raise ImportFileError(
            f"{Path(path).name}: missing required column(s) for {kind}: {', '.join(missing)} "
            f"(found: {', '.join(header) or 'none'})"
        )


# ----------------------------------------------------------------------------------------------- row values
def _text(row: Row, column: str, *, required: bool = False, max_len: int = MAX_NAME) -> str | None:
    value = row.get(column, "").strip()
    if not value:
        if required:
            raise RowError(f"{column} is empty")
        return None
    if len(value) > max_len:
        raise RowError(f"{column} is longer than {max_len} characters")
    return value


def _code(row: Row, column: str, what: str, *, required: bool = True) -> str | None:
    value = _text(row, column, required=required, max_len=32)
    if value is None:
        return None
    try:
        return org.check_code(value, what)
    except ServiceError as e:
        raise RowError(e.message) from None


def _float(row: Row, column: str, low: float, high: float) -> float | None:
    value = _text(row, column)
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        raise RowError(f"{column} '{value}' is not a number") from None
    if not math.isfinite(number) or not low <= number <= high:
        raise RowError(f"{column} {value} is outside {low}..{high}")
    return number


def _polygon(row: Row) -> dict[str, Any] | None:
    value = row.get("polygon", "").strip()
    if not value:
        return None
    try:
        geo = json.loads(value)
    except json.JSONDecodeError as e:
        raise RowError(f"polygon is not valid JSON: {e.msg} at character {e.pos}") from None
    if isinstance(geo, dict) and geo.get("type") == "Feature":
        geo = geo.get("geometry")
    if not isinstance(geo, dict) or geo.get("type") not in ("Polygon", "MultiPolygon"):
        raise RowError("polygon must be a GeoJSON Polygon or MultiPolygon")
    coords = geo.get("coordinates")
    rings = [coords] if geo["type"] == "Polygon" else coords
    if not isinstance(rings, list) or not rings:
        raise RowError("polygon has no coordinates")
    for poly in rings:
        if not isinstance(poly, list) or not poly:
            raise RowError("polygon has an empty ring list")
        for ring in poly:
            if not isinstance(ring, list) or len(ring) < 4:
                raise RowError("every polygon ring needs at least four positions")
            for pos in ring:
                if (
                    not isinstance(pos, list)
                    or len(pos) < 2
                    or not all(isinstance(x, int | float) and math.isfinite(x) for x in pos[:2])
                    or not (-180 <= pos[0] <= 180 and -90 <= pos[1] <= 90)
                ):
                    raise RowError(f"polygon position {pos!r} is not a [lon, lat] pair")
    return {"type": geo["type"], "coordinates": coords}


def _apply_row(session: Session, report: ImportReport, number: int, apply: Callable[[], str]) -> bool:
    """Run one row's upsert inside a savepoint, so that a refused row leaves nothing behind."""
    try:
        with session.begin_nested():
            outcome = apply()
    except RowError as e:
        report.errors.append((number, str(e)))
        return False
    except ServiceError as e:
        report.errors.append((number, e.message))
        return False
    report.count(outcome)
    return True


# ------------------------------------------------------------------------------------------ tree resolution
@dataclass
class _TreeRow:
    number: int
    code: str
    parent: str | None
    values: dict[str, Any]


def _resolve_tree(
    session: Session,
    report: ImportReport,
    parsed: tuple[list[_TreeRow], dict[str, int]],
    apply: Callable[[_TreeRow], str],
    what: str,
) -> None:
    """Apply rows parents first, in passes; what is left after a pass without progress is a cycle."""
    items, failed = parsed
    by_code: dict[str, _TreeRow] = {}
    pending: list[_TreeRow] = []
    for item in items:
        if item.code in by_code:
            report.errors.append(
                (item.number, f"{what} {item.code} already appears in row {by_code[item.code].number}")
            )
            continue
        if item.parent == item.code:
            report.errors.append((item.number, f"{what} {item.code} cannot be its own parent"))
            continue
        by_code[item.code] = item
        pending.append(item)
    waiting = {i.code for i in pending}
    while pending:
        progressed = False
        still: list[_TreeRow] = []
        for item in pending:
            if item.parent is not None and item.parent in waiting:
                still.append(item)
                continue
            if item.parent is not None and item.parent in failed:
                report.errors.append(
                    (item.number, f"parent {what} {item.parent} was refused (row {failed[item.parent]})")
                )
                failed[item.code] = item.number
            elif not _apply_row(session, report, item.number, partial(apply, item)):
                failed[item.code] = item.number
            waiting.discard(item.code)
            progressed = True
        pending = still
        if not progressed:
            for item in pending:
                report.errors.append((item.number, _cycle_message(item, by_code, waiting, what)))
            break


def _cycle_message(item: _TreeRow, by_code: dict[str, _TreeRow], waiting: set[str], what: str) -> str:
    chain = [item.code]
    cur = item.parent
    while cur is not None and cur in waiting and cur not in chain:
        chain.append(cur)
        cur = by_code[cur].parent
    if cur is not None:
        chain.append(cur)
    return f"cycle in parent references: {' → '.join(chain)}; no {what} can be placed first"


def _row_items(
    report: ImportReport, rows: list[tuple[int, Row]], parse: Callable[[Row], _TreeRow]
) -> tuple[list[_TreeRow], dict[str, int]]:
    """Parse the rows; returns the good ones and, by code, the row numbers of those refused already."""
    items: list[_TreeRow] = []
    refused: dict[str, int] = {}
    for number, row in rows:
        try:
            item = parse(row)
        except RowError as e:
            report.errors.append((number, str(e)))
            code = row.get("code", "").strip()
            if code:
                refused.setdefault(code, number)
            continue
        item.number = number
        items.append(item)
    return items, refused


# ------------------------------------------------------------------------------------------------ importers
AREA_COLUMNS = ("code", "name", "level")


def import_areas(session: Session, path: Path, now: datetime) -> ImportReport:
    """Columns: code, name, level, parent_code, aliases (| separated), polygon (GeoJSON), lat, lon."""
    header, rows = read_table(path)
    _require(path, header, AREA_COLUMNS, "areas")
    report = ImportReport("areas")

    def parse(row: Row) -> _TreeRow:
        code = _code(row, "code", "area")
        assert code is not None
        level = _text(row, "level", required=True) or ""
        try:
            org.parse_area_level(level.lower())
        except ServiceError as e:
            raise RowError(e.message) from None
        lat = _float(row, "lat", -90, 90)
        lon = _float(row, "lon", -180, 180)
        if (lat is None) != (lon is None):
            raise RowError("lat and lon must be given together")
        aliases = [a.strip() for a in row.get("aliases", "").split("|") if a.strip()]
        values = {
            "name": _text(row, "name", required=True),
            "level": level.lower(),
            "aliases": aliases,
            "polygon": _polygon(row),
            "lat": lat,
            "lon": lon,
        }
        return _TreeRow(0, code, _code(row, "parent_code", "area", required=False), values)

    def apply(item: _TreeRow) -> str:
        v = item.values
        if item.parent:
            parent_level = session.scalar(select(Area.level).where(Area.code == item.parent))
            if parent_level is not None and AreaLevel(parent_level).depth >= AreaLevel(v["level"]).depth:
                raise RowError(f"a {v['level']} cannot lie inside a {parent_level} ({item.parent})")
        _, outcome = org.upsert_area(
            session,
            item.code,
            v["name"],
            v["level"],
            item.parent,
            v["aliases"],
            v["polygon"],
            v["lat"],
            v["lon"],
        )
        return outcome

    _resolve_tree(session, report, _row_items(report, rows, parse), apply, "area")
    return report


UNIT_COLUMNS = ("code", "name", "kind")


def import_units(session: Session, path: Path, now: datetime) -> ImportReport:
    """Columns: code, name, kind, parent_code, area_code, duty_tier, phone, leader_name."""
    header, rows = read_table(path)
    _require(path, header, UNIT_COLUMNS, "units")
    report = ImportReport("units")

    def parse(row: Row) -> _TreeRow:
        code = _code(row, "code", "unit")
        assert code is not None
        kind = (_text(row, "kind", required=True) or "").lower()
        try:
            org.parse_unit_kind(kind)
        except ServiceError as e:
            raise RowError(e.message) from None
        tier_text = _text(row, "duty_tier")
        if tier_text is None:
            tier = 3
        elif tier_text in ("1", "2", "3"):
            tier = int(tier_text)
        else:
            raise RowError(f"duty_tier '{tier_text}' must be 1, 2 or 3")
        values = {
            "name": _text(row, "name", required=True),
            "kind": kind,
            "area_code": _code(row, "area_code", "area", required=False),
            "duty_tier": tier,
            "phone": _text(row, "phone", max_len=32),
            "leader_name": _text(row, "leader_name", max_len=50),
        }
        return _TreeRow(0, code, _code(row, "parent_code", "unit", required=False), values)

    def apply(item: _TreeRow) -> str:
        v = item.values
        _, outcome = org.upsert_unit(
            session,
            item.code,
            v["name"],
            v["kind"],
            item.parent,
            v["area_code"],
            v["duty_tier"],
            v["phone"],
            v["leader_name"],
        )
        return outcome

    _resolve_tree(session, report, _row_items(report, rows, parse), apply, "unit")
    return report


USER_COLUMNS = ("username", "display_name", "role")


def import_users(session: Session, path: Path, now: datetime) -> ImportReport:
    """Columns: username, display_name, role, unit_code, phone, password (optional: kept when empty)."""
    header, rows = read_table(path)
    _require(path, header, USER_COLUMNS, "users")
    report = ImportReport("users")
    seen: dict[str, int] = {}
    for number, row in rows:

        def apply(row: Row = row, number: int = number) -> str:
            username = _text(row, "username", required=True, max_len=64) or ""
            if username in seen:
                raise RowError(f"user {username} already appears in row {seen[username]}")
            seen[username] = number
            password = row.get("password", "").strip() or None
            if password is not None and len(password) < 8:
                raise RowError("password must have at least 8 characters")
            _, outcome = org.upsert_user(
                session,
                username,
                _text(row, "display_name", required=True, max_len=64) or "",
                (_text(row, "role", required=True) or "").lower(),
                password,
                now,
                _code(row, "unit_code", "unit", required=False),
                _text(row, "phone", max_len=32),
            )
            return outcome

        _apply_row(session, report, number, apply)
    return report


CATEGORY_COLUMNS = ("code", "name")


def import_categories(session: Session, path: Path, now: datetime) -> ImportReport:
    """Columns: code, name, parent_code; or the three-column taxonomy 一级分类, 二级分类, 三级分类."""
    header, rows = read_table(path)
    if all(h in header for h in TAXONOMY_HEADERS):
        return _import_taxonomy(session, rows)
    if not all(c in header for c in CATEGORY_COLUMNS):
        raise ImportFileError(
            f"{Path(path).name}: expected the columns code, name, parent_code "
            f"or {', '.join(TAXONOMY_HEADERS)} "
            f"(found: {', '.join(header) or 'none'})"
        )
    report = ImportReport("categories")

    def parse(row: Row) -> _TreeRow:
        code = _code(row, "code", "category")
        assert code is not None
        values = {"name": _text(row, "name", required=True)}
        return _TreeRow(0, code, _code(row, "parent_code", "category", required=False), values)

    def apply(item: _TreeRow) -> str:
        _, outcome = org.upsert_category(session, item.code, item.values["name"], item.parent)
        return outcome

    _resolve_tree(session, report, _row_items(report, rows, parse), apply, "category")
    return report


def _import_taxonomy(session: Session, rows: list[tuple[int, Row]]) -> ImportReport:
    report = ImportReport("categories")
    # (names from the root) → (code, category id); filled from the database as nodes are met.
    known: dict[tuple[str, ...], tuple[str, int]] = {}
    taken = set(session.scalars(select(Category.code)))

    def node(path: tuple[str, ...], number: int) -> tuple[str, int]:
        if path in known:
            return known[path]
        parent = node(path[:-1], number) if len(path) > 1 else None
        parent_id = parent[1] if parent else None
        existing = session.scalar(
            select(Category).where(
                Category.parent_id.is_(None) if parent_id is None else Category.parent_id == parent_id,
                Category.name == path[-1],
            )
        )
        if existing is not None:
            report.skipped += 1
            known[path] = (existing.code, existing.id)
            return known[path]
        prefix = parent[0] if parent else ""
        siblings = [
            c[len(prefix) :]
            for c in taken
            if c.startswith(prefix) and len(c) == len(prefix) + 2 and c[len(prefix) :].isdigit()
        ]
        n = max((int(x) for x in siblings), default=0) + 1
        while f"{prefix}{n:02d}" in taken:
            n += 1
        code = f"{prefix}{n:02d}"
        cat = org.add_category(session, code, path[-1], parent[0] if parent else None)
        taken.add(code)
        report.created += 1
        known[path] = (code, cat.id)
        return known[path]

    for number, row in rows:
        names = [row.get(h, "").strip() for h in TAXONOMY_HEADERS]
        while names and not names[-1]:
            names.pop()
        if not names:
            continue
        if not all(names):
            report.errors.append((number, "a level is empty while a deeper level is filled"))
            continue
        too_long = [n for n in names if len(n) > MAX_NAME]
        if too_long:
            report.errors.append(
                (number, f"category name longer than {MAX_NAME} characters: {too_long[0][:20]}…")
            )
            continue
        before_known, before_taken, before = dict(known), set(taken), (report.created, report.skipped)
        try:
            with session.begin_nested():
                node(tuple(names), number)
        except ServiceError as e:
            # The savepoint undid this row's nodes: forget them too.
            known, taken = before_known, before_taken
            report.created, report.skipped = before
            report.errors.append((number, e.message))
    return report


IMPORTERS: dict[str, Callable[[Session, Path, datetime], ImportReport]] = {
    "areas": import_areas,
    "units": import_units,
    "users": import_users,
    "categories": import_categories,
}
