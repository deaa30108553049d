"""Time-limit policies: validation, inheritance, deadlines, warnings, pauses, extensions, reopen."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from minsheng.timelimits.calendar import CalendarEntry, WorkCalendar
from minsheng.timelimits.escalation import EscalationLadder, EscalationStep
from minsheng.timelimits.policy import (
    PolicyError,
    PolicySet,
    TimeLimit,
    TimeLimitPolicy,
    compute_deadlines,
    extend,
    limits_of,
    shift_for_pause,
)

SH = ZoneInfo("Asia/Shanghai")
CAL = WorkCalendar()


def sh(y: int, m: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, m, d, h, mi, tzinfo=SH)


@pytest.mark.parametrize(
    ("amount", "unit", "message"),
    [
        (0, "minutes", "greater than zero"),
        (-5, "hours", "greater than zero"),
        (float("nan"), "hours", "must be a number"),
        (True, "hours", "must be a number"),
        ("5", "hours", "must be a number"),
        (1.5, "working_days", "whole number"),
        (5, "fortnights", "unknown unit 'fortnights'"),
    ],
)
def test_bad_limits_are_refused(amount: object, unit: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        TimeLimit("sign", amount, unit)  # type: ignore[arg-type]


def test_bad_policies_are_refused() -> None:
    sign = limits_of(TimeLimit("sign", 15, "minutes"))
    for share in (0, 1, 1.5, -0.2):
        with pytest.raises(PolicyError, match="strictly between 0 and 1"):
            TimeLimitPolicy(None, None, sign, warn_at=(share,))
    with pytest.raises(PolicyError, match="repeat"):
        TimeLimitPolicy(None, None, sign, warn_at=(0.5, 0.5))
    with pytest.raises(PolicyError, match="filed under 'contact'"):
        TimeLimitPolicy(None, None, {"contact": TimeLimit("sign", 1, "minutes")})
    with pytest.raises(PolicyError, match="step name"):
        TimeLimit("", 1, "minutes")
    with pytest.raises(PolicyError, match="two policies"):
        PolicySet([TimeLimitPolicy("a", None, sign), TimeLimitPolicy("a", None, sign)])
    with pytest.raises(PolicyError, match="cycle: a → b → a"):
        PolicySet([], {"a": "b", "b": "a"})
    assert TimeLimitPolicy(None, None, sign, warn_at=(0.9, 0.5)).warn_at == (0.5, 0.9)


def test_inheritance_step_by_step() -> None:
    parents = {"city.roads": "city", "city.roads.potholes": "city.roads", "city": None}
    ladder = EscalationLadder((EscalationStep(timedelta(0), "press", "unit"),))
    policies = PolicySet(
        [
            TimeLimitPolicy(
                None,
                None,
                limits_of(TimeLimit("sign", 30, "minutes"), TimeLimit("resolve", 15, "working_days")),
                escalation={"sign": ladder},
                name="default",
            ),
            TimeLimitPolicy(None, "urgent", limits_of(TimeLimit("sign", 10, "minutes")), warn_at=(0.5,)),
            TimeLimitPolicy("city.roads", None, limits_of(TimeLimit("resolve", 10, "working_days"))),
            TimeLimitPolicy("city.roads", "urgent", limits_of(TimeLimit("resolve", 2, "working_days"))),
            TimeLimitPolicy("city.roads.potholes", None, limits_of(TimeLimit("arrive", 4, "hours"))),
        ],
        parents,
    )
    p = policies.policy_for("city.roads.potholes", "normal")
    assert p.limits["arrive"].amount == 4  # own
    assert p.limits["resolve"].amount == 10  # from the parent
    assert p.limits["sign"].amount == 30  # from the city default
    assert p.escalation["sign"] is ladder
    assert p.warn_at == (0.8,)
    urgent = policies.policy_for("city.roads.potholes", "urgent")
    assert urgent.limits["resolve"].amount == 2  # urgency-specific beats generic at the same level
    assert urgent.limits["sign"].amount == 10
    assert urgent.warn_at == (0.5,)
    # An unknown category gets the defaults; no policy at all gives no limits.
    assert policies.policy_for("unknown", None).limits["resolve"].amount == 15
    assert PolicySet([]).policy_for("x", None).limits == {}


def test_zone_specific_limits() -> None:
    policies = PolicySet(
        [
            TimeLimitPolicy(None, None, limits_of(TimeLimit("arrive", 30, "minutes"))),
            TimeLimitPolicy(None, None, limits_of(TimeLimit("arrive", 10, "minutes")), zone="urban"),
        ]
    )
    assert policies.policy_for(None, None, "urban").limits["arrive"].amount == 10
    assert policies.policy_for(None, None, "rural").limits["arrive"].amount == 30
    assert policies.policy_for(None, None).limits["arrive"].amount == 30


def test_deadlines_and_warnings_in_natural_and_working_time() -> None:
    policy = TimeLimitPolicy(
        None,
        None,
        limits_of(
            TimeLimit("sign", 15, "minutes"),
            TimeLimit("contact", 2, "hours"),
            TimeLimit("arrive", 1, "natural_days"),
            TimeLimit("feedback", 3, "working_hours"),
            TimeLimit("resolve", 2, "working_days"),
        ),
        warn_at=(0.5, 0.8),
    )
    start = sh(2025, 6, 13, 16)  # Friday 16:00
    d = compute_deadlines(policy, start, CAL)
    assert d["sign"].due_at == sh(2025, 6, 13, 16, 15)
    assert d["sign"].warn_at == (sh(2025, 6, 13, 16, 7) + timedelta(seconds=30), sh(2025, 6, 13, 16, 12))
    assert d["contact"].due_at == sh(2025, 6, 13, 18)
    assert d["arrive"].due_at == sh(2025, 6, 14, 16)
    # 2 h on Friday, then 1 h on Monday.
    assert d["feedback"].due_at == sh(2025, 6, 16, 10)
    assert d["feedback"].warn_at[0] == sh(2025, 6, 13, 17, 30)  # 1.5 working hours in
    assert d["resolve"].due_at == sh(2025, 6, 17, 18)
    assert all(x.due_at.tzinfo == UTC for x in d.values())
    assert not any(x.calendar_fallback for x in d.values())
    # Per-step starts and a subset of steps.
    only = compute_deadlines(policy, start, CAL, steps=["contact"], starts={"contact": sh(2025, 6, 13, 17)})
    assert list(only) == ["contact"] and only["contact"].due_at == sh(2025, 6, 13, 19)


def test_working_deadline_in_an_unknown_year_is_flagged() -> None:
    policy = TimeLimitPolicy(None, None, limits_of(TimeLimit("resolve", 5, "working_days")))
    d = compute_deadlines(policy, sh(2035, 3, 1, 10), CAL)["resolve"]
    assert d.calendar_fallback
    local = WorkCalendar([CalendarEntry(date(2035, 3, 2), "holiday", "x")], complete_years=[2035])
    assert not compute_deadlines(policy, sh(2035, 3, 1, 10), local)["resolve"].calendar_fallback


def test_pause_moves_natural_deadlines_by_wall_clock() -> None:
    policy = TimeLimitPolicy(None, None, limits_of(TimeLimit("resolve", 24, "hours")))
    d = compute_deadlines(policy, sh(2025, 6, 13, 10), CAL)[
        "resolve"
    ]  # due Sat 10:00, warn Fri 05:12 next day
    shifted = shift_for_pause(d, sh(2025, 6, 13, 12), sh(2025, 6, 13, 15), calendar=CAL)
    assert shifted.due_at == sh(2025, 6, 14, 13)
    assert shifted.warn_at == (d.warn_at[0] + timedelta(hours=3),)
    # A pause starting after the deadline changes nothing; one running past it counts only up to it.
    assert shift_for_pause(d, sh(2025, 6, 14, 11), sh(2025, 6, 14, 12)) == d
    assert shift_for_pause(d, sh(2025, 6, 14, 9), sh(2025, 6, 14, 20)).due_at == sh(2025, 6, 14, 11)
    with pytest.raises(ValueError, match="before it starts"):
        shift_for_pause(d, sh(2025, 6, 13, 15), sh(2025, 6, 13, 12))


def test_pause_moves_working_deadlines_by_working_time_inside_the_pause() -> None:
    policy = TimeLimitPolicy(None, None, limits_of(TimeLimit("resolve", 2, "working_days")), warn_at=(0.1,))
    d = compute_deadlines(policy, sh(2025, 6, 12, 10), CAL)["resolve"]  # Thursday → due Mon 16 June 18:00
    assert d.due_at == sh(2025, 6, 16, 18)
    # A weekend pause holds no working time.
    assert shift_for_pause(d, sh(2025, 6, 14, 9), sh(2025, 6, 15, 20), calendar=CAL).due_at == d.due_at
    # Friday 17:00 → Monday 10:00 holds 2 working hours: due moves to Tuesday 11:00 (9:00 + 2 h).
    moved = shift_for_pause(d, sh(2025, 6, 13, 17), sh(2025, 6, 16, 10), calendar=CAL)
    assert moved.due_at == sh(2025, 6, 17, 11)
    assert moved.warn_at == d.warn_at  # the warning was already due before the pause began
    with pytest.raises(ValueError, match="needs the calendar"):
        shift_for_pause(d, sh(2025, 6, 13, 17), sh(2025, 6, 16, 10))


def test_extension_and_reopen() -> None:
    policy = TimeLimitPolicy(None, None, limits_of(TimeLimit("resolve", 5, "working_days")))
    d = compute_deadlines(policy, sh(2025, 9, 30, 10), CAL)["resolve"]
    assert d.due_at == sh(2025, 10, 14, 18)
    longer = extend(d, 3, CAL)  # Oct 15, 16, 17
    assert longer.due_at == sh(2025, 10, 17, 18)
    assert longer.started_at == d.started_at and longer.warn_at[0] > d.warn_at[0]
    assert extend(d, timedelta(hours=2), CAL).due_at == sh(2025, 10, 14, 20)
    assert extend(d, 4, CAL, unit="working_hours").due_at == sh(2025, 10, 15, 13, 30) + timedelta(hours=1)
    with pytest.raises(PolicyError, match="greater than zero"):
        extend(d, 0, CAL)
    with pytest.raises(PolicyError, match="longer than zero"):
        extend(d, timedelta(0), CAL)
    with pytest.raises(ValueError, match="needs the calendar"):
        extend(d, 3)
    natural = compute_deadlines(
        TimeLimitPolicy(None, None, limits_of(TimeLimit("sign", 10, "minutes"))), sh(2025, 6, 1, 10), CAL
    )["sign"]
    assert extend(natural, 5, unit="minutes").due_at == sh(2025, 6, 1, 10, 15)
    # Reopen (回流): fresh deadlines from the reopen instant.
    reopened = compute_deadlines(policy, sh(2025, 10, 20, 9), CAL)["resolve"]
    assert reopened.due_at == sh(2025, 10, 27, 18) and reopened.started_at == sh(2025, 10, 20, 9)
