"""Chinese request texts for the demo city, with their addresses and callers.

:func:`generate_request` writes what a citizen says (title, detail, address, kind, urgency, optional map
point) for a category and an area of a :class:`~minsheng.demo.city.DemoCity`; fake callers come from
:mod:`minsheng.demo.people` and addresses and the jurisdiction test sets from :mod:`minsheng.demo.addresses`
(both re-exported here).

The texts are built from many templates per first-level category, with slot fillers (places, times, durations,
amounts, tones) and per-level-3 problem phrases (the data files read by :mod:`minsheng.demo.phrases`). Each
category has its own vocabulary so that a classifier can learn it, with the overlap real requests have: shared
complaint phrasing, shared places, and a few requests that mention a second problem of another category. All
texts are written for this project; none is taken from a data set.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from minsheng.demo.addresses import build_address, detail_jurisdiction_test_set, jurisdiction_test_set
from minsheng.demo.people import (
    Citizen,
    fake_id_number,
    fake_mobile,
    fake_name,
    generate_citizen,
    id_check_digit,
    is_valid_id_number,
)
from minsheng.demo.phrases import (
    Template,
    asks,
    emergency,
    generic_templates,
    issues,
    kind_weights,
    often_urgent,
    phrase,
    templates,
    tone_weights,
    topic_like,
)

if TYPE_CHECKING:  # city.py imports the people module, so only import it for type checking
    from minsheng.demo.city import CategorySpec, DemoCity, PlaceSpec

__all__ = [
    "KINDS",
    "TONES",
    "URGENCIES",
    "Citizen",
    "RequestText",
    "build_address",
    "detail_jurisdiction_test_set",
    "fake_id_number",
    "fake_mobile",
    "fake_name",
    "generate_citizen",
    "generate_request",
    "id_check_digit",
    "is_valid_id_number",
    "jurisdiction_test_set",
]

KINDS = ("consultation", "help", "complaint", "report", "suggestion", "praise")
URGENCIES = ("normal", "urgent", "emergency")
TONES = ("polite", "angry", "urgent", "neutral")
# Weights of KINDS for a first-level category the data file does not weigh.
_DEFAULT_KIND_WEIGHTS = (30, 15, 35, 10, 6, 4)
# Title slots that already say where or who; other titles get the caller's community or street in front.
_TITLE_SAYS_WHERE = ("{loc}", "{school}", "{hospital}", "{shop}", "{company}")


@dataclass(frozen=True)
class RequestText:
    title: str
    detail: str
    address: str
    kind: str  # one of KINDS
    urgency: str  # one of URGENCIES
    place_name: str | None
    lat: float | None
    lon: float | None


class _Slots(dict[str, str]):
    """Template slots filled on first use, so a template only draws the random values it needs (and the draws
    happen in a fixed order, which keeps generation deterministic)."""

    def __init__(self, makers: dict[str, Callable[[], object]]) -> None:
        super().__init__()
        self.makers = makers

    def __missing__(self, key: str) -> str:
        value = str(self.makers[key]())
        self[key] = value
        return value


@dataclass(frozen=True)
class _Request:
    """What a request is about, drawn before its words: the categories, the grid, the kind."""

    rng: random.Random
    city: DemoCity
    leaf: CategorySpec
    l2: CategorySpec
    l1: CategorySpec
    grid_code: str
    kind: str


def _pick_place(
    rng: random.Random, city: DemoCity, grid_code: str, kinds: tuple[str, ...] = ()
) -> PlaceSpec | None:
    places = city.places_by_grid.get(grid_code, [])
    if kinds:
        places = [p for p in places if p.kind in kinds] or places
    return rng.choice(places) if places else None


def _nearby(rng: random.Random, city: DemoCity, grid_code: str, kind: str) -> str:
    """A place of one kind near the grid: in its community, else in its street, else anywhere in the city."""
    cands = [p for p in city.places_by_community.get(grid_code[:12], []) if p.kind == kind]
    if not cands:
        for c in city.children.get(grid_code[:9], []):
            cands.extend(p for p in city.places_by_community.get(c.code, []) if p.kind == kind)
    if not cands:
        cands = [p for p in city.places if p.kind == kind]
    return rng.choice(cands).name if cands else kind


def _kind(rng: random.Random, l1: CategorySpec, leaf: CategorySpec) -> str:
    weights = list(kind_weights().get(l1.name, _DEFAULT_KIND_WEIGHTS))
    if leaf.name in topic_like():
        weights[0] *= 8  # a topic is mostly asked about
    return rng.choices(KINDS, weights=weights)[0]


def _template(r: _Request) -> Template:
    own = [t for t in templates().get(r.l1.name, ()) if t[0] == r.kind]
    generic = [t for t in generic_templates() if t[0] == r.kind]
    # Mostly category-specific wording; sometimes the plain wording any operator could have typed.
    pool = own if own and r.rng.random() < 0.85 else (generic or own)
    return r.rng.choice(pool)


def _place(r: _Request) -> PlaceSpec | None:
    """Most requests name a place in the grid, of a kind that suits the category."""
    place_kinds: tuple[str, ...] = ()
    if r.l1.name in ("城乡建设", "交通运输", "公用事业"):
        place_kinds = ("路", "小区")
    elif r.l1.name in ("市场监管", "商贸旅游"):
        place_kinds = ("市场", "商场", "路")
    return _pick_place(r.rng, r.city, r.grid_code, place_kinds) if r.rng.random() < 0.85 else None


def _issue(r: _Request) -> str:
    issue = r.rng.choice(issues()[r.leaf.name])
    if r.leaf.name in topic_like() and r.kind != "consultation" and len(issue) <= 8:
        # Topic phrases are nouns; outside a question they need a verb to read as a problem.
        issue = r.rng.choice(phrase("topic_as_problem")).format(issue)
    return issue


def _tone(r: _Request) -> str:
    weights = tone_weights().get(r.kind)
    tone = r.rng.choices(TONES, weights=weights)[0] if weights else "polite"
    if r.leaf.name in emergency() and r.kind in ("help", "report", "complaint"):
        return "urgent"
    if tone == "urgent" and r.leaf.name not in often_urgent():
        return "polite"  # nobody calls a price dispute "about to cause an accident"
    return tone


def _amount(rng: random.Random) -> str:
    return rng.choice(
        [
            f"{rng.randint(2, 98) * 100}元",
            f"{rng.randint(1, 9)}万多元",
            f"{rng.randint(3, 60)}000多元",
            f"{rng.randint(50, 999)}元",
        ]
    )


def _slots(r: _Request, place: PlaceSpec | None, address: str, issue: str, tone: str) -> _Slots:
    """The template slots of one request; each draws its random value only when a template uses it."""
    rng, city, grid_code = r.rng, r.city, r.grid_code
    community = city.area_by_code[grid_code[:12]]
    said = issues()[r.leaf.name]
    route = city.route(r.leaf.code, grid_code)
    thanks_unit = city.unit_by_code[route.lead_unit_code].name if route else "工作人员"
    slots: _Slots  # the "ask" filler refers back to the other slots
    slots = _Slots(
        {
            "addr": lambda: address,
            "loc": lambda: place.name if place is not None else community.name,
            "issue": lambda: issue,
            "issue2": lambda: rng.choice([i for i in said if i != issue] or [issue]),
            "topic": lambda: r.leaf.name,
            "l2": lambda: r.l2.name,
            "when": lambda: rng.choice(phrase("when")),
            "dur": lambda: rng.choice(phrase("dur")),
            "times": lambda: rng.choice(phrase("times")),
            "hour": lambda: rng.choice(phrase("hour")),
            "who": lambda: rng.choice(phrase("who")),
            "amount": lambda: _amount(rng),
            "aspect": lambda: rng.choice(phrase("aspect")),
            "n": lambda: rng.randint(2, 12) if r.l1.name != "民政" else rng.randint(60, 95),
            "shop": lambda: rng.choice(phrase("shops")),
            "company": lambda: rng.choice(phrase("company_a")) + rng.choice(phrase("company_b")),
            "school": lambda: _nearby(rng, city, grid_code, "学校"),
            "hospital": lambda: _nearby(rng, city, grid_code, "医院"),
            "route": lambda: rng.choice(["", "", "K", "B"]) + f"{rng.randint(1, 399)}路公交",
            "district": lambda: city.area_by_code[grid_code[:6]].name,
            "thanks_unit": lambda: thanks_unit,
            "ask": lambda: rng.choice(asks()[tone]).format_map(slots),
        }
    )
    return slots


def _title(r: _Request, title_t: str, slots: _Slots) -> str:
    title = title_t.format_map(slots)
    # Operators name where a caller is from when the subject alone says little (咨询营业执照 × 1,000).
    if not any(k in title_t for k in _TITLE_SAYS_WHERE) and r.rng.random() < 0.85:
        areas = r.city.area_by_code
        caller = r.rng.choice(phrase("caller")).format(
            community=areas[r.grid_code[:12]].name,
            street=areas[r.grid_code[:9]].name,
            district=areas[r.grid_code[:6]].name,
        )
        title = caller + title
    return title


def _detail(r: _Request, detail_t: str, slots: _Slots) -> str:
    detail = detail_t.format_map(slots)
    if r.rng.random() < 0.04:
        # A second, unrelated problem in the same call: real requests mix topics, and classifiers must cope.
        other = r.rng.choice(list(issues()))
        detail += f"另外，{r.rng.choice(issues()[other])}，也请一并处理。"
    if r.rng.random() < 0.1:
        detail = r.rng.choice(phrase("opening")) + detail
    return detail


def _urgency(r: _Request, tone: str) -> str:
    if r.kind in ("praise", "consultation"):
        return "normal"
    if r.leaf.name in emergency():
        return "emergency" if r.rng.random() < 0.8 else "urgent"
    if tone == "urgent" or (r.leaf.name in often_urgent() and r.rng.random() < 0.4):
        return "urgent"
    return "normal"


def generate_request(
    rng: random.Random,
    city: DemoCity,
    category_code: str,
    area_code: str,
    *,
    kind: str | None = None,
    with_gps: bool | None = None,
) -> RequestText:
    """A citizen's request about a category at a place of an area.

    ``category_code`` may be of any level (a level-3 descendant is drawn for levels 1-2); ``area_code`` of any
    level (a grid inside it is drawn). ``kind`` forces the request kind; ``with_gps`` forces whether a map
    point is attached (channels with GPS: app, WeChat, grid, Open311); by default it is drawn.
    """
    leaf = rng.choice(city.leaves_under(category_code))
    l1 = city.category_by_code[leaf.code[:2]]
    grid_code = rng.choice(city.grids_under(area_code)) if len(area_code) < 15 else area_code
    if kind is None:
        kind = _kind(rng, l1, leaf)
    r = _Request(rng, city, leaf, city.category_by_code[leaf.code[:4]], l1, grid_code, kind)
    _, title_t, detail_t = _template(r)
    place = _place(r)
    address, _ = build_address(rng, city, grid_code, place)
    issue = _issue(r)
    tone = _tone(r)
    slots = _slots(r, place, address, issue, tone)
    title = _title(r, title_t, slots)
    detail = _detail(r, detail_t, slots)
    urgency = _urgency(r, tone)
    if with_gps is None:
        with_gps = rng.random() < 0.3
    lat, lon = city.random_point(rng, grid_code) if with_gps else (None, None)
    return RequestText(
        title=title[:60],
        detail=detail,
        address=address,
        kind=kind,
        urgency=urgency,
        place_name=place.name if place is not None else None,
        lat=lat,
        lon=lon,
    )
