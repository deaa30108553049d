"""The big screen's figures (大屏): today's counts by hour, channel and category, the map of areas by volume and
overdue tickets, unit rankings, the rates of the last seven days (or of a period) and the newest tickets.

The rates, the window's volume and the unit ranking come from the measures service (`services.measures`, the
daily facts), so the screen shows the same figures as every report. What is live rather than a measure (today's
counts, open tickets past due now, the feed) reads bounded, indexed ranges of tickets; the page caches the
result, because every wallboard in the centre polls it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from minsheng.domain.states import OPEN_TICKET_STATES, AreaLevel, Channel
from minsheng.services import org, queries
from minsheng.services.measures import MeasureSettings, Period, Scope, measure_table, ranking
from minsheng.storage.models import Category, Ticket

WINDOW_DAYS = 7
TODAY_LIMIT = 200_000
OVERDUE_LIMIT = 200_000
_OPEN = [s.value for s in OPEN_TICKET_STATES]
#: The rates the screen shows, in its order.
RATES = ("sign_rate", "feedback_rate", "completion_rate", "satisfaction_rate", "reopen_rate")
# (created_at, channel, category_id, area_id) of today's tickets
TodayRow = tuple[datetime, str, int | None, int | None]


def day_start(now: datetime, tz: tzinfo) -> datetime:
    """Midnight of `now`'s day in the hotline's zone, in `now`'s zone."""
    local = now.astimezone(tz)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(now.tzinfo)


def figures(
    session: Session,
    now: datetime,
    tz: tzinfo,
    *,
    period: Period | None = None,
    settings: object = None,
) -> dict[str, Any]:
    """Everything the screen shows, as JSON-ready values; days and hours are counted in `tz`.

    The rates, the volume and the ranking are of ``period`` (default: the last seven days, today included);
    ``settings`` (`Settings` or `MeasureSettings`) chooses how they are computed (default: the defaults).
    """
    today = _today(session, day_start(now, tz))
    window = period or Period.last_days(now.astimezone(tz).date(), WINDOW_DAYS)
    ms = settings or MeasureSettings()
    total = measure_table(session, window, Scope(), None, ms).total
    area_volume: Counter[int] = Counter(r[3] for r in today if r[3])
    units = _ranking(session, window, ms)
    return {
        "at": now.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S"),
        "today_total": len(today),
        "hours": _hours(today, tz),
        "channels": [
            {"name": _channel(c), "value": v} for c, v in Counter(r[1] for r in today).most_common()
        ],
        "categories": _categories(session, Counter(r[2] for r in today)),
        "map": _map(session, area_volume, _overdue_now(session, now)),
        "ranking": units[:10],
        "ranking_worst": sorted(units, key=lambda r: (-r["returned"], r["rate"]))[:5],
        "rates": {code: _pct(total.values[code]) for code in RATES},
        "window_total": int(total.values["volume"] or 0),
        "period": {"key": str(window), "label": window.label},
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


def _overdue_now(session: Session, now: datetime) -> Counter[int]:
    """Open tickets past their resolve deadline now, per area (a live count, not a measure of a period)."""
    rows = session.execute(
        select(Ticket.area_id)
        .where(Ticket.state.in_(_OPEN), Ticket.resolve_due_at < now, Ticket.area_id.is_not(None))
        .limit(OVERDUE_LIMIT)
    ).scalars()
    return Counter(a for a in rows if a is not None)


def _hours(today: Sequence[TodayRow], tz: tzinfo) -> list[int]:
    hours = [0] * 24
    for r in today:
        hours[r[0].astimezone(tz).hour] += 1
    return hours


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


def _ranking(session: Session, period: Period, ms: object) -> list[dict[str, Any]]:
    """Every unit with assignments in the period, by completion rate (of the tickets it leads), then volume."""
    rows = ranking(session, period, "unit", ms, "completion_rate")
    out = [
        {
            "unit": r.name,
            "total": r.counts.get("assignments", 0),
            "closed": r.counts.get("closed", 0),
            "returned": r.counts.get("returned", 0),
            "rate": round(100 * r.value, 1) if r.value is not None else 0.0,
        }
        for r in rows
        if r.counts.get("assignments")
    ]
    return sorted(out, key=lambda r: (-r["rate"], -r["total"]))


def _feed(session: Session, tz: tzinfo) -> list[dict[str, Any]]:
    """The ten newest tickets; a confidential one's title is 保密件 (every staff member sees the screen, as the
    live feed's `queries.newest_tickets`)."""
    rows = session.execute(
        select(Ticket.number, queries.public_title(), Ticket.channel, Ticket.created_at)
        .order_by(Ticket.created_at.desc())
        .limit(10)
    ).all()
    return [
        {"number": num, "title": title, "channel": _channel(ch), "at": at.astimezone(tz).strftime("%H:%M:%S")}
        for num, title, ch, at in rows
    ]


def _channel(value: str) -> str:
    return Channel(value).label if value in Channel.values() else value


def _pct(value: float | None) -> float | None:
    return round(100.0 * value, 1) if value is not None else None
