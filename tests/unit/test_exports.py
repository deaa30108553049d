"""The one XLSX exporter: figures stay numbers with the page's format, text stays text (never a formula), sheet
names are valid and unique, times are local, and the download header carries a Chinese name."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from openpyxl import load_workbook

from minsheng.services.exports import (
    Column,
    ExportTable,
    content_disposition,
    download_name,
    sheet_title,
    to_xlsx,
)


def _open(data: bytes):  # type: ignore[no-untyped-def]
    return load_workbook(io.BytesIO(data))


def test_a_table_round_trips_with_numbers_and_formats() -> None:
    table = ExportTable(
        "单位排名",
        [Column("单位"), Column("受理量", "int"), Column("办结率", "pct"), Column("平均办结时长", "hours")],
        [["市城管局", 120, 0.952, 30.25], ["市住建局", 80, None, 12.0]],
        notes=["样本不足的单位不参与排名"],
    )
    wb = _open(to_xlsx(table))
    ws = wb["单位排名"]
    assert ws["A1"].value == "单位排名"
    assert [c.value for c in ws[2]] == ["单位", "受理量", "办结率", "平均办结时长"]
    assert [c.value for c in ws[3]] == ["市城管局", 120, 0.952, 30.25]
    assert ws["C3"].number_format == "0.0%"
    assert ws["D3"].number_format == "0.0"
    assert ws["C4"].value is None
    assert ws.cell(row=6, column=1).value == "样本不足的单位不参与排名"
    assert ws.freeze_panes == "A3"


def test_text_that_looks_like_a_formula_stays_text() -> None:
    evil = '=HYPERLINK("http://x.invalid","点我")'
    wb = _open(to_xlsx(ExportTable.simple("工单", ["标题"], [[evil], ["+1-2"], ["bad\x01char"]])))
    ws = wb["工单"]
    assert ws["A3"].value == evil
    assert ws["A3"].data_type == "s"
    assert ws["A4"].value == "+1-2"
    assert ws["A5"].value == "badchar"


def test_times_are_local_and_flags_are_words() -> None:
    at = datetime(2026, 11, 1, 16, 30, tzinfo=UTC)  # 00:30 on 2 November in Shanghai
    wb = _open(to_xlsx(ExportTable("t", [Column("时间", "datetime"), Column("公开")], [[at, True]])))
    ws = wb["t"]
    assert ws["A3"].value == datetime(2026, 11, 2, 0, 30)
    assert ws["B3"].value == "是"


def test_several_tables_get_valid_unique_sheet_names() -> None:
    data = to_xlsx(
        [
            ExportTable.simple("a/b:c*?[x]", ["x"], [[1]]),
            ExportTable.simple("a/b:c*?[x]", ["x"], [[2]]),
            ExportTable.simple("很长" * 30, ["x"], [[3]]),
        ]
    )
    names = _open(data).sheetnames
    assert len(names) == 3 and len(set(names)) == 3
    assert all(len(n) <= 31 and not set(n) & set("[]:*?/\\") for n in names)
    taken: set[str] = set()
    assert sheet_title("", taken) == "Sheet"


def test_an_empty_export_is_still_a_workbook() -> None:
    assert _open(to_xlsx([])).sheetnames == ["空"]


def test_download_names_and_header() -> None:
    assert download_name("统计分析 2026-11/单位", "xlsx") == "统计分析_2026-11_单位.xlsx"
    header = content_disposition("统计_2026-11.xlsx")
    assert header.startswith('attachment; filename="2026-11.xlsx"')
    assert "filename*=UTF-8''%E7%BB%9F%E8%AE%A1_2026-11.xlsx" in header
    assert "\n" not in content_disposition("a\r\nb.xlsx")


def test_free_text_is_masked_before_it_leaves_the_centre() -> None:
    from minsheng.services.stats import mask_text

    text = "张三说请拨打13912345678或0571-87654321，身份证330102199001011234，住幸福路3号2单元"
    out = mask_text(text, name="张三", address="幸福路3号2单元")
    assert "13912345678" not in out and "139****5678" in out
    assert "87654321" not in out and "0571-********" in out
    assert "199001011234" not in out and out.count("*") >= 10
    assert "张三" not in out and "张*" in out
    assert "幸福路3号2单元" not in out
    assert mask_text(None) == "" and mask_text("路灯坏了") == "路灯坏了"
    # numbers that are not phone numbers stay (a ticket number, an amount)
    assert mask_text("工单2026112100001，欠薪3000元") == "工单2026112100001，欠薪3000元"
