"""The big screen (大屏, 1920×1080): today's counts by hour, channel and category, a live feed of new tickets
over server-sent events, the map of areas by volume or overdue, unit rankings and the rates.

The rates and the ranking are of a period (`?period=`: the last seven days by default, or today, this week,
this month, last month, this quarter, this year, or any period `Period.parse` reads), from `services.measures`
as every report; today's counts and the feed stay live.

The figures come from `services.screen` (bounded, indexed ranges; never whole tables) and are cached here for
a few seconds, because every wallboard in the centre polls them.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import anyio
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from minsheng.bootstrap import Platform
from minsheng.domain.states import Channel
from minsheng.http.uow import UnitOfWorkRoute
from minsheng.measures.periods import Period, PeriodError, local_day
from minsheng.services import org
from minsheng.services.auth import Principal
from minsheng.services.errors import Invalid
from minsheng.services.screen import figures
from minsheng.web import core
from minsheng.web.core import StateDep
from minsheng.web.feed import TicketFeed

router = APIRouter(route_class=UnitOfWorkRoute, include_in_schema=False)
CACHE_SECONDS = 10.0
STREAM_SECONDS = 25.0  # the browser's EventSource reconnects; a bounded stream never blocks a shutdown
POLL_SECONDS = 2.0
_cache: dict[tuple[int, str], tuple[float, dict[str, Any]]] = {}
_cache_lock = threading.Lock()


def install_stream_stop(app: FastAPI, state: Platform) -> Callable[[], None]:
    stop = threading.Event()
    app.state.minsheng_stream_stop = stop
    app.state.minsheng_feed = TicketFeed(state.db, describe, POLL_SECONDS)
    return stop.set


def _screen_user(request: Request, state: Platform) -> Principal:
    # GET only: no form, no CSRF; the same role rule as the page.
    p = core._lookup(request, state)
    if p is None:
        raise core.LoginRequired(request.url.path)
    if p.role not in core.SCREEN_ROLES:
        raise core.PageDenied(f"您的角色（{p.role.label}）无权访问此页面。")
    return p


def screen_period(request: Request, state: Platform) -> Period | None:
    """The period of `?period=` (None: the last seven days); a bad one is a 422 page, not a 500."""
    text = (request.query_params.get("period") or "").strip()[:40]
    if not text:
        return None
    try:
        return Period.parse(text)
    except PeriodError as e:
        raise Invalid(f"统计期无效：{text[:30]}") from e


def period_choices(state: Platform) -> list[tuple[str, str]]:
    """The selector's choices: (value, label); "" is the default window of the last seven days."""
    d = local_day(state.clock.now())
    month = Period.month(d.year, d.month)
    return [
        ("", "近7天"),
        (str(Period.day(d)), "今日"),
        (str(Period.containing(d, "week")), "本周"),
        (str(month), "本月"),
        (str(month.previous()), "上月"),
        (str(Period.containing(d, "quarter")), "本季度"),
        (str(Period.year(d.year)), "本年"),
    ]


@router.get("/screen")
def screen(request: Request, state: StateDep) -> Response:
    user = _screen_user(request, state)
    period = screen_period(request, state)
    data = screen_data(state, period)
    with core.read_tx(state) as session:
        geo = org.city_map(session)
    choices = period_choices(state)
    chosen = str(period) if period else ""
    if chosen and chosen not in {v for v, _ in choices}:
        choices.append((chosen, period.label if period else chosen))
    ctx = {"data": data, "geo": geo, "periods": choices, "chosen": chosen}
    return core.render(request, "screen.html", ctx, user=user)


@router.get("/screen/data")
def screen_json(request: Request, state: StateDep) -> JSONResponse:
    _screen_user(request, state)
    data = screen_data(state, screen_period(request, state))
    return JSONResponse(json.loads(json.dumps(data, default=str)))


def screen_data(state: Platform, period: Period | None = None) -> dict[str, Any]:
    """The figures, kept for CACHE_SECONDS per platform and period: every wallboard polls them."""
    key = (id(state), str(period or ""))
    now_mono = time.monotonic()
    with _cache_lock:
        hit = _cache.get(key)
        if hit and hit[0] > now_mono:
            return hit[1]
    with core.read_tx(state) as session:
        data = figures(session, state.clock.now(), core.TZ, period=period, settings=state.settings)
    with _cache_lock:
        # Periods are few in practice, but a client may ask for many: forget the expired ones.
        for k in [k for k, (until, _) in _cache.items() if until <= now_mono]:
            del _cache[k]
        _cache[key] = (now_mono + CACHE_SECONDS, data)
    return data


@router.get("/screen/events")
async def events(request: Request, state: StateDep) -> StreamingResponse:
    """Server-sent events: one `ticket` event per new ticket; `?once=1` sends the latest five and ends."""
    await anyio.to_thread.run_sync(_screen_user, request, state)
    feed: TicketFeed = request.app.state.minsheng_feed
    stop: threading.Event = request.app.state.minsheng_stream_stop
    body = feed.stream(
        once=request.query_params.get("once") == "1", seconds=STREAM_SECONDS, stopped=stop.is_set
    )
    return StreamingResponse(body, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


def describe(row: tuple[Any, ...]) -> dict[str, Any]:
    i, n, t, c, at = row
    return {
        "id": i,
        "number": n,
        "title": t,
        "at": core.fmt_dt(at, "%H:%M:%S"),
        "channel": Channel(c).label if c in Channel.values() else c,
    }
