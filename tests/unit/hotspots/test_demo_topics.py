"""The demo city's planted hot topics (demo/hot_topics.py) are what the analysis finds first among ordinary
requests, the way the platform's service feeds it (grid areas, phones as citizen keys, the city's names known)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from minsheng.demo.city import DemoCity, generate_city
from minsheng.demo.history import generate_history
from minsheng.demo.hot_topics import hot_topic_specs, plant_hot_topics
from minsheng.hotspots import Hotspot, Request, find_hotspots

END = datetime(2026, 6, 1, tzinfo=UTC)
START = END - timedelta(days=90)


@pytest.fixture(scope="module")
def city() -> DemoCity:
    return generate_city(2026)


@pytest.fixture(scope="module")
def requests(city: DemoCity) -> list[Request]:
    """700 ordinary requests of 90 days and the planted calls of the same history, as the service reads them."""
    ordinary = [
        (s.created_at, s.text.title, s.text.detail, s.citizen.phone, s.area_code)
        for s in generate_history(city, 700, START, END, seed=11, hot_topics=False)
    ]
    planted = [
        (c.created_at, c.text.title, c.text.detail, c.citizen.phone, c.area_code)
        for c in plant_hot_topics(city, START, END, seed=11)
    ]
    return [
        Request(
            id=f"t{i}",
            texts=(title, detail),
            at=at,
            citizen=phone,
            area=grid,
            area_name=city.area_by_code[grid[:12]].name + city.area_by_code[grid].name,
        )
        for i, (at, title, detail, phone, grid) in enumerate(sorted(ordinary + planted))
    ]


def _known(city: DemoCity) -> dict[str, str]:
    known = {p.name: "place" for p in city.places if len(p.name) >= 3}
    known.update({a.name: a.level for a in city.areas if a.level in ("city", "district", "street")})
    return known


def _subject(h: Hotspot, requests: dict[str, Request]) -> str:
    texts = " ".join(requests[i].texts[1] for i in h.ticket_ids)
    return next((s["key"] for s in hot_topic_specs() if s["subject"] in texts), "ordinary")


def test_planted_topics_come_first(city: DemoCity, requests: list[Request]) -> None:
    by_id = {r.id: r for r in requests}
    found = find_hotspots(requests, since=END - timedelta(days=30), known=_known(city), top=10)
    subjects = [_subject(h, by_id) for h in found]
    assert subjects[:3] == ["factory_noise", "bus_line_cut", "unpaid_wages"]
    assert "forced_internship" not in subjects  # it ended 45 days before the history did
    noise, bus, wages = found[:3]
    assert noise.count == 12 and noise.voices == 10 and noise.crowd is not None and "业主" in noise.crowd
    assert bus.place == "K58路" and bus.count == 10
    assert (
        wages.place is not None and wages.place.endswith("鑫源建筑劳务有限公司") and wages.crowd == "农民工"
    )
    assert all(h.previous == 0 for h in found[:3])

    wider = find_hotspots(requests, since=END - timedelta(days=60), known=_known(city), top=10)
    college = [h for h in wider if _subject(h, by_id) == "forced_internship"]
    assert len(college) == 1 and college[0].place is not None and "城南职业技术学院" in college[0].place
    assert college[0].crowd is not None and "学生" in college[0].crowd
