"""The generated demo city: counts, nesting codes, tiling polygons, places, units, users, routing."""

from __future__ import annotations

import itertools
import random
import re
from collections import Counter

import pytest
from shapely.geometry import Point, shape

from minsheng.demo.city import CITY_CODE, LEVELS, PLACE_KINDS, ROLES, DemoCity, generate_city

CODE_LENGTH = {"city": 4, "district": 6, "street": 9, "community": 12, "grid": 15}


@pytest.fixture(scope="module")
def city() -> DemoCity:
    return generate_city(2026)


def test_counts_per_level(city: DemoCity) -> None:
    counts = Counter(a.level for a in city.areas)
    assert counts["city"] == 1
    assert counts["district"] == 5
    assert counts["street"] == 40
    assert counts["community"] == 200
    assert 900 <= counts["grid"] <= 1100
    assert set(counts) == set(LEVELS)
    assert len(city.places) >= 2000
    levels = Counter(c.level for c in city.categories)
    assert 10 <= levels[1] <= 15 and 40 <= levels[2] <= 70 and 120 <= levels[3] <= 220


def test_area_codes_nest(city: DemoCity) -> None:
    codes = [a.code for a in city.areas]
    assert len(codes) == len(set(codes))
    by_code = city.area_by_code
    for a in city.areas:
        assert len(a.code) == CODE_LENGTH[a.level] and a.code.isdigit()
        if a.level == "city":
            assert a.parent_code is None and a.code == CITY_CODE
            continue
        parent = by_code[a.parent_code or ""]
        assert a.code.startswith(parent.code)
        assert LEVELS.index(parent.level) == LEVELS.index(a.level) - 1
    # Parents are listed before their children, so a seeder can insert in one pass.
    seen: set[str] = set()
    for a in city.areas:
        assert a.parent_code is None or a.parent_code in seen
        seen.add(a.code)


def test_area_names_and_aliases(city: DemoCity) -> None:
    for a in city.areas_at("district"):
        assert a.name.endswith("区") and a.aliases == (a.name[:-1],)
    suffixes = Counter(
        a.name[-2:] if a.name.endswith("街道") else a.name[-1] for a in city.areas_at("street")
    )
    assert suffixes["街道"] > 10 and suffixes["镇"] > 3 and set(suffixes) <= {"街道", "镇", "乡"}
    for a in city.areas_at("street"):
        assert a.name.startswith(a.aliases[0])
    kinds = Counter(
        a.name[-2:] if a.name.endswith("社区") else a.name[-1] for a in city.areas_at("community")
    )
    assert set(kinds) == {"社区", "村"}
    for g in city.areas_at("grid"):
        assert re.fullmatch(r"第\d+网格", g.name)
    names = [a.name for a in city.areas if a.level in ("district", "street", "community")]
    assert len(names) == len(set(names))


def test_polygons_valid_nested_and_tiling(city: DemoCity) -> None:
    shapes = {}
    for a in city.areas:
        assert a.polygon is not None and a.polygon["type"] == "Polygon"
        geom = shape(a.polygon)
        assert geom.is_valid, a.code
        assert geom.geom_type == "Polygon"
        min_lon, min_lat, max_lon, max_lat = geom.bounds
        assert min_lon >= 120.10 and max_lon <= 120.40
        assert min_lat >= 30.15 and max_lat <= 30.40
        shapes[a.code] = geom
    for parent, children in city.children.items():
        p = shapes[parent]
        total = 0.0
        for c in children:
            g = shapes[c.code]
            assert g.difference(p).area < 1e-12, c.code  # inside its parent
            total += g.area
        # Children inside the parent whose areas add up to the parent's cover it without overlap.
        assert total == pytest.approx(p.area, rel=1e-9), parent
    # Direct overlap checks on a sample of sibling pairs.
    rng = random.Random(1)
    for parent in rng.sample(sorted(city.children), 30):
        kids = city.children[parent]
        for a, b in itertools.combinations(kids[:6], 2):
            assert shapes[a.code].intersection(shapes[b.code]).area < 1e-12


def test_places_lie_in_their_community_and_grid(city: DemoCity) -> None:
    names = [p.name for p in city.places]
    assert len(names) == len(set(names))
    kinds = Counter(p.kind for p in city.places)
    assert set(kinds) == set(PLACE_KINDS)
    assert kinds["小区"] > kinds["路"] > kinds["学校"]
    communities = {a.code: shape(a.polygon) for a in city.areas_at("community")}
    grids = {a.code: shape(a.polygon) for a in city.areas_at("grid")}
    for p in city.places:
        pt = Point(p.lon, p.lat)
        assert p.area_code in communities and p.grid_code.startswith(p.area_code)
        assert communities[p.area_code].contains(pt), p.name
        assert grids[p.grid_code].contains(pt), p.name
    assert any(p.name == "民声市第一人民医院" for p in city.places)


def test_random_point_inside_area(city: DemoCity) -> None:
    rng = random.Random(3)
    for a in rng.sample(city.areas, 50):
        lat, lon = city.random_point(rng, a.code)
        assert shape(a.polygon).contains(Point(lon, lat))


def test_category_tree(city: DemoCity) -> None:
    by_code = city.category_by_code
    assert len(by_code) == len(city.categories)
    for c in city.categories:
        assert len(c.code) == 2 * c.level
        if c.level == 1:
            assert c.parent_code is None
        else:
            assert c.parent_code == c.code[:-2] and by_code[c.parent_code].level == c.level - 1
    names = [c.name for c in city.leaf_categories]
    assert len(names) == len(set(names))
    first = {c.name for c in city.categories if c.level == 1}
    assert {"城乡建设", "环境保护", "劳动和社会保障", "公共安全", "民政"} <= first
    # Every level-1 and level-2 node has children.
    parents = {c.parent_code for c in city.categories}
    assert all(c.code in parents for c in city.categories if c.level < 3)


def test_units(city: DemoCity) -> None:
    codes = [u.code for u in city.units]
    assert len(codes) == len(set(codes))
    assert 60 <= len(codes) <= 100
    kinds = Counter(u.kind for u in city.units)
    assert kinds["department"] >= 20 and kinds["district_office"] == 5 and kinds["street_office"] == 40
    assert kinds["external"] == 4 and kinds["response_team"] >= 3
    assert kinds["community"] >= 1 and kinds["grid_team"] >= 1
    by_code = city.unit_by_code
    assert {"110", "119", "120", "122", "zjj", "rx12345"} <= set(by_code)
    for u in city.units:
        assert u.area_code in city.area_by_code
        assert u.parent_code is None or u.parent_code in by_code
        assert u.duty_tier in (1, 2, 3) and u.phone and u.leader_name
    for s in city.areas_at("street"):
        assert by_code["st" + s.code].area_code == s.code


def test_users_cover_every_role(city: DemoCity) -> None:
    names = [u.username for u in city.users]
    assert len(names) == len(set(names))
    assert {"admin", "operator1", "dispatcher1", "supervisor1", "followup1", "leader1", "handler_zjj"} <= set(
        names
    )
    assert {u.role for u in city.users} == set(ROLES)
    handled = {u.unit_code for u in city.users if u.role == "handler"}
    for unit in city.units:
        if unit.kind != "external" and unit.code != "rx12345":
            assert unit.code in handled, unit.code
    for u in city.users:
        assert re.fullmatch(r"1[3589]\d{9}", u.phone)
        assert u.unit_code is None or u.unit_code in city.unit_by_code


def test_routing(city: DemoCity) -> None:
    by_code = city.unit_by_code
    for r in city.routing:
        assert city.category_by_code[r.category_code].level in (1, 2)
        assert r.area_code is None or r.area_code in city.area_by_code
        assert r.lead_unit_code in by_code and r.lead_unit_code not in r.assist_unit_codes
        assert all(a in by_code for a in r.assist_unit_codes)
    rng = random.Random(5)
    grids = city.grid_codes
    for leaf in city.leaf_categories:
        route = city.route(leaf.code, rng.choice(grids))
        assert route is not None and route.lead_unit_code in by_code
    # Local matters go to the street office of the place; city-wide ones to a department.
    property_mgmt = next(c for c in city.categories if c.name == "物业管理")
    grid = grids[123]
    local = city.route(property_mgmt.code + "01", grid)
    assert local is not None and local.lead_unit_code == "st" + grid[:9]
    wages = next(c for c in city.categories if c.name == "拖欠工资")
    assert city.route(wages.code, grid).lead_unit_code == "rsj"  # type: ignore[union-attr]
    assert any(r.area_code and len(r.area_code) == 6 for r in city.routing)


def test_deterministic() -> None:
    a, b = generate_city(7), generate_city(7)
    assert a == b
    assert generate_city(8).areas != a.areas
