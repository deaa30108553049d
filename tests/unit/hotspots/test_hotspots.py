"""Hot topics from hand-built requests: places stay apart, citizens outweigh repeats, growth raises heat, confidential
words are never quoted; and the heat formula itself."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from minsheng.hotspots import HeatWeights, Hotspot, Options, Request, find_hotspots, heat
from minsheng.hotspots.heat import concentration, growth

T0 = datetime(2026, 5, 1, 9, 0)

NOISE = [
    "{p}旁边的机械厂晚上开机，冲床噪音吵得睡不着",
    "{p}居民投诉机械厂夜间生产噪音扰民",
    "投诉{p}附近机械厂半夜噪音",
    "{p}东边机械厂夜里机器轰鸣噪音太大",
    "机械厂夜间噪音影响{p}居民休息",
]
WAGES = [
    "鑫源劳务公司拖欠农民工工资三个月",
    "投诉鑫源劳务公司欠薪不发，拖欠工资三个月",
    "鑫源劳务公司拖欠工资，老板不接电话",
    "请帮忙追讨鑫源劳务公司拖欠的工资",
    "鑫源劳务公司拖欠我们工人工资",
]
OTHER = [
    "人民路路灯坏了一个月没人修",
    "咨询新生儿医保办理需要什么材料",
    "菜市场门口占道经营很乱",
    "小区电梯经常停运，物业不管",
    "学校门口上下学时段交通拥堵",
    "公园健身器材损坏",
]


def _requests(
    texts: list[str], prefix: str, *, citizens: list[str] | None, days: list[float]
) -> list[Request]:
    return [
        Request(
            id=f"{prefix}{i}",
            texts=(text, text + "，请有关部门尽快处理。"),
            at=T0 + timedelta(days=d),
            citizen=citizens[i] if citizens else None,
        )
        for i, (text, d) in enumerate(zip(texts, days, strict=True))
    ]


def _noise(place: str, prefix: str, days: list[float] | None = None) -> list[Request]:
    texts = [t.format(p=place) for t in NOISE]
    return _requests(
        texts, prefix, citizens=[f"{prefix}-c{i}" for i in range(5)], days=days or [0, 1, 2, 3, 4]
    )


def _others() -> list[Request]:
    return _requests(OTHER, "o", citizens=[f"o{i}" for i in range(len(OTHER))], days=[0, 1, 2, 3, 4, 5])


def _by_ids(found: list[Hotspot]) -> dict[frozenset[str], Hotspot]:
    return {frozenset(h.ticket_ids): h for h in found}


def test_the_same_problem_in_two_places_makes_two_topics() -> None:
    found = find_hotspots(_noise("幸福里小区", "a") + _noise("阳光花园", "b") + _others())
    topics = _by_ids(found)
    a = topics[frozenset(f"a{i}" for i in range(5))]
    b = topics[frozenset(f"b{i}" for i in range(5))]
    assert a.place is not None and "幸福里小区" in a.place
    assert b.place is not None and "阳光花园" in b.place
    assert a.count == b.count == 5 and a.voices == b.voices == 5
    assert len(found) == 2  # the unrelated requests make no topic


def test_five_citizens_outrank_one_citizen_writing_five_times() -> None:
    many = _noise("幸福里小区", "m")
    one = _requests(WAGES, "w", citizens=["same"] * 5, days=[0, 1, 2, 3, 4])
    lenient = Options(min_voices=1)
    found = find_hotspots(many + one + _others(), options=lenient)
    ranked = [set(h.ticket_ids) for h in found]
    assert ranked[0] == {f"m{i}" for i in range(5)}
    assert {f"w{i}" for i in range(5)} in ranked[1:]
    topics = _by_ids(found)
    assert (
        topics[frozenset(f"m{i}" for i in range(5))].heat > topics[frozenset(f"w{i}" for i in range(5))].heat
    )
    # By default one person is no hot topic, however often they write.
    default = find_hotspots(many + one + _others())
    assert [set(h.ticket_ids) for h in default] == [{f"m{i}" for i in range(5)}]


def test_a_topic_gathering_pace_is_hotter_than_one_dying_down() -> None:
    rising = _noise("幸福里小区", "r", days=[0, 7.5, 8, 9, 10])
    fading = _noise("阳光花园", "f", days=[0, 1, 2, 2.5, 10])
    topics = _by_ids(find_hotspots(rising + fading + _others()))
    up = topics[frozenset(f"r{i}" for i in range(5))]
    down = topics[frozenset(f"f{i}" for i in range(5))]
    assert (up.first, up.last, up.count) == (down.first, down.last, down.count)
    assert up.growth > 0 > down.growth
    assert up.heat > down.heat and up.rank < down.rank


def test_heat_formula() -> None:
    # n citizens within a day, steady, no votes: 10 n.
    assert heat(4, 4, 0, 0) == 40.0
    assert heat(5, 1, 0, 0) == 20.0  # one citizen and four repeats count 1 + 4 × 0.25
    assert heat(5, 5, 0, 0.5) > heat(5, 5, 0, 0) > heat(5, 5, 0, -0.5)
    assert heat(5, 5, 30, 0) == pytest.approx(40.0)  # a month: concentration 0.8
    assert heat(5, 5, 0, 0, support=100) > heat(5, 5, 0, 0, against=100) > heat(5, 5, 0, 0)
    assert concentration(0) == 1.0 and concentration(365) < concentration(30) < concentration(7) < 1.0
    assert heat(3, 3, 0, 0, w=HeatWeights(scale=1.0)) == 3.0
    t = [T0, T0 + timedelta(days=8), T0 + timedelta(days=9), T0 + timedelta(days=10)]
    assert growth(t) == 0.5 and growth(list(reversed(t))) == 0.5 and growth([T0]) == 0.0


def test_support_counts_raise_heat() -> None:
    plain = _noise("幸福里小区", "p")
    voted = [
        Request(r.id.replace("p", "v"), r.texts, r.at, r.citizen, support=40 if i == 0 else 0)
        for i, r in enumerate(_noise("阳光花园", "p"))
    ]
    topics = _by_ids(find_hotspots(plain + voted))
    assert topics[frozenset(f"v{i}" for i in range(5))].support == 40
    assert (
        topics[frozenset(f"v{i}" for i in range(5))].heat > topics[frozenset(f"p{i}" for i in range(5))].heat
    )


def test_without_citizen_keys_identical_texts_count_as_one_voice() -> None:
    copies = _requests(
        ["明月小区门口的烧烤摊油烟太大，晚上呛得开不了窗"] * 4, "d", citizens=None, days=[0, 0, 1, 1]
    )
    assert find_hotspots(copies + _others()) == []
    different = _noise("明月小区", "n")
    anonymous = [Request(r.id, r.texts, r.at) for r in different]
    (topic,) = find_hotspots(anonymous + _others())
    assert topic.voices == 5


def test_confidential_requests_count_but_are_never_quoted() -> None:
    requests = _noise("幸福里小区", "s")
    secret = Request(
        "secret", ("机密：幸福里小区机械厂老板行贿环保所长，夜间噪音无人查",), T0 + timedelta(days=2), "x"
    )
    (topic,) = find_hotspots([*requests, secret, *_others()], private=frozenset({"secret"}))
    assert "secret" in topic.ticket_ids and topic.count == 6
    assert "行贿" not in topic.summary and "机密" not in topic.summary
    assert not any("行贿" in k or "所长" in k for k in topic.keywords)
    # A topic of private requests alone is grouped but has nothing to say beyond its area.
    placed = [
        Request(r.id, r.texts, r.at, r.citizen, area="G7", area_name="明湾社区第7网格") for r in requests
    ]
    (only_private,) = find_hotspots(placed, private=frozenset(r.id for r in requests))
    assert only_private.summary == "" and only_private.keywords == () and only_private.crowd is None
    assert only_private.place == "明湾社区第7网格" and only_private.count == 5
    assert find_hotspots(requests, private=frozenset(r.id for r in requests)) == []  # nowhere to put it


def test_the_period_before_joins_topics_for_the_trend() -> None:
    before = _noise("幸福里小区", "q", days=[-20, -19, 0, 1, 2])
    (topic,) = find_hotspots(before + _others(), since=T0 - timedelta(days=1))
    assert topic.count == 3 and topic.previous == 2
    assert set(topic.previous_ids) == {"q0", "q1"} and topic.first == T0


def test_json_record_has_exactly_the_issue_fields() -> None:
    (topic,) = find_hotspots(_noise("幸福里小区", "j") + _others(), top=5)
    record = topic.as_json()
    assert set(record) == {
        "rank",
        "heat",
        "place",
        "crowd",
        "summary",
        "ticket_ids",
        "first",
        "last",
        "count",
    }
    assert record["rank"] == 1 and record["first"] == T0.isoformat() and record["count"] == 5
    assert record["crowd"] == "幸福里小区居民"  # the group of people, named with their place


def test_requests_carrying_areas_meet_without_naming_a_place() -> None:
    texts = [
        "楼下烧烤摊油烟太大，晚上开不了窗",
        "烧烤摊油烟扰民，呛得很",
        "夜里烧烤摊油烟很大，熏得人头疼",
        "烧烤油烟严重扰民",
    ]
    here = [
        Request(f"h{i}", (t,), T0 + timedelta(hours=i), f"c{i}", area="G1", area_name="明湾社区第1网格")
        for i, t in enumerate(texts)
    ]
    there = [
        Request(f"t{i}", (t,), T0 + timedelta(hours=i), f"d{i}", area="G2", area_name="春晖社区第2网格")
        for i, t in enumerate(texts)
    ]
    found = find_hotspots(here + there + _others())
    assert len(found) == 2
    for topic in found:
        prefixes = {i[0] for i in topic.ticket_ids}
        assert len(prefixes) == 1 and topic.count >= 3  # one grid each, never mixed
        expected = ("G1", "明湾社区第1网格") if prefixes == {"h"} else ("G2", "春晖社区第2网格")
        assert (topic.area, topic.place) == expected


def test_nothing_to_find() -> None:
    assert find_hotspots([]) == []
    assert find_hotspots(_others()) == []
    assert find_hotspots([Request("e", ("", "  "), T0), Request("f", ("",), T0)]) == []
