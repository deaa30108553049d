"""热点分析 (`/stats/hotspots`): the hot topics of a period and an area, ranked by heat, with their trend against
the previous period of equal length, their tickets, and the hot places on the city map.

Supervisors, leaders and admins see the whole city; a handling unit's staff see the topics of the tickets their
unit holds (`services.hotspots`, through `queries.visible_to`). The analysis reads every ticket of the period
and the one before, so its result is kept for a few minutes per period, area and what the viewer may see.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import QueryParams

from minsheng.bootstrap import Platform
from minsheng.domain.digits import whole_number
from minsheng.domain.roles import Role
from minsheng.http.uow import UnitOfWorkRoute
from minsheng.measures.periods import Period, PeriodError, local_day
from minsheng.services import hotspots as service
from minsheng.services import org
from minsheng.services.auth import Principal
from minsheng.services.errors import Invalid
from minsheng.services.queries import can_see_all
from minsheng.web import core
from minsheng.web.core import StateDep

router = APIRouter(route_class=UnitOfWorkRoute, include_in_schema=False)
HOTSPOT_ROLES = core.BOARD_ROLES | {Role.HANDLER}
HotspotUser = Annotated[Principal, core.need(HOTSPOT_ROLES)]
DEFAULT_DAYS = 30
DEFAULT_TOP = 20
CACHE_SECONDS = 300.0
CACHE_ENTRIES = 32
PRESETS = (("近7天", 7), ("近30天", 30), ("近90天", 90))

_cache: OrderedDict[tuple[Any, ...], tuple[float, service.HotspotReport]] = OrderedDict()
_cache_lock = threading.Lock()


def clear_cache() -> None:
    """Forget every kept result (tests, and after an import of history)."""
    with _cache_lock:
        _cache.clear()


def _period(qp: QueryParams, state: Platform) -> Period:
    """`from`+`to` (days), else `period` (2026-11, 2026-W48, 2026-11-01..2026-11-30 …), else the last 30 days."""
    start, end = (qp.get("from") or "").strip(), (qp.get("to") or "").strip()
    text = f"{start}..{end}" if start and end else (qp.get("period") or "").strip()
    days = (qp.get("days") or "").strip()
    today = local_day(state.clock.now())
    if not text and days:
        if days not in {str(n) for _, n in PRESETS}:
            raise Invalid("统计天数只能是 7、30 或 90")
        return Period.last_days(today, int(days))
    if not text:
        return Period.last_days(today, DEFAULT_DAYS)
    try:
        return Period.parse(text[:60])
    except PeriodError as e:
        raise Invalid(
            f"统计期无效（{text[:30]}）：可填 2026-11-03、2026-W48、2026-11、2026-Q4 或日期范围"
        ) from e


def _area(qp: QueryParams) -> str | None:
    v = (qp.get("area") or "").strip()
    if not v:
        return None
    if len(v) > 32 or not v.isalnum():
        raise Invalid("区划代码无效")
    return v


def _top(qp: QueryParams) -> int:
    v = (qp.get("top") or "").strip()
    if not v:
        return DEFAULT_TOP
    top = whole_number(v, 1, service.MAX_TOP)
    if top is None:
        raise Invalid(f"显示条数应为 1 到 {service.MAX_TOP}")
    return top


def _report(
    state: Platform, user: Principal, period: Period, area: str | None, top: int
) -> service.HotspotReport:
    """The analysis, kept CACHE_SECONDS per (platform, period, area, top, what the viewer may see)."""
    seen = "all" if can_see_all(user.role) else f"unit:{user.unit_id}"
    key = (id(state), str(period), area, top, seen)
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
    start, end = period.utc_bounds()
    with core.read_tx(state) as session:
        loaded = service.load(session, start, end, area_code=area, who=user)
    report = service.analyse(loaded, top=top)  # CPU only: outside the transaction
    with _cache_lock:
        _cache[key] = (now + CACHE_SECONDS, report)
        while len(_cache) > CACHE_ENTRIES:
            _cache.popitem(last=False)
    return report


@router.get("/stats/hotspots")
def hotspots_page(request: Request, state: StateDep, user: HotspotUser) -> Response:
    qp = request.query_params
    period = _period(qp, state)
    area = _area(qp)
    top = _top(qp)
    report = _report(state, user, period, area, top)
    with core.read_tx(state) as session:
        geo = org.city_map(session)
        areas = org.area_options(session)
    ctx = {
        "period": period,
        "period_text": str(period),
        "from": period.start.isoformat(),
        "to": (period.end - timedelta(days=1)).isoformat(),
        "previous_to": (period.start - timedelta(days=1)).isoformat(),
        "area": area,
        "top": top,
        "areas": areas,
        "presets": PRESETS,
        "report": report,
        "geo": geo,
        "map_points": [
            {
                "name": p["name"],
                "short": p["short"],
                "value": [p["lon"], p["lat"], p["heat"]],
                "topics": p["topics"],
                "count": p["count"],
            }
            for p in report.places
        ],
        "scoped": not can_see_all(user.role),
    }
    return core.render(request, "hotspots.html", ctx, user=user)
