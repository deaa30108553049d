"""Measure tables and rankings from the daily facts: any period, any scope, by unit, area, category, channel
or time, each figure with the previous period and the same period last year.

Every query sums the counters of one cube of `measure_facts` over a range of days (the smallest cube that
keeps the keys asked for, `pick_cube`), then rolls units and areas up to the rows asked for in Python: areas
into their ancestors by path, units into their parents. Values come from `minsheng.measures.values`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from minsheng.domain.states import Channel
from minsheng.measures.catalogue import BY_CODE
from minsheng.measures.periods import Grain, Period
from minsheng.measures.timeline import COUNTERS
from minsheng.measures.values import MeasureSettings, base_of, composite, values
from minsheng.services.errors import Invalid
from minsheng.services.measures import org_tree
from minsheng.services.measures.facts import CUBES, MONTHLY
from minsheng.storage.measure_tables import measure_facts
from minsheng.storage.models import Area

By = Literal["unit", "area", "category", "channel", "day", "week", "month"]
BY_VALUES: tuple[str, ...] = ("unit", "area", "category", "channel", "day", "week", "month")
_DIM_COLUMN = {"unit": "unit_id", "area": "area_id", "category": "category_id", "channel": "channel"}
Counts = dict[str, int]


@dataclass(frozen=True)
class Scope:
    """Where figures are taken: an area (with its subtree), a unit (with its subtree), both, or the city."""

    area_code: str | None = None
    unit_code: str | None = None


@dataclass
class MeasureRow:
    """One row of a table: ``key`` ("unit:ZJJ", "area:C01", "category:01", "channel:phone", "day:2026-11-03",
    "total") names it for `tickets_behind`; ``code`` is the bare code, ``name`` what a page shows.

    ``values``, ``previous`` and ``last_year`` map measure codes to values (rates 0-1, hours, counts);
    ``counts`` are the summed counters; ``few``: too few tickets behind the row to rank it (``base`` of them).
    """

    key: str
    code: str
    name: str
    values: dict[str, float | None]
    counts: Counts
    previous: dict[str, float | None] = field(default_factory=dict)
    last_year: dict[str, float | None] = field(default_factory=dict)
    few: bool = False
    base: float = 0.0
    score: float | None = None


@dataclass
class MeasureTable:
    period: Period
    scope: Scope
    by: str | None
    rows: list[MeasureRow]
    total: MeasureRow
    settings: MeasureSettings


@dataclass
class RankRow:
    """One ranked unit or area: ``rank`` is None when ``few`` (too few tickets) or without a value."""

    rank: int | None
    key: str
    code: str
    name: str
    value: float | None
    values: dict[str, float | None]
    counts: Counts
    base: float
    few: bool
    previous_value: float | None = None


def measure_settings(settings: Any) -> MeasureSettings:
    """`MeasureSettings` from `Settings`, or as given."""
    return settings if isinstance(settings, MeasureSettings) else MeasureSettings.from_settings(settings)


# ---------------------------------------------------------------------------------------------- querying
def pick_cube(dims: Iterable[str]) -> int:
    """The smallest cube that keeps every dimension asked for."""
    wanted = set(dims)
    for cube in (5, 1, 2, 3, 4, 0):
        if wanted <= CUBES[cube]:
            return cube
    return 0


@dataclass
class Filter:
    """Rows of the facts: units (ids) and an area subtree (path prefix); None: no condition."""

    unit_ids: set[int] | None = None
    area_path: str | None = None

    def dims(self) -> set[str]:
        return ({"unit"} if self.unit_ids is not None else set()) | ({"area"} if self.area_path else set())

    def conditions(self) -> list[ColumnElement[bool]]:
        out: list[ColumnElement[bool]] = []
        if self.unit_ids is not None:
            out.append(measure_facts.c.unit_id.in_(sorted(self.unit_ids)))
        if self.area_path:
            subtree = select(Area.id).where(Area.path.startswith(self.area_path, autoescape=True))
            out.append(measure_facts.c.area_id.in_(subtree))
        return out


def sums(
    session: Session, start: date, end: date, group: Sequence[str], flt: Filter
) -> dict[tuple[Any, ...], Counts]:
    """Counters summed over days [start, end), grouped by the fact columns ``group`` ("day", "unit_id" …).

    Whole months are read from the monthly cube where there is one (and no grouping by day), the days before
    the first and after the last whole month from the daily cube."""
    dims = {d for d, col in _DIM_COLUMN.items() if col in group} | flt.dims()
    cube = pick_cube(dims)
    monthly = MONTHLY.get(cube) if "day" not in group else None
    first = start if start.day == 1 else _next_month(start)
    last = end.replace(day=1)
    if monthly is None or first >= last:
        return _sums(session, cube, start, end, group, flt)
    out: dict[tuple[Any, ...], Counts] = {}
    for c, a, b in ((cube, start, first), (monthly, first, last), (cube, last, end)):
        if a < b:
            for key, counts in _sums(session, c, a, b, group, flt).items():
                add_counts(out.setdefault(key, {}), counts)
    return out


def _next_month(d: date) -> date:
    return date(d.year + d.month // 12, d.month % 12 + 1, 1)


_SUMS = [func.sum(measure_facts.c[c]) for c in COUNTERS]


def _sums(
    session: Session, cube: int, start: date, end: date, group: Sequence[str], flt: Filter
) -> dict[tuple[Any, ...], Counts]:
    cols = [measure_facts.c[g] for g in group]
    q = (
        select(*cols, *_SUMS)
        .where(measure_facts.c.cube == cube, measure_facts.c.day >= start, measure_facts.c.day < end)
        .where(*flt.conditions())
    )
    if cols:
        q = q.group_by(*cols)
    out: dict[tuple[Any, ...], Counts] = {}
    n = len(cols)
    for row in session.execute(q):
        counts = {c: int(v) for c, v in zip(COUNTERS, row[n:], strict=True) if v}
        if counts or not cols:
            out[tuple(row[:n])] = counts
    return out


def add_counts(total: Counts, part: Mapping[str, int]) -> None:
    for k, v in part.items():
        total[k] = total.get(k, 0) + v


# ---------------------------------------------------------------------------------------------- scope
@dataclass
class Resolved:
    """A scope resolved against the organisation: the filter, the trees, the scope's own nodes."""

    flt: Filter
    areas: org_tree.Tree
    units: org_tree.Tree
    area: org_tree.Node | None
    unit: org_tree.Node | None


def resolve(session: Session, scope: Scope) -> Resolved:
    areas = org_tree.areas(session)
    units = org_tree.units(session)
    area = areas.by_code(scope.area_code, "area") if scope.area_code else None
    unit = units.by_code(scope.unit_code, "unit") if scope.unit_code else None
    flt = Filter(units.subtree(unit.id) if unit else None, area.path if area else None)
    return Resolved(flt, areas, units, area, unit)


# ---------------------------------------------------------------------------------------------- tables
def measure_table(
    session: Session, period: Period, scope: Scope, by: str | None, settings: Any
) -> MeasureTable:
    """Every measure for ``scope`` over ``period``: a total row and, with ``by``, one row per unit (the scope's
    child units, each with its subtree), area (the scope's child areas), top-level category, channel, or day /
    week / month of the period; each with the previous period and the same period last year.

    The rows of "unit" and "area" are the scope's children: what belongs to the scope itself (tickets located at
    the scope's area, not in a child; assignments of the scope unit itself) is in the total only."""
    if by is not None and by not in BY_VALUES:
        raise Invalid(f"unknown grouping {by!r}; use one of {', '.join(BY_VALUES)}", field="by")
    ms = measure_settings(settings)
    r = resolve(session, scope)
    periods = {"now": period, "previous": period.previous(), "last_year": period.last_year()}
    totals = {k: sums(session, p.start, p.end, [], r.flt).get((), {}) for k, p in periods.items()}
    total = _row("total", "", _scope_name(r), totals, ms)
    if by in ("day", "week", "month"):
        rows = _time_rows(session, period, by, r.flt, ms)  # type: ignore[arg-type]
    elif by is not None:
        rows = _group_rows(session, periods, by, r, ms)
    else:
        rows = []
    return MeasureTable(period, scope, by, rows, total, ms)


def _scope_name(r: Resolved) -> str:
    parts = [n.name for n in (r.area, r.unit) if n is not None]
    return " · ".join(parts) if parts else "全市"


def _row(key: str, code: str, name: str, counts: Mapping[str, Counts], ms: MeasureSettings) -> MeasureRow:
    now = counts.get("now", {})
    vals = values(now, ms)
    base = base_of(now, None, ms)
    return MeasureRow(
        key=key,
        code=code,
        name=name,
        values=vals,
        counts=dict(now),
        previous=values(counts.get("previous", {}), ms),
        last_year=values(counts.get("last_year", {}), ms),
        few=base < ms.min_tickets,
        base=base,
        score=composite(vals, ms.composite_weights),
    )


def _group_rows(
    session: Session, periods: Mapping[str, Period], by: str, r: Resolved, ms: MeasureSettings
) -> list[MeasureRow]:
    col = _DIM_COLUMN[by]
    mapper, labels = _grouping(session, by, r)
    per_key: dict[str, dict[str, Counts]] = {}
    for which, p in periods.items():
        for (value,), counts in sums(session, p.start, p.end, [col], r.flt).items():
            key = mapper(value)
            if key is not None:
                add_counts(per_key.setdefault(key, {}).setdefault(which, {}), counts)
    order = list(labels) + sorted(k for k in per_key if k not in labels)
    rows = []
    for key in order:
        code, name = labels.get(key, (key.partition(":")[2], key.partition(":")[2]))
        rows.append(_row(key, code, name, per_key.get(key, {}), ms))
    return rows


def _grouping(session: Session, by: str, r: Resolved) -> tuple[Any, dict[str, tuple[str, str]]]:
    """(fact value → row key or None, {row key: (code, name)} in display order) for a grouping."""
    if by == "unit":
        kids = r.units.kids(r.unit.id if r.unit else None)
        wanted = set(kids)
        labels = {
            f"unit:{r.units.nodes[i].code}": (r.units.nodes[i].code, r.units.nodes[i].name) for i in kids
        }

        def unit_key(uid: int) -> str | None:
            hit = r.units.ancestor_in(uid, wanted)
            return f"unit:{r.units.nodes[hit].code}" if hit is not None else None

        return unit_key, labels
    if by == "area":
        kids = org_tree.area_children(r.areas, r.area)
        wanted = set(kids)
        labels = {
            f"area:{r.areas.nodes[i].code}": (r.areas.nodes[i].code, r.areas.nodes[i].name) for i in kids
        }

        def area_key(aid: int) -> str | None:
            hit = r.areas.ancestor_in(aid, wanted)
            return f"area:{r.areas.nodes[hit].code}" if hit is not None else None

        return area_key, labels
    if by == "category":
        cats = org_tree.categories(session)
        tops = cats.roots()
        labels = {f"category:{cats.nodes[i].code}": (cats.nodes[i].code, cats.nodes[i].name) for i in tops}
        labels["category:"] = ("", "未分类")

        def category_key(cid: int) -> str | None:
            hit = cats.ancestor_in(cid, set(tops)) if cid else None
            return f"category:{cats.nodes[hit].code}" if hit is not None else "category:"

        return category_key, labels
    labels = {f"channel:{c.value}": (c.value, c.label) for c in Channel}
    return (lambda ch: f"channel:{ch}"), labels


def buckets(period: Period, grain: Grain) -> list[Period]:
    """The days, weeks or months of a period; one cut by the period's ends becomes a range of its days."""
    out: list[Period] = []
    d = period.start
    while d < period.end:
        b = Period.containing(d, grain)
        if b.start < period.start or b.end > period.end:
            b = Period(max(b.start, period.start), min(b.end, period.end), "range")
        out.append(b)
        d = b.end
    return out


def _time_rows(
    session: Session, period: Period, grain: Grain, flt: Filter, ms: MeasureSettings
) -> list[MeasureRow]:
    """One row per day, week or month; "previous" is the bucket before, "last_year" the same one a year ago."""
    needed = [(b, b.previous(), b.last_year()) for b in buckets(period, grain)]
    spans = [
        (min(p.start for _, p, _ in needed), period.end),
        (min(y.start for *_, y in needed), max(y.end for *_, y in needed)),
    ]
    daily: dict[date, Counts] = {}
    for start, end in spans:
        for (day,), counts in sums(session, start, end, ["day"], flt).items():
            daily[day] = counts

    def over(p: Period) -> Counts:
        total: Counts = {}
        for d in p.each_day():
            add_counts(total, daily.get(d, {}))
        return total

    return [
        _row(f"{grain}:{b}", str(b), b.label, {"now": over(b), "previous": over(p), "last_year": over(y)}, ms)
        for b, p, y in needed
    ]


# ---------------------------------------------------------------------------------------------- rankings
def ranking(
    session: Session,
    period: Period,
    level: str,
    settings: Any,
    measure: str | None = None,
    *,
    scope: Scope | None = None,
) -> list[RankRow]:
    """Units of a kind ("department", "street_office" …, or "unit": every unit on its own) or areas of a level
    ("district", "street" …), each rolled up with its subtree, ranked by the composite score (``measure``
    None) or by one measure. Those with fewer than ``min_tickets`` behind the figure are marked few and not
    ranked; ties share a rank."""
    if measure is not None and measure not in BY_CODE:
        raise Invalid(f"unknown measure {measure!r}", field="measure")
    ms = measure_settings(settings)
    what, name = org_tree.check_level(level)
    r = resolve(session, scope or Scope())
    tree = r.areas if what == "area" else r.units
    within = r.area if what == "area" else r.unit
    members = [
        n.id
        for n in tree.nodes.values()
        if (name == "unit" or n.level == name) and (within is None or tree.ancestor_in(n.id, {within.id}))
    ]
    col = "area_id" if what == "area" else "unit_id"
    wanted = set(members)
    per: dict[int, dict[str, Counts]] = {}
    for which, p in (("now", period), ("previous", period.previous())):
        for (value,), counts in sums(session, p.start, p.end, [col], r.flt).items():
            hit = value if name == "unit" else tree.ancestor_in(value, wanted)
            if hit is not None and hit in wanted:
                add_counts(per.setdefault(hit, {}).setdefault(which, {}), counts)
    rows = [_rank_row(tree.nodes[i], what, per.get(i, {}), ms, measure) for i in members]
    return rank(rows, BY_CODE[measure].higher_is_better if measure else True)


def _rank_row(
    node: org_tree.Node, what: str, counts: Mapping[str, Counts], ms: MeasureSettings, measure: str | None
) -> RankRow:
    now = counts.get("now", {})
    vals = values(now, ms)
    prev_vals = values(counts.get("previous", {}), ms)
    if measure is None:
        value, previous = composite(vals, ms.composite_weights), composite(prev_vals, ms.composite_weights)
    else:
        value, previous = vals[measure], prev_vals[measure]
    base = base_of(now, measure, ms)
    return RankRow(
        None,
        f"{what}:{node.code}",
        node.code,
        node.name,
        value,
        vals,
        dict(now),
        base,
        base < ms.min_tickets,
        previous,
    )


def rank(rows: list[RankRow], higher_is_better: bool) -> list[RankRow]:
    """Competition ranking (1, 2, 2, 4) of the rows with a value and enough tickets; the others after them."""
    ranked = [r for r in rows if not r.few and r.value is not None]
    rest = [r for r in rows if r.few or r.value is None]
    sign = -1 if higher_is_better else 1
    ranked.sort(key=lambda r: (sign * (r.value or 0.0), -r.base, r.code))
    previous: float | None = None
    for i, row in enumerate(ranked):
        if previous is None or row.value != previous:
            row.rank = i + 1
            previous = row.value
        else:
            row.rank = ranked[i - 1].rank
    rest.sort(key=lambda r: (r.value is None, sign * (r.value or 0.0), r.code))
    return ranked + rest
