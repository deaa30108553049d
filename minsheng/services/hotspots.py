"""Hot topics of the platform's own tickets (热点): many requests about one thing in one place, over any period
and area, as the viewer may see them.

The analysis is :mod:`minsheng.hotspots` (the same as ``minsheng analyze hotspots``). Here it gets what the
platform knows besides the words: the ticket's area (a grid, so that requests naming no place still meet their
neighbours), the caller's phone as the citizen key (compared only, never shown), the city's named places and
areas as known names, and the previous period of equal length, whose tickets join the topics for the trend.

Only tickets the viewer may see are read (`queries.visible_to`): a handling unit's topics are those of the tickets
it holds. A confidential ticket counts in its topic but is never quoted: its title is listed as 保密件, and the
topic's place, crowd and summary come from its other tickets (a topic of confidential tickets alone is left
out). ``load`` reads in the caller's transaction; ``analyse`` is CPU work that needs none, so a page runs it after
its read transaction has ended.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from minsheng.domain.masking import CONFIDENTIAL_TITLE
from minsheng.domain.states import AreaLevel
from minsheng.hotspots import Hotspot, Request, find_hotspots
from minsheng.services.auth import Principal
from minsheng.services.errors import Invalid, NotFound
from minsheng.services.queries import visible_to
from minsheng.storage.models import Area, Ticket
from minsheng.storage.triage_tables import Place

__all__ = ["MAX_DAYS", "MAX_TICKETS", "HotspotReport", "Loaded", "analyse", "hotspots", "load"]

#: Tickets read per period at most (the newest): a year of a large city's tickets would take minutes to read and
#: tokenise, and a period that busy is better narrowed by area first.
MAX_TICKETS = 20_000
MAX_DAYS = 366
MAX_TOP = 100
_ADMIN_LEVELS = {AreaLevel.CITY.value, AreaLevel.DISTRICT.value, AreaLevel.STREET.value}


@dataclass(frozen=True, slots=True)
class _Row:
    number: str
    title: str
    detail: str
    created_at: datetime
    phone: str | None
    area_id: int | None
    lat: float | None
    lon: float | None
    confidential: bool


@dataclass(frozen=True, slots=True)
class _Area:
    code: str
    name: str  # as shown: the community's name before a grid's (明湾社区第3网格)
    full: str  # the whole chain below the city (鼓楼区金沙街道明湾社区第3网格)
    level: str
    lat: float | None
    lon: float | None


@dataclass
class Loaded:
    """What ``load`` read: the period's and the previous period's tickets, the areas they lie in, known names."""

    start: datetime
    end: datetime
    previous_start: datetime
    rows: list[_Row]
    areas: dict[int, _Area]
    known: dict[str, str]
    truncated: bool = False


@dataclass
class HotspotReport:
    start: datetime
    end: datetime
    previous_start: datetime
    tickets: int  # of the period, read and analysed
    previous_tickets: int
    truncated: bool
    topics: list[dict[str, Any]] = field(default_factory=list)
    places: list[dict[str, Any]] = field(default_factory=list)


def check_period(start: datetime, end: datetime) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise Invalid("period bounds must carry a time zone")
    if end <= start:
        raise Invalid("the period must end after it starts")
    if end - start > timedelta(days=MAX_DAYS):
        raise Invalid(f"a period of at most {MAX_DAYS} days")


def load(
    session: Session, start: datetime, end: datetime, *, area_code: str | None = None, who: Principal | None
) -> Loaded:
    """Read the tickets of ``[start, end)`` and of the period of equal length before it that ``who`` may see,
    in ``area_code`` and below when given."""
    check_period(start, end)
    previous_start = start - (end - start)
    scope = _area_scope(session, area_code)
    current, cut = _rows(session, start, end, scope, who)
    previous, cut_before = _rows(session, previous_start, start, scope, who)
    rows = previous + current
    return Loaded(
        start,
        end,
        previous_start,
        rows,
        _areas(session),
        _known_names(session),
        truncated=cut or cut_before,
    )


def _area_scope(session: Session, area_code: str | None) -> str | None:
    if area_code is None:
        return None
    path = session.scalar(select(Area.path).where(Area.code == area_code))
    if path is None:
        raise NotFound(f"unknown area '{area_code}'")
    return path


def _rows(
    session: Session, start: datetime, end: datetime, scope: str | None, who: Principal | None
) -> tuple[list[_Row], bool]:
    q = select(
        Ticket.number,
        Ticket.title,
        Ticket.detail,
        Ticket.created_at,
        Ticket.citizen_phone,
        Ticket.area_id,
        Ticket.lat,
        Ticket.lon,
        Ticket.confidential,
    ).where(Ticket.created_at >= start, Ticket.created_at < end, visible_to(who))
    if scope is not None:
        q = q.where(Ticket.area_id.in_(select(Area.id).where(Area.path.startswith(scope))))
    q = q.order_by(Ticket.created_at.desc(), Ticket.id.desc()).limit(MAX_TICKETS + 1)
    rows = [_Row(*r) for r in session.execute(q).tuples()]
    return rows[:MAX_TICKETS], len(rows) > MAX_TICKETS


def _areas(session: Session) -> dict[int, _Area]:
    raw = session.execute(
        select(Area.id, Area.code, Area.name, Area.level, Area.parent_id, Area.lat, Area.lon)
    ).all()
    by_id = {r.id: r for r in raw}
    out: dict[int, _Area] = {}
    for r in raw:
        chain: list[str] = []
        node: Any = r
        while node is not None and node.level != AreaLevel.CITY.value:
            chain.insert(0, node.name)
            node = by_id.get(node.parent_id) if node.parent_id is not None else None
        parent = by_id.get(r.parent_id) if r.parent_id is not None else None
        name = parent.name + r.name if r.level == AreaLevel.GRID.value and parent is not None else r.name
        out[r.id] = _Area(r.code, name, "".join(chain) or r.name, r.level, r.lat, r.lon)
    return out


def _known_names(session: Session) -> dict[str, str]:
    """The city's named places and areas, for the text analysis to read as whole names (grids' names, 第N网格,
    name nothing by themselves)."""
    known = {name: "place" for name in session.scalars(select(Place.name)) if len(name) >= 3}
    for name, level in session.execute(select(Area.name, Area.level)).tuples():
        if level in _ADMIN_LEVELS:
            known[name] = level
        elif level == AreaLevel.COMMUNITY.value:
            known.setdefault(name, "community")
    return known


def analyse(loaded: Loaded, *, top: int = 20) -> HotspotReport:
    """The hot topics of the loaded period, hottest first, with their trend and their hot places."""
    if not 1 <= top <= MAX_TOP:
        raise Invalid(f"top must be between 1 and {MAX_TOP}")
    requests = [_request(r, loaded.areas) for r in loaded.rows]
    private = frozenset(r.number for r in loaded.rows if r.confidential)
    found = find_hotspots(requests, top=None, since=loaded.start, known=loaded.known, private=private)
    # A topic of confidential tickets alone cannot be described without quoting one: it is left out.
    found = [h for h in found if h.summary][:top]
    by_number = {r.number: r for r in loaded.rows}
    current = sum(1 for r in loaded.rows if r.created_at >= loaded.start)
    topics = [_topic(h, rank, by_number) for rank, h in enumerate(found, start=1)]
    return HotspotReport(
        start=loaded.start,
        end=loaded.end,
        previous_start=loaded.previous_start,
        tickets=current,
        previous_tickets=len(loaded.rows) - current,
        truncated=loaded.truncated,
        topics=topics,
        places=_places(found, loaded.areas),
    )


def hotspots(
    session: Session,
    start: datetime,
    end: datetime,
    area_code: str | None = None,
    top: int = 20,
    *,
    who: Principal | None,
) -> HotspotReport:
    """Read and analyse in one call (:func:`load`, then :func:`analyse`)."""
    return analyse(load(session, start, end, area_code=area_code, who=who), top=top)


def _request(r: _Row, areas: dict[int, _Area]) -> Request:
    area = areas.get(r.area_id) if r.area_id is not None else None
    return Request(
        id=r.number,
        texts=(r.title, r.detail),
        at=r.created_at,
        citizen=(r.phone or "").replace(" ", "").replace("-", "") or None,
        area=area.code if area else None,
        area_name=area.name if area else None,
        lat=r.lat,
        lon=r.lon,
    )


def _trend(count: int, previous: int | None) -> dict[str, Any]:
    """The change against the previous period of equal length: 新 when the topic had no tickets then."""
    if not previous:
        return {"previous": 0, "change": None, "label": "新"}
    change = (count - previous) / previous
    arrow = "↑" if change > 0 else ("↓" if change < 0 else "→")
    return {
        "previous": previous,
        "change": round(change * 100, 1),
        "label": f"{arrow}{abs(change) * 100:.0f}%",
    }


def _topic(h: Hotspot, rank: int, rows: dict[str, _Row]) -> dict[str, Any]:
    return {
        "rank": rank,
        "heat": h.heat,
        "place": h.place,
        "crowd": h.crowd,
        "summary": h.summary,
        "keywords": list(h.keywords),
        "count": h.count,
        "citizens": h.voices,
        "first": h.first,
        "last": h.last,
        "growth": h.growth,
        "trend": _trend(h.count, h.previous),
        "area": h.area,
        "area_name": h.area_name,
        "tickets": [_ticket(rows[n]) for n in h.ticket_ids],
        "previous_tickets": [_ticket(rows[n]) for n in h.previous_ids],
    }


def _ticket(r: _Row) -> dict[str, Any]:
    return {
        "number": r.number,
        "title": CONFIDENTIAL_TITLE if r.confidential else r.title,
        "created_at": r.created_at,
        "confidential": r.confidential,
    }


def _places(found: list[Hotspot], areas: dict[int, _Area]) -> list[dict[str, Any]]:
    """Hot places for the map: the area most of a topic's tickets lie in (a grid in a city that dispatches to
    grids), with the heat and tickets of its topics added up, hottest first."""
    by_code = {a.code: a for a in areas.values()}
    acc: dict[str, dict[str, Any]] = defaultdict(lambda: {"heat": 0.0, "topics": 0, "count": 0, "points": []})
    for h in found:
        if h.area is None:
            continue
        entry = acc[h.area]
        entry["heat"] += h.heat
        entry["topics"] += 1
        entry["count"] += h.count
        entry.setdefault("ranks", []).append(h.summary)
        if h.lat is not None and h.lon is not None:
            entry["points"].append((h.lat, h.lon))
    out = []
    for code, entry in acc.items():
        area = by_code.get(code)
        lat, lon = (area.lat, area.lon) if area is not None else (None, None)
        if (lat is None or lon is None) and entry["points"]:
            lat = sum(p[0] for p in entry["points"]) / len(entry["points"])
            lon = sum(p[1] for p in entry["points"]) / len(entry["points"])
        if lat is None or lon is None:
            continue
        out.append(
            {
                "code": code,
                "name": area.full if area is not None else code,
                "short": area.name if area is not None else code,
                "level": area.level if area is not None else None,
                "lat": round(lat, 6),
                "lon": round(lon, 6),
                "heat": round(entry["heat"], 1),
                "topics": entry["topics"],
                "count": entry["count"],
                "summaries": entry["ranks"],
            }
        )
    out.sort(key=lambda p: (-p["heat"], p["code"]))
    return out
