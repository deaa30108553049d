"""The big screen's figures (大屏): today's counts by hour, channel and category, the map of areas by volume and
overdue tickets, unit rankings, the rates of the last seven days and the newest tickets.

Every query reads a bounded, indexed range (today's and the last seven days' tickets by `created_at`, their
assignments by ticket id in chunks) and never counts a whole table; the page caches the result, because every
wallboard in the centre polls it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from minsheng.domain.states import OPEN_TICKET_STATES, AreaLevel, Channel, Rating, TicketState
from minsheng.services import org
from minsheng.storage.models import Assignment, Category, Ticket

WINDOW_DAYS = 7
TODAY_LIMIT = 200_000
WINDOW_LIMIT = 500_000
CHUNK = 5000  # ticket ids per IN list: every driver takes this many parameters
_OPEN = {s.value for s in OPEN_TICKET_STATES}
_DONE = {TicketState.CLOSED.value, TicketState.RATED.value}
# (created_at, channel, category_id, area_id) of today's tickets
TodayRow = tuple[datetime, str, int | None, int | None]
# (id, state, area_id, rating, resolve_due_at, reopen_count) of the window's tickets
WindowRow = tuple[int, str, int | None, str | None, datetime | None, int]


def day_start(now: datetime, tz: tzinfo) -> datetime:
    """Midnight of `now`'s day in the hotline's zone, in `now`'s zone."""
    local = now.astimezone(tz)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(now.tzinfo)


def figures(session: Session, now: datetime, tz: tzinfo) -> dict[str, Any]:
    """Everything the screen shows, as JSON-ready values; days and hours are counted in `tz`."""
    today = _today(session, day_start(now, tz))
    window = _window(session, now - timedelta(days=WINDOW_DAYS))
    units = _assignments(session, [r[0] for r in window])
    outcomes = _outcomes(window, now)
    area_volume: Counter[int] = Counter(r[3] for r in today if r[3])
    ranking = _ranking(session, units.per_unit)
    n = len(window)
    return {
        "at": now.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S"),
        "today_total": len(today),
        "hours": _hours(today, tz),
        "channels": [
            {"name": _channel(c), "value": v} for c, v in Counter(r[1] for r in today).most_common()
        ],
        "categories": _categories(session, Counter(r[2] for r in today)),
        "map": _map(session, area_volume, outcomes.area_overdue),
        "ranking": ranking[:10],
        "ranking_worst": sorted(ranking, key=lambda r: (-r["returned"], r["rate"]))[:5],
        "rates": {
            "sign_rate": _pct(units.signed, units.total),
            "feedback_rate": _pct(units.reported, units.total),
            "completion_rate": _pct(outcomes.closed, n),
            "satisfaction_rate": _pct(outcomes.good, outcomes.rated),
            "reopen_rate": _pct(outcomes.reopened, outcomes.closed),
        },
        "window_total": n,
        "feed": _feed(session, tz),
    }


def _today(session: Session, start: datetime) -> Sequence[TodayRow]:
    return (
        session.execute(
            select(Ticket.created_at, Ticket.channel, Ticket.category_id, Ticket.area_id)
            .where(Ticket.created_at >= start)
            .limit(TODAY_LIMIT)
        )
        .tuples()
        .all()
    )


def _window(session: Session, since: datetime) -> Sequence[WindowRow]:
    return (
        session.execute(
            select(
                Ticket.id,
                Ticket.state,
                Ticket.area_id,
                Ticket.rating,
                Ticket.resolve_due_at,
                Ticket.reopen_count,
            )
            .where(Ticket.created_at >= since)
            .limit(WINDOW_LIMIT)
        )
        .tuples()
        .all()
    )


def _hours(today: Sequence[TodayRow], tz: tzinfo) -> list[int]:
    hours = [0] * 24
    for r in today:
        hours[r[0].astimezone(tz).hour] += 1
    return hours


@dataclass
class _UnitCounts:
    per_unit: dict[int, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    signed: int = 0
    reported: int = 0
    total: int = 0


def _assignments(session: Session, ids: list[int]) -> _UnitCounts:
    """Per unit, the window's assignments by state; overall, how many were signed and reported on."""
    out = _UnitCounts()
    for i in range(0, len(ids), CHUNK):
        chunk = ids[i : i + CHUNK]
        for unit_id, st, signed_at, reported_at in session.execute(
            select(Assignment.unit_id, Assignment.state, Assignment.signed_at, Assignment.reported_at).where(
                Assignment.ticket_id.in_(chunk)
            )
        ):
            c = out.per_unit[unit_id]
            c["total"] += 1
            c[st] += 1
            out.total += 1
            out.signed += signed_at is not None
            out.reported += reported_at is not None
    return out


@dataclass
class _Outcomes:
    area_overdue: Counter[int] = field(default_factory=Counter)
    closed: int = 0
    rated: int = 0
    good: int = 0
    reopened: int = 0


def _outcomes(window: Sequence[WindowRow], now: datetime) -> _Outcomes:
    """Overdue open tickets per area; closed, rated, satisfied and reopened tickets of the window."""
    out = _Outcomes()
    for _id, st, area_id, rating, due, reopen in window:
        if st in _OPEN and due is not None and due < now and area_id:
            out.area_overdue[area_id] += 1
        if st in _DONE:
            out.closed += 1
            out.reopened += reopen > 0
        if rating:
            out.rated += 1
            out.good += not Rating(rating).is_dissatisfied
    return out


def _map(session: Session, volume: Counter[int], overdue: Counter[int]) -> list[dict[str, Any]]:
    """Volume and overdue per area of the map's level, rolled up through the areas' paths ("/C/C01/C0101/")."""
    level = org.map_level(session)
    by_map_area: dict[str, dict[str, int]] = {}
    if level:
        depth = AreaLevel(level).depth  # the position of that level's code in an area's path
        map_areas = org.area_names_at(session, level)
        for area_id, path in org.area_paths(session, set(volume) | set(overdue)).items():
            parts = path.strip("/").split("/")
            if len(parts) > depth and parts[depth] in map_areas:
                slot = by_map_area.setdefault(map_areas[parts[depth]], {"volume": 0, "overdue": 0})
                slot["volume"] += volume.get(area_id, 0)
                slot["overdue"] += overdue.get(area_id, 0)
    return [{"name": k, **v} for k, v in by_map_area.items()]


def _categories(session: Session, cats: Counter[int | None]) -> list[dict[str, Any]]:
    """Today's eight largest top-level categories."""
    cat_names = _top_categories(session, {c for c in cats if c})
    cat_counts: Counter[str] = Counter()
    for cid, n in cats.items():
        cat_counts[cat_names.get(cid or 0, "未分类")] += n
    return [{"name": k, "value": v} for k, v in cat_counts.most_common(8)]


def _top_categories(session: Session, ids: set[int]) -> dict[int, str]:
    """Category id → the name of its top-level category."""
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


def _ranking(session: Session, per_unit: dict[int, Counter[str]]) -> list[dict[str, Any]]:
    """Units by completion rate, then by volume."""
    units = org.unit_names(session, set(per_unit))
    return sorted(
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


def _feed(session: Session, tz: tzinfo) -> list[dict[str, Any]]:
    """The ten newest tickets."""
    rows = session.execute(
        select(Ticket.number, Ticket.title, Ticket.channel, Ticket.created_at)
        .order_by(Ticket.created_at.desc())
        .limit(10)
    ).all()
    return [
        {"number": num, "title": title, "channel": _channel(ch), "at": at.astimezone(tz).strftime("%H:%M:%S")}
        for num, title, ch, at in rows
    ]


def _channel(value: str) -> str:
    return Channel(value).label if value in Channel.values() else value


def _pct(a: int, b: int) -> float | None:
    return round(100.0 * a / b, 1) if b else None
