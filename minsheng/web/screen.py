"""The big screen (大屏, 1920×1080): today's counts by hour, channel and category, a live feed of new tickets
over server-sent events, the map of areas by volume or overdue, unit rankings and the rates.

The figures come from bounded, indexed ranges (today's and the last seven days' tickets by `created_at`), are
cached for a few seconds because every wallboard in the centre polls them, and never count whole tables.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import anyio
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from minsheng.bootstrap import Platform
from minsheng.domain.states import OPEN_TICKET_STATES, Channel, Rating, TicketState
from minsheng.http.uow import UnitOfWorkRoute
from minsheng.services.auth import Principal
from minsheng.storage.models import Area, Assignment, Category, Ticket, Unit
from minsheng.web import core, views
from minsheng.web.core import StateDep
from minsheng.web.feed import TicketFeed

router = APIRouter(route_class=UnitOfWorkRoute, include_in_schema=False)
CACHE_SECONDS = 10.0
STREAM_SECONDS = 25.0  # the browser's EventSource reconnects; a bounded stream never blocks a shutdown
POLL_SECONDS = 2.0
WINDOW_DAYS = 7
_cache: dict[int, tuple[float, dict[str, Any]]] = {}
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


@router.get("/screen")
def screen(request: Request, state: StateDep) -> Response:
    user = _screen_user(request, state)
    data = screen_data(state)
    with core.read_tx(state) as session:
        level = views.map_level(session)
        geo = views.area_geojson(session, level) if level else None
    return core.render(request, "screen.html", {"data": data, "geo": geo}, user=user)


@router.get("/screen/data")
def screen_json(request: Request, state: StateDep) -> JSONResponse:
    _screen_user(request, state)
    return JSONResponse(json.loads(json.dumps(screen_data(state), default=str)))


def _day_start(now: datetime) -> datetime:
    local = now.astimezone(core.TZ)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(now.tzinfo)


def screen_data(state: Platform) -> dict[str, Any]:
    key = id(state)
    now_mono = time.monotonic()
    with _cache_lock:
        hit = _cache.get(key)
        if hit and hit[0] > now_mono:
            return hit[1]
    with core.read_tx(state) as session:
        data = compute(session, state.clock.now())
    with _cache_lock:
        _cache[key] = (now_mono + CACHE_SECONDS, data)
    return data


def compute(session: Session, now: datetime) -> dict[str, Any]:
    start = _day_start(now)
    week = now - timedelta(days=WINDOW_DAYS)
    today = session.execute(
        select(Ticket.created_at, Ticket.channel, Ticket.category_id, Ticket.area_id)
        .where(Ticket.created_at >= start)
        .limit(200_000)
    ).all()
    hours = [0] * 24
    channels: Counter[str] = Counter()
    cats: Counter[int | None] = Counter()
    for at, channel, cat_id, _area in today:
        hours[at.astimezone(core.TZ).hour] += 1
        channels[channel] += 1
        cats[cat_id] += 1
    recent = session.execute(
        select(
            Ticket.id, Ticket.state, Ticket.area_id, Ticket.rating, Ticket.resolve_due_at, Ticket.reopen_count
        )
        .where(Ticket.created_at >= week)
        .limit(500_000)
    ).all()
    ids = [r[0] for r in recent]
    per_unit: dict[int, Counter[str]] = defaultdict(Counter)
    signed = reported = total_a = 0
    for i in range(0, len(ids), 5000):
        chunk = ids[i : i + 5000]
        for unit_id, st, signed_at, reported_at in session.execute(
            select(Assignment.unit_id, Assignment.state, Assignment.signed_at, Assignment.reported_at).where(
                Assignment.ticket_id.in_(chunk)
            )
        ):
            c = per_unit[unit_id]
            c["total"] += 1
            c[st] += 1
            total_a += 1
            signed += signed_at is not None
            reported += reported_at is not None
    open_states = {s.value for s in OPEN_TICKET_STATES}
    done_states = {TicketState.CLOSED.value, TicketState.RATED.value}
    area_volume: Counter[int] = Counter(a for *_x, a in today if a)
    area_overdue: Counter[int] = Counter()
    closed = rated = good = reopened = 0
    for _id, st, area_id, rating, due, reopen in recent:
        if st in open_states and due is not None and due < now and area_id:
            area_overdue[area_id] += 1
        if st in done_states:
            closed += 1
            reopened += reopen > 0
        if rating:
            rated += 1
            good += not Rating(rating).is_dissatisfied
    # Roll areas up to the map's level through their paths ("/C/C01/C0101/").
    level = views.map_level(session)
    by_map_area: dict[str, dict[str, int]] = {}
    if level:
        depth = [lv for lv in ("city", "district", "street", "community", "grid")].index(level)
        map_areas = dict(
            session.execute(select(Area.code, Area.name).where(Area.level == level)).tuples().all()
        )
        used = set(area_volume) | set(area_overdue)
        paths = dict(session.execute(select(Area.id, Area.path).where(Area.id.in_(used))).tuples().all())
        for area_id, path in paths.items():
            parts = path.strip("/").split("/")
            if len(parts) > depth and parts[depth] in map_areas:
                name = map_areas[parts[depth]]
                slot = by_map_area.setdefault(name, {"volume": 0, "overdue": 0})
                slot["volume"] += area_volume.get(area_id, 0)
                slot["overdue"] += area_overdue.get(area_id, 0)
    cat_names = _top_categories(session, {c for c in cats if c})
    cat_counts: Counter[str] = Counter()
    for cid, n in cats.items():
        cat_counts[cat_names.get(cid or 0, "未分类")] += n
    units = dict(
        session.execute(select(Unit.id, Unit.name).where(Unit.id.in_(list(per_unit)))).tuples().all()
    )
    ranking: list[dict[str, Any]] = sorted(
        (
            {
                "unit": units.get(uid, str(uid)),
                "total": c["total"],
                "closed": c["closed"],
                "returned": c["returned"],
                "rate": round(100 * c["closed"] / c["total"], 1) if c["total"] else 0.0,
            }
            for uid, c in per_unit.items()
        ),
        key=lambda r: (-r["rate"], -r["total"]),
    )
    feed = session.execute(
        select(Ticket.number, Ticket.title, Ticket.channel, Ticket.created_at)
        .order_by(Ticket.created_at.desc())
        .limit(10)
    ).all()
    n = len(recent)
    return {
        "at": core.fmt_dt(now, "%Y-%m-%d %H:%M:%S"),
        "today_total": len(today),
        "hours": hours,
        "channels": [
            {"name": Channel(c).label if c in Channel.values() else c, "value": v}
            for c, v in channels.most_common()
        ],
        "categories": [{"name": k, "value": v} for k, v in cat_counts.most_common(8)],
        "map": [{"name": k, **v} for k, v in by_map_area.items()],
        "ranking": ranking[:10],
        "ranking_worst": sorted(ranking, key=lambda r: (-r["returned"], r["rate"]))[:5],
        "rates": {
            "sign_rate": _pct(signed, total_a),
            "feedback_rate": _pct(reported, total_a),
            "completion_rate": _pct(closed, n),
            "satisfaction_rate": _pct(good, rated),
            "reopen_rate": _pct(reopened, closed),
        },
        "window_total": n,
        "feed": [
            {
                "number": num,
                "title": title,
                "channel": Channel(ch).label if ch in Channel.values() else ch,
                "at": core.fmt_dt(at, "%H:%M:%S"),
            }
            for num, title, ch, at in feed
        ],
    }


def _pct(a: int, b: int) -> float | None:
    return round(100.0 * a / b, 1) if b else None


def _top_categories(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    paths = dict(
        session.execute(select(Category.id, Category.path).where(Category.id.in_(ids))).tuples().all()
    )
    tops = {p.strip("/").split("/")[0] for p in paths.values()}
    names = dict(
        session.execute(select(Category.code, Category.name).where(Category.code.in_(tops))).tuples().all()
    )
    return {cid: names.get(p.strip("/").split("/")[0], "未分类") for cid, p in paths.items()}


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
