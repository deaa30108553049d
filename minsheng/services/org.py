"""The organisation: areas, categories, units and users.

`add_*` create one row and refuse an existing code; `upsert_*` create or update by code and say which they
did, for the importers and the admin pages.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime
from itertools import chain
from typing import Any, Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from minsheng.domain.roles import STAFF_ROLES, Role
from minsheng.domain.states import AreaLevel, UnitKind
from minsheng.services.auth import hash_password
from minsheng.services.errors import Conflict, Invalid, NotFound
from minsheng.storage.db import Database
from minsheng.storage.models import Area, Category, Unit, User

ORG_MODELS = (Area, Category, Unit)
_CHANGED = "minsheng_org_changed"


def watch_changes(db: Database, callback: Callable[[], None]) -> None:
    """Call `callback` after each commit of this database's write sessions that changed an area, category or
    unit, whatever made the change (the API, the admin pages, an import): triage's snapshot follows them."""

    @event.listens_for(db.write_sessions, "after_flush")
    def _flushed(session: Session, _context: Any) -> None:
        # In after_flush, new/dirty/deleted still list what this flush wrote.
        if any(isinstance(o, ORG_MODELS) for o in chain(session.new, session.dirty, session.deleted)):
            session.info[_CHANGED] = True

    @event.listens_for(db.write_sessions, "after_commit")
    def _committed(session: Session) -> None:
        if session.info.pop(_CHANGED, False):
            callback()

    @event.listens_for(db.write_sessions, "after_rollback")
    def _rolled_back(session: Session) -> None:
        session.info.pop(_CHANGED, None)


def _parent(session: Session, model: Any, code: str | None, what: str) -> Any:
    """The parent row named by code (None for a root), or NotFound."""
    if not code:
        return None
    parent = session.scalar(select(model).where(model.code == code))
    if parent is None:
        raise NotFound(f"parent {what} {code} not found")
    return parent


def dispatchable_units(session: Session, lead: str, assists: Sequence[str]) -> tuple[Unit, list[Unit]]:
    """The lead and assisting units of a dispatch or a routing rule: known, active, and not external systems."""
    codes = [lead, *assists]
    units = {u.code: u for u in session.scalars(select(Unit).where(Unit.code.in_(codes)))}
    missing = [c for c in codes if c not in units]
    if missing:
        raise NotFound(f"unknown unit(s): {', '.join(missing)}", units=missing)
    for u in units.values():
        field = "lead_unit" if u.code == lead else "assist_units"
        if not u.active:
            raise Invalid(f"unit {u.code} is inactive", field=field)
        if u.kind == UnitKind.EXTERNAL.value:
            raise Invalid(
                f"unit {u.code} is an external system: tickets are transferred to it, not dispatched",
                field=field,
            )
    return units[lead], [units[c] for c in assists]


def add_area(
    session: Session,
    code: str,
    name: str,
    level: str,
    parent_code: str | None = None,
    aliases: list[str] | None = None,
    polygon: dict[str, Any] | None = None,
    lat: float | None = None,
    lon: float | None = None,
) -> Area:
    AreaLevel(level)
    if session.scalar(select(Area.id).where(Area.code == code)) is not None:
        raise Conflict(f"area {code} exists")
    parent = _parent(session, Area, parent_code, "area")
    area = Area(
        code=code,
        name=name,
        level=level,
        parent_id=parent.id if parent else None,
        path=(parent.path if parent else "/") + code + "/",
        aliases=aliases or [],
        polygon=polygon,
        lat=lat,
        lon=lon,
    )
    session.add(area)
    session.flush()
    return area


def add_category(session: Session, code: str, name: str, parent_code: str | None = None) -> Category:
    if session.scalar(select(Category.id).where(Category.code == code)) is not None:
        raise Conflict(f"category {code} exists")
    parent = _parent(session, Category, parent_code, "category")
    if parent is not None and parent.level >= 3:
        raise Invalid("the category tree has three levels")
    cat = Category(
        code=code,
        name=name,
        level=(parent.level + 1) if parent else 1,
        parent_id=parent.id if parent else None,
        path=(parent.path if parent else "/") + code + "/",
        active=True,
    )
    session.add(cat)
    session.flush()
    return cat


def add_unit(
    session: Session,
    code: str,
    name: str,
    kind: str,
    parent_code: str | None = None,
    area_code: str | None = None,
    duty_tier: int = 3,
    phone: str | None = None,
    leader_name: str | None = None,
) -> Unit:
    UnitKind(kind)
    if duty_tier not in (1, 2, 3):
        raise Invalid("duty tier must be 1, 2 or 3")
    if session.scalar(select(Unit.id).where(Unit.code == code)) is not None:
        raise Conflict(f"unit {code} exists")
    parent = _parent(session, Unit, parent_code, "unit")
    area = session.scalar(select(Area).where(Area.code == area_code)) if area_code else None
    if area_code and area is None:
        raise NotFound(f"area {area_code} not found")
    unit = Unit(
        code=code,
        name=name,
        kind=kind,
        parent_id=parent.id if parent else None,
        area_id=area.id if area else None,
        duty_tier=duty_tier,
        phone=phone,
        leader_name=leader_name,
        active=True,
    )
    session.add(unit)
    session.flush()
    return unit


def add_user(
    session: Session,
    username: str,
    display_name: str,
    role: str,
    password: str | None,
    now: datetime,
    unit_code: str | None = None,
    phone: str | None = None,
    password_hash: str | None = None,
) -> User:
    r = Role(role)
    if r in (Role.CITIZEN, Role.SYSTEM):
        raise Invalid(f"role {role} has no accounts")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"user {username} exists")
    unit = session.scalar(select(Unit).where(Unit.code == unit_code)) if unit_code else None
    if unit_code and unit is None:
        raise NotFound(f"unit {unit_code} not found")
    if r is Role.HANDLER and unit is None:
        raise Invalid("a handler belongs to a unit")
    user = User(
        username=username,
        display_name=display_name,
        role=r.value,
        unit_id=unit.id if unit else None,
        phone=phone,
        password_hash=password_hash or (hash_password(password) if password else None),
        active=True,
        created_at=now,
    )
    session.add(user)
    session.flush()
    return user


# --------------------------------------------------------------------------------------------------- upserts
# A move under another parent rewrites the subtree's materialised paths, and a node may never be put under its
# own descendant (that is how a cycle in parent references shows up against rows already stored).

Outcome = Literal["created", "updated", "unchanged"]
_CODE_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,32}$")


def check_code(code: str, what: str) -> str:
    if not _CODE_RE.match(code or ""):
        raise Invalid(f"{what} code '{code}' must be 1-32 letters, digits, '_', '.' or '-'")
    return code


def parse_area_level(level: str) -> AreaLevel:
    try:
        return AreaLevel(level)
    except ValueError:
        raise Invalid(f"area level '{level}' must be one of: {', '.join(AreaLevel.values())}") from None


def parse_unit_kind(kind: str) -> UnitKind:
    try:
        return UnitKind(kind)
    except ValueError:
        raise Invalid(f"unit kind '{kind}' must be one of: {', '.join(UnitKind.values())}") from None


def parse_role(role: str) -> Role:
    try:
        r = Role(role)
    except ValueError:
        choices = ", ".join(sorted(x.value for x in STAFF_ROLES | {Role.INTEGRATION}))
        raise Invalid(f"role '{role}' must be one of: {choices}") from None
    if r in (Role.CITIZEN, Role.SYSTEM):
        raise Invalid(f"role {role} has no accounts")
    return r


def _set_fields(row: Any, values: dict[str, Any]) -> bool:
    changed = False
    for name, value in values.items():
        if getattr(row, name) != value:
            setattr(row, name, value)
            changed = True
    return changed


def _new_path(parent: Area | Category | None, code: str, old_path: str, what: str) -> str:
    if parent is not None and parent.path.startswith(old_path):
        raise Invalid(f"{what} {code} cannot be placed under {parent.code}, which lies inside it (a cycle)")
    return (parent.path if parent else "/") + code + "/"


def upsert_area(
    session: Session,
    code: str,
    name: str,
    level: str,
    parent_code: str | None = None,
    aliases: list[str] | None = None,
    polygon: dict[str, Any] | None = None,
    lat: float | None = None,
    lon: float | None = None,
) -> tuple[Area, Outcome]:
    """Create the area, or update its name, level, parent, aliases and shape."""
    check_code(code, "area")
    lvl = parse_area_level(level)
    area = session.scalar(select(Area).where(Area.code == code))
    if area is None:
        return add_area(session, code, name, lvl.value, parent_code, aliases, polygon, lat, lon), "created"
    parent = _parent(session, Area, parent_code, "area")
    old_path = area.path
    new_path = _new_path(parent, code, old_path, "area")
    changed = _set_fields(
        area,
        {
            "name": name,
            "level": lvl.value,
            "parent_id": parent.id if parent else None,
            "path": new_path,
            "aliases": aliases or [],
            "polygon": polygon,
            "lat": lat,
            "lon": lon,
        },
    )
    if new_path != old_path:
        for row in session.scalars(select(Area).where(Area.path.startswith(old_path), Area.id != area.id)):
            row.path = new_path + row.path[len(old_path) :]
    session.flush()
    return area, "updated" if changed else "unchanged"


def upsert_category(
    session: Session, code: str, name: str, parent_code: str | None = None
) -> tuple[Category, Outcome]:
    """Create the category, or update its name and parent; the tree keeps at most three levels."""
    check_code(code, "category")
    cat = session.scalar(select(Category).where(Category.code == code))
    if cat is None:
        return add_category(session, code, name, parent_code), "created"
    parent = _parent(session, Category, parent_code, "category")
    old_path = cat.path
    new_path = _new_path(parent, code, old_path, "category")
    subtree = (
        list(
            session.scalars(select(Category).where(Category.path.startswith(old_path), Category.id != cat.id))
        )
        if new_path != old_path
        else []
    )
    level = (parent.level + 1) if parent else 1
    deepest = max((r.path.count("/") - old_path.count("/") for r in subtree), default=0)
    if level + deepest > 3:
        raise Invalid(f"category {code} would make the tree deeper than three levels")
    changed = _set_fields(
        cat, {"name": name, "parent_id": parent.id if parent else None, "path": new_path, "level": level}
    )
    for row in subtree:
        row.path = new_path + row.path[len(old_path) :]
        row.level = row.path.count("/") - 1
    session.flush()
    return cat, "updated" if changed else "unchanged"


def upsert_unit(
    session: Session,
    code: str,
    name: str,
    kind: str,
    parent_code: str | None = None,
    area_code: str | None = None,
    duty_tier: int = 3,
    phone: str | None = None,
    leader_name: str | None = None,
) -> tuple[Unit, Outcome]:
    """Create the unit, or update it; a unit may not become its own ancestor."""
    check_code(code, "unit")
    k = parse_unit_kind(kind)
    unit = session.scalar(select(Unit).where(Unit.code == code))
    if unit is None:
        return add_unit(
            session, code, name, k.value, parent_code, area_code, duty_tier, phone, leader_name
        ), "created"
    if duty_tier not in (1, 2, 3):
        raise Invalid("duty tier must be 1, 2 or 3")
    parent = _parent(session, Unit, parent_code, "unit")
    # Units have no materialised path: walk up from the new parent to find a cycle.
    seen = parent
    while seen is not None:
        if seen.id == unit.id:
            raise Invalid(f"unit {code} cannot be placed under {parent_code}, which lies inside it (a cycle)")
        seen = session.get(Unit, seen.parent_id) if seen.parent_id else None
    area = session.scalar(select(Area).where(Area.code == area_code)) if area_code else None
    if area_code and area is None:
        raise NotFound(f"area {area_code} not found")
    changed = _set_fields(
        unit,
        {
            "name": name,
            "kind": k.value,
            "parent_id": parent.id if parent else None,
            "area_id": area.id if area else None,
            "duty_tier": duty_tier,
            "phone": phone,
            "leader_name": leader_name,
        },
    )
    session.flush()
    return unit, "updated" if changed else "unchanged"


def upsert_user(
    session: Session,
    username: str,
    display_name: str,
    role: str,
    password: str | None,
    now: datetime,
    unit_code: str | None = None,
    phone: str | None = None,
) -> tuple[User, Outcome]:
    """Create the user, or update name, role, unit and phone; the password changes only when one is given."""
    r = parse_role(role)
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        return add_user(session, username, display_name, r.value, password, now, unit_code, phone), "created"
    unit = session.scalar(select(Unit).where(Unit.code == unit_code)) if unit_code else None
    if unit_code and unit is None:
        raise NotFound(f"unit {unit_code} not found")
    if r is Role.HANDLER and unit is None:
        raise Invalid("a handler belongs to a unit")
    changed = _set_fields(
        user,
        {"display_name": display_name, "role": r.value, "unit_id": unit.id if unit else None, "phone": phone},
    )
    # A re-import must not churn hashes: only a password that no longer verifies is replaced.
    if password and (not user.password_hash or not _password_matches(user.password_hash, password)):
        user.password_hash = hash_password(password)
        changed = True
    session.flush()
    return user, "updated" if changed else "unchanged"


def _password_matches(password_hash: str, password: str) -> bool:
    try:
        return PasswordHasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# ----------------------------------------------------------------------------------------------------- reads
# What the API lists and the pages offer in their forms and maps; every query bounded or over a small table.


def list_areas(
    session: Session, *, level: str | None = None, parent: str | None = None, limit: int = 1000
) -> list[Area]:
    """Areas by code, of one level and/or under one parent (by code: an unknown parent lists nothing)."""
    q = select(Area).order_by(Area.code).limit(limit)
    if level:
        q = q.where(Area.level == level)
    if parent:
        pid = session.scalar(select(Area.id).where(Area.code == parent))
        q = q.where(Area.parent_id == pid)
    return list(session.scalars(q))


def list_categories(session: Session) -> list[Category]:
    """The whole category tree, parents before their children (by path)."""
    return list(session.scalars(select(Category).order_by(Category.path)))


def list_units(session: Session) -> list[Unit]:
    return list(session.scalars(select(Unit).order_by(Unit.code)))


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))


def category_names(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return dict(
        session.execute(select(Category.id, Category.name).where(Category.id.in_(ids))).tuples().all()
    )


def category_code(session: Session, category_id: int) -> str | None:
    return session.scalar(select(Category.code).where(Category.id == category_id))


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


def city_map(session: Session) -> dict[str, Any] | None:
    """The city map the pages draw (areas of `map_level`), or None when no area has a shape."""
    level = map_level(session)
    return area_geojson(session, level) if level else None


def area_paths(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return dict(session.execute(select(Area.id, Area.path).where(Area.id.in_(ids))).tuples().all())


def area_names_at(session: Session, level: str) -> dict[str, str]:
    """Code → name of the areas of one level (the map's)."""
    return dict(session.execute(select(Area.code, Area.name).where(Area.level == level)).tuples().all())


def unit_names(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return dict(session.execute(select(Unit.id, Unit.name).where(Unit.id.in_(ids))).tuples().all())


def on_commit(session: Session, fn: Callable[[], None]) -> None:
    """Call `fn` once this session's transaction has committed (never on a rollback): a change to routing rules,
    places or triage settings reloads this process's snapshot of the organisation only once it is stored."""
    event.listen(session, "after_commit", lambda _s: fn(), once=True)
