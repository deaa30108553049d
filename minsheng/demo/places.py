"""Names of the demo city's areas and its named places (小区, roads, schools, hospitals, markets, parks, malls).

Every name is unique, so that a name identifies one area or place (a gazetteer needs that). Stems and suffixes
come from ``data/place_names.toml``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from minsheng.demo.city_specs import AreaSpec, PlaceSpec
from minsheng.demo.tables import load, words

__all__ = ["Names", "PlaceNames", "make_places", "place_names"]

_NUMERALS = "一二三四五六七八九十"


@dataclass(frozen=True)
class PlaceNames:
    districts: tuple[tuple[str, str], ...]  # (name, alias)
    area_stems: tuple[str, ...]  # drawn first, shuffled …
    extra_area_stems: tuple[str, ...]  # … then these, shuffled
    compound_stems: tuple[str, ...]
    compound_suffixes: tuple[str, ...]
    road_stems: tuple[str, ...]
    road_suffixes: tuple[str, ...]  # direction + kind (西路); repeats weight the draw
    suffixes: dict[str, list[str]]  # the other places' suffixes, by use (market, school, park …)


@cache
def place_names() -> PlaceNames:
    d = load("place_names")
    developer = [a + b for a in d["developer_a"] for b in d["developer_b"]]
    return PlaceNames(
        districts=tuple((x["name"], x["alias"]) for x in d["districts"]),
        area_stems=words(d["area_stems"]),
        extra_area_stems=tuple(a + b for a in d["stem_a"] for b in d["stem_b"]),
        compound_stems=(*words(d["compound_stems"]), *developer),
        compound_suffixes=words(d["compound_suffixes"]),
        road_stems=words(d["road_stems"]),
        road_suffixes=tuple(a + b for a in d["road_directions"] for b in d["road_kinds"]),
        suffixes=d["place_suffixes"],
    )


class Names:
    """Hands out unique names."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()
        stems = list(place_names().area_stems)
        rng.shuffle(stems)
        extra = list(place_names().extra_area_stems)
        rng.shuffle(extra)
        self.area_stems = stems + extra

    def area_stem(self) -> str:
        while True:
            s = self.area_stems.pop(0)
            if s not in self.used:
                self.used.add(s)
                return s

    def pick(self, stems: Sequence[str], suffixes: Sequence[str], tries: int = 50) -> str | None:
        """A new name stem + suffix, or None when the combinations seem used up."""
        for _ in range(tries):
            n = self.rng.choice(stems) + self.rng.choice(suffixes)
            if n not in self.used:
                self.used.add(n)
                return n
        return None


def cn_number(n: int) -> str:
    """1..99 in Chinese numerals (一, 十二, 二十三)."""
    if n <= 10:
        return _NUMERALS[n - 1]
    tens, ones = divmod(n, 10)
    return ("" if tens == 1 else _NUMERALS[tens - 1]) + "十" + (_NUMERALS[ones - 1] if ones else "")


@dataclass
class _Community:
    """One community as :func:`make_places` fills it: where places go and what they are named after."""

    code: str
    stem: str
    grids: list[str]
    street: AreaSpec
    district: AreaSpec
    village: bool


class _Placer:
    def __init__(
        self, rng: random.Random, names: Names, grid_bounds: dict[str, tuple[float, float, float, float]]
    ):
        self.rng = rng
        self.names = names
        self.grid_bounds = grid_bounds
        self.places: list[PlaceSpec] = []
        self.school_no = 0  # city schools and hospitals are numbered (民声市第三中学)
        self.hospital_no = 0

    def add(self, name: str | None, c: _Community, kind: str, aliases: tuple[str, ...] = ()) -> None:
        """A place at a random point of one of the community's grids (nothing when no name was left)."""
        if name is None:
            return
        gcode = self.rng.choice(c.grids)
        x0, y0, x1, y1 = self.grid_bounds[gcode]
        lon = round(x0 + (x1 - x0) * self.rng.uniform(0.1, 0.9), 6)
        lat = round(y0 + (y1 - y0) * self.rng.uniform(0.1, 0.9), 6)
        self.places.append(PlaceSpec(name, c.code, kind, aliases, lat, lon, gcode))

    def compounds_and_roads(self, c: _Community) -> None:
        rng, pick, pn = self.rng, self.names.pick, place_names()
        # Villages have fewer named compounds and roads than urban communities; sizes scale with the area.
        n_compound = (4 if c.village else 9) + len(c.grids) + rng.randint(0, 3)
        n_road = 2 + len(c.grids) // 2 + rng.randint(0, 1)
        self.add(pick([c.stem], pn.suffixes["first_village" if c.village else "first_urban"]), c, "小区")
        for _ in range(n_compound - 1):
            nm = pick(pn.compound_stems, pn.compound_suffixes)
            if nm is not None:
                self.add(nm, c, "小区", (nm + "小区",) if not nm.endswith("小区") else ())
        sstem = c.street.aliases[0]
        for _ in range(n_road):
            stems = [*pn.road_stems, sstem, c.stem, rng.choice(pn.area_stems)]
            self.add(pick(stems, pn.road_suffixes), c, "路")

    def services(self, c: _Community) -> None:
        """Markets, schools, hospitals, parks and malls: some communities have one."""
        rng, pick, suffixes = self.rng, self.names.pick, place_names().suffixes
        sstem = c.street.aliases[0]
        if rng.random() < (0.45 if not c.village else 0.3):
            self.add(pick([c.stem], suffixes["market"]), c, "市场")
        if rng.random() < 0.5:
            if rng.random() < 0.15:
                self.school_no += 1
                no = cn_number(self.school_no)
                self.add(pick([f"民声市第{no}"], ["中学"]), c, "学校", (f"市{no}中",))
            else:
                self.add(pick([c.stem, sstem], suffixes["school"]), c, "学校")
        if rng.random() < 0.25:
            if rng.random() < 0.3:
                self.hospital_no += 1
                no = cn_number(self.hospital_no)
                self.add(pick([f"民声市第{no}"], ["人民医院"]), c, "医院", (f"市{no}医院",))
            elif rng.random() < 0.5:
                self.add(pick([c.street.name], ["社区卫生服务中心"]), c, "医院")
            else:
                self.add(pick([c.district.aliases[0]], suffixes["district_hospital"]), c, "医院")
        if rng.random() < 0.3:
            self.add(pick([c.stem, rng.choice(place_names().compound_stems)], suffixes["park"]), c, "公园")
        if not c.village and rng.random() < 0.2:
            self.add(pick([sstem, rng.choice(place_names().compound_stems)], suffixes["mall"]), c, "商场")


def make_places(
    rng: random.Random,
    names: Names,
    area_by_code: dict[str, AreaSpec],
    communities: list[tuple[str, str, list[str]]],
    grid_bounds: dict[str, tuple[float, float, float, float]],
) -> list[PlaceSpec]:
    """The named places of every community, given as (code, name stem, grid codes)."""
    placer = _Placer(rng, names, grid_bounds)
    for code, stem, grids in communities:
        c = _Community(
            code,
            stem,
            grids,
            area_by_code[code[:9]],
            area_by_code[code[:6]],
            area_by_code[code].name.endswith("村"),
        )
        placer.compounds_and_roads(c)
        placer.services(c)
    return placer.places
