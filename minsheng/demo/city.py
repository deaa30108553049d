"""The fictional city 民声市: areas with polygons, places, categories, units, users and routing.

:func:`generate_city` returns a :class:`DemoCity` of plain frozen dataclasses that the seeder inserts and that
the text and history generators draw from. Same seed, same city.

Area codes follow the prefix rule of the Chinese statistical division codes, so that a child's code always
starts with its parent's code and "is X inside Y" is a string prefix test:

======== ======== ================ ==============================================================
level    digits   example          rule
======== ======== ================ ==============================================================
city     4        ``3399``         the prefecture prefix of the (fictional) division code 339900
district 6        ``339901``       city + 2 digits, 01-05
street   9        ``339901001``    district + 3 digits: 001-099 街道, 101-199 镇, 201-299 乡
community 12      ``339901001001`` street + 3 digits: 001-199 社区 (居委会), 201-299 村 (村委会)
grid     15       ``…001``         community + 3 digits, named 第N网格
======== ======== ================ ==============================================================

Geometry: the city is a blob of ~1,000 square cells (~800 m) of a regular lattice over lon 120.10-120.40,
lat 30.15-30.40. Each cell is one grid; every coarser area is the union of its children, so the levels tile
the city without overlap and nest exactly. Partitions are graph-Voronoi regions grown by breadth-first search
over edge-adjacent cells, which keeps every area a single connected polygon (:mod:`minsheng.demo.geometry`).

This module builds the area tree; the shapes are in :mod:`minsheng.demo.city_specs`, the names of areas and
places in :mod:`minsheng.demo.places`, the categories, units, users and routing in
:mod:`minsheng.demo.organisation`, and the name lists, category tree and departments they draw from in the
data files of ``minsheng/demo/data``.
"""

from __future__ import annotations

import math
import random
from typing import Any

from shapely.ops import unary_union

from minsheng.demo.city_specs import (
    CITY_CODE,
    CITY_NAME,
    HOTLINE_UNIT,
    LEVELS,
    PLACE_KINDS,
    ROLES,
    AreaSpec,
    CategorySpec,
    DemoCity,
    PlaceSpec,
    RouteSpec,
    UnitSpec,
    UserSpec,
)
from minsheng.demo.geometry import (
    NCOLS,
    NROWS,
    Cell,
    Lattice,
    centroid,
    city_cells,
    geojson,
    nearest,
    partition,
)
from minsheng.demo.organisation import (
    departments,
    make_categories,
    make_routing,
    make_units,
    make_users,
    transfer_targets,
)
from minsheng.demo.places import Names, make_places, place_names

__all__ = [
    "CITY_CODE",
    "CITY_NAME",
    "HOTLINE_UNIT",
    "LEVELS",
    "PLACE_KINDS",
    "ROLES",
    "AreaSpec",
    "CategorySpec",
    "DemoCity",
    "PlaceSpec",
    "RouteSpec",
    "UnitSpec",
    "UserSpec",
    "departments",
    "generate_city",
    "transfer_targets",
]

STREETS_PER_DISTRICT = 8
COMMUNITIES_PER_STREET = 5
# District seeds as shares of the city's half-span from its centre: the centre, then east, north, west, south
# (lattice rows grow northwards with latitude).
_DISTRICT_OFFSETS = [(0, 0), (0.62, 0), (0, 0.62), (-0.62, 0), (0, -0.62)]


def __getattr__(name: str) -> tuple[tuple[str, str, int], ...]:
    # DEPARTMENTS, read from the data file on first use: (code, name, duty tier) of each city department.
    if name == "DEPARTMENTS":
        return departments()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _ordered(regions: list[list[Cell]]) -> list[list[Cell]]:
    """Children numbered from north-west to south-east, as a reader of a map would."""
    return sorted(regions, key=lambda reg: (-round(centroid(reg)[1] / 3), centroid(reg)[0]))


class _AreaBuilder:
    """Builds the area tree top-down; each area's polygon is the union of its children's."""

    def __init__(self, rng: random.Random, names: Names) -> None:
        self.rng = rng
        self.names = names
        self.lattice = Lattice()
        self.areas: list[AreaSpec] = []
        self.grid_bounds: dict[str, tuple[float, float, float, float]] = {}
        self.communities: list[tuple[str, str, list[str]]] = []  # (code, name stem, grid codes)
        self.cells = city_cells(rng)
        self.centre = centroid(self.cells)
        self.span = max(NCOLS, NROWS) / 2

    def city(self) -> None:
        cx, cy = self.centre
        cellset = set(self.cells)
        seeds = [nearest(cellset, (cx + dx * self.span, cy + dy * self.span)) for dx, dy in _DISTRICT_OFFSETS]
        districts = place_names().districts
        regions = partition(self.cells, len(districts), self.rng, seeds=seeds)
        polys = [self.district(i, cells) for i, cells in enumerate(regions)]
        self.areas.append(
            AreaSpec(CITY_CODE, CITY_NAME, "city", None, ("民声",), geojson(unary_union(polys)))
        )

    def district(self, index: int, cells: list[Cell]) -> Any:
        name, alias = place_names().districts[index]
        code = f"{CITY_CODE}{index + 1:02d}"
        regions = _ordered(partition(cells, STREETS_PER_DISTRICT, self.rng))
        # Urban streets lie near the city centre; the outer ones are towns (镇) and a few townships (乡).
        dist = [math.dist(centroid(s), self.centre) / self.span for s in regions]
        kinds = [
            "街道" if d < 0.55 else ("乡" if d > 0.85 and self.rng.random() < 0.5 else "镇") for d in dist
        ]
        counters = {"街道": 0, "镇": 100, "乡": 200}
        polys = []
        for scells, kind in zip(regions, kinds, strict=True):
            counters[kind] += 1
            polys.append(self.street(f"{code}{counters[kind]:03d}", code, kind, scells))
        poly = unary_union(polys)
        self.areas.append(AreaSpec(code, name, "district", CITY_CODE, (alias,), geojson(poly)))
        return poly

    def street(self, code: str, district_code: str, kind: str, cells: list[Cell]) -> Any:
        stem = self.names.area_stem()
        regions = _ordered(partition(cells, COMMUNITIES_PER_STREET, self.rng))
        centre = centroid(cells)
        central = min(range(len(regions)), key=lambda i: math.dist(centroid(regions[i]), centre))
        counters = {"社区": 0, "村": 200}
        polys = []
        for i, ccells in enumerate(regions):
            # Towns have a 社区 at their seat and villages around it; townships are all villages.
            ckind = "社区" if kind == "街道" or (kind == "镇" and i == central) else "村"
            counters[ckind] += 1
            polys.append(self.community(f"{code}{counters[ckind]:03d}", code, ckind, ccells))
        poly = unary_union(polys)
        self.areas.append(AreaSpec(code, stem + kind, "street", district_code, (stem,), geojson(poly)))
        return poly

    def community(self, code: str, street_code: str, kind: str, cells: list[Cell]) -> Any:
        stem = self.names.area_stem()
        name = stem + kind
        grid_codes = []
        for i, cell in enumerate(sorted(cells, key=lambda c: (-c[1], c[0]))):
            gcode = f"{code}{i + 1:03d}"
            g = self.lattice.box(cell)
            self.grid_bounds[gcode] = tuple(g.bounds)  # type: ignore[assignment]
            self.areas.append(
                AreaSpec(gcode, f"第{i + 1}网格", "grid", code, (f"{name}第{i + 1}网格",), geojson(g))
            )
            grid_codes.append(gcode)
        poly = unary_union([self.lattice.box(c) for c in cells])
        aliases = (stem, stem + ("村委会" if kind == "村" else "社区居委会"))
        self.areas.append(AreaSpec(code, name, "community", street_code, aliases, geojson(poly)))
        self.communities.append((code, stem, grid_codes))
        return poly


def generate_city(seed: int = 2026) -> DemoCity:
    """Build the whole demo city from a seed (a few hundred milliseconds)."""
    rng = random.Random(seed)
    names = Names(rng)
    builder = _AreaBuilder(rng, names)
    builder.city()
    # Parents before children reads better in a seeder and lets it insert in one pass.
    areas = sorted(builder.areas, key=lambda a: (len(a.code), a.code))
    area_by_code = {a.code: a for a in areas}
    places = make_places(rng, names, area_by_code, builder.communities, builder.grid_bounds)
    categories = make_categories()
    units = make_units(rng, areas)
    users = make_users(rng, units)
    routing = make_routing(areas)
    return DemoCity(CITY_NAME, seed, areas, places, categories, units, users, routing, builder.grid_bounds)
