"""A report as data, and its two renderings: an XLSX workbook (`services.exports`, one sheet per table) and a PDF
(a Jinja2 HTML template rendered by WeasyPrint with the system's CJK font, which it embeds).

The structure is generic (sections of paragraphs, key figures, bar charts, tables and cases), so the monthly,
quarterly and annual report of `services.reports` is one instance of it; nothing here queries the database.
"""

from __future__ import annotations

import math
import multiprocessing
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from minsheng.services.errors import ServiceError
from minsheng.services.exports import Cell, Column, ExportTable, Format, to_xlsx

TEMPLATES = Path(__file__).parent / "report_templates"
_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")
# Fonts that fontconfig finds for Chinese text, in order of preference (Debian: fonts-noto-cjk, fonts-wqy-*).
FONT_FAMILY = (
    '"Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei", sans-serif'
)


class PdfUnavailable(ServiceError):
    """The PDF library or its system libraries (Pango) are missing on this machine."""

    status = 503
    code = "pdf_unavailable"


@dataclass
class KeyFigure:
    """A headline figure with its previous period (环比) and the same period last year (同比)."""

    label: str
    value: float | None
    fmt: Format = "int"
    previous: float | None = None
    last_year: float | None = None
    higher_is_better: bool = True


@dataclass
class Bars:
    """A horizontal bar chart: (label, value) pairs, largest first as given."""

    title: str
    items: Sequence[tuple[str, float | None]]
    fmt: Format = "int"


@dataclass
class Columns:
    """A vertical bar chart over time (days, weeks or months): (label, value) in time order."""

    title: str
    items: Sequence[tuple[str, float | None]]
    fmt: Format = "int"


@dataclass
class Case:
    """A typical case: a heading and labelled passages (the request, the reply, the rating)."""

    heading: str
    facts: Sequence[tuple[str, str]]
    passages: Sequence[tuple[str, str]]


@dataclass
class Section:
    title: str
    paragraphs: list[str] = field(default_factory=list)
    figures: list[KeyFigure] = field(default_factory=list)
    charts: list[Bars | Columns] = field(default_factory=list)
    tables: list[ExportTable] = field(default_factory=list)
    cases: list[Case] = field(default_factory=list)
    # Whether the tables are printed in the PDF (the XLSX always has them), and at most how many rows each.
    print_tables: bool = True
    pdf_rows: int | None = None
    # What the PDF prints instead of `tables` (a shorter version of long tables), when given.
    pdf_tables: list[ExportTable] | None = None


@dataclass
class Report:
    title: str
    subtitle: str
    period: str
    generated_at: datetime
    sections: list[Section]
    notes: list[str] = field(default_factory=list)
    # A few short sentences that say the most (the notification's text, the page's summary).
    headline: list[str] = field(default_factory=list)

    @property
    def stem(self) -> str:
        return f"民声报告_{self.period}"


# ----------------------------------------------------------------------------------------------- formatting
def fmt_value(value: Any, fmt: Format = "text") -> str:
    """A figure as the pages and the PDF print it: rates as 95.2%, hours with one decimal, "—" for none."""
    if isinstance(value, Cell):
        value, fmt = value.value, value.fmt
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, datetime):
        return value.astimezone(_TZ).strftime("%Y-%m-%d %H:%M")
    if fmt == "pct" and isinstance(value, int | float):
        return f"{value * 100:.1f}%"
    if fmt in ("hours", "decimal") and isinstance(value, int | float):
        return f"{value:.1f}"
    if fmt == "int" and isinstance(value, int | float):
        return f"{round(value):,}"
    if fmt == "number" and isinstance(value, int | float):
        return f"{value:.2f}"
    if isinstance(value, bool):
        return "是" if value else "否"
    return str(value)


def change(value: float | None, base: float | None, fmt: Format) -> str:
    """The change against a base: points for rates (+1.2个百分点), a percentage for counts and hours."""
    if value is None or base is None:
        return "—"
    if fmt == "pct":
        return f"{(value - base) * 100:+.1f}个百分点"
    if base == 0:
        return "—"
    return f"{(value - base) / base * 100:+.1f}%"


def trend_class(f: KeyFigure, base: float | None) -> str:
    if f.value is None or base is None or f.value == base:
        return ""
    better = (f.value > base) == f.higher_is_better
    return "up" if better else "down"


# ----------------------------------------------------------------------------------------------------- XLSX
def report_tables(report: Report) -> list[ExportTable]:
    """The report's sheets: an overview of the key figures first, then every table, then the cases."""
    rows: list[list[Any]] = []
    for s in report.sections:
        for f in s.figures:
            rows.append(
                [
                    s.title,
                    f.label,
                    Cell(f.value, f.fmt),
                    Cell(f.previous, f.fmt),
                    change(f.value, f.previous, f.fmt),
                    Cell(f.last_year, f.fmt),
                    change(f.value, f.last_year, f.fmt),
                ]
            )
    overview = ExportTable(
        "概况",
        [
            Column("部分"),
            Column("指标"),
            Column("本期"),
            Column("上期"),
            Column("环比"),
            Column("去年同期"),
            Column("同比"),
        ],
        rows,
        notes=[report.title, report.subtitle, *report.notes],
    )
    tables = [overview]
    for s in report.sections:
        tables.extend(s.tables)
        if s.cases:
            tables.append(_cases_table(s))
    return tables


def _cases_table(s: Section) -> ExportTable:
    labels: list[str] = []
    for c in s.cases:
        for label, _ in [*c.facts, *c.passages]:
            if label not in labels:
                labels.append(label)
    rows = []
    for c in s.cases:
        values = dict([*c.facts, *c.passages])
        rows.append([c.heading, *(values.get(label) for label in labels)])
    return ExportTable(s.title, [Column("案例"), *(Column(label) for label in labels)], rows)


def report_xlsx(report: Report) -> bytes:
    return to_xlsx(report_tables(report))


# ------------------------------------------------------------------------------------------------------ PDF
def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"]))
    env.filters["v"] = fmt_value
    env.tests["columns"] = lambda c: isinstance(c, Columns)
    # The font list goes into CSS as it is (its quotes must not become HTML entities).
    env.globals.update(change=change, trend_class=trend_class, chart_max=_chart_max, font=Markup(FONT_FAMILY))
    return env


def _chart_max(items: Sequence[tuple[str, float | None]]) -> float:
    top = max((v for _, v in items if v is not None), default=0.0)
    return float(top) if top and top > 0 else 1.0


def report_html(report: Report) -> str:
    return _environment().get_template("report.html").render(report=report)


def report_pdf_in_child(report: Report, timeout: float = 600.0) -> bytes:
    """`report_pdf` in a child process: WeasyPrint holds the GIL for seconds, and the worker may share its
    process with the web server (`minsheng serve` runs one embedded), whose requests would wait meanwhile.
    A render that outlasts ``timeout`` is killed and reported as `PdfUnavailable`."""
    pool = multiprocessing.get_context("spawn").Pool(1)  # spawn: the server's threads are not forked
    try:
        pdf: bytes = pool.apply_async(report_pdf, (report,)).get(timeout)
    except multiprocessing.TimeoutError as e:
        raise PdfUnavailable(f"PDF rendering took more than {timeout:.0f} s and was stopped") from e
    finally:
        pool.terminate()
        pool.join()
    return pdf


def report_pdf(report: Report) -> bytes:
    """The report as PDF bytes (A4, page numbers, fonts embedded)."""
    try:
        from weasyprint import HTML
    except (ImportError, OSError) as e:  # OSError: Pango is missing (apt-get install libpangoft2-1.0-0)
        raise PdfUnavailable(f"PDF rendering is not available on this machine: {e}") from e
    pdf: bytes = HTML(string=report_html(report)).write_pdf()
    return pdf
