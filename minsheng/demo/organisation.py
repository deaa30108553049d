"""The demo city's organisation: the category tree, the handling units, the users and the routing table.

The category tree and the city departments are data (``data/categories.toml``, ``data/organisation.toml``);
the area offices (district, street, community, grid) follow the generated areas.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cache

from minsheng.demo.city_specs import (
    CITY_CODE,
    HOTLINE_UNIT,
    AreaSpec,
    CategorySpec,
    RouteSpec,
    UnitSpec,
    UserSpec,
)
from minsheng.demo.people import fake_mobile, fake_name
from minsheng.demo.tables import load

__all__ = [
    "Subcategory",
    "TopCategory",
    "category_tree",
    "departments",
    "make_categories",
    "make_routing",
    "make_units",
    "make_users",
    "transfer_targets",
]


@dataclass(frozen=True)
class Subcategory:
    """A level-2 category with its level-3 names and how its requests are routed."""

    name: str
    lead: str  # lead unit code
    local: str | None  # "street"/"district": the office holding the territory leads there
    leaves: tuple[str, ...]  # level-3 names, unique over the tree
    transfers: dict[str, str]  # level-3 name → external system ("110", "119" …) that takes such requests
    assists: tuple[str, ...]  # units assisting the lead (joint handling)


@dataclass(frozen=True)
class TopCategory:
    name: str
    lead: str  # the fallback department of the whole level-1 category
    subs: tuple[Subcategory, ...]


@cache
def category_tree() -> tuple[TopCategory, ...]:
    """The category tree in code order: level 1 is numbered 01, 02 …, level 2 0101 …, level 3 010101 …"""
    return tuple(
        TopCategory(
            top["name"],
            top["lead"],
            tuple(
                Subcategory(
                    sub["name"],
                    sub["lead"],
                    sub.get("local"),
                    tuple(sub["leaves"]),
                    dict(sub.get("transfers", {})),
                    tuple(sub.get("assists", ())),
                )
                for sub in top["sub"]
            ),
        )
        for top in load("categories")["category"]
    )


@cache
def departments() -> tuple[tuple[str, str, int], ...]:
    """The city departments: (code, name, duty tier)."""
    return tuple((d["code"], d["name"], d["tier"]) for d in load("organisation")["departments"])


def make_categories() -> list[CategorySpec]:
    out = []
    for i, top in enumerate(category_tree(), start=1):
        c1 = f"{i:02d}"
        out.append(CategorySpec(c1, top.name, 1, None))
        for j, sub in enumerate(top.subs, start=1):
            c2 = f"{c1}{j:02d}"
            out.append(CategorySpec(c2, sub.name, 2, c1))
            for k, n3 in enumerate(sub.leaves, start=1):
                out.append(CategorySpec(f"{c2}{k:02d}", n3, 3, c2))
    return out


def transfer_targets() -> dict[str, str]:
    """Level-3 category code → external system ("110", "119", "120", "122") that takes such requests."""
    out = {}
    for i, top in enumerate(category_tree(), start=1):
        for j, sub in enumerate(top.subs, start=1):
            for k, n3 in enumerate(sub.leaves, start=1):
                if n3 in sub.transfers:
                    out[f"{i:02d}{j:02d}{k:02d}"] = sub.transfers[n3]
    return out


def _phone(rng: random.Random) -> str:
    return f"0571-8{rng.randint(0, 9999999):07d}"


def _city_units(rng: random.Random) -> list[UnitSpec]:
    """The hotline centre, the departments, their response teams and the external systems."""
    org = load("organisation")
    units = [
        UnitSpec(HOTLINE_UNIT, org["hotline"], "department", None, CITY_CODE, 1, "12345", fake_name(rng))
    ]
    for code, name, tier in departments():
        units.append(UnitSpec(code, name, "department", None, CITY_CODE, tier, _phone(rng), fake_name(rng)))
    for t in org["response_teams"]:
        units.append(
            UnitSpec(
                t["code"], t["name"], "response_team", t["parent"], CITY_CODE, 1, _phone(rng), fake_name(rng)
            )
        )
    for x in org["externals"]:
        units.append(
            UnitSpec(x["code"], x["name"], "external", None, CITY_CODE, 1, x["code"], fake_name(rng))
        )
    return units


def make_units(rng: random.Random, areas: list[AreaSpec]) -> list[UnitSpec]:
    units = _city_units(rng)
    districts = [a for a in areas if a.level == "district"]
    for d in districts:
        units.append(
            UnitSpec(f"dist{d.code}", f"{d.name}人民政府", "district_office", None, d.code, 2, _phone(rng),
                     fake_name(rng))
        )  # fmt: skip
    for s in (a for a in areas if a.level == "street"):
        office = "办事处" if s.name.endswith("街道") else "人民政府"
        units.append(
            UnitSpec(f"st{s.code}", s.name + office, "street_office", f"dist{s.parent_code}", s.code, 2,
                     _phone(rng), fake_name(rng))
        )  # fmt: skip
    # One community committee and one grid team per district: enough to show the lowest tiers of the org tree
    # without a unit (and a login) for each of the 200 communities.
    communities = [a for a in areas if a.level == "community"]
    for d in districts:
        c = next(a for a in communities if a.code.startswith(d.code))
        cunit = f"cm{c.code}"
        committee = "村民委员会" if c.name.endswith("村") else "居民委员会"
        units.append(
            UnitSpec(cunit, c.name + committee, "community", f"st{c.parent_code}", c.code, 3, _phone(rng),
                     fake_name(rng))
        )  # fmt: skip
        g = c.code + "001"
        units.append(
            UnitSpec(
                f"gt{g}", f"{c.name}第1网格工作组", "grid_team", cunit, g, 3, fake_mobile(rng), fake_name(rng)
            )
        )
    return units


def make_users(rng: random.Random, units: list[UnitSpec]) -> list[UserSpec]:
    users: list[UserSpec] = []

    def add(username: str, role: str, unit: str | None) -> None:
        users.append(UserSpec(username, fake_name(rng), role, unit, fake_mobile(rng)))

    add("admin", "admin", None)
    for i in range(1, 4):
        add(f"operator{i}", "operator", HOTLINE_UNIT)
    for i in range(1, 3):
        add(f"dispatcher{i}", "dispatcher", HOTLINE_UNIT)
        add(f"supervisor{i}", "supervisor", HOTLINE_UNIT)
        add(f"followup{i}", "followup", HOTLINE_UNIT)
    add("leader1", "leader", None)  # the city leader who receives the last rung of escalations
    for u in units:
        if u.kind == "district_office":
            add(f"leader_{u.code}", "leader", u.code)
    # One handler per handling unit; external systems are reached by interface, not by a person logging in.
    for u in units:
        if u.kind != "external" and u.code != HOTLINE_UNIT:
            add(f"handler_{u.code}", "handler", u.code)
    return users


def make_routing(areas: list[AreaSpec]) -> list[RouteSpec]:
    routes: list[RouteSpec] = []
    streets = [a for a in areas if a.level == "street"]
    districts = [a for a in areas if a.level == "district"]
    for i, top in enumerate(category_tree(), start=1):
        c1 = f"{i:02d}"
        routes.append(RouteSpec(c1, None, top.lead))
        for j, sub in enumerate(top.subs, start=1):
            c2 = f"{c1}{j:02d}"
            routes.append(RouteSpec(c2, None, sub.lead, tuple(a for a in sub.assists if a != sub.lead)))
            # Local matters go to the office that holds the territory, with the department assisting.
            if sub.local == "street":
                for s in streets:
                    routes.append(RouteSpec(c2, s.code, f"st{s.code}"))
            elif sub.local == "district":
                for d in districts:
                    routes.append(
                        RouteSpec(c2, d.code, f"dist{d.code}", tuple(dict.fromkeys((sub.lead, *sub.assists))))
                    )
    return routes
