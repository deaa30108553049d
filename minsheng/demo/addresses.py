"""Addresses as callers and operators write them, and the jurisdiction test sets built from them.

:func:`build_address` writes an address of varying completeness with the deepest area code its text
determines; :func:`jurisdiction_test_set` and :func:`detail_jurisdiction_test_set` yield cases for measuring
jurisdiction accuracy (``bench/jurisdiction.py``), apart from the requests the seeded demo depends on.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from minsheng.demo.phrases import asks, issues, phrase

if TYPE_CHECKING:  # city.py imports the people module, which stays free of city types; so does this one
    from minsheng.demo.city import DemoCity, PlaceSpec

__all__ = ["build_address", "detail_jurisdiction_test_set", "jurisdiction_test_set"]

# How an address names its areas, by mode: with a named place ({place}: its name and where at it), and without
# one, with how many digits of the grid code the text determines (12: community, 9: street …).
_WITH_PLACE = {
    "full": "民声市{district}{street}{community}{place}",
    "dsp": "{dname}{street}{place}",
    "place": "{place}",
    "cp": "{community}{place}",
    "sp": "{street}{place}",
}
_WITHOUT_PLACE = {
    "full": ("民声市{district}{street}{community}", 12),
    "ds": ("{dname}{street}", 9),
    "dc": ("{dname}{community}", 12),
    "cg": ("{community}{grid}", 15),
    "sc": ("{street}{community}附近", 12),
    "d": ("{district}", 6),
}


def _at_place(rng: random.Random, place: PlaceSpec) -> str:
    """The place's name (now and then an alias) and where at it: a house number, a building, a gate."""
    if place.kind == "路":
        detail = rng.choice(["", f"{rng.randint(1, 399)}号", "沿线", "路口", f"{rng.randint(1, 199)}号门口"])
    elif place.kind == "小区":
        detail = rng.choice(phrase("building")).format(
            n=rng.randint(1, 30), u=rng.randint(1, 4), r=rng.randint(1, 9)
        )
    else:
        detail = rng.choice(phrase("near_place"))
    name = place.name if not place.aliases or rng.random() < 0.8 else rng.choice(place.aliases)
    return name + detail


def build_address(
    rng: random.Random, city: DemoCity, grid_code: str, place: PlaceSpec | None, mode: str | None = None
) -> tuple[str, str]:
    """An address as a citizen or operator writes it, and the deepest area code the text itself determines.

    Completeness varies: the full chain 民声市…区…街道…社区 + place, district + street + place, the place
    alone, a community with its grid, the street only, the district only. Places are points in the gazetteer,
    so naming one determines its grid.
    """
    names = {
        "community": city.area_by_code[grid_code[:12]].name,
        "street": city.area_by_code[grid_code[:9]].name,
        "district": city.area_by_code[grid_code[:6]].name,
        "grid": city.area_by_code[grid_code].name,
    }
    district = city.area_by_code[grid_code[:6]]
    names["dname"] = district.aliases[0] if rng.random() < 0.25 else district.name
    if mode is None:
        if place is not None:
            mode = rng.choices(
                ["full", "dsp", "place", "cp", "sp", "ds", "dc", "cg", "d"],
                weights=[14, 14, 30, 10, 8, 8, 8, 4, 2],
            )[0]
        else:
            mode = rng.choices(["full", "ds", "dc", "cg", "sc", "d"], weights=[20, 25, 25, 15, 10, 5])[0]
    if place is not None:
        at = _at_place(rng, place)
        if mode in _WITH_PLACE:
            return _WITH_PLACE[mode].format(place=at, **names), place.grid_code
    text, digits = _WITHOUT_PLACE.get(mode, _WITHOUT_PLACE["d"])
    return text.format(**names), grid_code[:digits]


def jurisdiction_test_set(
    city: DemoCity, n: int, seed: int = 7
) -> list[tuple[str, str, float | None, float | None]]:
    """``n`` (address_text, expected_area_code, lat, lon) cases for measuring jurisdiction accuracy.

    The expected code is the deepest area that the text and the point together determine: a named place
    determines its grid, a community alone its community, and so on; when a point is given (about 40% of
    cases) it lies in the expected grid, which then is the expected code. Addresses carry the noise that real
    ones do: district aliases (东城 for 东城区), place aliases, and trailing words like 附近/门口.
    """
    rng = random.Random(seed)
    out: list[tuple[str, str, float | None, float | None]] = []
    grids = city.grid_codes
    for _ in range(n):
        if rng.random() < 0.75:
            place = rng.choice(city.places)
            grid = place.grid_code
        else:
            place = None
            grid = rng.choice(grids)
        text, expected = build_address(rng, city, grid, place)
        lat = lon = None
        if rng.random() < 0.4:
            lat, lon = city.random_point(rng, grid)
            expected = grid
        if rng.random() < 0.15:
            text = rng.choice(phrase("address_before")) + text + rng.choice(phrase("address_after"))
        out.append((text, expected, lat, lon))
    return out


def detail_jurisdiction_test_set(
    city: DemoCity, n: int, seed: int = 7, share_nowhere: float = 0.25
) -> list[tuple[str, str, str | None]]:
    """``n`` (title, detail, expected_area_code) cases where only the request's own words say where.

    The place is told the way callers tell it: as an address inside a sentence (any completeness of
    :func:`build_address`), a named place, a street alias with a community alias ("五里马鞍那边"), or a
    community named in the title. ``expected_area_code`` is the deepest area the words determine. About
    ``share_nowhere`` of the cases name no place at all (only 小区, 街道, 路灯 …) and expect None: they measure
    false positives. About 30% of all cases end with an everyday phrase whose words are also bare area names
    (人民群众, 和平共处, 团结 …), as real requests do. Separate from
    :func:`~minsheng.demo.texts.generate_request`, whose output the seeded demo depends on.
    """
    rng = random.Random(seed)
    out: list[tuple[str, str, str | None]] = []
    leaves = list(issues())
    for _ in range(n):
        leaf = rng.choice(leaves)
        fill = {
            "issue": rng.choice(issues()[leaf]),
            "dur": rng.choice(phrase("dur")),
            "when": rng.choice(phrase("when")),
            "who": rng.choice(phrase("who")),
            "ask": rng.choice(asks()[rng.choice(["polite", "neutral", "urgent"])]),
        }
        title = rng.choice(phrase("test_title")).format(leaf=leaf)
        filler = rng.choice(phrase("lookalike_fillers")) if rng.random() < 0.3 else ""
        if rng.random() < share_nowhere:
            out.append((title, rng.choice(phrase("spoken_nowhere")).format(**fill) + filler, None))
            continue
        at, expected, community_code = _told_place(rng, city)
        detail = rng.choice(phrase("spoken_at")).format(at=at, **fill)
        if rng.random() < 0.1:
            # Operators often put the caller's community in the title and leave the detail bare.
            title = f"{city.area_by_code[community_code].name}居民反映{leaf}"
            detail = rng.choice(phrase("spoken_nowhere")).format(**fill)
            expected = community_code
        out.append((title, detail + filler, expected))
    return out


def _told_place(rng: random.Random, city: DemoCity) -> tuple[str, str, str]:
    """Where a caller says the problem is: (words, the area code they determine, the community's code)."""
    place: PlaceSpec | None
    if rng.random() < 0.7:
        chosen = rng.choice(city.places)
        place, grid = chosen, chosen.grid_code
    else:
        place = None
        grid = rng.choice(city.grid_codes)
    community = city.area_by_code[grid[:12]]
    street = city.area_by_code[grid[:9]]
    style = rng.random()
    if style < 0.7:
        at, expected = build_address(rng, city, grid, place)
    elif style < 0.8 and street.aliases and community.aliases:
        # Two bare names that only together say where: the weakest evidence accepted.
        at, expected = f"{street.aliases[0]}{community.aliases[0]}", community.code
        at += rng.choice(phrase("aliases_after"))
    elif style < 0.9 or place is None:
        at, expected = rng.choice(["", street.name]) + community.name, community.code
    else:
        at, expected = place.name, place.grid_code
    return at, expected, community.code
