"""The demo city's shapes: plain frozen dataclasses for areas, places, categories, units, users and routing,
and :class:`DemoCity` with the look-ups the generators and tests use. :func:`minsheng.demo.city.generate_city`
fills them."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

CITY_NAME = "民声市"
CITY_CODE = "3399"
LEVELS = ("city", "district", "street", "community", "grid")
ROLES = ("operator", "dispatcher", "handler", "supervisor", "followup", "leader", "admin")
PLACE_KINDS = ("小区", "学校", "医院", "市场", "公园", "商场", "路")
HOTLINE_UNIT = "rx12345"

T = TypeVar("T")


def _index(items: Iterable[T], keys: Callable[[T], Iterable[str]]) -> dict[str, list[T]]:
    """Each item listed under each of its keys, in the order of the items."""
    out: dict[str, list[T]] = {}
    for item in items:
        for key in keys(item):
            out.setdefault(key, []).append(item)
    return out


@dataclass(frozen=True)
class AreaSpec:
    code: str
    name: str
    level: str  # one of LEVELS
    parent_code: str | None
    aliases: tuple[str, ...]
    polygon: dict[str, Any] | None  # GeoJSON Polygon, [lon, lat] order, exterior ring counter-clockwise


@dataclass(frozen=True)
class PlaceSpec:
    name: str
    area_code: str  # the community the place lies in
    kind: str  # one of PLACE_KINDS
    aliases: tuple[str, ...]
    lat: float
    lon: float
    grid_code: str  # the grid that contains (lat, lon); a child of area_code


@dataclass(frozen=True)
class CategorySpec:
    code: str  # "01" / "0101" / "010101": a child's code starts with its parent's
    name: str
    level: int  # 1, 2 or 3
    parent_code: str | None


@dataclass(frozen=True)
class UnitSpec:
    code: str
    name: str
    kind: str  # department, district_office, street_office, community, grid_team, response_team, external
    parent_code: str | None
    area_code: str
    duty_tier: int  # 1: 24-hour duty in the centre, 2: 12-hour, 3: 8-hour
    phone: str
    leader_name: str


@dataclass(frozen=True)
class UserSpec:
    username: str
    display_name: str
    role: str  # one of ROLES
    unit_code: str | None
    phone: str


@dataclass(frozen=True)
class RouteSpec:
    category_code: str  # level 1 or 2
    area_code: str | None  # None: city-wide
    lead_unit_code: str
    assist_unit_codes: tuple[str, ...] = ()


@dataclass(frozen=True)
class DemoCity:
    name: str
    seed: int
    areas: list[AreaSpec]
    places: list[PlaceSpec]
    categories: list[CategorySpec]
    units: list[UnitSpec]
    users: list[UserSpec]
    routing: list[RouteSpec]
    # Grid code → (min_lon, min_lat, max_lon, max_lat); grids are lattice cells, so this is their exact shape
    # and lets the generators draw points inside an area without shapely.
    grid_bounds: dict[str, tuple[float, float, float, float]] = field(repr=False, default_factory=dict)

    # Look-ups used by the text and history generators and by tests. cached_property writes to the instance
    # __dict__ directly, which a frozen dataclass allows.
    @cached_property
    def area_by_code(self) -> dict[str, AreaSpec]:
        return {a.code: a for a in self.areas}

    @cached_property
    def children(self) -> dict[str, list[AreaSpec]]:
        return _index(self.areas, lambda a: () if a.parent_code is None else (a.parent_code,))

    def areas_at(self, level: str) -> list[AreaSpec]:
        return [a for a in self.areas if a.level == level]

    @cached_property
    def grid_codes(self) -> list[str]:
        return [a.code for a in self.areas if a.level == "grid"]

    @cached_property
    def _grids_index(self) -> dict[str, list[str]]:
        return _index(self.grid_codes, lambda g: (g[:n] for n in (4, 6, 9, 12, 15)))

    def grids_under(self, code: str) -> list[str]:
        """Grid codes inside an area (the area itself if it is a grid); codes nest by prefix."""
        return self._grids_index.get(code, [])

    def ancestors(self, code: str) -> list[AreaSpec]:
        """The area and its ancestors, most specific first."""
        out = []
        cur: str | None = code
        while cur is not None:
            a = self.area_by_code[cur]
            out.append(a)
            cur = a.parent_code
        return out

    @cached_property
    def places_by_grid(self) -> dict[str, list[PlaceSpec]]:
        return _index(self.places, lambda p: (p.grid_code,))

    @cached_property
    def places_by_community(self) -> dict[str, list[PlaceSpec]]:
        return _index(self.places, lambda p: (p.area_code,))

    @cached_property
    def category_by_code(self) -> dict[str, CategorySpec]:
        return {c.code: c for c in self.categories}

    @cached_property
    def leaf_categories(self) -> list[CategorySpec]:
        return [c for c in self.categories if c.level == 3]

    @cached_property
    def _leaves_index(self) -> dict[str, list[CategorySpec]]:
        return _index(self.leaf_categories, lambda c: (c.code[:n] for n in (2, 4, 6)))

    def leaves_under(self, code: str) -> list[CategorySpec]:
        """Level-3 categories under a category of any level (itself if it is level 3)."""
        return self._leaves_index.get(code, [])

    @cached_property
    def unit_by_code(self) -> dict[str, UnitSpec]:
        return {u.code: u for u in self.units}

    @cached_property
    def _route_index(self) -> dict[tuple[str, str | None], RouteSpec]:
        return {(r.category_code, r.area_code): r for r in self.routing}

    def route(self, category_code: str, area_code: str | None) -> RouteSpec | None:
        """The routing rule that applies: most specific category first, then most specific area."""
        cats = [category_code[:n] for n in (6, 4, 2) if len(category_code) >= n]
        areas: list[str | None] = [a.code for a in self.ancestors(area_code)] if area_code else []
        areas.append(None)
        for c in cats:
            for a in areas:
                r = self._route_index.get((c, a))
                if r is not None:
                    return r
        return None

    def street_office_for(self, area_code: str) -> str | None:
        """Code of the street office responsible for an area at street level or below."""
        if len(area_code) < 9:
            return None
        return "st" + area_code[:9]

    def district_office_for(self, area_code: str) -> str | None:
        if len(area_code) < 6:
            return None
        return "dist" + area_code[:6]

    def random_point(self, rng: random.Random, area_code: str) -> tuple[float, float]:
        """A (lat, lon) strictly inside the area: inside one of its grids, away from the grid's edges."""
        grid = rng.choice(self.grids_under(area_code))
        x0, y0, x1, y1 = self.grid_bounds[grid]
        lon = x0 + (x1 - x0) * rng.uniform(0.05, 0.95)
        lat = y0 + (y1 - y0) * rng.uniform(0.05, 0.95)
        return round(lat, 6), round(lon, 6)
