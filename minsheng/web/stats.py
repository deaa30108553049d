"""统计分析: the accountability pages. `/stats` (supervisors, leaders, admins): a period and a scope (the city, an
area drilled down to communities, or a unit), cards of the key measures with the previous period and the same
period last year, a trend, ranking bars and a map; every figure links to the tickets behind it
(`/stats/tickets`). Tables export to XLSX, and the periodic report downloads as XLSX or PDF.

Every figure comes from `services.measures` (through `services.stats`): nothing is computed here. The unit page
(`/stats/unit`) and the public rankings live in `web.stats_unit`.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import QueryParams

from minsheng.domain.roles import Role
from minsheng.http.uow import UnitOfWorkRoute
from minsheng.measures.catalogue import BY_CODE, MEASURES
from minsheng.measures.periods import Period, PeriodError, local_day
from minsheng.services import stats
from minsheng.services.auth import Principal
from minsheng.services.errors import Invalid
from minsheng.services.exports import XLSX_MEDIA_TYPE, content_disposition, download_name, to_xlsx
from minsheng.services.measures import Scope, tickets_behind
from minsheng.services.report_render import fmt_value, report_pdf, report_xlsx
from minsheng.services.reports import build_report
from minsheng.web import core
from minsheng.web.core import StateDep

router = APIRouter(route_class=UnitOfWorkRoute, include_in_schema=False)
StatsUser = Annotated[Principal, core.need(core.BOARD_ROLES)]
ListUser = Annotated[Principal, core.need(core.BOARD_ROLES | {Role.HANDLER})]
PAGE = 50
EXPORT_ROWS = 10_000
_KEEP = ("period", "from", "to", "area", "unit", "by", "measure", "level")
PDF_MEDIA_TYPE = "application/pdf"


# ------------------------------------------------------------------------------------------------- params
def today(state: Any) -> Any:
    return local_day(state.clock.now())


def parse_period(qp: QueryParams, state: Any) -> Period:
    """`from`+`to` (a range of days), else `period` (any form `Period.parse` reads), else this month."""
    start, end = (qp.get("from") or "").strip(), (qp.get("to") or "").strip()
    text = f"{start}..{end}" if start and end else (qp.get("period") or "").strip()
    if not text:
        d = today(state)
        return Period.month(d.year, d.month)
    try:
        return Period.parse(text[:60])
    except PeriodError as e:
        raise Invalid(
            f"统计期无效（{text[:30]}）：可填 2026-11-03、2026-W48、2026-11、2026-Q4、2026 或日期范围"
        ) from e


def code_param(qp: QueryParams, name: str) -> str | None:
    v = (qp.get(name) or "").strip()
    if not v:
        return None
    if len(v) > 32 or not all(c.isalnum() or c in "-_." for c in v):
        raise Invalid(f"{name} 无效")
    return v


def link(path: str, qp: QueryParams | dict[str, Any], **changes: Any) -> str:
    """`path` with the page's parameters, some changed (None drops one)."""
    params = {k: qp.get(k) for k in _KEEP if qp.get(k)}
    for k, v in changes.items():
        if v is None:
            params.pop(k, None)
        else:
            params[k] = str(v)
    if "period" in changes:
        params.pop("from", None)
        params.pop("to", None)
    return path + ("?" + urlencode(params) if params else "")


def quick_periods(state: Any) -> list[tuple[str, str]]:
    d = today(state)
    month = Period.month(d.year, d.month)
    return [
        ("今日", str(Period.day(d))),
        ("本周", str(Period.containing(d, "week"))),
        ("本月", str(month)),
        ("上月", str(month.previous())),
        ("本季度", str(Period.containing(d, "quarter"))),
        ("本年", str(Period.year(d.year))),
        ("近30天", str(Period.last_days(d, 30))),
    ]


def file_response(data: bytes, media_type: str, filename: str) -> Response:
    return Response(
        data, media_type=media_type, headers={"Content-Disposition": content_disposition(filename)}
    )


# --------------------------------------------------------------------------------------------------- page
@router.get("/stats")
def stats_page(request: Request, state: StateDep, user: StatsUser) -> Response:
    view, units = _view(request, state, with_units=True)
    ctx = page_context(request.query_params, view, units, state)
    return core.render(request, "stats.html", ctx, user=user)


def _view(request: Request, state: Any, *, with_units: bool = False) -> tuple[stats.StatsView, list[Any]]:
    qp = request.query_params
    period = parse_period(qp, state)
    with core.read_tx(state) as session:
        scope = stats.scope_view(session, code_param(qp, "area"), code_param(qp, "unit"))
        view = stats.stats_view(
            session,
            period,
            scope,
            state.settings,
            by=qp.get("by") or None,
            measure=qp.get("measure") or stats.SCORE,
            level=qp.get("level") or "department",
        )
        units = stats.unit_choices(session) if with_units else []
    return view, units


def page_context(
    qp: QueryParams, view: stats.StatsView, units: list[dict[str, Any]], state: Any
) -> dict[str, Any]:
    q = dict(qp) | {"period": str(view.period), "by": view.by, "measure": view.measure, "level": view.level}
    q.pop("from", None), q.pop("to", None)
    if view.scope.area_code:
        q["area"] = view.scope.area_code
    total = view.table.total
    cards = [
        {
            "code": code,
            "label": BY_CODE[code].label_zh,
            "value": fmt_value(total.values.get(code), stats.measure_fmt(code)),
            "previous": fmt_value(total.previous.get(code), stats.measure_fmt(code)),
            "last_year": fmt_value(total.last_year.get(code), stats.measure_fmt(code)),
            "trend": _trend(code, total.values.get(code), total.previous.get(code)),
            "url": link("/stats/tickets", q, measure=code, key="total"),
        }
        for code in stats.CARD_MEASURES
    ]
    rows = [_table_row(r, q, view) for r in view.table.rows]
    return {
        "view": view,
        "q": q,
        "cards": cards,
        "rows": rows,
        "total_row": _table_row(view.table.total, q, view, total=True),
        "columns": [(c, BY_CODE[c].label_zh) for c in stats.TABLE_MEASURES],
        "units": units,
        "quick": [(label, p, link("/stats", q, period=p)) for label, p in quick_periods(state)],
        "groupings": [(k, v, link("/stats", q, by=k)) for k, v in stats.GROUPINGS.items()],
        "by_label": stats.GROUPINGS[view.by],
        "levels": stats.RANK_LEVELS,
        "measures": [(stats.SCORE, "综合得分")] + [(m.code, m.label_zh) for m in MEASURES],
        "crumbs": [
            (name, link("/stats", q, area=code, unit=None, by=None)) for code, name in view.scope.crumbs
        ],
        "export_url": link("/stats/export.xlsx", q),
        "report_urls": {
            f: f"/stats/report?{urlencode({'period': str(view.period), 'format': f})}"
            for f in ("pdf", "xlsx")
        },
        "hotspots_url": f"/stats/hotspots?{urlencode({'period': str(view.period)})}",
        "chart": chart_data(view, q),
    }


def _trend(code: str, value: float | None, base: float | None) -> str:
    if value is None or base is None or value == base:
        return ""
    return "up" if (value > base) == BY_CODE[code].higher_is_better else "down"


def _table_row(r: Any, q: dict[str, Any], view: stats.StatsView, *, total: bool = False) -> dict[str, Any]:
    kind, _, code = r.key.partition(":")
    drill = None
    if not total and kind == "area":
        drill = link("/stats", q, area=code, unit=None, by=None)
    elif not total and kind == "unit":
        drill = link("/stats", q, unit=code, area=None, by=None)
    cells = []
    for c in stats.TABLE_MEASURES:
        fmt = stats.measure_fmt(c)
        cells.append(
            {
                "value": fmt_value(r.values.get(c), fmt),
                "previous": fmt_value(r.previous.get(c), fmt),
                "last_year": fmt_value(r.last_year.get(c), fmt),
                "url": link("/stats/tickets", q, measure=c, key=r.key),
            }
        )
    score = None if r.score is None else f"{r.score:.1f}"  # the composite is 0-100
    return {"name": r.name, "few": r.few, "drill": drill, "cells": cells, "score": score}


def chart_data(view: stats.StatsView, q: dict[str, Any]) -> dict[str, Any]:
    """What stats.js draws: the trend, the ranking bars and the map, each point with the link behind it."""
    m = view.measure
    fmt = "decimal" if m == stats.SCORE else stats.measure_fmt(m)
    scale = 100 if fmt == "pct" else 1  # rates as percentages; the composite is 0-100 already

    def pick(values: dict[str, float | None], score: float | None) -> float | None:
        v = score if m == stats.SCORE else values.get(m)
        return None if v is None else round(v * scale, 2)

    trend = {
        "labels": [r.name for r in view.trend.rows],
        "volume": [r.values.get("volume") for r in view.trend.rows],
        "volume_last_year": [r.last_year.get("volume") for r in view.trend.rows],
        "completion": [pick_pct(r.values.get("completion_rate")) for r in view.trend.rows],
        "urls": [link("/stats/tickets", q, measure="volume", key=r.key) for r in view.trend.rows],
    }
    # The ranked first (in rank order); units with too few tickets only when none is ranked, greyed.
    ranked = [r for r in view.ranking if r.rank is not None][:20]
    if not ranked:
        ranked = [r for r in view.ranking if r.value is not None][:20]
    ranking = {
        "names": [r.name + ("（样本不足）" if r.few else "") for r in ranked],
        "values": [None if r.value is None else round(r.value * scale, 2) for r in ranked],
        "previous": [
            None if r.previous_value is None else round(r.previous_value * scale, 2) for r in ranked
        ],
        "urls": [_rank_link(r, q, view) for r in ranked],
        "few": [r.few for r in ranked],
    }
    area_rows = [r for r in view.table.rows if r.key.startswith("area:")]
    map_data = [
        {
            "name": r.name,
            "value": pick(r.values, r.score),
            "url": link("/stats", q, area=r.code, unit=None, by=None),
        }
        for r in area_rows
    ]
    label = "综合得分" if m == stats.SCORE else BY_CODE[m].label_zh
    unit = "%" if fmt == "pct" else ""
    return {"trend": trend, "ranking": ranking, "map": map_data, "measure": label, "unit": unit}


def pick_pct(v: float | None) -> float | None:
    return None if v is None else round(v * 100, 2)


def _rank_link(r: Any, q: dict[str, Any], view: stats.StatsView) -> str:
    kind = r.key.partition(":")[0]
    measure = "volume" if view.measure == stats.SCORE else view.measure
    if kind == "area":
        return link("/stats", q, area=r.code, unit=None, by=None)
    return link("/stats/tickets", q, measure=measure, key=r.key)


# ------------------------------------------------------------------------------------------------ exports
@router.get("/stats/export.xlsx")
def stats_export(request: Request, state: StateDep, user: StatsUser) -> Response:
    view, _ = _view(request, state)
    scope, period = view.scope, view.period
    title = f"{scope.name}{stats.GROUPINGS[view.by]}"
    measure = None if view.measure == stats.SCORE else view.measure
    tables = [
        stats.table_export(view.table, title),
        stats.ranking_export(view.ranking, f"排名（{stats.RANK_LEVELS[view.level]}）", measure),
        stats.table_export(view.trend, "趋势", ("volume", "completion_rate", "satisfaction_rate")),
    ]
    name = download_name(f"统计分析_{scope.name}_{period}", "xlsx")
    return file_response(to_xlsx(tables), XLSX_MEDIA_TYPE, name)


@router.get("/stats/report")
def report_download(request: Request, state: StateDep, user: StatsUser) -> Response:
    qp = request.query_params
    period = parse_period(qp, state)
    fmt = qp.get("format") or "pdf"
    if fmt not in ("pdf", "xlsx"):
        raise Invalid("format 只能是 pdf 或 xlsx")
    with core.read_tx(state) as session:
        report = build_report(session, period, state.clock.now(), state.settings)
    if fmt == "pdf":
        return file_response(report_pdf(report), PDF_MEDIA_TYPE, download_name(report.stem, "pdf"))
    return file_response(report_xlsx(report), XLSX_MEDIA_TYPE, download_name(report.stem, "xlsx"))


# ------------------------------------------------------------------------------------- tickets behind
def _behind(request: Request, state: Any, user: Principal) -> tuple[Any, ...]:
    """The period, scope, measure and row key of a figure; a handler's scope is always its own unit."""
    qp = request.query_params
    period = parse_period(qp, state)
    measure = qp.get("measure") or "volume"
    if measure not in BY_CODE:
        raise Invalid(f"未知指标 {measure[:40]}")
    part = qp.get("part") or "base"
    if part not in ("base", "numerator", "rest"):
        raise Invalid("part 只能是 base、numerator 或 rest")
    key = (qp.get("key") or "total").strip()[:80]
    area, unit = code_param(qp, "area"), code_param(qp, "unit")
    if user.role is Role.HANDLER:
        unit = None  # replaced below by the handler's own unit code
    return period, area, unit, measure, part, None if key == "total" else key


@router.get("/stats/tickets")
def tickets_page(request: Request, state: StateDep, user: ListUser) -> Response:
    period, area, unit, measure, part, key = _behind(request, state, user)
    try:
        offset = max(0, min(int(request.query_params.get("offset") or 0), 100_000))
    except ValueError as e:
        raise Invalid("offset 无效") from e
    with core.read_tx(state) as session:
        if user.role is Role.HANDLER and user.unit_id is not None:
            unit = stats.unit_of(session, user.unit_id).code
        ids = tickets_behind(
            session, period, Scope(area, unit), measure, key, part=part, settings=state.settings
        )
        page = stats.tickets_by_ids(session, user, ids, limit=PAGE, offset=offset)
        scope = stats.scope_view(session, area, unit)
        key_name = stats.key_label(session, key)
    qp = request.query_params
    q = {k: v for k, v in qp.items() if k != "offset"}
    ctx = {
        "page": page,
        "period": period,
        "scope": scope,
        "measure": BY_CODE[measure],
        "part": part,
        "key": key,
        "key_name": key_name,
        "parts": [
            (p, label, link_all(q, part=p))
            for p, label in (("base", "全部"), ("numerator", "计入分子"), ("rest", "未计入"))
        ],
        "next_url": link_all(q, offset=offset + PAGE) if page.has_next else None,
        "prev_url": link_all(q, offset=max(0, offset - PAGE)) if offset else None,
        "export_url": "/stats/tickets.xlsx?" + urlencode(q),
        "back_url": link("/stats", q) if user.role is not Role.HANDLER else link("/stats/unit", q),
    }
    return core.render(request, "stats_tickets.html", ctx, user=user)


def link_all(q: dict[str, Any], **changes: Any) -> str:
    return "/stats/tickets?" + urlencode({**q, **{k: str(v) for k, v in changes.items()}})


@router.get("/stats/tickets.xlsx")
def tickets_export(request: Request, state: StateDep, user: ListUser) -> Response:
    period, area, unit, measure, part, key = _behind(request, state, user)
    with core.read_tx(state) as session:
        if user.role is Role.HANDLER and user.unit_id is not None:
            unit = stats.unit_of(session, user.unit_id).code
        ids = tickets_behind(
            session, period, Scope(area, unit), measure, key, part=part, settings=state.settings
        )
        page = stats.tickets_by_ids(session, user, ids, limit=EXPORT_ROWS)
    title = f"{BY_CODE[measure].label_zh}_{period}"
    table = stats.ticket_export(page.rows, title)
    return file_response(to_xlsx(table), XLSX_MEDIA_TYPE, download_name(f"工单_{title}", "xlsx"))
