"""Routing table: specificity, inheritance, ties, explanations, and corrections learnt from returns."""

from __future__ import annotations

import pytest

from minsheng.triage.routing import (
    DispatchRecord,
    ReturnRecord,
    RoutingRule,
    RoutingTable,
    suggest_corrections,
)

# Category tree 环境 → 噪音 → 施工噪音 / 生活噪音; 交通 → 停车. Area tree 市 → 东区 → 东街道 → 东一社区.
CATEGORY_PARENTS: dict[str, str | None] = {
    "ENV": None,
    "ENV.NOISE": "ENV",
    "ENV.NOISE.BUILD": "ENV.NOISE",
    "ENV.NOISE.LIFE": "ENV.NOISE",
    "ENV.TRASH": "ENV",
    "TRAFFIC": None,
    "TRAFFIC.PARK": "TRAFFIC",
}
AREA_PARENTS: dict[str, str | None] = {
    "CITY": None,
    "EAST": "CITY",
    "EAST.S1": "EAST",
    "EAST.S1.C1": "EAST.S1",
    "WEST": "CITY",
}

R = RoutingRule
RULES = [
    R("fallback", None, None, "hotline-office"),
    R("env-city", "ENV", None, "eco-bureau"),
    R("env-east-street", "ENV", "EAST.S1", "east-s1-office", ("grid-team",)),
    R("noise-east", "ENV.NOISE", "EAST", "east-urban-mgmt", ("police-east",)),
    R("build-noise", "ENV.NOISE.BUILD", None, "housing-bureau"),
    R("park-east", "TRAFFIC.PARK", "EAST", "traffic-police-east", priority=1),
    R("park-east-low", "TRAFFIC.PARK", "EAST", "east-urban-mgmt", priority=0),
    R("disabled", "ENV.TRASH", "EAST", "nobody", enabled=False),
]


@pytest.fixture()
def table() -> RoutingTable:
    return RoutingTable(RULES, CATEGORY_PARENTS, AREA_PARENTS)


def test_leaf_category_rule_beats_area_specific_rules(table: RoutingTable) -> None:
    d = table.route("ENV.NOISE.BUILD", "EAST.S1.C1")
    assert d.rule_id == "build-noise"
    assert d.lead_unit_id == "housing-bureau"
    assert not d.ambiguous


def test_deeper_category_beats_deeper_area(table: RoutingTable) -> None:
    # noise-east (category depth 2, district) against env-east-street (category depth 1, street).
    d = table.route("ENV.NOISE.LIFE", "EAST.S1.C1")
    assert d.rule_id == "noise-east"
    assert d.assist_unit_ids == ("police-east",)
    assert "ENV.NOISE" in d.explanation and "继承" in d.explanation


def test_deeper_area_wins_at_equal_category_depth(table: RoutingTable) -> None:
    d = table.route("ENV.TRASH", "EAST.S1.C1")
    assert d.rule_id == "env-east-street"
    assert d.area_match == "EAST.S1"
    d_west = table.route("ENV.TRASH", "WEST")
    assert d_west.rule_id == "env-city"


def test_fallback_and_unknown_codes(table: RoutingTable) -> None:
    assert table.route("TRAFFIC", "WEST").rule_id == "fallback"
    assert table.route("UNKNOWN", "NOWHERE").lead_unit_id == "hotline-office"
    assert table.route(None, None).rule_id == "fallback"


def test_no_rule_at_all_goes_to_manual_dispatch() -> None:
    d = RoutingTable([], CATEGORY_PARENTS, AREA_PARENTS).route("ENV", "EAST")
    assert d.lead_unit_id is None and d.rule_id is None and not d.ambiguous
    assert d.explanation


def test_priority_breaks_ties(table: RoutingTable) -> None:
    d = table.route("TRAFFIC.PARK", "EAST.S1")
    assert d.rule_id == "park-east"
    assert "优先级 1" in d.explanation


def test_disabled_rules_are_ignored(table: RoutingTable) -> None:
    assert table.route("ENV.TRASH", "EAST").rule_id == "env-city"


def test_equal_rules_with_different_leads_are_ambiguous() -> None:
    rules = [R("a", "ENV", "EAST", "unit-a"), R("b", "ENV", "EAST", "unit-b"), R("z", None, None, "fallback")]
    d = RoutingTable(rules, CATEGORY_PARENTS, AREA_PARENTS).route("ENV.NOISE", "EAST.S1")
    assert d.ambiguous
    assert d.lead_unit_id is None
    assert {c.lead_unit_id for c in d.candidates} == {"unit-a", "unit-b"}
    assert "a" in d.explanation and "b" in d.explanation


def test_equal_rules_with_same_lead_merge_assists() -> None:
    rules = [R("a", "ENV", "EAST", "unit-a", ("x",)), R("b", "ENV", "EAST", "unit-a", ("y", "x"))]
    d = RoutingTable(rules, CATEGORY_PARENTS, AREA_PARENTS).route("ENV", "EAST")
    assert not d.ambiguous
    assert d.lead_unit_id == "unit-a"
    assert set(d.assist_unit_ids) == {"x", "y"} and len(d.assist_unit_ids) == 2


def test_cyclic_parents_do_not_hang() -> None:
    parents: dict[str, str | None] = {"A": "B", "B": "A"}
    d = RoutingTable([R("r", "B", None, "u")], parents, {}).route("A", "X")
    assert d.lead_unit_id == "u"


def test_duplicate_rule_ids_rejected() -> None:
    with pytest.raises(ValueError):
        RoutingTable([R("a", None, None, "u"), R("a", None, None, "v")], {}, {})


# -- corrections from returns ------


def _history(
    rule_id: str, unit: str, sent: int, returned: int, finals: list[str | None]
) -> tuple[list[DispatchRecord], list[ReturnRecord]]:
    dispatches = [DispatchRecord(f"{rule_id}-{i}", unit, "ENV.TRASH", "EAST", rule_id) for i in range(sent)]
    returns = [
        ReturnRecord(f"{rule_id}-{i}", unit, finals[i % len(finals)], reason="不属于我单位职责")
        for i in range(returned)
    ]
    return dispatches, returns


def test_route_returned_often_gets_a_suggestion() -> None:
    d1, r1 = _history("bad", "unit-a", 20, 12, ["unit-b", "unit-b", "unit-b", "unit-c"])
    d2, r2 = _history("good", "unit-a", 30, 2, ["unit-b"])
    d3, r3 = _history("rare", "unit-a", 4, 4, ["unit-b"])
    out = suggest_corrections(r1 + r2 + r3, d1 + d2 + d3, min_return_rate=0.3, min_dispatches=10)
    assert [c.rule_id for c in out] == ["bad"]
    c = out[0]
    assert c.dispatches == 20 and c.returns == 12
    assert c.return_rate == pytest.approx(12 / 20)
    assert c.suggested_unit_id == "unit-b"
    assert c.suggested_share == pytest.approx(9 / 12)
    assert c.top_reasons[0][0] == "不属于我单位职责"
    assert "unit-b" in c.explanation


def test_scattered_or_unknown_final_units_give_no_suggestion() -> None:
    d, r = _history("spread", "unit-a", 10, 6, ["u1", "u2", "u3"])
    (c,) = suggest_corrections(r, d, min_dispatches=5)
    assert c.suggested_unit_id is None
    d, r = _history("lost", "unit-a", 10, 6, [None])
    (c,) = suggest_corrections(r, d, min_dispatches=5)
    assert c.suggested_unit_id is None and c.final_units == ()


def test_manual_dispatches_grouped_by_category_area_unit_and_repeat_returns_count_once() -> None:
    dispatches = [DispatchRecord(f"t{i}", "unit-x", "TRAFFIC.PARK", "WEST") for i in range(10)]
    returns = [ReturnRecord(f"t{i}", "unit-x", "unit-y") for i in range(5)] * 3
    (c,) = suggest_corrections(returns, dispatches, min_dispatches=10, min_return_rate=0.5)
    assert c.rule_id is None and c.category_code == "TRAFFIC.PARK" and c.area_code == "WEST"
    assert c.returns == 5 and c.suggested_unit_id == "unit-y"


def test_returns_without_matching_dispatch_are_ignored() -> None:
    out = suggest_corrections([ReturnRecord("ghost", "unit-a", "unit-b")], [], min_dispatches=1)
    assert out == []
