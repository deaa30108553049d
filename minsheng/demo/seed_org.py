"""Writing the demo city's organisation: areas with polygons, categories, units and users; then named places,
routing rules and the knowledge base, which make it complete for triage and the help pages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from minsheng.demo.city import DemoCity
from minsheng.demo.kb import kb_entries
from minsheng.demo.seed_report import Login, SeedReport
from minsheng.services import kb, org
from minsheng.services.triage.routing_admin import store_places, store_routes
from minsheng.services.triage.settings import write_setting
from minsheng.storage.models import Area

__all__ = ["seed_city", "seed_triage_and_kb"]


def seed_city(session: Session, city: DemoCity, now: datetime, password_hash: str) -> SeedReport:
    """Areas (with polygons), categories, units and users of the demo city."""
    report = SeedReport(city=city)
    report.areas = _insert_areas(session, city)
    for c in sorted(city.categories, key=lambda c: (c.level, c.code)):
        org.add_category(session, c.code, c.name, c.parent_code)
        report.categories += 1
    report.units = _add_units(session, city)
    for user in city.users:
        org.add_user(
            session,
            user.username,
            user.display_name,
            user.role,
            None,
            now,
            unit_code=user.unit_code,
            phone=user.phone,
            password_hash=password_hash,
        )
        report.users += 1
        unit = city.unit_by_code.get(user.unit_code) if user.unit_code else None
        report.logins.append(
            Login(user.username, user.role, user.display_name, user.unit_code, unit.name if unit else None)
        )
    return report


def _insert_areas(session: Session, city: DemoCity) -> int:
    """~1,250 areas: one multi-row insert per level instead of a query and a flush per area (the generator's
    codes are unique and its levels valid; paths are built here the way org.add_area builds them)."""
    paths: dict[str, str] = {}
    ids: dict[str, int] = {}
    count = 0
    for level in ("city", "district", "street", "community", "grid"):
        rows: list[dict[str, Any]] = []
        for a in (x for x in city.areas if x.level == level):
            paths[a.code] = (paths[a.parent_code] if a.parent_code else "/") + a.code + "/"
            lat = lon = None
            if a.code in city.grid_bounds:
                x0, y0, x1, y1 = city.grid_bounds[a.code]
                lat, lon = round((y0 + y1) / 2, 6), round((x0 + x1) / 2, 6)
            rows.append(
                {
                    "code": a.code,
                    "name": a.name,
                    "level": a.level,
                    "parent_id": ids[a.parent_code] if a.parent_code else None,
                    "path": paths[a.code],
                    "aliases": list(a.aliases),
                    "polygon": a.polygon,
                    "lat": lat,
                    "lon": lon,
                }
            )
        if rows:
            session.execute(insert(Area), rows)
            codes = [r["code"] for r in rows]
            ids.update(session.execute(select(Area.code, Area.id).where(Area.code.in_(codes))).tuples().all())
        count += len(rows)
    return count


def _add_units(session: Session, city: DemoCity) -> int:
    """The units, each after its parent (units may be listed before their parents)."""
    placed: set[str] = set()
    pending = list(city.units)
    while pending:
        ready = [u for u in pending if u.parent_code is None or u.parent_code in placed]
        if not ready:
            raise ValueError(f"demo units with unknown parents: {[u.code for u in pending]}")
        for u in ready:
            org.add_unit(
                session,
                u.code,
                u.name,
                u.kind,
                u.parent_code,
                u.area_code,
                u.duty_tier,
                u.phone,
                u.leader_name,
            )
            placed.add(u.code)
        pending = [u for u in pending if u.code not in placed]
    return len(placed)


def seed_triage_and_kb(
    session: Session, city: DemoCity, report: SeedReport, now: datetime, *, model_level: int
) -> None:
    """Named places and routing rules (jurisdiction and auto-dispatch), the model level a retrain from the
    admin pages learns (``model_level``: the shipped model's), and the knowledge base."""
    # Places lie in a community but are stored on the grid that holds their point: the gazetteer then
    # resolves "锦绣花园小区" down to the grid, as point-in-polygon would.
    report.places = store_places(session, ((p, p.grid_code) for p in city.places))
    report.routes = store_routes(session, city.routing, now, by="demo")
    write_setting(session, "model_level", model_level, "demo", now)
    for item in kb_entries(city):
        data = kb.KbIn(
            kind=item.kind,
            title=item.title,
            body=item.body,
            category_code=item.category_code,
            department=item.department,
            keywords=item.keywords,
            public=item.public,
        )
        kb.create(session, data, now)
        report.kb_entries += 1
