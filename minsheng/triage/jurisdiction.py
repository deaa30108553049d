"""Jurisdiction (属地): which area a ticket belongs to, from its address text or its map point.

``Gazetteer`` reads area and place names (with aliases and suffix variants) out of free address text, using a
private jieba tokenizer for word boundaries and a substring scan for names jieba splits. Names that several
districts share are settled by the parent chain the text also names. ``Gazetteer.resolve_detail`` reads the
request's own words (title and detail) under stricter rules, for citizens who say where in the text rather than
in an address. ``PolygonIndex`` finds the deepest area polygon holding a lat/lon point through a shapely
``STRtree``. ``Jurisdiction`` combines all three: point, then address, then the words.
"""

from __future__ import annotations

import math
import threading
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Level = Literal["city", "district", "street", "community", "grid"]
Method = Literal["text", "place", "point", "detail_text"]

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
# A place name shorter than this ("万达") is too often a brand or a word to stand alone in free text.
_MIN_PLACE = 3


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


@dataclass(frozen=True, slots=True)
class _Decision:
    code: str | None  # None when tied candidates share no root
    best_codes: list[str]
    place_id: str | None
    used: list[_Mention]
    unexplained: list[_Mention]
    ambiguous: bool  # several candidates tied; code is their common ancestor


class Gazetteer:
    """Area and place names → area, for address text (``resolve_text``) and a request's words (``resolve_detail``)."""

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

    def _mentions(self, text: str, free_text: bool = False) -> list[_Mention]:
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
        if free_text:
            # In a citizen's own words an alias without its suffix ("光明", "新华") is as likely an everyday
            # word, and a name that only says "the city" tells nothing: both are held to the stem's standard.
            found = [m for m in found if not all(self.tree.depth(t.area_code) == 1 for t in m.targets)]
            needs_cut = [not self._strong(m) for m in found]
        else:
            needs_cut = [not m.exact for m in found]
        cuts = self._boundaries(text) if any(needs_cut) else set()
        checked = {id(m) for m, need in zip(found, needs_cut, strict=True) if need}
        # Longest names first, exact names before stems: "幸福路街道" beats the "幸福路" inside it.
        found.sort(key=lambda m: (-(m.end - m.start), not m.exact, m.start))
        taken = [False] * len(text)
        chosen: list[_Mention] = []
        for m in found:
            if any(taken[m.start : m.end]):
                continue
            # A stem is a short, common string ("阳光", "幸福"): trust it only where jieba sees a word.
            if id(m) in checked and (m.start not in cuts or m.end not in cuts):
                continue
            chosen.append(m)
            for i in range(m.start, m.end):
                taken[i] = True
        chosen.sort(key=lambda m: m.start)
        return chosen

    def _strong(self, m: _Mention) -> bool:
        """Whether a mention is specific enough to stand alone in free text.

        A named place in full (or one of its recorded aliases) is, and so is an area name with its suffix
        ("幸福路街道", "城关乡", "翠湖社区"); a bare stem or a suffixless alias ("幸福路", "海淀") is not.
        """
        if m.exact and len(m.surface) >= _MIN_PLACE and any(t.place is not None for t in m.targets):
            return True
        return _stem(m.surface, _AREA_SUFFIXES) is not None and any(t.place is None for t in m.targets)

    def _decide(self, mentions: list[_Mention]) -> _Decision:
        """The candidate area best supported by ``mentions``: most mentions on its chain, then closest to the
        other mentions, then deepest (a place counts as half a level below its area)."""
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
        place_id: str | None = None
        if ambiguous:
            code = tree.common_ancestor(best_codes)
        else:
            code = best_codes[0]
            place_ids = sorted({p for _, p in best if p is not None})
            place_id = place_ids[0] if len(place_ids) == 1 else None
        if code is None:
            return _Decision(None, best_codes, None, list(mentions), [], True)
        used = (
            explained_by(set(tree.chain(code)))
            if not ambiguous
            else explained_by(set().union(*(tree.chain(c) for c in best_codes)))
        )
        unexplained = [m for m in mentions if m not in used]
        return _Decision(code, best_codes, place_id, used, unexplained, ambiguous)

    def _tie_note(self, decision: _Decision) -> str:
        tree = self.tree
        assert decision.code is not None
        return (
            "“"
            + "、".join(m.surface for m in decision.used)
            + "”可指多个区划："
            + "、".join("/".join(tree.label(c) for c in tree.chain(b)) for b in decision.best_codes)
            + f"；取共同上级 {tree.label(decision.code)}"
        )

    def resolve_text(self, address_text: str | None) -> JurisdictionResult | None:
        """The deepest area the text names consistently, or None when it names none."""
        if not address_text:
            return None
        text = _norm(address_text)
        mentions = self._mentions(text)
        if not mentions:
            return None
        tree = self.tree
        decision = self._decide(mentions)
        best_codes, code = decision.best_codes, decision.code
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
        used, unexplained, place_id = decision.used, decision.unexplained, decision.place_id
        ambiguous = decision.ambiguous
        exact = any(m.exact for m in used)
        confidence = 0.95 if exact else 0.85
        notes: list[str] = []
        if ambiguous:
            confidence *= 0.5
            notes.append(self._tie_note(decision))
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

    def resolve_detail(self, text: str | None) -> JurisdictionResult | None:
        """The area a request's own words (title and detail) name, or None when they do not name one firmly.

        Free text is noisier than an address field, so the evidence must be stronger: at least one strong
        mention (a named place, or an area name with its suffix), or two different weak mentions (bare stems,
        suffixless aliases) lying on one chain. Weak mentions that fit no strong candidate are taken for
        everyday words and ignored; a strong mention elsewhere makes the result ambiguous. Confidence stays
        below that of an address (0.6-0.85, halved on a tie), and ``method`` is "detail_text".
        """
        if not text:
            return None
        # Title and detail are separate sentences: a name must not be read across the line break.
        norm = _norm(text.replace("\r", "。").replace("\n", "。"))
        mentions = self._mentions(norm, free_text=True)
        if not mentions:
            return None
        tree = self.tree
        strong = [m for m in mentions if self._strong(m)]
        weak = [_area_first(tree, m) for m in mentions if not self._strong(m)]
        ignored: list[_Mention] = []
        if strong:
            first = self._decide(strong)
            if first.code is None:
                return None
            support = [m for m in weak if _supports(tree, m, first.best_codes, strong)]
            ignored = [m for m in weak if m not in support]
            decision = self._decide(strong + support) if support else first
            base = 0.8 if decision.place_id else 0.75
        else:
            if len({m.surface for m in weak}) < 2:
                return None
            decision = self._decide(weak)
            if decision.code is None or decision.ambiguous or len({m.surface for m in decision.used}) < 2:
                return None
            # With other bare names around, only a pair said in one breath ("五里马鞍") is telling: two words
            # that merely happen to lie on one chain among several could be chance.
            if decision.unexplained and not _touching(decision.used):
                return None
            base = 0.6
        code = decision.code
        if code is None or tree.depth(code) == 1:
            return None
        conflicts = [m for m in decision.unexplained if self._strong(m)]
        ignored += [m for m in decision.unexplained if not self._strong(m)]
        used = decision.used
        confidence = base
        if strong and len({m.surface for m in used}) >= 2:
            confidence += 0.05
        ambiguous = decision.ambiguous
        notes: list[str] = []
        if ambiguous:
            confidence *= 0.5
            notes.append(self._tie_note(decision))
        if conflicts:
            # Two firm names in different places: the caller may live in one and complain about the other, so
            # neither is safe to route on (this keeps the result below the usual 0.5 gate).
            confidence *= 0.5
            ambiguous = True
            notes.append("与内容中的“" + "、".join(m.surface for m in conflicts) + "”不一致")
        if ignored:
            notes.append("未采用“" + "、".join(dict.fromkeys(m.surface for m in ignored)) + "”（不足以判定）")
        chain_list = tree.chain(code)
        head = "/".join(tree.label(c) for c in chain_list)
        via = f"（地点 {decision.place_id}）" if decision.place_id else ""
        explanation = f"诉求内容提及“{'、'.join(dict.fromkeys(m.surface for m in used))}” → {head}{via}"
        if notes:
            explanation += "；" + "；".join(notes)
        return JurisdictionResult(
            area_code=code,
            level=tree.areas[code].level,
            chain=chain_list,
            method="detail_text",
            matched=list(dict.fromkeys(m.surface for m in used)),
            confidence=round(max(0.05, confidence), 3),
            ambiguous=ambiguous,
            explanation=explanation,
            candidates=decision.best_codes if len(decision.best_codes) > 1 else [],
            place_id=decision.place_id,
        )


def _area_first(tree: _AreaTree, m: _Mention) -> _Mention:
    """A bare word that is both an area's stem and a place's ("胜利": 胜利社区, 胜利小区 inside it) names the
    area for sure and the place only maybe, so the place is dropped rather than allowed to deepen the answer."""
    areas = [t.area_code for t in m.targets if t.place is None]
    if not areas:
        return m
    kept = tuple(
        t for t in m.targets if t.place is None or not any(a in tree.chain(t.area_code) for a in areas)
    )
    return _Mention(m.surface, m.start, m.end, m.exact, kept)


def _supports(tree: _AreaTree, m: _Mention, candidates: list[str], strong: list[_Mention]) -> bool:
    """Whether a weak mention may join the strong ones in free text.

    It may settle or confirm (name an area at or above a strong candidate: "海淀" + "阳光社区"), but deepen
    the answer only when said right next to a strong name ("城关镇翠湖"): the "解放" of 解放出来 must not turn
    a request about 东城区 into one about 解放村 just because that community lies in 东城区.
    """
    next_to_strong = any(m.start == s.end or m.end == s.start for s in strong)
    for t in m.targets:
        for c in candidates:
            if t.area_code in tree.chain(c):
                return True
            if next_to_strong and c in tree.chain(t.area_code):
                return True
    return False


def _touching(mentions: list[_Mention]) -> bool:
    """Whether two of the mentions, with different names, are written back to back."""
    return any(a.end == b.start and a.surface != b.surface for a in mentions for b in mentions)


def _on_line(tree: _AreaTree, a: str, b: str) -> bool:
    """Whether one of two areas contains the other (or they are the same)."""
    return a in tree.chain(b) or b in tree.chain(a)


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
    """Address text, map point and the request's own words → area.

    The point wins when it falls inside a known polygon, then the address text; the request's title and
    detail are read last and only ever fill a gap, refine a coarse answer, or settle a tie between candidates:
    they never overrule an address or a point, and a disagreement is stated in the explanation.
    """

    def __init__(self, areas: Iterable[AreaRecord], places: Iterable[PlaceRecord] = ()) -> None:
        area_list = list(areas)
        self.gazetteer = Gazetteer(area_list, places)
        self.polygons = PolygonIndex(area_list)

    def resolve(
        self,
        address_text: str | None = None,
        lat: float | None = None,
        lon: float | None = None,
        detail_text: str | None = None,
    ) -> JurisdictionResult | None:
        """Resolve by point when given and inside, else by text; disagreements are stated in the explanation.

        A text result lying strictly below the point's area (a community named in the text, inside the
        street the point found) refines the point rather than contradicting it, and is returned instead.
        ``detail_text`` (title and detail, one per line) is read with :meth:`Gazetteer.resolve_detail` and
        merged by :meth:`merge_detail`.
        """
        if (lat is None) != (lon is None):
            raise ValueError("lat and lon must be given together")
        by_point = self.polygons.locate(lat, lon) if lat is not None and lon is not None else None
        by_text = self.gazetteer.resolve_text(address_text) if address_text else None
        found = self._address_or_point(by_text, by_point, lat is not None)
        if not detail_text:
            return found
        by_detail = self.gazetteer.resolve_detail(detail_text)
        if by_detail is None:
            return found
        if found is None:
            missing = []
            if address_text:
                missing.append("地址文本未能识别区划")
            if lat is not None:
                missing.append("坐标不在任何已知区划内")
            why = "，".join(missing) if missing else "未提供地址和坐标"
            return _with_note(by_detail, f"{why}，按诉求内容判定")
        return self.merge_detail(found, by_detail)

    def _address_or_point(
        self, by_text: JurisdictionResult | None, by_point: JurisdictionResult | None, point_given: bool
    ) -> JurisdictionResult | None:
        if by_point is None:
            if by_text is not None and point_given:
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

    def merge_detail(self, found: JurisdictionResult, by_detail: JurisdictionResult) -> JurisdictionResult:
        """``found`` (from the address or the point) with what the request's words say about it.

        The words may agree (same area or an area above it), refine (an area strictly below, e.g. a community
        inside the street the address named), or settle a tie (the one candidate they fit); anything else is a
        disagreement, and ``found`` stands with a note saying so.
        """
        tree = self.gazetteer.tree
        source = "坐标" if found.method == "point" else "地址"
        said = f"诉求内容提及的 {'/'.join(tree.label(c) for c in by_detail.chain)}"
        if by_detail.ambiguous:
            # Words unsure of themselves may confirm, never move the area.
            if _on_line(tree, by_detail.area_code, found.area_code):
                return _with_note(found, f"{said}与之相符")
            return _with_note(found, f"{said}与{source}不一致，以{source}为准")
        if found.candidates:
            fits = [c for c in found.candidates if _on_line(tree, by_detail.area_code, c)]
            if len(fits) != 1:
                verdict = "与各候选均不一致" if not fits else "未能消除歧义"
                return _with_note(found, f"{said}{verdict}，以{source}为准")
            (fit,) = fits
            if fit in by_detail.chain:
                return _refined(
                    by_detail, found, f"在{source}的候选中确定并细化为 {tree.label(by_detail.area_code)}"
                )
            settled = JurisdictionResult(
                area_code=fit,
                level=tree.areas[fit].level,
                chain=tree.chain(fit),
                method=found.method,
                matched=[*found.matched, *by_detail.matched],
                confidence=_boosted(by_detail.confidence),
                ambiguous=False,
                explanation=f"{found.explanation}；{said}在候选中确定了 {tree.label(fit)}",
                place_id=found.place_id if found.area_code == fit else None,
            )
            return settled
        if by_detail.area_code in found.chain:
            return _with_note(found, f"{said}与之一致")
        if found.area_code in by_detail.chain:
            return _refined(by_detail, found, f"细化了{source}所在的 {tree.label(found.area_code)}")
        return _with_note(found, f"{said}与{source}不一致，以{source}为准")


def _boosted(confidence: float) -> float:
    # The words and the address (or point) agree on the upper levels: more than either alone, but never the
    # certainty of an address that names the area itself.
    return round(min(0.9, confidence + 0.1), 3)


def _refined(by_detail: JurisdictionResult, found: JurisdictionResult, note: str) -> JurisdictionResult:
    return JurisdictionResult(
        area_code=by_detail.area_code,
        level=by_detail.level,
        chain=by_detail.chain,
        method="detail_text",
        matched=[*found.matched, *by_detail.matched],
        confidence=by_detail.confidence if found.ambiguous else _boosted(by_detail.confidence),
        ambiguous=found.ambiguous and not found.candidates,
        explanation=f"{found.explanation}；{by_detail.explanation}，{note}",
        candidates=[],
        place_id=by_detail.place_id,
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
