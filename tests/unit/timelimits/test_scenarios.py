"""PRODUCT.md's real limits, walked forward with an injected clock (no sleeps)."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from minsheng.domain.clock import FixedClock
from minsheng.timelimits.calendar import WorkCalendar
from minsheng.timelimits.escalation import (
    EscalationError,
    EscalationLadder,
    EscalationStep,
    RepeatedFailureLadder,
    TimerFired,
    due_events,
    due_steps,
    due_warnings,
    plan_timers,
    timer_fired,
    timer_key_prefix,
)
from minsheng.timelimits.policy import compute_deadlines
from minsheng.timelimits.presets import PRESETS, chengdu, demo_city, haikou, jiaxing, qiannan, qianxi

SH = ZoneInfo("Asia/Shanghai")
CAL = WorkCalendar()
MIN = timedelta(minutes=1)


def sh(y: int, m: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, m, d, h, mi, tzinfo=SH)


def walk(subject: str, deadlines, ladders, clock: FixedClock, minutes: int) -> dict[int, list[TimerFired]]:  # type: ignore[no-untyped-def]
    """Advance one minute at a time; return what fired at each minute after the start, each event once."""
    start = clock.now()
    fired: set[str] = set()
    log: dict[int, list[TimerFired]] = {}
    for _ in range(minutes):
        clock.advance(MIN)
        events = due_events(subject, deadlines, ladders, clock.now(), fired)
        for event in events:
            assert event.key not in fired
            fired.add(event.key)
        if events:
            log[int((clock.now() - start) / MIN)] = events
    return log


def summary(log: dict[int, list[TimerFired]]) -> dict[int, list[tuple[str, str, str]]]:
    return {m: [(e.kind, e.step, e.target) for e in events] for m, events in log.items()}


def test_qiannan_sign_15_min_leader_at_30_county_leader_at_60() -> None:
    policy = qiannan().policies.policy_for("any.category", "normal")
    clock = FixedClock(sh(2025, 6, 10, 10))
    deadlines = compute_deadlines(policy, clock.now(), CAL)
    assert deadlines["sign"].due_at == sh(2025, 6, 10, 10, 15)
    log = walk("A-1", deadlines, policy.escalation, clock, 180)
    assert summary(log) == {
        12: [("warning", "sign", "unit")],
        15: [("overdue", "sign", "unit"), ("escalation", "sign", "unit")],
        30: [("escalation", "sign", "unit_leader")],
        60: [("escalation", "sign", "district_leader")],
    }
    assert [e.action for e in log[15]] == ["notify", "press"]
    assert log[60][0].name.startswith("1小时未签收")


def test_qiannan_ladder_with_due_steps_fires_each_step_once_even_after_a_gap() -> None:
    ladder = qiannan().policies.policy_for(None).escalation["sign"]
    deadline_at = sh(2025, 6, 10, 10, 15)
    fired: set[int] = set()
    assert due_steps(ladder, deadline_at, sh(2025, 6, 10, 10, 14), fired) == []
    # The worker was down for an hour: everything due comes out at once, in order.
    due = due_steps(ladder, deadline_at, sh(2025, 6, 10, 11, 20), fired)
    assert [(i, s.target) for i, s in due] == [(0, "unit"), (1, "unit_leader"), (2, "district_leader")]
    fired.update(i for i, _ in due)
    assert due_steps(ladder, deadline_at, sh(2025, 6, 10, 23), fired) == []
    warn = [sh(2025, 6, 10, 10, 12)]
    assert due_warnings(warn, sh(2025, 6, 10, 10, 11), set()) == []
    assert due_warnings(warn, sh(2025, 6, 10, 10, 12), set()) == [(0, warn[0])]
    assert due_warnings(warn, sh(2025, 6, 10, 10, 13), {0}) == []


def test_qiannan_signing_cancels_the_rest_of_the_ladder() -> None:
    policy = qiannan().policies.policy_for(None)
    start = sh(2025, 6, 10, 10)
    timers = plan_timers("A-1", compute_deadlines(policy, start, CAL), policy.escalation)
    # Signed at 10:20: the worker deletes the unfired sign timers (those due later than now).
    remaining = [
        t
        for t in timers
        if not (t.key.startswith(timer_key_prefix("A-1", "sign")) and t.due_at > start + 20 * MIN)
    ]
    assert [(t.kind, t.payload["target"]) for t in remaining] == [
        ("warning", "unit"),
        ("overdue", "unit"),
        ("escalation", "unit"),
    ]


@pytest.mark.parametrize(("zone", "arrive_minutes"), [("urban", 10), (None, 30), ("county", 30)])
def test_jiaxing_1_2_3_minutes_and_on_site(zone: str | None, arrive_minutes: int) -> None:
    policy = jiaxing().policies.policy_for("roads", "normal", zone)
    clock = FixedClock(sh(2025, 6, 10, 10))
    deadlines = compute_deadlines(policy, clock.now(), CAL)
    overdue = {
        m: [e.step for e in events if e.kind == "overdue"]
        for m, events in walk("J-1", deadlines, policy.escalation, clock, 60).items()
    }
    assert {m: steps for m, steps in overdue.items() if steps} == {
        1: ["sign"],
        2: ["contact"],
        3: ["instruct"],
        arrive_minutes: ["arrive"],
    }
    assert "resolve" not in deadlines


def test_jiaxing_labour_and_consumer_disputes_resolved_in_24_hours() -> None:
    preset = jiaxing(labour_categories=["labour"], consumer_categories=["consumer"])
    start = sh(2025, 10, 1, 9)  # a holiday: natural time does not care
    for code in ("labour", "consumer"):
        policy = preset.policies.policy_for(code, "urgent", "urban")
        deadlines = compute_deadlines(policy, start, CAL)
        assert deadlines["resolve"].due_at == sh(2025, 10, 2, 9)
        assert deadlines["sign"].due_at == start + MIN  # inherited from the city-wide policy
        assert deadlines["arrive"].due_at == start + 10 * MIN


def test_haikou_30_minute_response() -> None:
    policy = haikou().policies.policy_for(None)
    clock = FixedClock(sh(2025, 6, 10, 22))
    log = summary(walk("H-1", compute_deadlines(policy, clock.now(), CAL), policy.escalation, clock, 120))
    assert log == {
        24: [("warning", "sign", "unit")],
        30: [("overdue", "sign", "unit"), ("escalation", "sign", "unit")],
        60: [("escalation", "sign", "duty_commander")],
    }


CHENGDU = chengdu(complex_categories=["land"], category_parents={"land.demolition": "land", "land": None})


@pytest.mark.parametrize(
    ("arrival", "category", "due"),
    [
        # 2025: holiday 1-8 Oct; swapped working days Sunday 28 Sep and Saturday 11 Oct.
        (sh(2025, 9, 30, 10), "roads", sh(2025, 10, 14, 18)),  # 9, 10, 11 (Sat), 13, 14
        (sh(2025, 10, 3, 15), "roads", sh(2025, 10, 14, 18)),  # arriving on a holiday: same count
        (sh(2025, 9, 26, 10), "roads", sh(2025, 10, 10, 18)),  # 28 (Sun), 29, 30, 9, 10
        (sh(2025, 9, 30, 10), "land.demolition", sh(2025, 10, 28, 18)),  # complex, inherited from "land"
        # 2026: holiday 1-7 Oct; swapped working days Sunday 20 Sep and Saturday 10 Oct.
        (sh(2026, 9, 30, 10), "roads", sh(2026, 10, 13, 18)),  # 8, 9, 10 (Sat), 12, 13
        (sh(2026, 9, 30, 10), "land", sh(2026, 10, 27, 18)),
        (sh(2026, 9, 18, 10), "roads", sh(2026, 9, 24, 18)),  # 20 (Sun), 21, 22, 23, 24; 25 Sep is 中秋
    ],
)
def test_chengdu_5_and_15_working_days_across_national_day(
    arrival: datetime, category: str, due: datetime
) -> None:
    policy = CHENGDU.policies.policy_for(category, "normal")
    deadline = compute_deadlines(policy, arrival, CAL)["feedback"]
    assert deadline.due_at == due
    assert not deadline.calendar_fallback


def test_chengdu_the_swapped_saturday_counts() -> None:
    assert CAL.is_working_day(date(2025, 10, 11))
    without_swap = WorkCalendar(statutory=False)  # Mon-Fri only
    policy = CHENGDU.policies.policy_for("roads")
    assert compute_deadlines(policy, sh(2025, 9, 30, 10), without_swap)["feedback"].due_at == sh(
        2025, 10, 7, 18
    )
    assert compute_deadlines(policy, sh(2025, 9, 30, 10), CAL)["feedback"].due_at == sh(2025, 10, 14, 18)


def test_chengdu_walk_to_the_deadline_fires_warning_then_overdue() -> None:
    policy = CHENGDU.policies.policy_for("roads")
    deadlines = compute_deadlines(policy, sh(2025, 9, 30, 10), CAL)
    events = due_events("C-1", deadlines, policy.escalation, sh(2025, 10, 14, 17, 59), set())
    assert [e.kind for e in events] == ["warning"]
    assert events[0].at < sh(2025, 10, 14, 17, 59)
    events = due_events("C-1", deadlines, policy.escalation, sh(2025, 10, 14, 18), {events[0].key})
    assert [(e.kind, e.action) for e in events] == [("overdue", "notify"), ("escalation", "press")]


def test_qianxi_three_repeated_failures() -> None:
    ladder = qianxi().repeated_failures
    assert ladder is not None
    clock = FixedClock(sh(2025, 6, 1, 9))
    failures: list[datetime] = []
    targets = []
    for days in (0, 3, 10, 12):
        clock.set(sh(2025, 6, 1, 9) + timedelta(days=days))
        targets.append(ladder.target_for_failure(failures, clock.now()))
        failures.append(clock.now())
    assert targets == ["unit_leader", "deputy_mayor", "mayor", "mayor"]
    # Thirty days after the last failure the window is empty again.
    assert ladder.target_for_failure(failures, sh(2025, 6, 13, 9) + timedelta(days=30)) == "unit_leader"
    # Twenty-nine days after the second failure, only the 3rd and 4th remain in the window.
    assert ladder.failure_number(failures, sh(2025, 6, 4, 9) + timedelta(days=30)) == 3


def test_timer_plan_is_storable_and_round_trips() -> None:
    policy = demo_city().policies.policy_for(None, "normal")
    start = sh(2025, 6, 10, 10)
    deadlines = compute_deadlines(policy, start, CAL)
    timers = plan_timers(42, deadlines, policy.escalation)
    assert len({t.key for t in timers}) == len(timers)
    assert [t.due_at for t in timers] == sorted(t.due_at for t in timers)
    json.dumps([t.payload for t in timers])
    sign_escalations = [t for t in timers if t.step == "sign" and t.kind == "escalation"]
    assert [t.due_at - deadlines["sign"].due_at for t in sign_escalations] == [
        timedelta(0),
        30 * MIN,
        60 * MIN,
    ]
    event = timer_fired(sign_escalations[1])
    assert (event.kind, event.step, event.target, event.subject_id, event.index) == (
        "escalation",
        "sign",
        "unit_leader",
        "42",
        1,
    )
    assert event.deadline_at == deadlines["sign"].due_at and event.key == sign_escalations[1].key
    # After an extension, warnings already in the past are not planned again.
    later = plan_timers(42, deadlines, policy.escalation, not_before=start + 29 * MIN)
    assert not [t for t in later if t.kind == "warning" and t.step == "sign"]
    assert [t for t in later if t.kind == "overdue" and t.step == "sign"]


def test_every_preset_builds() -> None:
    for name, factory in PRESETS.items():
        preset = factory()
        assert preset.name == name
        deadlines = compute_deadlines(preset.policies.policy_for(None, "normal"), sh(2025, 6, 10, 10), CAL)
        assert deadlines


def test_bad_ladders_are_refused() -> None:
    with pytest.raises(EscalationError, match="in order"):
        EscalationLadder(
            (
                EscalationStep(timedelta(hours=1), "notify", "mayor"),
                EscalationStep(timedelta(0), "press", "unit"),
            )
        )
    with pytest.raises(EscalationError, match="unknown action 'shout'"):
        EscalationStep(timedelta(0), "shout", "unit")  # type: ignore[arg-type]
    with pytest.raises(EscalationError, match=">= 0"):
        EscalationStep(-MIN, "press", "unit")
    with pytest.raises(EscalationError, match="non-empty"):
        EscalationStep(MIN, "press", " ")
    with pytest.raises(EscalationError, match="longer than zero"):
        RepeatedFailureLadder(timedelta(0), ("mayor",))
    with pytest.raises(EscalationError, match="at least one"):
        RepeatedFailureLadder(timedelta(days=1), ())
