"""Measures from summed counters: each rate a numerator over a denominator, each time a mean or a percentile,
and the composite score of a ranking. What a city chooses differently is a `MeasureSettings` field
(docs/METRICS.md, "Choices"); `from_settings` reads them from `minsheng.config.Settings`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from minsheng.measures.catalogue import BY_CODE, MEASURES, STEPS
from minsheng.measures.timeline import BUCKET_EDGES, N_BUCKETS, RATINGS

#: 黔南州 puts four indices into its counties' assessment (seed 000: 签收率、反馈率、结案率、群众满意率);
#: the article gives no weights, so they weigh the same.
DEFAULT_COMPOSITE_WEIGHTS: dict[str, float] = {
    "sign_rate": 0.25,
    "feedback_rate": 0.25,
    "completion_rate": 0.25,
    "satisfaction_rate": 0.25,
}
DEFAULT_SATISFACTION_WEIGHTS: dict[str, float] = {
    "satisfied": 1.0,
    "basically_satisfied": 1.0,
    "basically_dissatisfied": 0.0,
    "dissatisfied": 0.0,
}
DEFAULT_DISSATISFACTION_WEIGHTS: dict[str, float] = {
    "satisfied": 0.0,
    "basically_satisfied": 0.0,
    "basically_dissatisfied": 1.0,
    "dissatisfied": 1.0,
}


@dataclass(frozen=True)
class MeasureSettings:
    """The choices behind the measures (see docs/METRICS.md). Changing one needs no rebuild of the facts."""

    satisfaction_weights: Mapping[str, float] = field(
        default_factory=lambda: dict(DEFAULT_SATISFACTION_WEIGHTS)
    )
    dissatisfaction_weights: Mapping[str, float] = field(
        default_factory=lambda: dict(DEFAULT_DISSATISFACTION_WEIGHTS)
    )
    resolved_ratings: tuple[str, ...] = ("satisfied", "basically_satisfied")
    complaint_includes_dissatisfied: bool = False
    working_time: bool = False
    composite_weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_COMPOSITE_WEIGHTS))
    min_tickets: int = 30

    def __post_init__(self) -> None:
        for name in ("satisfaction_weights", "dissatisfaction_weights"):
            weights = getattr(self, name)
            unknown = set(weights) - set(RATINGS)
            if unknown:
                raise ValueError(f"{name}: unknown rating(s) {sorted(unknown)}; ratings are {RATINGS}")
            if any(not 0 <= w <= 1 for w in weights.values()):
                raise ValueError(f"{name}: weights lie between 0 and 1")
        if set(self.resolved_ratings) - set(RATINGS):
            raise ValueError(f"resolved_ratings: ratings are {RATINGS}")
        check_composite(self.composite_weights)
        if self.min_tickets < 0:
            raise ValueError("min_tickets may not be negative")

    @classmethod
    def from_settings(cls, settings: Any) -> MeasureSettings:
        """From `minsheng.config.Settings` (its ``measures_*`` fields); defaults where a field is absent."""
        kw: dict[str, Any] = {}
        for name in cls.__dataclass_fields__:
            value = getattr(settings, f"measures_{name}", None)
            if value is not None:
                kw[name] = tuple(value) if name == "resolved_ratings" else value
        return cls(**kw)


def check_composite(weights: Mapping[str, float]) -> None:
    """Composite weights name rates of the catalogue, are non-negative and not all zero."""
    for code, w in weights.items():
        m = BY_CODE.get(code)
        if m is None or m.kind != "rate":
            raise ValueError(f"composite weight {code!r}: only rates of the catalogue can be weighed")
        if w < 0:
            raise ValueError(f"composite weight {code!r} is negative")
    if weights and sum(weights.values()) <= 0:
        raise ValueError("composite weights are all zero")


@dataclass(frozen=True)
class Value:
    """A measure's value with what it was computed from (``denominator`` None for counts)."""

    value: float | None
    numerator: float
    denominator: float | None


def _ratio(num: float, den: float) -> Value:
    return Value(num / den if den else None, num, den)


def _weighted(c: Mapping[str, int], weights: Mapping[str, float]) -> float:
    return sum(weights.get(r, 0.0) * c.get(f"rated_{r}", 0) for r in RATINGS)


def percentile(histogram: list[int], q: float) -> float | None:
    """The ``q`` quantile (seconds) of a bucketed histogram, linear within its bucket.

    The last bucket is open: a quantile that falls in it is reported as its lower edge (a floor).
    """
    n = sum(histogram)
    if n == 0:
        return None
    target = q * n
    seen = 0.0
    for i, count in enumerate(histogram):
        if count and seen + count >= target:
            lo = BUCKET_EDGES[i - 1] if i > 0 else 0
            if i >= len(BUCKET_EDGES):
                return float(lo)
            return lo + (BUCKET_EDGES[i] - lo) * (target - seen) / count
        seen += count
    return float(BUCKET_EDGES[-1])


def _step_values(c: Mapping[str, int], s: MeasureSettings) -> dict[str, Value]:
    out: dict[str, Value] = {}
    for step in STEPS:
        n = c.get(f"{step}_n", 0)
        secs = c.get(f"{step}_work_seconds" if s.working_time else f"{step}_seconds", 0)
        out[f"{step}_on_time_rate"] = _ratio(c.get(f"{step}_on_time", 0), c.get(f"{step}_due", 0))
        out[f"avg_{step}_hours"] = Value(secs / n / 3600 if n else None, secs / 3600, n)
        p90 = percentile([c.get(f"{step}_h{i}", 0) for i in range(N_BUCKETS)], 0.9)
        out[f"p90_{step}_hours"] = Value(p90 / 3600 if p90 is not None else None, n, n)
    return out


def evaluate(c: Mapping[str, int], s: MeasureSettings | None = None) -> dict[str, Value]:
    """Every measure of the catalogue from one set of summed counters."""
    s = s or MeasureSettings()
    tickets = c.get("tickets", 0)
    handled = tickets - c.get("repeats", 0) - c.get("transferred", 0)
    rated = c.get("rated", 0)
    complained = c.get("complained_or_dissatisfied" if s.complaint_includes_dissatisfied else "complained", 0)
    resolved = sum(c.get(f"rated_{r}", 0) for r in s.resolved_ratings)
    out: dict[str, Value] = {
        "volume": Value(float(tickets), tickets, None),
        "direct_answer_rate": _ratio(c.get("answered", 0), tickets),
        "diversion_rate": _ratio(c.get("triaged", 0), tickets),
        "transfer_count": Value(float(c.get("transferred", 0)), c.get("transferred", 0), None),
        "repeat_count": Value(float(c.get("repeats", 0)), c.get("repeats", 0), None),
        "sign_rate": _ratio(c.get("signed", 0), c.get("assignments_due", 0)),
        "return_rate": _ratio(c.get("returned", 0), c.get("assignments_due", 0)),
        "feedback_rate": _ratio(c.get("reported", 0), c.get("signed", 0)),
        "completion_rate": _ratio(c.get("closed", 0), handled),
        "first_time_completion_rate": _ratio(c.get("closed_first_time", 0), c.get("closed", 0)),
        "reopen_rate": _ratio(c.get("reopened", 0), c.get("submitted", 0)),
        "complaint_rate": _ratio(complained, c.get("closed_ever", 0)),
        "satisfaction_rate": _ratio(_weighted(c, s.satisfaction_weights), rated),
        "dissatisfaction_rate": _ratio(_weighted(c, s.dissatisfaction_weights), rated),
        "response_rate": _ratio(c.get("responded", 0), c.get("dispatched", 0)),
        "resolution_rate": _ratio(resolved, rated),
        "overdue_count": Value(float(c.get("overdue", 0)), c.get("overdue", 0), None),
        "overdue_rate": _ratio(c.get("overdue", 0), c.get("dispatched", 0)),
        **_step_values(c, s),
    }
    return {m.code: out[m.code] for m in MEASURES}


def values(c: Mapping[str, int], s: MeasureSettings | None = None) -> dict[str, float | None]:
    """Every measure's value (rates as fractions 0-1, times in hours, counts as numbers)."""
    return {code: v.value for code, v in evaluate(c, s).items()}


def composite(vals: Mapping[str, float | None], weights: Mapping[str, float]) -> float | None:
    """The composite score (0-100): the weighted mean of the weighed rates, each turned so that higher is
    better (1 - r for a rate where lower is better). Rates without a value leave the mean, their weight with
    them; None when no weighed rate has a value."""
    total = 0.0
    weight = 0.0
    for code, w in weights.items():
        v = vals.get(code)
        if v is None or w <= 0:
            continue
        total += w * (v if BY_CODE[code].higher_is_better else 1.0 - v)
        weight += w
    return 100.0 * total / weight if weight else None


def base_of(c: Mapping[str, int], code: str | None, s: MeasureSettings | None = None) -> float:
    """How many tickets or assignments a figure rests on, to tell a figure from noise: the denominator of a
    rate, the number of times of an hours measure, the volume for a count or the composite score."""
    if code is None:
        return float(max(c.get("tickets", 0), c.get("assignments", 0)))
    v = evaluate(c, s)[code]
    if BY_CODE[code].kind == "count":
        return float(c.get("tickets", 0))
    return float(v.denominator or 0)
