"""The time-limit rules of the loop: what each event does to an assignment's deadlines, in memory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from minsheng.timelimits.calendar import WorkCalendar
from minsheng.timelimits.policy import TimeLimit, TimeLimitPolicy, limits_of
from minsheng.timelimits.rules import AssignmentClock, Change, Effect, effect_of, owed_steps

CAL = WorkCalendar()
T0 = datetime(2026, 6, 1, 1, 0, tzinfo=UTC)  # a Monday, 09:00 in Shanghai
HOUR = timedelta(hours=1)
POLICY = TimeLimitPolicy(
    None,
    None,
    limits_of(
        TimeLimit("sign", 30, "minutes"),
        TimeLimit("contact", 2, "hours"),
        TimeLimit("feedback", 24, "hours"),
        TimeLimit("resolve", 72, "hours"),
    ),
)


def test_which_event_changes_what() -> None:
    assert effect_of("assignment_created", "lead", {}) == Effect(Change.START)
    assert effect_of("sign", "lead", {}) == Effect(Change.MEET, frozenset({"sign"}))
    assert effect_of("feedback", "lead", {}) == Effect(Change.MEET, frozenset({"feedback", "instruct"}))
    assert effect_of("sign", "assist", {}) == Effect(Change.MEET)  # everything the assisting unit owes
    assert effect_of("return", "lead", {}) == Effect(Change.MEET)
    assert effect_of("reopen", "lead", {}) == Effect(Change.RESTART)
    assert effect_of("reopen", None, {}) is None  # the ticket's reopen; the lead assignment's one restarts
    assert effect_of("pause", None, {}) == Effect(Change.HOLD)
    assert effect_of("resume", None, {"paused_from": T0.isoformat()}) == Effect(Change.SHIFT, paused_from=T0)
    assert effect_of("resume", None, {"paused_from": None}) is None
    assert effect_of("decide_extension", None, {"approved": True, "hours": 24}) == Effect(
        Change.EXTEND, delta=24 * HOUR
    )
    assert effect_of("decide_extension", None, {"approved": False, "hours": 24}) is None
    assert effect_of("confer", None, {}) is None
    assert owed_steps(POLICY, "assist") == ["sign", "feedback", "resolve"]


def test_an_assignment_clock_follows_its_events() -> None:
    a = AssignmentClock.start(7, "lead", T0, POLICY, CAL)
    assert a.steps["resolve"].deadline.due_at == T0 + 72 * HOUR
    a.on_event("sign", 7, {}, T0 + 10 * timedelta(minutes=1), POLICY, CAL)
    a.on_event("sign", 8, {}, T0 + HOUR, POLICY, CAL)  # another assignment's step
    assert a.steps["sign"].met_at == T0 + 10 * timedelta(minutes=1)
    assert a.steps["contact"].met_at is None
    a.on_event("resume", None, {"paused_from": (T0 + HOUR).isoformat()}, T0 + 3 * HOUR, POLICY, CAL)
    assert a.steps["resolve"].deadline.due_at == T0 + 74 * HOUR  # moved by the pause
    assert a.steps["sign"].deadline.due_at == T0 + 30 * timedelta(minutes=1)  # met: stays
    a.on_event("decide_extension", None, {"approved": True, "hours": 24}, T0 + 4 * HOUR, POLICY, CAL)
    assert a.steps["resolve"].deadline.due_at == T0 + 98 * HOUR
    assert a.steps["resolve"].generation == 1
    a.on_event("request_close", 7, {}, T0 + 5 * HOUR, POLICY, CAL)
    assert all(sc.met_at is not None for sc in a.steps.values())
    a.on_event("reopen", 7, {}, T0 + 6 * HOUR, POLICY, CAL)
    assert a.steps["feedback"].met_at is None and a.steps["feedback"].generation == 1
    assert a.steps["resolve"].deadline.due_at == T0 + 78 * HOUR and a.steps["resolve"].generation == 2
    assert a.steps["sign"].met_at is not None  # a reopen owes no new signature
