"""The periodic report (月度 / 季度 / 年度报告) of the city: volumes and channels, categories and hot topics,
areas, every unit's measures and rank, overdue and returned tickets, and typical cases.

`build_report` reads everything from `services.measures` (figures, rankings, the tickets behind a figure) and
`services.stats` (ticket rows, replies, masking) and returns a `report_render.Report`, which renders as XLSX
and PDF. The same report serves `minsheng report`, the download buttons of the 统计分析 page and the worker's
job on the first day of each period (`services.report_jobs`).

Nothing personal leaves in it: ticket lists show no citizen data and 保密件 for a confidential title, and the
typical cases are never confidential, with phone and ID numbers, names and addresses masked in their text.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from minsheng.domain.roles import Role
from minsheng.domain.states import Rating, UnitKind
from minsheng.measures.catalogue import BY_CODE
from minsheng.measures.periods import Period
from minsheng.services import hotspots, stats
from minsheng.services.auth import Principal
from minsheng.services.errors import Invalid
from minsheng.services.exports import Column, ExportTable
from minsheng.services.measures import MeasureRow, MeasureTable, Scope, measure_table, ranking, tickets_behind
from minsheng.services.report_render import (
    Bars,
    Case,
    Columns,
    KeyFigure,
    Report,
    Section,
    change,
    fmt_value,
)

GRAIN_WORDS = {
    "day": "日报",
    "week": "周报",
    "month": "月度报告",
    "quarter": "季度报告",
    "year": "年度报告",
    "range": "专题报告",
}
HEADLINE_MEASURES = (
    "volume",
    "completion_rate",
    "satisfaction_rate",
    "sign_rate",
    "overdue_count",
    "avg_close_hours",
)
UNIT_MEASURES = (
    "volume",
    "sign_rate",
    "feedback_rate",
    "completion_rate",
    "satisfaction_rate",
    "reopen_rate",
    "complaint_rate",
    "return_rate",
    "overdue_count",
    "avg_close_hours",
)
# Unit kinds ranked against each other, in the order the report lists them; the PDF prints the first three.
RANKED_KINDS = (
    UnitKind.DEPARTMENT,
    UnitKind.DISTRICT_OFFICE,
    UnitKind.STREET_OFFICE,
    UnitKind.COMMUNITY,
    UnitKind.GRID_TEAM,
    UnitKind.RESPONSE_TEAM,
)
PRINTED_KINDS = (UnitKind.DEPARTMENT, UnitKind.DISTRICT_OFFICE, UnitKind.STREET_OFFICE)
LIST_LIMIT = 2000  # tickets per list in the XLSX
PDF_LIST_ROWS = 30  # of which the PDF prints the first
TOP_CATEGORIES = 15
CASES = 3


def build_report(session: Session, period: Period, now: datetime, settings: Any) -> Report:
    """The report of `period` for the whole city, as of `now`."""
    city = stats.city_name(session)
    total_table = measure_table(session, period, Scope(), None, settings)
    total = total_table.total
    sections = [
        _volumes(session, period, settings, total),
        _categories(session, period, settings, total),
        _areas(session, period, settings),
        _units(session, period, settings),
        _overdue_and_returned(session, period, settings),
        _cases(session, period),
    ]
    word = GRAIN_WORDS.get(period.grain, "报告")
    last = period.end.toordinal() - 1
    end_day = datetime.fromordinal(last).date()
    subtitle = (
        f"统计范围：{city}全市 · 统计期：{period.start:%Y年%m月%d日}至{end_day:%Y年%m月%d日} · "
        f"环比对照：{period.previous().label} · 同比对照：{period.last_year().label}"
    )
    return Report(
        title=f"{city}12345热线 {period.label}{word}",
        subtitle=subtitle,
        period=str(period),
        generated_at=now,
        sections=sections,
        notes=[
            "指标口径见 docs/METRICS.md；样本不足（基数低于设定的最少件数）的单位不参与排名。",
            "工单清单不含群众个人信息；保密件不显示标题；典型案例中的电话、证件号码、姓名和地址已隐去。",
        ],
        headline=_headline(total),
    )


def _figure(row: MeasureRow, code: str) -> KeyFigure:
    m = BY_CODE[code]
    return KeyFigure(
        m.label_zh,
        row.values.get(code),
        stats.measure_fmt(code),
        row.previous.get(code),
        row.last_year.get(code),
        m.higher_is_better,
    )


def _headline(total: MeasureRow) -> list[str]:
    out = []
    for code in ("volume", "completion_rate", "satisfaction_rate"):
        f = _figure(total, code)
        out.append(f"{f.label} {fmt_value(f.value, f.fmt)}（环比 {change(f.value, f.previous, f.fmt)}）")
    return out


def _share_rows(table: MeasureTable, limit: int | None = None) -> list[list[Any]]:
    volume = table.total.values.get("volume") or 0
    rows = sorted(table.rows, key=lambda r: -(r.values.get("volume") or 0))
    rows = [r for r in rows if r.values.get("volume")][:limit]
    return [
        [
            r.name,
            r.values.get("volume"),
            (r.values.get("volume") or 0) / volume if volume else None,
            r.previous.get("volume"),
            r.last_year.get("volume"),
            r.values.get("completion_rate"),
            r.values.get("satisfaction_rate"),
        ]
        for r in rows
    ]


def _share_columns(first: str) -> list[Column]:
    return [
        Column(first),
        Column("受理量", "int"),
        Column("占比", "pct"),
        Column("上期", "int"),
        Column("去年同期", "int"),
        Column("办结率", "pct"),
        Column("满意率", "pct"),
    ]


def _volumes(session: Session, period: Period, settings: Any, total: MeasureRow) -> Section:
    grain = stats.trend_grain(period)
    trend = measure_table(session, period, Scope(), grain, settings)
    channels = measure_table(session, period, Scope(), "channel", settings)
    rows = _share_rows(channels)
    f = _figure(total, "volume")
    text = (
        f"本期共受理群众诉求 {fmt_value(f.value, 'int')} 件，环比 {change(f.value, f.previous, 'int')}，"
        f"同比 {change(f.value, f.last_year, 'int')}。"
    )
    if rows:
        text += f"主要受理渠道为{rows[0][0]}（{fmt_value(rows[0][2], 'pct')}）。"
    unit = {"day": "每日", "week": "每周", "month": "每月"}[grain]
    return Section(
        "受理量与受理渠道",
        [text],
        [_figure(total, c) for c in HEADLINE_MEASURES],
        [
            Columns(f"{unit}受理量", [(_short(r.name), r.values.get("volume")) for r in trend.rows]),
            Bars("受理渠道", [(r[0], r[1]) for r in rows]),
        ],
        [ExportTable("受理渠道", _share_columns("渠道"), rows)],
    )


def _short(label: str) -> str:
    """A time bucket's label on an axis: 2026年11月3日 → 3日, 2026年第45周 → 45周, 2026年11月 → 11月."""
    rest = label.split("年", 1)[-1]
    if "月" in rest and rest.endswith("日"):
        return rest.split("月", 1)[1]
    return rest.removeprefix("第")


def _categories(session: Session, period: Period, settings: Any, total: MeasureRow) -> Section:
    cats = measure_table(session, period, Scope(), "category", settings)
    rows = _share_rows(cats, TOP_CATEGORIES)
    paragraphs = []
    if rows:
        top = "、".join(f"{r[0]}（{fmt_value(r[1], 'int')}件）" for r in rows[:3])
        paragraphs.append(f"诉求量居前的分类为：{top}。")
    hot = hot_topics(session, period)
    tables = [ExportTable("诉求分类", _share_columns("分类"), rows)]
    if hot is None:
        paragraphs.append("本期跨度超过热点分析的上限（一年），未做热点话题分析。")
    elif not hot.rows:
        paragraphs.append("本期没有形成热点话题（同一地点、同一问题的集中诉求）。")
    else:
        tops = "；".join(f"{r[2]}（{r[5]}件，{r[7]}）" for r in hot.rows[:3])
        paragraphs.append(f"本期热点话题 {len(hot.rows)} 个，居前的是：{tops}。")
        tables.insert(0, hot)
    return Section(
        "诉求分类与热点",
        paragraphs,
        charts=[Bars("诉求分类（前10）", [(r[0], r[1]) for r in rows[:10]])],
        tables=tables,
    )


# The report is the centre's own document: its hot topics are read as the centre's roles see the tickets (a
# confidential ticket counts in its topic but is never quoted: `services.hotspots`).
_CENTRE = Principal(
    user_id=0, username="report", display_name="报告", role=Role.LEADER, unit_id=None, unit_name=None
)
HOT_TOPICS = 10


def hot_topics(session: Session, period: Period) -> ExportTable | None:
    """The period's hot topics (`services.hotspots`), hottest first; None for a period it cannot analyse."""
    start, end = period.utc_bounds()
    try:
        found = hotspots.hotspots(session, start, end, top=HOT_TOPICS, who=_CENTRE)
    except Invalid:  # a period longer than the analysis takes (more than a year)
        return None
    cols = [
        Column("排名", "int"),
        Column("热度", "decimal"),
        Column("概要"),
        Column("地点"),
        Column("涉及人群"),
        Column("件数", "int"),
        Column("来电群众数", "int"),
        Column("较上期"),
        Column("首次", "datetime"),
        Column("最近", "datetime"),
    ]
    rows = [
        [
            t["rank"],
            t["heat"],
            t["summary"],
            t.get("place") or "",
            t.get("crowd") or "",
            t["count"],
            t.get("citizens"),
            t["trend"]["label"],
            t.get("first"),
            t.get("last"),
        ]
        for t in found.topics
    ]
    notes = [f"分析本期诉求 {found.tickets} 件" + ("（仅最新的部分）" if found.truncated else "")]
    return ExportTable("热点话题", cols, rows, notes=notes)


def _areas(session: Session, period: Period, settings: Any) -> Section:
    areas = measure_table(session, period, Scope(), "area", settings)
    rows = _share_rows(areas)
    return Section(
        "区域分布",
        ["按属地统计（含下辖街道、社区）。"] if rows else ["本期没有按属地统计的诉求。"],
        charts=[Bars("各区受理量", [(r[0], r[1]) for r in rows[:12]])],
        tables=[ExportTable("区域分布", _share_columns("区域"), rows)],
    )


def _units(session: Session, period: Period, settings: Any) -> Section:
    tables, printed = [], []
    charts: list[Bars | Columns] = []
    cols = [Column("排名", "int"), Column("单位"), Column("综合得分", "decimal")]
    cols += [Column(BY_CODE[c].label_zh, stats.measure_fmt(c)) for c in UNIT_MEASURES]
    for kind in RANKED_KINDS:
        ranked = [r for r in ranking(session, period, kind.value, settings) if r.base or r.counts]
        if not ranked:
            continue
        rows = [[r.rank, r.name, r.value, *(r.values.get(c) for c in UNIT_MEASURES)] for r in ranked]
        few = [r.name for r in ranked if r.few]
        notes = (
            [
                f"样本不足、未参与排名的单位 {len(few)} 个：{'、'.join(few[:30])}{' 等' if len(few) > 30 else ''}"
            ]
            if few
            else []
        )
        tables.append(
            ExportTable(
                f"单位考核_{kind.label}",
                [*cols, Column("样本不足")],
                [[*row, "是" if r.few else ""] for row, r in zip(rows, ranked, strict=True)],
            )
        )
        if kind in PRINTED_KINDS:
            # The PDF lists the ranked units; the few-ticket ones are named under the table (all are in the XLSX).
            shown = [row for row, r in zip(rows, ranked, strict=True) if not r.few]
            printed.append(ExportTable(f"{kind.label}", cols, shown, notes=notes))
        top = [(r.name, r.value) for r in ranked if r.rank is not None]
        if top:
            charts.append(Bars(f"{kind.label}综合得分（前10）", top[:10], "decimal"))
    return Section(
        "各单位考核指标与排名",
        [
            "综合得分为签收率、反馈率、办结率、满意率的加权平均（权重可在设置中调整），满分100；"
            "同类单位之间排名，样本不足的单位不参与排名。PDF 列出职能部门、区（县）和街道（乡镇），"
            "全部单位（含社区、网格）的指标见 Excel。"
        ],
        charts=charts,
        tables=tables,
        pdf_tables=printed,
    )


def _ticket_list(session: Session, period: Period, settings: Any, measure: str, title: str) -> ExportTable:
    ids = tickets_behind(session, period, Scope(), measure, None, part="numerator", settings=settings)
    page = stats.tickets_by_ids(session, None, ids, limit=LIST_LIMIT)
    table = stats.ticket_export(page.rows, title)
    shown = min(page.total, LIST_LIMIT)
    note = f"共 {page.total} 件" + ("" if shown == page.total else f"，清单列出前 {shown} 件")
    table.notes = [note]
    return table


def _overdue_and_returned(session: Session, period: Period, settings: Any) -> Section:
    overdue = _ticket_list(session, period, settings, "overdue_count", "超期工单")
    returned = _ticket_list(session, period, settings, "return_rate", "退回工单")
    return Section(
        "超期与退回工单",
        [
            f"本期受理的诉求中，超期 {overdue.notes[0].removeprefix('共 ')}，被承办单位退回过 "
            f"{returned.notes[0].removeprefix('共 ')}。PDF 中每类列出前 {PDF_LIST_ROWS} 件，完整清单见 Excel。"
        ],
        tables=[overdue, returned],
        pdf_rows=PDF_LIST_ROWS,
    )


def _cases(session: Session, period: Period) -> Section:
    start, end = period.utc_bounds()
    good = stats.public_cases(
        session, start, end, limit=CASES, ratings=(Rating.SATISFIED.value,), consent_only=True
    )
    bad = stats.public_cases(
        session,
        start,
        end,
        limit=CASES,
        ratings=(Rating.DISSATISFIED.value, Rating.BASICALLY_DISSATISFIED.value),
        consent_only=False,
    )
    cases = [_case("好评", c) for c in good] + [_case("不满意", c) for c in bad]
    return Section(
        "典型案例",
        [
            f"群众满意且同意公开的办结诉求 {len(good)} 件，群众不满意的诉求 {len(bad)} 件（个人信息已隐去）。"
            if cases
            else "本期没有可作为典型案例的办结诉求。"
        ],
        cases=cases,
    )


def _case(kind: str, c: dict[str, Any]) -> Case:
    facts = [
        ("类型", kind),
        ("编号", c["number"]),
        ("分类", c.get("category") or "—"),
        ("属地", c.get("area") or "—"),
        ("承办单位", c.get("lead_unit") or "—"),
        ("评价", c.get("rating_label") or "—"),
    ]
    return Case(c["title"], facts, [("诉求", c["detail"]), ("答复", c["reply"])])
