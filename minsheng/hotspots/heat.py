"""The heat index of a hot topic: how many people, how close together in time, rising or fading, how much agreed.

    heat = 10 × voices' × concentration × (1 + 0.3 × growth) × (1 + 0.2 × log2(1 + support + against / 2))

- ``voices' = citizens + 0.25 × (requests − citizens)``: every distinct citizen counts fully; a citizen writing
  again adds a quarter, so five neighbours outweigh one neighbour writing five times (5 against 2).
- ``concentration = 1 / (1 + 0.25 × log2(1 + span_days / 30))``: 1 for a topic within a day, 0.93 over a week,
  0.8 over a month, 0.52 over a year. The same voices in a short time make a hotter topic, but a problem that
  keeps coming back for months still counts.
- ``growth`` in −1 … 1: the share of requests in the second half of the topic's span minus the share in the
  first half. A topic gathering pace scores up to 30 % more, one dying down up to 30 % less.
- ``support``/``against``: the agreement counts portals collect (点赞, 反对); on a log scale, because a single
  post may gather thousands. Without them the factor is 1.

So a topic of n citizens who wrote once each within a day, steady, without votes, has heat 10 n. The weights are
:class:`HeatWeights`; docs/HOTSPOTS.md explains the choice.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

__all__ = ["HeatWeights", "concentration", "growth", "heat"]


@dataclass(frozen=True, slots=True)
class HeatWeights:
    scale: float = 10.0
    repeat: float = 0.25  # what a citizen's second, third … request adds
    span_month: float = 0.25  # concentration's weight of log2(1 + span in months)
    growth: float = 0.3
    votes: float = 0.2
    against: float = 0.5  # a vote against counts half a vote for: disagreement is attention too


def concentration(span_days: float, w: HeatWeights = HeatWeights()) -> float:
    return 1.0 / (1.0 + w.span_month * math.log2(1.0 + max(0.0, span_days) / 30.0))


def growth(times: Sequence[datetime]) -> float:
    """(late − early) / n, where early and late are the requests before and after the middle of the span."""
    if len(times) < 2:
        return 0.0
    first, last = min(times), max(times)
    middle = first + (last - first) / 2
    early = sum(1 for t in times if t < middle)
    late = sum(1 for t in times if t > middle)
    return (late - early) / len(times)


def heat(
    count: int,
    citizens: int,
    span_days: float,
    trend: float,
    support: int = 0,
    against: int = 0,
    w: HeatWeights = HeatWeights(),
) -> float:
    """The heat index (see the module docstring), rounded to one decimal."""
    voices = citizens + w.repeat * max(0, count - citizens)
    votes = 1.0 + w.votes * math.log2(1.0 + max(0, support) + w.against * max(0, against))
    value = w.scale * voices * concentration(span_days, w) * (1.0 + w.growth * trend) * votes
    return round(value, 1)
