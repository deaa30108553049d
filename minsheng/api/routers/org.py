"""The organisation: areas, categories, units and users (read for staff, write for admins)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query
from pydantic import Field

from minsheng.api.deps import CurrentUser, StateDep, require_roles
from minsheng.domain.roles import Role
from minsheng.domain.states import AreaLevel, UnitKind
from minsheng.http.uow import ReadSession, UnitOfWorkRoute, WriteSession
from minsheng.services import org
from minsheng.services.records import fields
from minsheng.services.schemas import CODE_RE, Checked

if TYPE_CHECKING:
    from minsheng.storage.models import Area

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/api/v1", tags=["organisation"])
AdminOnly = require_roles(Role.ADMIN)


class AreaIn(Checked):
    code: str = Field(pattern=CODE_RE)
    name: str = Field(min_length=1, max_length=100)
    level: AreaLevel
    parent_code: str | None = Field(default=None, pattern=CODE_RE)
    aliases: list[Annotated[str, Field(max_length=100)]] = Field(default_factory=list, max_length=50)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)


class CategoryIn(Checked):
    code: str = Field(pattern=CODE_RE)
    name: str = Field(min_length=1, max_length=100)
    parent_code: str | None = Field(default=None, pattern=CODE_RE)


class UnitIn(Checked):
    code: str = Field(pattern=CODE_RE)
    name: str = Field(min_length=1, max_length=100)
    kind: UnitKind
    parent_code: str | None = Field(default=None, pattern=CODE_RE)
    area_code: str | None = Field(default=None, pattern=CODE_RE)
    duty_tier: int = Field(default=3, ge=1, le=3)
    phone: str | None = Field(default=None, max_length=32)
    leader_name: str | None = Field(default=None, max_length=50)


class UserIn(Checked):
    username: str = Field(pattern=r"^[A-Za-z0-9_.\-]{2,64}$")
    display_name: str = Field(min_length=1, max_length=64)
    role: Role
    unit_code: str | None = Field(default=None, pattern=CODE_RE)
    phone: str | None = Field(default=None, max_length=32)
    password: str = Field(min_length=8, max_length=200)


def area_json(a: Area) -> dict[str, Any]:
    return fields(a, "code", "name", "level", "path", "aliases", "lat", "lon")


@router.get("/areas")
def list_areas(
    session: ReadSession,
    user: CurrentUser,
    level: AreaLevel | None = None,
    parent: Annotated[str | None, Query(pattern=CODE_RE)] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> list[dict[str, Any]]:
    areas = org.list_areas(session, level=level.value if level else None, parent=parent, limit=limit)
    return [area_json(a) for a in areas]


@router.post("/areas", status_code=201, dependencies=[AdminOnly])
def create_area(session: WriteSession, body: AreaIn) -> dict[str, Any]:
    a = org.add_area(
        session,
        body.code,
        body.name,
        body.level.value,
        body.parent_code,
        body.aliases,
        lat=body.lat,
        lon=body.lon,
    )
    return area_json(a)


@router.get("/categories")
def list_categories(session: ReadSession, user: CurrentUser) -> list[dict[str, Any]]:
    cats = org.list_categories(session)
    by_id = {c.id: c for c in cats}
    return [
        fields(
            c, "code", "name", "level", "active", parent_code=by_id[c.parent_id].code if c.parent_id else None
        )
        for c in cats
    ]


@router.post("/categories", status_code=201, dependencies=[AdminOnly])
def create_category(session: WriteSession, body: CategoryIn) -> dict[str, Any]:
    c = org.add_category(session, body.code, body.name, body.parent_code)
    return fields(c, "code", "name", "level")


@router.get("/units")
def list_units(session: ReadSession, user: CurrentUser) -> list[dict[str, Any]]:
    units = org.list_units(session)
    return [
        fields(u, "code", "name", "kind", "duty_tier", "active", "phone", kind_label=UnitKind(u.kind).label)
        for u in units
    ]


@router.post("/units", status_code=201, dependencies=[AdminOnly])
def create_unit(session: WriteSession, body: UnitIn) -> dict[str, Any]:
    u = org.add_unit(
        session,
        body.code,
        body.name,
        body.kind.value,
        body.parent_code,
        body.area_code,
        body.duty_tier,
        body.phone,
        body.leader_name,
    )
    return fields(u, "code", "name", "kind")


@router.get("/users", dependencies=[AdminOnly])
def list_users(session: ReadSession) -> list[dict[str, Any]]:
    return [
        fields(u, "username", "display_name", "role", "active", unit_code=u.unit.code if u.unit else None)
        for u in org.list_users(session)
    ]


@router.post("/users", status_code=201, dependencies=[AdminOnly])
def create_user(state: StateDep, session: WriteSession, body: UserIn) -> dict[str, Any]:
    u = org.add_user(
        session,
        body.username,
        body.display_name,
        body.role.value,
        body.password,
        state.clock.now(),
        body.unit_code,
        body.phone,
    )
    return {"username": u.username, "role": u.role}
