"""Read helpers for the pages: names for a page of tickets in one query each, brief ticket rows with personal
data masked per viewer, option lists for forms. Every query here is bounded and uses an index.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from minsheng.domain.masking import mask_address, mask_name, mask_phone, pii_view
from minsheng.domain.roles import Role
from minsheng.domain.states import AreaLevel, AssignmentState, UnitKind
from minsheng.services.auth import Principal
from minsheng.storage.models import Area, Assignment, Category, Ticket, Unit


class Names:
    """Names of the categories, areas and units that a page of tickets mentions, loaded in one query each."""

    def __init__(self, session: Session, tickets: Iterable[Ticket]) -> None:
        ts = list(tickets)
        self.category = _names(session, Category, {t.category_id for t in ts if t.category_id})
        self.area = _names(session, Area, {t.area_id for t in ts if t.area_id})
        self.unit = _names(session, Unit, {t.lead_unit_id for t in ts if t.lead_unit_id})


def _names(
    session: Session, model: type[Category] | type[Area] | type[Unit], ids: set[int]
) -> dict[int, str]:
    if not ids:
        return {}
    return dict(session.execute(select(model.id, model.name).where(model.id.in_(ids))).tuples().all())


def full_pii(t: Ticket, who: Principal | None) -> bool:
    role = who.role if who else Role.CITIZEN
    return pii_view(
        role,
        viewer_unit_id=who.unit_id if who else None,
        assigned_unit_ids=frozenset(a.unit_id for a in t.assignments),
        confidential=t.confidential,
    ).full


def brief(t: Ticket, names: Names, who: Principal | None, *, pii: bool = False) -> dict[str, Any]:
    """A row for lists; contact details only when asked for, and masked unless the viewer needs them."""
    out: dict[str, Any] = {
        "number": t.number,
        "title": t.title,
        "detail": t.detail,
        "state": t.state,
        "kind": t.kind,
        "urgency": t.urgency,
        "channel": t.channel,
        "created_at": t.created_at,
        "updated_at": t.updated_at,
        "closed_at": t.closed_at,
        "rating": t.rating,
        "reopen_count": t.reopen_count,
        "return_count": t.return_count,
        "resolve_due_at": t.resolve_due_at,
        "category": names.category.get(t.category_id or 0),
        "area": names.area.get(t.area_id or 0),
        "lead_unit": names.unit.get(t.lead_unit_id or 0),
        "triage": t.triage,
        "confidential": t.confidential,
    }
    if pii:
        full = full_pii(t, who)
        out["citizen_name"] = t.citizen_name if full else mask_name(t.citizen_name)
        out["citizen_phone"] = t.citizen_phone if full else mask_phone(t.citizen_phone)
        out["address"] = t.address if full else mask_address(t.address)
    return out


def returns(t: Ticket) -> list[dict[str, Any]]:
    return [
        {"unit": a.unit.name, "reason": a.return_reason, "at": a.returned_at}
        for a in t.assignments
        if a.state == AssignmentState.RETURNED.value
    ]


def category_options(session: Session) -> list[dict[str, Any]]:
    rows = session.scalars(select(Category).where(Category.active.is_(True)).order_by(Category.path)).all()
    return [{"code": c.code, "name": c.name, "level": c.level} for c in rows]


def area_options(session: Session) -> list[dict[str, Any]]:
    # Districts and streets: communities and grids are found from the address or the map point, not a list.
    levels = [AreaLevel.CITY.value, AreaLevel.DISTRICT.value, AreaLevel.STREET.value]
    rows = session.scalars(select(Area).where(Area.level.in_(levels)).order_by(Area.path).limit(2000)).all()
    return [{"code": a.code, "name": a.name, "level": a.level} for a in rows]


def unit_options(session: Session) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(Unit).where(Unit.active.is_(True), Unit.kind != UnitKind.EXTERNAL.value).order_by(Unit.code)
    ).all()
    return [{"code": u.code, "name": u.name, "kind": u.kind} for u in rows]


def area_geojson(session: Session, level: str | None = None, limit: int = 3000) -> dict[str, Any]:
    """The areas that have polygons as a GeoJSON FeatureCollection for `echarts.registerMap`."""
    q = select(Area.code, Area.name, Area.level, Area.polygon).where(Area.polygon.is_not(None))
    if level:
        q = q.where(Area.level == level)
    feats = [
        {"type": "Feature", "properties": {"name": name, "code": code, "level": lvl}, "geometry": poly}
        for code, name, lvl, poly in session.execute(q.limit(limit)).tuples()
        if poly
    ]
    return {"type": "FeatureCollection", "features": feats}


def map_level(session: Session) -> str | None:
    """The finest level that still gives a readable city map: districts, else streets, else none."""
    for level in (AreaLevel.DISTRICT.value, AreaLevel.STREET.value):
        if session.scalar(select(Area.id).where(Area.level == level, Area.polygon.is_not(None)).limit(1)):
            return level
    return None


def due_of(a: Assignment) -> datetime | None:
    return a.sign_due_at if a.state == AssignmentState.PENDING.value else (a.resolve_due_at or a.sign_due_at)
