"""本单位 (`/stats/unit`): a handling unit's own measures against the city's, its rank among units of its kind,
and its overdue and returned tickets; and the public rankings on the citizens' portal (`/public/rankings`).

A handler sees only its own unit, and only the tickets its unit holds or handled before (never another unit's,
never a confidential one it no longer holds: `services.stats.listable_by`). Supervisors, leaders and admins
may open any unit's page (`?unit=CODE`). The public page shows the monthly ranking of units and the replies of
closed tickets whose citizens agreed to publication, personal data masked; no confidential ticket ever.
"""

from __future__ import annotations

import threading
import time
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from minsheng.domain.roles import Role
from minsheng.http.uow import UnitOfWorkRoute
from minsheng.measures.catalogue import BY_CODE
from minsheng.measures.periods import Period, PeriodError
from minsheng.services import stats
from minsheng.services.auth import Principal
from minsheng.services.errors import Invalid
from minsheng.services.exports import XLSX_MEDIA_TYPE, download_name, to_xlsx
from minsheng.services.report_render import fmt_value
from minsheng.web import core
from minsheng.web.core import MaybeUser, StateDep
from minsheng.web.stats import code_param, file_response, link, parse_period, quick_periods, today

router = APIRouter(route_class=UnitOfWorkRoute, include_in_schema=False)
UnitUser = Annotated[Principal, core.need(core.BOARD_ROLES | {Role.HANDLER})]
PUBLIC_LEVELS = ("district_office", "street_office", "department")


def _unit_code(request: Request, session: Any, user: Principal) -> str | None:
    """A handler's own unit; for the centre's roles the unit asked for (None: let them choose)."""
    if user.role is Role.HANDLER:
        if user.unit_id is None:
            raise Invalid("您的账号未关联承办单位")
        return stats.unit_of(session, user.unit_id).code
    return code_param(request.query_params, "unit")


@router.get("/stats/unit")
def unit_page(request: Request, state: StateDep, user: UnitUser) -> Response:
    qp = request.query_params
    period = parse_period(qp, state)
    with core.read_tx(state) as session:
        code = _unit_code(request, session, user)
        if code is None:
            ctx = {"choose": stats.unit_choices(session), "period": period, "view": None}
            return core.render(request, "stats_unit.html", ctx, user=user)
        view = stats.unit_view(session, period, code, state.clock.now(), state.settings)
    q = {"period": str(period)} | ({"unit": code} if user.role is not Role.HANDLER else {})
    ctx = {
        "view": view,
        "period": period,
        "q": q,
        "rows": _compare_rows(view, q),
        "quick": [(label, p, link("/stats/unit", q, period=p)) for label, p in quick_periods(state)],
        "export_url": "/stats/unit/export.xlsx?" + urlencode(q),
        "report_urls": None,
    }
    return core.render(request, "stats_unit.html", ctx, user=user)


def _compare_rows(view: stats.UnitView, q: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for code in stats.TABLE_MEASURES:
        fmt = stats.measure_fmt(code)
        mine, city = view.unit_row, view.city_row
        out.append(
            {
                "label": BY_CODE[code].label_zh,
                "mine": fmt_value(mine.values.get(code), fmt),
                "previous": fmt_value(mine.previous.get(code), fmt),
                "last_year": fmt_value(mine.last_year.get(code), fmt),
                "city": fmt_value(city.values.get(code), fmt),
                "better": _better(code, mine.values.get(code), city.values.get(code)),
                "url": link("/stats/tickets", q, measure=code, key="total", unit=view.unit_code),
            }
        )
    return out


def _better(code: str, mine: float | None, city: float | None) -> str:
    # A count against the whole city's says nothing (the city is bigger): only rates and times compare.
    if mine is None or city is None or mine == city or BY_CODE[code].kind == "count":
        return ""
    return "up" if (mine > city) == BY_CODE[code].higher_is_better else "down"


@router.get("/stats/unit/export.xlsx")
def unit_export(request: Request, state: StateDep, user: UnitUser) -> Response:
    period = parse_period(request.query_params, state)
    with core.read_tx(state) as session:
        code = _unit_code(request, session, user)
        if code is None:
            raise Invalid("请选择单位")
        view = stats.unit_view(session, period, code, state.clock.now(), state.settings)
    tables = stats.unit_export(view)
    return file_response(
        to_xlsx(tables), XLSX_MEDIA_TYPE, download_name(f"本单位_{view.unit_name}_{period}", "xlsx")
    )


# ------------------------------------------------------------------------------------------ public page
PUBLIC_CACHE_SECONDS = 60.0
_public_lock = threading.Lock()


def _public_board(request: Request, state: Any, period: Period) -> stats.PublicBoard:
    """The month's board, kept a minute per app and month: anyone may ask for it, as often as they like."""
    cache: dict[str, tuple[float, stats.PublicBoard]]
    with _public_lock:
        cache = getattr(request.app.state, "minsheng_public_rankings", None) or {}
        request.app.state.minsheng_public_rankings = cache
        key, now = str(period), time.monotonic()
        hit = cache.get(key)
        if hit and hit[0] > now:
            return hit[1]
    with core.read_tx(state) as session:
        board = stats.public_board(session, period, state.settings, PUBLIC_LEVELS)
    with _public_lock:
        for k in [k for k, (until, _) in cache.items() if until <= now]:
            del cache[k]
        cache[key] = (now + PUBLIC_CACHE_SECONDS, board)
    return board


@router.get("/public/rankings")
def public_rankings(request: Request, state: StateDep, user: MaybeUser) -> Response:
    text = (request.query_params.get("month") or "").strip()[:20]
    d = today(state)
    try:
        period = Period.parse(text) if text else Period.month(d.year, d.month).previous()
    except PeriodError as e:
        raise Invalid("月份格式应为 2026-11") from e
    if period.grain != "month":
        raise Invalid("请按月查看，例如 2026-11")
    board = _public_board(request, state, period)
    months = [Period.month(d.year, d.month)]
    for _ in range(11):
        months.append(months[-1].previous())
    ctx = {"board": board, "period": period, "months": [(str(m), m.label) for m in months]}
    return core.render(request, "public_rankings.html", ctx, user=user)
