"""Hot topics from a list of requests: group them (:mod:`minsheng.hotspots.grouping`), describe each group (place,
crowd, one-line summary, keywords) and rank the groups by heat (:mod:`minsheng.hotspots.heat`)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import scipy.sparse as sp

from minsheng.hotspots.grouping import Prepared, Thresholds, group, prepare, vectorise, voices
from minsheng.hotspots.heat import HeatWeights, growth, heat
from minsheng.hotspots.records import Hotspot, Request

__all__ = ["Options", "find_hotspots"]

_SUMMARY_CHARS = 60
_KEYWORDS = 5
_LEVELS = ("street", "district", "city")  # most specific first


@dataclass(frozen=True, slots=True)
class Options:
    """What makes a topic: at least ``min_count`` requests from ``min_voices`` people (one person writing five
    times is a persistent citizen, not a hot topic)."""

    min_count: int = 2
    min_voices: int = 2
    thresholds: Thresholds = field(default_factory=Thresholds)
    weights: HeatWeights = field(default_factory=HeatWeights)


def find_hotspots(
    requests: Sequence[Request],
    *,
    top: int | None = 20,
    since: datetime | None = None,
    known: Mapping[str, str] | None = None,
    private: frozenset[str] = frozenset(),
    options: Options = Options(),
) -> list[Hotspot]:
    """The hot topics among ``requests``, hottest first (at most ``top``).

    With ``since``, requests before it are the previous period: they join topics (for the trend, ``previous``)
    but only requests from ``since`` on make a topic and its heat. ``known`` maps place and area names the caller
    knows to their kind (``"estate"``, ``"district"`` …). Requests whose ids are in ``private`` (confidential
    tickets) are grouped and counted, but a topic's place, crowd, summary and keywords come from its other
    requests only (a topic of private requests alone has an empty summary and the place of its area).
    """
    usable = [r for r in requests if any(t and t.strip() for t in r.texts)]
    if len(usable) < options.min_count:
        return []
    prepared = prepare(usable, known)
    matrix, vocabulary = vectorise(prepared)
    topics: list[Hotspot] = []
    for members in group(prepared, matrix, options.thresholds):
        current = [i for i in members if since is None or prepared[i].request.at >= since]
        before = [i for i in members if since is not None and prepared[i].request.at < since]
        if len(current) < options.min_count:
            continue
        people = voices(prepared, current, matrix, options.thresholds)
        if people < options.min_voices:
            continue
        topic = _describe(prepared, current, before, matrix, vocabulary, people, since, private, options)
        if topic.place is not None:  # one thing in one place: a topic nobody can place is no hot topic
            topics.append(topic)
    topics.sort(key=lambda h: (-h.heat, -h.count, h.first, h.ticket_ids))
    ranked = [_with_rank(h, n) for n, h in enumerate(topics[:top] if top is not None else topics, start=1)]
    return ranked


def _with_rank(h: Hotspot, rank: int) -> Hotspot:
    from dataclasses import replace

    return replace(h, rank=rank)


def _describe(
    prepared: Sequence[Prepared],
    current: list[int],
    before: list[int],
    matrix: sp.csr_matrix,
    vocabulary: list[str],
    people: int,
    since: datetime | None,
    private: frozenset[str],
    options: Options,
) -> Hotspot:
    current.sort(key=lambda i: (prepared[i].request.at, prepared[i].request.id))
    requests = [prepared[i].request for i in current]
    times = [r.at for r in requests]
    span = (times[-1] - times[0]).total_seconds() / 86400
    support = sum(max(0, r.support) for r in requests)
    against = sum(max(0, r.against) for r in requests)
    trend = growth(times)
    area, area_name = _area(requests)
    lat, lon = _point(requests)
    # What a topic is said to be comes from the requests that may be quoted: a confidential one counts, but its
    # words never reach a page.
    quotable = [i for i in current if prepared[i].request.id not in private]
    return Hotspot(
        rank=0,
        heat=heat(len(current), people, span, trend, support, against, options.weights),
        place=_place(prepared, quotable, area_name) if quotable else area_name,
        crowd=_crowd(prepared, quotable),
        summary=_summary(prepared, current, matrix, quotable) if quotable else "",
        ticket_ids=tuple(r.id for r in requests),
        first=times[0],
        last=times[-1],
        count=len(current),
        voices=people,
        keywords=_keywords(prepared, matrix, vocabulary, quotable) if quotable else (),
        area=area,
        area_name=area_name,
        lat=lat,
        lon=lon,
        support=support,
        against=against,
        growth=round(trend, 3),
        previous=len(before) if since is not None else None,
        previous_ids=tuple(
            prepared[i].request.id for i in sorted(before, key=lambda i: prepared[i].request.at)
        ),
    )


def _most(counter: Counter[str], at_least: int = 1) -> str | None:
    """The most common value (ties: the longer, then the first in order), if it occurs ``at_least`` times."""
    if not counter:
        return None
    value, n = max(counter.items(), key=lambda kv: (kv[1], len(kv[0]), [-ord(c) for c in kv[0]]))
    return value if n >= at_least else None


def _place(prepared: Sequence[Prepared], members: list[int], area_name: str | None) -> str | None:
    """The place most members name, with the administrative names written before it; else the members' area;
    else the most specific administrative area most of them name."""
    keys: Counter[str] = Counter(k for i in members for k in prepared[i].found.keys)
    titled: Counter[str] = Counter(
        k for i in members for k in {k for m in prepared[i].found.places if m.in_title for k in m.keys}
    )
    shared = [k for k, n in keys.items() if n >= 2]
    # The place most members name, the one their titles name first, then the longer name.
    best = max(shared, key=lambda k: (keys[k], titled[k], len(k), k)) if shared else None
    if best is not None:
        mentions = [m for i in members for m in prepared[i].found.places if best in m.keys]
        name = _most(Counter(m.name for m in mentions)) or best
        where = _most(Counter(m.where for m in mentions if m.where))
        if where is None:
            where = _common_admin(prepared, members, ("district", "city"))
        return (where or "") + name
    if area_name:
        return area_name
    return _common_admin(prepared, members, _LEVELS)


def _common_admin(prepared: Sequence[Prepared], members: list[int], levels: Sequence[str]) -> str | None:
    half = math.ceil(len(members) / 2)
    for level in levels:
        names: Counter[str] = Counter(n for i in members for n in prepared[i].regions.get(level, ()))
        found = _most(names, half)
        if found is not None:
            return found
    return None


def _crowd(prepared: Sequence[Prepared], members: list[int]) -> str | None:
    """The group of people most members speak for: with its place (某职业学院学生) where the texts say it."""
    third = max(2, math.ceil(len(members) / 3))
    named: Counter[str] = Counter()
    words: Counter[str] = Counter()
    for i in members:
        crowds = prepared[i].found.crowds
        named.update({c.text for c in crowds if c.of})
        words.update({c.word for c in crowds})
    return _most(named, 2) or _most(words, third)


def _summary(
    prepared: Sequence[Prepared], members: list[int], matrix: sp.csr_matrix, quotable: list[int]
) -> str:
    """The title of the quotable member most like all members (the medoid): what a reader would have written."""
    rows = matrix[members]
    mean = np.asarray((matrix[quotable] @ rows.T).sum(axis=1)).ravel()
    best = quotable[int(np.argmax(mean))]
    r = prepared[best].request
    text = r.title or next((t for t in r.texts if t.strip()), "")
    line = " ".join(text.split())
    return line if len(line) <= _SUMMARY_CHARS else line[: _SUMMARY_CHARS - 1] + "…"


def _keywords(
    prepared: Sequence[Prepared], matrix: sp.csr_matrix, vocabulary: list[str], members: list[int]
) -> tuple[str, ...]:
    """The heaviest words of the members' mean vector (whole words, not the character pairs of long ones)."""
    words = frozenset().union(*(prepared[i].words for i in members))
    centre = np.asarray(matrix[members].mean(axis=0)).ravel()
    order = [j for j in np.argsort(-centre) if centre[j] > 0 and vocabulary[j] in words]
    return tuple(vocabulary[j] for j in order[:_KEYWORDS])


def _area(requests: Sequence[Request]) -> tuple[str | None, str | None]:
    areas = Counter(r.area for r in requests if r.area is not None)
    if not areas:
        return None, None
    code = _most(Counter({str(k): n for k, n in areas.items()}))
    name = next((r.area_name for r in requests if r.area == code and r.area_name), None)
    return code, name


def _point(requests: Sequence[Request]) -> tuple[float | None, float | None]:
    points = [(r.lat, r.lon) for r in requests if r.lat is not None and r.lon is not None]
    if not points:
        return None, None
    return (
        round(sum(p[0] for p in points if p[0] is not None) / len(points), 6),
        round(sum(p[1] for p in points if p[1] is not None) / len(points), 6),
    )
