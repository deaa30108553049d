"""The report's renderings from a hand-built report: the XLSX holds every table and the key figures as numbers;
the PDF embeds a CJK font and its text (read back with pypdf) holds the Chinese names, figures and cases."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
from openpyxl import load_workbook

from minsheng.services.exports import Column, ExportTable
from minsheng.services.report_render import (
    Bars,
    Case,
    Columns,
    KeyFigure,
    PdfUnavailable,
    Report,
    Section,
    change,
    fmt_value,
    report_html,
    report_pdf,
    report_pdf_in_child,
    report_xlsx,
)


def _report() -> Report:
    units = ExportTable(
        "各单位考核",
        [Column("排名", "int"), Column("单位"), Column("办结率", "pct"), Column("满意率", "pct")],
        [[1, "市城管局", 0.975, 0.91], [2, "幸福路街道办", 0.9, None]],
        notes=["样本不足的单位不参与排名"],
    )
    return Report(
        title="民声12345 2026年11月 月度报告",
        subtitle="民声市 · 2026年11月",
        period="2026-11",
        generated_at=datetime(2026, 12, 1, 0, 5, tzinfo=UTC),
        sections=[
            Section(
                "受理概况",
                ["本期共受理诉求 1,234 件。"],
                [
                    KeyFigure("受理量", 1234, "int", 1100, 1300),
                    KeyFigure("办结率", 0.952, "pct", 0.94, None),
                ],
                [Columns("每日受理量", [("1日", 40), ("2日", 52)]), Bars("受理渠道", [("电话", 800)])],
                [units],
            ),
            Section(
                "典型案例",
                cases=[Case("幸福路路灯修复", [("承办单位", "市城管局")], [("答复", "已于当日修复路灯")])],
            ),
        ],
        notes=["数据截至生成时间"],
    )


def test_formatting_of_figures_and_changes() -> None:
    assert fmt_value(0.952, "pct") == "95.2%"
    assert fmt_value(30.26, "hours") == "30.3"
    assert fmt_value(1234, "int") == "1,234"
    assert fmt_value(None, "pct") == "—"
    assert change(0.952, 0.94, "pct") == "+1.2个百分点"
    assert change(1100, 1000, "int") == "+10.0%"
    assert change(5, 0, "int") == "—"
    assert change(None, 3, "int") == "—"


def test_xlsx_has_the_overview_every_table_and_the_cases() -> None:
    wb = load_workbook(io.BytesIO(report_xlsx(_report())))
    assert wb.sheetnames == ["概况", "各单位考核", "典型案例"]
    overview = wb["概况"]
    rows = [[c.value for c in r] for r in overview.iter_rows(min_row=3, max_row=4)]
    assert rows[0][:4] == ["受理概况", "受理量", 1234, 1100]
    assert rows[0][4] == "+12.2%"
    assert rows[1][2] == pytest.approx(0.952) and overview.cell(row=4, column=3).number_format == "0.0%"
    units = wb["各单位考核"]
    assert [c.value for c in units[3]] == [1, "市城管局", 0.975, 0.91]
    cases = wb["典型案例"]
    assert [c.value for c in cases[2]] == ["案例", "承办单位", "答复"]
    assert [c.value for c in cases[3]] == ["幸福路路灯修复", "市城管局", "已于当日修复路灯"]


def test_html_escapes_text() -> None:
    r = _report()
    r.sections[1].cases[0].passages = [("答复", "<script>alert(1)</script>")]
    html = report_html(r)
    assert "<script>alert" not in html and "&lt;script&gt;" in html


def test_pdf_embeds_a_cjk_font_and_holds_the_chinese_text() -> None:
    pypdf = pytest.importorskip("pypdf")
    data = report_pdf(_report())
    assert data.startswith(b"%PDF")
    reader = pypdf.PdfReader(io.BytesIO(data))
    text = "".join(page.extract_text() for page in reader.pages)
    for expected in (
        "月度报告",
        "市城管局",
        "幸福路街道办",
        "95.2%",
        "97.5%",
        "已于当日修复路灯",
        "受理渠道",
    ):
        assert expected in text
    fonts = set()
    for page in reader.pages:
        for f in page["/Resources"]["/Font"].values():
            font = f.get_object()
            fonts.add(str(font["/BaseFont"]))
            descendant = font["/DescendantFonts"][0].get_object()
            descriptor = descendant["/FontDescriptor"].get_object()
            # Embedded: the descriptor carries the font program itself.
            assert any(k in descriptor for k in ("/FontFile", "/FontFile2", "/FontFile3"))
    assert any("CJK" in f for f in fonts), fonts


def test_pdf_in_a_child_process_is_the_same_document_and_a_stuck_render_is_stopped() -> None:
    pytest.importorskip("weasyprint")
    data = report_pdf_in_child(_report())
    assert data.startswith(b"%PDF") and abs(len(data) - len(report_pdf(_report()))) < len(data) // 10
    with pytest.raises(PdfUnavailable, match="more than 0 s"):
        report_pdf_in_child(_report(), timeout=0.01)
