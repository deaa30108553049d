"""Hot topics planted in the demo history: a factory's night noise by one estate, a bus line that was cut, one
employer's unpaid wages, a college's forced internships (``data/hot_topics.toml``).

Ordinary demo requests are drawn one by one, so they rarely pile up on one thing in one place; a city's real
history does. These calls do, from several citizens over several days, so that the hot-topic page and
`minsheng analyze hotspots` have something to find and a reader can check what they found. Each topic's calls
come from their own random stream (seeded from the city seed), so the ordinary history does not depend on them
beyond their number.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from minsheng.demo.addresses import build_address
from minsheng.demo.city import DemoCity, PlaceSpec
from minsheng.demo.people import Citizen, generate_citizen
from minsheng.demo.phrases import asks, phrase
from minsheng.demo.tables import load
from minsheng.demo.texts import RequestText

__all__ = ["PlantedCall", "hot_topic_specs", "plant_hot_topics"]

_CST = timezone(timedelta(hours=8))
# Phone for most calls; the apps send a map point.
_CHANNELS = (("phone", 60), ("app", 15), ("wechat", 15), ("web", 10))
_GPS = frozenset({"app", "wechat"})


@dataclass(frozen=True)
class PlantedCall:
    """One call of a planted topic: everything a ticket script needs besides its steps."""

    topic: str
    created_at: datetime
    channel: str
    category_code: str  # level 3
    area_code: str  # grid
    text: RequestText
    citizen: Citizen


def hot_topic_specs() -> list[dict[str, Any]]:
    """The planted topics as the data file writes them."""
    return list(load("hot_topics")["topic"])


def plant_hot_topics(city: DemoCity, start: datetime, end: datetime, seed: int) -> list[PlantedCall]:
    """The calls of every planted topic that fits between ``start`` and ``end``, in time order."""
    rng = random.Random(f"minsheng-hot-topics-{seed}")
    leaves = {c.name: c.code for c in city.leaf_categories}
    urban = [a.code for a in city.areas_at("street") if a.code[6] == "0"]  # 街道: where estates are dense
    calls: list[PlantedCall] = []
    for spec in hot_topic_specs():
        last = end - timedelta(days=spec["ends_days_before"], hours=rng.uniform(1, 20))
        first = last - timedelta(days=spec["span_days"])
        if first < start:
            continue  # a history too short for this topic
        places = _places(rng, city, urban, spec["place_kind"], spec.get("estates", 1))
        times = _times(rng, first, last, spec["calls"], spec["late_share"])
        callers = _callers(rng, spec["calls"], spec["repeat_callers"])
        for at, caller in zip(times, callers, strict=True):
            place = rng.choice(places)
            channel = rng.choices([c for c, _ in _CHANNELS], weights=[w for _, w in _CHANNELS])[0]
            calls.append(
                PlantedCall(
                    topic=spec["key"],
                    created_at=at,
                    channel=channel,
                    category_code=leaves[spec["category"]],
                    area_code=place.grid_code,
                    text=_text(rng, city, spec, place, channel in _GPS),
                    citizen=caller,
                )
            )
    calls.sort(key=lambda c: c.created_at)
    return calls


def _places(rng: random.Random, city: DemoCity, streets: list[str], kind: str, n: int) -> list[PlaceSpec]:
    """``n`` places of one kind in one urban street (a bus line passes several estates of a street)."""
    for _ in range(100):
        street = rng.choice(streets)
        found = [p for p in city.places if p.kind == kind and p.area_code.startswith(street)]
        if len(found) >= n:
            return rng.sample(found, n)
    return rng.sample([p for p in city.places if p.kind == kind], n)


def _times(rng: random.Random, first: datetime, last: datetime, n: int, late_share: float) -> list[datetime]:
    """Call times from ``first`` to ``last``; ``late_share`` of them in the last third (a topic gathering pace)."""
    span = last - first
    late = round(n * late_share)
    out = [first, last]
    for i in range(n - 2):
        lo, hi = (2 / 3, 1.0) if i < late - 1 else (0.0, 2 / 3)
        out.append(first + span * rng.uniform(lo, hi))
    return sorted(out)


def _callers(rng: random.Random, n: int, repeats: int) -> list[Citizen]:
    """``n`` calls from ``n - repeats`` people: some call again when nothing happens."""
    people = [generate_citizen(rng) for _ in range(max(1, n - repeats))]
    order = people + [rng.choice(people[: max(1, len(people) // 2)]) for _ in range(n - len(people))]
    # The repeat calls come after the first ones: a person calls again, not before they called.
    head, tail = order[: len(people)], order[len(people) :]
    rng.shuffle(head)
    return head + tail


def _text(
    rng: random.Random, city: DemoCity, spec: dict[str, Any], place: PlaceSpec, gps: bool
) -> RequestText:
    areas = city.area_by_code
    slots = {
        "place": place.name,
        "street": areas[place.grid_code[:9]].name,
        "district": areas[place.grid_code[:6]].name,
        "subject": spec["subject"],
        "hour": rng.choice(phrase("hour")),
        "ask": rng.choice(asks()["angry" if rng.random() < 0.4 else "polite"]).format(times="好几次"),
    }
    address, _ = build_address(rng, city, place.grid_code, place)
    lat, lon = city.random_point(rng, place.grid_code) if gps else (None, None)
    return RequestText(
        title=rng.choice(spec["titles"]).format(**slots)[:60],
        detail=rng.choice(spec["details"]).format(**slots),
        address=address,
        kind="complaint",
        urgency="normal",
        place_name=place.name,
        lat=lat,
        lon=lon,
    )
