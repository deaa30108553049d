"""Jurisdiction (属地): which area a ticket belongs to, from its address text or its map point.

``Gazetteer`` reads area and place names (with aliases and suffix variants) out of free address text, using a
private jieba tokenizer for word boundaries and a substring scan for names jieba splits. Names that several
districts share are settled by the parent chain the text also names. ``PolygonIndex`` finds the deepest area
polygon holding a lat/lon point through a shapely ``STRtree``. ``Jurisdiction`` combines both.
"""

from __future__ import annotations

import math
import threading
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Level = Literal["city", "district", "street", "community", "grid"]
Method = Literal["text", "place", "point"]

__all__ = [
    "AreaRecord",
    "Gazetteer",
    "Jurisdiction",
    "JurisdictionResult",
    "PlaceRecord",
    "PolygonIndex",
]

# Longest first, so that "街道办事处" is stripped whole rather than leaving "街道办".
_AREA_SUFFIXES = (
    "社区居民委员会",
    "村民委员会",
    "居民委员会",
    "街道办事处",
    "社区居委会",
    "街道办",
    "居委会",
    "村委会",
    "自治县",
    "街道",
    "社区",
    "网格",
    "新区",
    "镇",
    "乡",
    "区",
    "县",
    "市",
    "村",
)
# Citizens and operators swap these freely ("城关镇" / "城关乡" / "城关街道"); alternates are only
# offered at the level where the swap is plausible.
_ALTERNATE_SUFFIXES: dict[str, tuple[str, ...]] = {
    "street": ("街道", "街道办", "街道办事处", "镇", "乡"),
    "community": ("社区", "居委会", "社区居委会", "村", "村委会"),
}
_PLACE_SUFFIXES = ("小区",)
_MIN_STEM = 2


def _norm(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).lower().split())


def _stem(name: str, suffixes: Iterable[str]) -> str | None:
    for suffix in suffixes:
        if name.endswith(suffix) and len(name) - len(suffix) >= _MIN_STEM:
            return name[: -len(suffix)]
    return None


@dataclass(frozen=True, slots=True)
class AreaRecord:
    """One node of the area tree (区划), with an optional GeoJSON Polygon/MultiPolygon in lon/lat order."""

    code: str
    name: str
    level: Level
    parent_code: str | None = None
    aliases: tuple[str, ...] = ()
    polygon: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class PlaceRecord:
    """A named place (小区, school, market …) known to lie in one area."""

    place_id: str
    name: str
    area_code: str
    kind: str = ""
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class JurisdictionResult:
    """Where a ticket belongs, how that was decided, and how sure we are."""

    area_code: str
    level: Level
    chain: list[str]
    method: Method
    matched: list[str]
    confidence: float
    ambiguous: bool
    explanation: str
    candidates: list[str] = field(default_factory=list)
    place_id: str | None = None


class _AreaTree:
    def __init__(self, areas: Iterable[AreaRecord]) -> None:
        self.areas: dict[str, AreaRecord] = {}
        for area in areas:
            if area.code in self.areas:
                raise ValueError(f"duplicate area code {area.code!r}")
            self.areas[area.code] = area
        self._chains: dict[str, list[str]] = {}

    def chain(self, code: str) -> list[str]:
        """Codes from the root down to ``code``; a cycle or an unknown parent ends the walk."""
        cached = self._chains.get(code)
        if cached is not None:
            return cached
        path: list[str] = []
        seen: set[str] = set()
        current: str | None = code
        while current is not None and current not in seen and current in self.areas:
            seen.add(current)
            path.append(current)
            current = self.areas[current].parent_code
        path.reverse()
        self._chains[code] = path
        return path

    def depth(self, code: str) -> int:
        return len(self.chain(code))

    def common_ancestor(self, codes: Iterable[str]) -> str | None:
        chains = [self.chain(c) for c in codes]
        if not chains:
            return None
        common: str | None = None
        for nodes in zip(*chains, strict=False):
            if len(set(nodes)) != 1:
                break
            common = nodes[0]
        return common

    def label(self, code: str) -> str:
        area = self.areas.get(code)
        return area.name if area else code


@dataclass(frozen=True, slots=True)
class _Target:
    area_code: str
    place: PlaceRecord | None


@dataclass(slots=True)
class _Entry:
    targets: list[_Target] = field(default_factory=list)
    exact: bool = False


@dataclass(frozen=True, slots=True)
class _Mention:
    surface: str
    start: int
    end: int
    exact: bool
    targets: tuple[_Target, ...]


class Gazetteer:
    """Area and place names → area, for free address text."""

    def __init__(self, areas: Iterable[AreaRecord], places: Iterable[PlaceRecord] = ()) -> None:
        self.tree = _AreaTree(areas)
        self._entries: dict[str, _Entry] = {}
        for area in self.tree.areas.values():
            self._add_area(area)
        for place in places:
            if place.area_code not in self.tree.areas:
                raise ValueError(f"place {place.name!r} names unknown area {place.area_code!r}")
            self._add_place(place)
        self._lengths = sorted({len(k) for k in self._entries}, reverse=True)
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def _register(self, name: str, target: _Target, exact: bool) -> None:
        key = _norm(name)
        if len(key) < _MIN_STEM:
            return
        entry = self._entries.setdefault(key, _Entry())
        if target not in entry.targets:
            entry.targets.append(target)
        entry.exact = entry.exact or exact

    def _add_area(self, area: AreaRecord) -> None:
        target = _Target(area.code, None)
        for name in (area.name, *area.aliases):
            self._register(name, target, exact=True)
            stem = _stem(_norm(name), _AREA_SUFFIXES)
            if stem is None:
                continue
            self._register(stem, target, exact=False)
            for suffix in _ALTERNATE_SUFFIXES.get(area.level, ()):
                self._register(stem + suffix, target, exact=False)

    def _add_place(self, place: PlaceRecord) -> None:
        target = _Target(place.area_code, place)
        for name in (place.name, *place.aliases):
            self._register(name, target, exact=True)
            stem = _stem(_norm(name), _PLACE_SUFFIXES)
            if stem is not None:
                self._register(stem, target, exact=False)

    def _boundaries(self, text: str) -> set[int]:
        with self._lock:
            if self._tokenizer is None:
                # A private tokenizer: the global jieba dictionary stays untouched, so gazetteers of several
                # cities (or the classifier's own words) can coexist in one process.
                import jieba

                tokenizer = jieba.Tokenizer()
                for key in self._entries:
                    tokenizer.add_word(key, freq=100_000)
                self._tokenizer = tokenizer
        cuts = {0, len(text)}
        for _, start, end in self._tokenizer.tokenize(text):
            cuts.add(start)
            cuts.add(end)
        return cuts

    def _mentions(self, text: str) -> list[_Mention]:
        found: list[_Mention] = []
        for start in range(len(text)):
            for length in self._lengths:
                surface = text[start : start + length]
                if len(surface) < length:
                    continue
                entry = self._entries.get(surface)
                if entry is not None:
                    found.append(_Mention(surface, start, start + length, entry.exact, tuple(entry.targets)))
        if not found:
            return []
        cuts = self._boundaries(text) if any(not m.exact for m in found) else set()
        # Longest names first, exact names before stems: "幸福路街道" beats the "幸福路" inside it.
        found.sort(key=lambda m: (-(m.end - m.start), not m.exact, m.start))
        taken = [False] * len(text)
        chosen: list[_Mention] = []
        for m in found:
            if any(taken[m.start : m.end]):
                continue
            # A stem is a short, common string ("阳光", "幸福"): trust it only where jieba sees a word.
            if not m.exact and (m.start not in cuts or m.end not in cuts):
                continue
            chosen.append(m)
            for i in range(m.start, m.end):
                taken[i] = True
        chosen.sort(key=lambda m: m.start)
        return chosen

    def resolve_text(self, address_text: str | None) -> JurisdictionResult | None:
        """The deepest area the text names consistently, or None when it names none."""
        if not address_text:
            return None
        text = _norm(address_text)
        mentions = self._mentions(text)
        if not mentions:
            return None
        tree = self.tree

        def explained_by(chain: set[str]) -> list[_Mention]:
            return [m for m in mentions if any(t.area_code in chain for t in m.targets)]

        def affinity(chain: list[str]) -> int:
            # How close each mention comes to this candidate: a sibling community named in the text pulls
            # towards its own street even though it does not lie on the candidate's chain.
            total = 0
            for m in mentions:
                best_shared = 0
                for t in m.targets:
                    shared = 0
                    for a, b in zip(chain, tree.chain(t.area_code), strict=False):
                        if a != b:
                            break
                        shared += 1
                    best_shared = max(best_shared, shared)
                total += best_shared
            return total

        scored: dict[tuple[str, str | None], tuple[int, int, float]] = {}
        for m in mentions:
            for t in m.targets:
                key = (t.area_code, t.place.place_id if t.place else None)
                if key in scored:
                    continue
                chain = tree.chain(t.area_code)
                support = len(explained_by(set(chain)))
                depth = tree.depth(t.area_code) + (0.5 if t.place else 0.0)
                scored[key] = (support, affinity(chain), depth)
        best_score = max(scored.values())
        best = sorted(k for k, s in scored.items() if s == best_score)
        best_codes = sorted({code for code, _ in best})
        ambiguous = len(best_codes) > 1
        if ambiguous:
            code = tree.common_ancestor(best_codes)
            place_id = None
        else:
            code = best_codes[0]
            place_ids = sorted({p for _, p in best if p is not None})
            place_id = place_ids[0] if len(place_ids) == 1 else None
        if code is None:
            # Tied candidates in separate trees (no common root): nothing safe to route on.
            return JurisdictionResult(
                area_code=best_codes[0],
                level=tree.areas[best_codes[0]].level,
                chain=tree.chain(best_codes[0]),
                method="text",
                matched=[m.surface for m in mentions],
                confidence=0.2,
                ambiguous=True,
                explanation="名称在多个互不相属的区划中出现：" + "、".join(tree.label(c) for c in best_codes),
                candidates=best_codes,
            )
        chain_list = tree.chain(code)
        used = (
            explained_by(set(chain_list))
            if not ambiguous
            else explained_by(set().union(*(tree.chain(c) for c in best_codes)))
        )
        unexplained = [m for m in mentions if m not in used]
        exact = any(m.exact for m in used)
        confidence = 0.95 if exact else 0.85
        notes: list[str] = []
        if ambiguous:
            confidence *= 0.5
            notes.append(
                "“"
                + "、".join(m.surface for m in used)
                + "”可指多个区划："
                + "、".join("/".join(tree.label(c) for c in tree.chain(b)) for b in best_codes)
                + f"；取共同上级 {tree.label(code)}"
            )
        if unexplained:
            confidence -= 0.3
            ambiguous = True
            notes.append("与文本中的“" + "、".join(m.surface for m in unexplained) + "”不一致")
        method: Method = "place" if place_id else "text"
        head = "/".join(tree.label(c) for c in chain_list)
        via = f"（地点 {place_id}）" if place_id else ""
        explanation = f"地址文本匹配“{'、'.join(m.surface for m in used)}” → {head}{via}"
        if notes:
            explanation += "；" + "；".join(notes)
        return JurisdictionResult(
            area_code=code,
            level=tree.areas[code].level,
            chain=chain_list,
            method=method,
            matched=[m.surface for m in used],
            confidence=round(max(0.05, confidence), 3),
            ambiguous=ambiguous,
            explanation=explanation,
            candidates=best_codes if len(best_codes) > 1 else [],
            place_id=place_id,
        )


def check_coordinates(lat: float, lon: float) -> None:
    """Raise ValueError for coordinates that cannot be on Earth (NaN, infinite, out of range)."""
    if not (isinstance(lat, int | float) and isinstance(lon, int | float)):
        raise ValueError("lat and lon must be numbers")
    if not (math.isfinite(lat) and math.isfinite(lon)):
        raise ValueError(f"impossible coordinates: lat={lat}, lon={lon}")
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise ValueError(f"impossible coordinates: lat={lat}, lon={lon}")


class PolygonIndex:
    """Point → deepest area whose polygon holds it, through a shapely STRtree."""

    def __init__(self, areas: Iterable[AreaRecord]) -> None:
        from shapely import STRtree, make_valid
        from shapely.geometry import shape

        self.tree = _AreaTree(areas)
        codes: list[str] = []
        geoms = []
        for area in self.tree.areas.values():
            if not area.polygon:
                continue
            geom = shape(area.polygon)
            if geom.geom_type not in ("Polygon", "MultiPolygon"):
                raise ValueError(f"area {area.code}: polygon must be a Polygon or MultiPolygon")
            if not geom.is_valid:
                geom = make_valid(geom)
            codes.append(area.code)
            geoms.append(geom)
        # Every level is indexed, not only the leaves: where community polygons leave gaps, the street still
        # answers. A point query hits one polygon per level, so this costs nothing measurable.
        self._codes = codes
        self._geoms = geoms
        self._rtree = STRtree(geoms)

    def __len__(self) -> int:
        return len(self._codes)

    def locate(self, lat: float, lon: float) -> JurisdictionResult | None:
        """The deepest area containing (lat, lon); None when no polygon holds it."""
        from shapely.geometry import Point

        check_coordinates(lat, lon)
        point = Point(lon, lat)
        # "intersects" rather than "within": a point on the line between two communities belongs to both, and
        # must not silently fall back to their street.
        hits = self._rtree.query(point, predicate="intersects")
        if hits.size == 0:
            return None
        by_code = {self._codes[int(i)]: self._geoms[int(i)] for i in hits}
        deepest = max(self.tree.depth(c) for c in by_code)
        best = sorted(c for c in by_code if self.tree.depth(c) == deepest)
        code = best[0]
        on_boundary = not by_code[code].contains(point)
        chain = self.tree.chain(code)
        ambiguous = len(best) > 1
        explanation = f"坐标落在 {'/'.join(self.tree.label(c) for c in chain)} 范围内"
        if ambiguous:
            explanation += "（位于边界上，亦属 " + "、".join(self.tree.label(c) for c in best[1:]) + "）"
        elif on_boundary:
            explanation += "（位于边界上）"
        return JurisdictionResult(
            area_code=code,
            level=self.tree.areas[code].level,
            chain=chain,
            method="point",
            matched=[f"{lat:.6f},{lon:.6f}"],
            confidence=0.6 if on_boundary else 1.0,
            ambiguous=ambiguous,
            explanation=explanation,
            candidates=best if ambiguous else [],
        )


class Jurisdiction:
    """Address text and/or map point → area; the point wins when it falls inside a known polygon."""

    def __init__(self, areas: Iterable[AreaRecord], places: Iterable[PlaceRecord] = ()) -> None:
        area_list = list(areas)
        self.gazetteer = Gazetteer(area_list, places)
        self.polygons = PolygonIndex(area_list)

    def resolve(
        self, address_text: str | None = None, lat: float | None = None, lon: float | None = None
    ) -> JurisdictionResult | None:
        """Resolve by point when given and inside, else by text; disagreements are stated in the explanation.

        A text result lying strictly below the point's area (a community named in the text, inside the
        street the point found) refines the point rather than contradicting it, and is returned instead.
        """
        if (lat is None) != (lon is None):
            raise ValueError("lat and lon must be given together")
        by_point = self.polygons.locate(lat, lon) if lat is not None and lon is not None else None
        by_text = self.gazetteer.resolve_text(address_text) if address_text else None
        if by_point is None:
            if by_text is not None and lat is not None:
                return _with_note(by_text, "坐标不在任何已知区划内，按地址文本判定")
            return by_text
        if by_text is None:
            return by_point
        tree = self.gazetteer.tree
        if by_text.area_code == by_point.area_code or by_text.area_code in by_point.chain:
            return _with_note(by_point, "与地址文本一致")
        if by_point.area_code in by_text.chain and not by_text.ambiguous:
            return _with_note(by_text, f"细化了坐标所在的 {tree.label(by_point.area_code)}")
        return _with_note(
            by_point,
            f"与地址文本不一致：文本指向 {'/'.join(tree.label(c) for c in by_text.chain)}，以坐标为准",
        )


def _with_note(result: JurisdictionResult, note: str) -> JurisdictionResult:
    return JurisdictionResult(
        area_code=result.area_code,
        level=result.level,
        chain=result.chain,
        method=result.method,
        matched=result.matched,
        confidence=result.confidence,
        ambiguous=result.ambiguous,
        explanation=f"{result.explanation}；{note}",
        candidates=result.candidates,
        place_id=result.place_id,
    )
