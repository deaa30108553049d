"""The administration pages' tables: areas, units, users and categories as the page lists them (labelled,
bounded) and as they are exported (raw values under the importers' column names, complete, so that an export
can be imported again), and a glimpse of the configuration tables other modules own.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from minsheng.domain.roles import Role
from minsheng.domain.states import AreaLevel, UnitKind
from minsheng.services import org
from minsheng.storage.models import Area, Base, Category, Unit, User

LIMIT = 500
CATEGORY_LIMIT = 2000
GLIMPSE_ROWS = 50
GLIMPSE_COLUMNS = 8
# The labels the pages show for stored values (domain.states and domain.roles keep them next to their enums).
_LEVEL = {s.value: s.label for s in AreaLevel}
_UNIT_KIND = {s.value: s.label for s in UnitKind}
_ROLE = {r.value: r.label for r in Role}


def glimpse(session: Session, table_name: str) -> tuple[list[str], list[list[Any]]]:
    """The first columns and rows of a configuration table, shown read-only where it is edited elsewhere."""
    table = Base.metadata.tables[table_name]
    cols = [c.name for c in table.columns][:GLIMPSE_COLUMNS]
    rows = [list(r)[:GLIMPSE_COLUMNS] for r in session.execute(select(table).limit(GLIMPSE_ROWS))]
    return cols, rows


def _yes_no(flag: bool) -> str:
    return "是" if flag else "否"


def listed(session: Session, kind: str, *, level: str | None = None) -> list[dict[str, Any]]:
    """The rows of one list page (`areas`, `units`, `users`, else categories); areas of one level if given."""
    if kind == "areas":
        return _listed_areas(session, level)
    if kind == "units":
        return _listed_units(session)
    if kind == "users":
        return [
            {
                "username": u.username,
                "display_name": u.display_name,
                "role": _ROLE.get(u.role, u.role),
                "unit_code": u.unit.code if u.unit else "",
                "phone": u.phone,
                "active": _yes_no(u.active),
            }
            for u in session.scalars(select(User).order_by(User.username).limit(LIMIT)).all()
        ]
    cats = session.scalars(select(Category).order_by(Category.path).limit(CATEGORY_LIMIT)).all()
    ccodes = {c.id: c.code for c in cats}
    return [
        {
            "code": c.code,
            "name": c.name,
            "level": c.level,
            "parent_code": ccodes.get(c.parent_id or 0, ""),
            "active": _yes_no(c.active),
            "depth": c.level - 1,
        }
        for c in cats
    ]


def _area_codes(session: Session, ids: set[int | None]) -> dict[int, str]:
    return dict(session.execute(select(Area.id, Area.code).where(Area.id.in_(ids))).tuples().all())


def _listed_areas(session: Session, level: str | None) -> list[dict[str, Any]]:
    q = select(Area).order_by(Area.path).limit(LIMIT)
    if level in AreaLevel.values():
        q = q.where(Area.level == level)
    areas = session.scalars(q).all()
    codes = _area_codes(session, {a.parent_id for a in areas if a.parent_id})
    return [
        {
            "code": a.code,
            "name": a.name,
            "level": _LEVEL.get(a.level, a.level),
            "parent_code": codes.get(a.parent_id or 0, ""),
            "lat": a.lat,
            "lon": a.lon,
            "depth": a.path.count("/") - 2,
        }
        for a in areas
    ]


def _listed_units(session: Session) -> list[dict[str, Any]]:
    units = session.scalars(select(Unit).order_by(Unit.code).limit(LIMIT)).all()
    # Parents are named from the listed units only: a parent beyond the page shows no code.
    ucodes = {u.id: u.code for u in units}
    acodes = _area_codes(session, {u.area_id for u in units if u.area_id})
    return [
        {
            "code": u.code,
            "name": u.name,
            "kind": _UNIT_KIND.get(u.kind, u.kind),
            "parent_code": ucodes.get(u.parent_id or 0, ""),
            "area_code": acodes.get(u.area_id or 0, ""),
            "duty_tier": u.duty_tier,
            "phone": u.phone,
            "leader_name": u.leader_name,
        }
        for u in units
    ]


def exported(session: Session, kind: str) -> list[dict[str, Any]]:
    """Rows with the importers' column names and raw values, so an export can be imported again."""
    if kind == "areas":
        areas = session.scalars(select(Area).order_by(Area.path)).all()
        codes = {a.id: a.code for a in areas}
        return [
            {
                "code": a.code,
                "name": a.name,
                "level": a.level,
                "parent_code": codes.get(a.parent_id or 0),
                "lat": a.lat,
                "lon": a.lon,
            }
            for a in areas
        ]
    if kind == "units":
        return _exported_units(session)
    if kind == "users":
        return [
            {
                "username": u.username,
                "display_name": u.display_name,
                "role": u.role,
                "unit_code": u.unit.code if u.unit else None,
                "phone": u.phone,
                "active": u.active,
            }
            for u in org.list_users(session)
        ]
    cats = org.list_categories(session)
    ccodes = {c.id: c.code for c in cats}
    return [
        {
            "code": c.code,
            "name": c.name,
            "level": c.level,
            "parent_code": ccodes.get(c.parent_id or 0),
            "active": c.active,
        }
        for c in cats
    ]


def _exported_units(session: Session) -> list[dict[str, Any]]:
    units = org.list_units(session)
    ucodes = {u.id: u.code for u in units}
    acodes = dict(session.execute(select(Area.id, Area.code)).tuples().all())
    return [
        {
            "code": u.code,
            "name": u.name,
            "kind": u.kind,
            "parent_code": ucodes.get(u.parent_id or 0),
            "area_code": acodes.get(u.area_id or 0),
            "duty_tier": u.duty_tier,
            "phone": u.phone,
            "leader_name": u.leader_name,
        }
        for u in units
    ]
