"""Ticket scripts of the demo history: order, vocabulary, params, the mix of outcomes, open tickets."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from minsheng.demo.city import DemoCity, generate_city
from minsheng.demo.history import ACTIONS, CHANNELS, RATINGS, UNIT_ACTIONS, TicketScript, generate_history

END = datetime(2026, 6, 1, tzinfo=UTC)
REQUIRED_PARAMS = {
    "transfer": {"target"},
    "dispatch": {"lead_unit", "assist_units"},
    "return": {"reason"},
    "redispatch": {"lead_unit", "assist_units", "reason"},
    "feedback": {"text"},
    "request_close": {"text"},
    "review_reject": {"reason"},
    "request_extension": {"hours", "reason"},
    "decide_extension": {"approve"},
    "pause": {"reason"},
    "reopen": {"reason"},
    "mark_repeat": {"of_index"},
    "confer": {"decision"},
}


@pytest.fixture(scope="module")
def city() -> DemoCity:
    return generate_city(2026)


@pytest.fixture(scope="module")
def year(city: DemoCity) -> list[TicketScript]:
    return list(generate_history(city, 3000, END - timedelta(days=365), END, seed=5))


def test_count_and_order(year: list[TicketScript]) -> None:
    assert len(year) == 3000
    created = [s.created_at for s in year]
    assert created == sorted(created)
    assert created[0] >= END - timedelta(days=365) and created[-1] <= END
    for s in year:
        times = [st.at for st in s.steps]
        assert times == sorted(times)
        assert all(s.created_at < t <= END for t in times)


def test_actions_params_and_units(city: DemoCity, year: list[TicketScript]) -> None:
    units = city.unit_by_code
    for i, s in enumerate(year):
        assert s.channel in CHANNELS and s.area_code in city.area_by_code
        assert city.category_by_code[s.category_code].level == 3
        assert s.kind == s.text.kind and s.urgency == s.text.urgency
        assert not (s.confidential and s.public_consent)
        for st in s.steps:
            assert st.action in ACTIONS
            assert REQUIRED_PARAMS.get(st.action, set()) <= set(st.params), st
            if st.action in UNIT_ACTIONS:
                assert st.unit_code in units and st.actor_role == "handler"
            else:
                assert st.unit_code is None
            if st.action in ("dispatch", "redispatch"):
                assert st.params["lead_unit"] in units
                assert all(a in units for a in st.params["assist_units"])
                assert st.params["lead_unit"] not in st.params["assist_units"]
            if st.action == "transfer":
                assert st.params["target"] in ("110", "119", "120", "122")
            if st.action == "follow_up":
                assert st.params.get("rating") in RATINGS or st.params == {"reached": False}
            if st.action == "mark_repeat":
                j = st.params["of_index"]
                assert 0 <= j < i and year[j].category_code == s.category_code
            if st.action == "request_extension":
                assert st.params["hours"] > 0


def test_units_act_only_after_they_are_dispatched(year: list[TicketScript]) -> None:
    for s in year:
        dispatched: set[str] = set()
        signed: set[str] = set()
        for st in s.steps:
            if st.action in ("dispatch", "redispatch"):
                dispatched |= {st.params["lead_unit"], *st.params["assist_units"]}
            elif st.action == "sign":
                assert st.unit_code in dispatched
                signed.add(st.unit_code or "")
            elif st.action == "return":
                assert st.unit_code in dispatched and st.unit_code not in signed
            elif st.action in UNIT_ACTIONS:
                assert st.unit_code in signed, (st, s.steps)


def test_every_branch_occurs(year: list[TicketScript]) -> None:
    actions = Counter(st.action for s in year for st in s.steps)
    assert set(actions) == set(ACTIONS)
    firsts = Counter(s.steps[0].action for s in year if s.steps)
    consultations_answered = firsts["answer_directly"] / len(year)
    assert 0.25 <= consultations_answered <= 0.45
    assert firsts["dispatch"] > firsts["answer_directly"] > firsts["mark_repeat"] > 0
    assert {st.params["target"] for s in year for st in s.steps if st.action == "transfer"} == {
        "110",
        "119",
        "120",
        "122",
    }
    ratings = Counter(st.params.get("rating") for s in year for st in s.steps if st.action == "follow_up")
    assert set(RATINGS) <= set(ratings) and ratings[None] > 0  # None: the citizen was not reached
    assert ratings["satisfied"] > 5 * (ratings["dissatisfied"] + ratings["basically_dissatisfied"])
    joint = [s for s in year for st in s.steps if st.action == "dispatch" and st.params["assist_units"]]
    assert len(joint) > 50
    approved = Counter(
        st.params["approve"] for s in year for st in s.steps if st.action == "decide_extension"
    )
    assert approved[True] > approved[False] > 0


def test_channel_and_time_mix(year: list[TicketScript]) -> None:
    channels = Counter(s.channel for s in year)
    assert set(channels) == set(CHANNELS)
    assert channels.most_common(1)[0][0] == "phone"
    local_hours = Counter((s.created_at + timedelta(hours=8)).hour for s in year)
    assert local_hours[10] > 5 * local_hours[3]
    weekdays = Counter((s.created_at + timedelta(hours=8)).weekday() for s in year)
    assert weekdays[1] > weekdays[6]
    with_gps = [s for s in year if s.text.lat is not None]
    assert with_gps and all(s.channel in ("app", "wechat", "grid", "open311") for s in with_gps)


def test_bursts_cluster_in_one_street(year: list[TicketScript]) -> None:
    by_key: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    for s in year:
        by_key[(s.area_code[:9], s.category_code)].append(s.created_at)
    clusters = 0
    for times in by_key.values():
        times.sort()
        for i in range(len(times) - 5):
            if times[i + 5] - times[i] <= timedelta(days=5):
                clusters += 1
                break
    assert clusters >= 1


def test_recent_tickets_are_open_in_every_state(city: DemoCity) -> None:
    scripts = list(generate_history(city, 1500, END - timedelta(days=20), END, seed=6))
    recent = [s for s in scripts if END - s.created_at < timedelta(days=3)]
    last = Counter(s.steps[-1].action if s.steps else "waiting_dispatch" for s in recent)
    assert last["waiting_dispatch"] > 0  # not yet dispatched
    assert last["dispatch"] + last["redispatch"] > 0  # dispatched, not signed
    assert last["sign"] + last["contact"] + last["arrive"] + last["feedback"] > 0  # in progress
    assert last["request_close"] > 0  # close requested
    assert last["review_accept"] > 0  # closed, not yet followed up
    assert last["follow_up"] > 0  # done


def test_deterministic(city: DemoCity) -> None:
    a = list(generate_history(city, 300, END - timedelta(days=30), END, seed=1))
    b = list(generate_history(city, 300, END - timedelta(days=30), END, seed=1))
    assert a == b
    c = list(generate_history(city, 300, END - timedelta(days=30), END, seed=2))
    assert a != c
