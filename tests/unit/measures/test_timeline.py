"""Every measure on hand-built timelines: one ticket's contribution (`minsheng.measures.timeline`) and the values
computed from it (`minsheng.measures.values`), including returns, transfers, pauses, reopenings, merges,
extensions, withdrawn assignments, overdue steps and working-time calendars."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from minsheng.measures.timeline import (
    AssignmentInfo,
    Event,
    StepLimit,
    TicketInfo,
    TicketTimeline,
    bucket_of,
    contribution,
    duration,
    paused_spans,
    step_outcome,
)
from minsheng.measures.values import MeasureSettings, values
from minsheng.timelimits.calendar import WorkCalendar

T0 = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)  # Monday 09:00 in Shanghai
DAY = date(2026, 11, 23)
M = timedelta(minutes=1)
H = timedelta(hours=1)
LEAD, ASSIST, OTHER = 10, 20, 30


class Script:
    """Builds a timeline event by event: ``at`` is minutes after T0."""

    def __init__(self, **ticket: object) -> None:
        fields = {"channel": "phone", "kind": "complaint", "area_id": 5, "category_id": 7, **ticket}
        self.ticket = TicketInfo(1, T0, **fields)  # type: ignore[arg-type]
        self.events: list[Event] = [Event(1, T0, "intake")]
        self.assignments: list[AssignmentInfo] = []
        self.limits: list[StepLimit] = []

    def __call__(
        self, minutes: float, action: str, assignment: int | None = None, **payload: object
    ) -> Script:
        self.events.append(Event(len(self.events) + 1, T0 + minutes * M, action, assignment, payload))
        return self

    def assign(self, aid: int, unit: int, minutes: float, role: str = "lead") -> Script:
        self.assignments.append(AssignmentInfo(aid, unit, role, T0 + minutes * M))
        return self

    def limit(self, aid: int, step: str, start: float, due: float) -> Script:
        self.limits.append(StepLimit(aid, step, T0 + start * M, T0 + due * M))
        return self

    def timeline(self) -> TicketTimeline:
        return TicketTimeline(self.ticket, self.events, self.assignments, self.limits)

    def rows(self, calendar: object = None) -> dict[int, dict[str, int]]:
        """Counters per unit (the other keys are the ticket's)."""
        out = {}
        for key, counters in contribution(self.timeline(), calendar).items():  # type: ignore[arg-type]
            assert key[0] == DAY and key[2:5] == (5, 7, "phone")
            out[key[1]] = counters
        return out

    def total(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for counters in self.rows().values():
            for k, v in counters.items():
                total[k] = total.get(k, 0) + v
        return total


def handled(s: Script, *, rating: str | None = "satisfied") -> Script:
    """Dispatched to LEAD (assignment 1) at 5 min, signed at 10, contact 20, arrive 40, feedback 100,
    request_close 110, accepted at 170; rated."""
    s.assign(1, LEAD, 5)(5, "dispatch")(10, "sign", 1)(10, "lead_signed")(20, "contact", 1)(40, "arrive", 1)
    s(100, "feedback", 1)(110, "request_close", 1)(110, "lead_requested_close")(170, "review_accept")
    s(170, "close", 1)
    if rating:
        s(1440, "follow_up", rating=rating)
    return s


def test_an_untouched_ticket_counts_once_for_no_unit() -> None:
    assert Script().rows() == {0: {"tickets": 1}}
    v = values(Script().total())
    assert v["volume"] == 1 and v["completion_rate"] == 0.0 and v["diversion_rate"] == 0.0
    assert v["sign_rate"] is None and v["satisfaction_rate"] is None


def test_the_whole_loop() -> None:
    s = handled(Script())
    row = s.rows()[LEAD]
    for name in (
        "tickets",
        "dispatched",
        "triaged",
        "closed",
        "closed_first_time",
        "closed_ever",
        "submitted",
    ):
        assert row[name] == 1, name
    assert row["rated_satisfied"] == row["rated"] == row["responded"] == 1
    assert (row["assignments"], row["assignments_due"], row["signed"], row["reported"]) == (1, 1, 1, 1)
    assert row["sign_seconds"] == 300 and row["contact_seconds"] == 900 and row["arrive_seconds"] == 2100
    assert row["feedback_seconds"] == 95 * 60 and row["close_seconds"] == 170 * 60
    assert row["sign_h0"] == 1 and row["close_h5"] == 1  # 5 min; 170 min lies in (2 h, 4 h]
    v = values(s.total())
    assert v["completion_rate"] == v["sign_rate"] == v["feedback_rate"] == v["satisfaction_rate"] == 1.0
    assert v["reopen_rate"] == 0.0 and v["first_time_completion_rate"] == 1.0
    assert v["avg_close_hours"] == pytest.approx(170 / 60)
    assert v["response_rate"] == 1.0  # no deadline: any contact counts


def test_the_day_is_the_local_day_of_intake() -> None:
    late = Script()
    late.ticket = TicketInfo(1, datetime(2026, 11, 22, 16, 30, tzinfo=UTC), "web", "help")  # 00:30 local
    (key,) = contribution(late.timeline())
    assert key == (DAY, 0, 0, 0, "web", "help")


def test_a_return_counts_against_the_unit_that_returned_and_the_ticket_follows_the_new_lead() -> None:
    s = Script().assign(1, OTHER, 5)(5, "dispatch")(15, "return", 1)(15, "lead_returned")
    s.assign(2, LEAD, 30)(30, "redispatch")(35, "sign", 2)(60, "feedback", 2)(70, "request_close", 2)
    s(70, "lead_requested_close")(90, "review_accept")(90, "close", 2)
    rows = s.rows()
    assert rows[OTHER] == {"assignments": 1, "assignments_due": 1, "returned": 1}
    assert rows[LEAD]["tickets"] == 1 and rows[LEAD]["closed"] == 1
    assert "closed_first_time" not in rows[LEAD]  # returned once: not closed at the first go
    v = values(s.total())
    assert v["return_rate"] == 0.5 and v["sign_rate"] == 0.5
    assert values(rows[OTHER])["return_rate"] == 1.0 and values(rows[LEAD])["return_rate"] == 0.0


def test_an_assignment_withdrawn_before_the_unit_acted_is_not_due() -> None:
    s = Script().assign(1, OTHER, 5)(5, "dispatch")(8, "cancel", 1)(8, "redispatch").assign(2, LEAD, 8)
    s(9, "sign", 2)
    rows = s.rows()
    assert rows[OTHER] == {"assignments": 1}
    assert values(s.total())["sign_rate"] == 1.0


def test_assisting_units_count_their_own_steps_and_the_ticket_stays_with_the_lead() -> None:
    s = Script().assign(1, LEAD, 5).assign(2, ASSIST, 5, "assist")(5, "dispatch")
    s(6, "sign", 1)(7, "sign", 2)(30, "feedback", 2)
    rows = s.rows()
    assert rows[ASSIST] == {
        "assignments": 1,
        "assignments_due": 1,
        "signed": 1,
        "reported": 1,
        "sign_n": 1,
        "sign_seconds": 120,
        "sign_work_seconds": 120,
        "sign_h0": 1,
        "feedback_n": 1,
        "feedback_seconds": 25 * 60,
        "feedback_work_seconds": 25 * 60,
        "feedback_h2": 1,
    }
    assert rows[LEAD]["tickets"] == 1 and "tickets" not in rows[ASSIST]
    assert values(rows[LEAD])["feedback_rate"] == 0.0


def test_a_transfer_is_diverted_and_leaves_the_completion_base() -> None:
    s = Script()(3, "transfer", target="110")
    v = values(s.total())
    assert s.total() == {"tickets": 1, "transferred": 1, "triaged": 1}
    assert v["transfer_count"] == 1 and v["diversion_rate"] == 1.0 and v["completion_rate"] is None


def test_a_direct_answer_is_closed_diverted_and_has_no_close_time() -> None:
    s = Script(kind="consultation")(4, "answer_directly")
    total = s.total()
    assert total["answered"] == total["closed"] == total["closed_ever"] == total["triaged"] == 1
    assert "close_n" not in total and "submitted" not in total
    v = values(total)
    assert v["direct_answer_rate"] == 1.0 and v["completion_rate"] == 1.0 and v["reopen_rate"] is None


def test_a_rejected_closing_and_a_dissatisfied_reopen_are_two_returns_to_handling() -> None:
    s = handled(Script(), rating=None)
    s(200, "review_reject")  # (not on a real timeline after acceptance; order is what counts here)
    s(1440, "follow_up", rating="dissatisfied")(1500, "reopen")(1500, "reopen", 1)
    row = s.rows()[LEAD]
    assert row["reopened"] == 1 and row["reopen_events"] == 2
    assert "closed" not in row and "rated" not in row  # the reopen takes the closing and the rating back
    assert row["closed_ever"] == 1 and "close_n" not in row
    v = values(row)
    assert v["reopen_rate"] == 1.0 and v["completion_rate"] == 0.0 and v["satisfaction_rate"] is None
    # Handled again and closed: closed, but not at the first go.
    s(1600, "feedback", 1)(1610, "request_close", 1)(1610, "lead_requested_close")(1700, "review_accept")
    row = s.rows()[LEAD]
    assert row["closed"] == 1 and "closed_first_time" not in row
    assert row["close_seconds"] == 1700 * 60  # intake to the last closing


def test_ratings_weights_resolution_and_dissatisfaction() -> None:
    totals: dict[str, int] = {}
    for rating in ("satisfied", "basically_satisfied", "basically_dissatisfied", "dissatisfied"):
        for k, v in handled(Script(), rating=rating).total().items():
            totals[k] = totals.get(k, 0) + v
    v = values(totals)
    assert v["satisfaction_rate"] == 0.5 and v["dissatisfaction_rate"] == 0.5 and v["resolution_rate"] == 0.5
    weighted = MeasureSettings(
        satisfaction_weights={"satisfied": 1, "basically_satisfied": 0.8, "basically_dissatisfied": 0.2},
        resolved_ratings=("satisfied",),
    )
    v = values(totals, weighted)
    assert v["satisfaction_rate"] == pytest.approx(0.5) and v["resolution_rate"] == 0.25
    # The citizen's own rating after a follow-up replaces it.
    s = handled(Script(), rating="satisfied")(2000, "rate", rating="dissatisfied")
    assert s.rows()[LEAD]["rated_dissatisfied"] == 1 and "rated_satisfied" not in s.rows()[LEAD]


def test_a_repeat_is_counted_and_a_repeat_after_closing_is_a_complaint_on_the_master() -> None:
    repeat = Script()(2, "mark_repeat", ticket="x")
    assert repeat.total() == {"tickets": 1, "repeats": 1, "triaged": 1}
    assert values(repeat.total())["completion_rate"] is None
    merged = Script().assign(1, LEAD, 5)(5, "dispatch")(6, "cancel", 1)(6, "merge", ticket="x")
    assert merged.total()["repeats"] == 1 and "assignments_due" not in merged.total()
    before = Script().assign(1, LEAD, 5)(5, "dispatch")(50, "repeat_linked", ticket="y")  # being handled
    before(60, "sign", 1)(70, "feedback", 1)(80, "lead_requested_close")(90, "review_accept")
    assert "complained" not in before.total()
    after = handled(Script(), rating="dissatisfied")(3000, "repeat_linked", ticket="z")
    total = after.total()
    assert total["complained"] == total["complained_or_dissatisfied"] == 1
    assert values(total)["complaint_rate"] == 1.0
    only_rating = handled(Script(), rating="dissatisfied").total()
    assert values(only_rating)["complaint_rate"] == 0.0
    assert values(only_rating, MeasureSettings(complaint_includes_dissatisfied=True))["complaint_rate"] == 1.0


def test_pauses_are_taken_out_of_times() -> None:
    s = handled(Script(), rating=None)
    s(50, "pause")(80, "resume")  # 30 minutes paused, between arrive and feedback
    row = s.rows()[LEAD]
    assert row["close_seconds"] == (170 - 30) * 60
    assert row["feedback_seconds"] == (95 - 30) * 60
    assert row["contact_seconds"] == 15 * 60  # done before the pause
    assert paused_spans(s.events) == [(T0 + 50 * M, T0 + 80 * M)]
    still = Script()(10, "pause")
    assert paused_spans(still.events) == [(T0 + 10 * M, None)]
    assert duration(T0, T0 + 60 * M, paused_spans(still.events), None) == (600, 600)


def test_on_time_steps_against_their_deadlines_overdue_and_extended() -> None:
    s = handled(Script(), rating=None)
    s.limit(1, "sign", 5, 20).limit(1, "contact", 5, 15).limit(1, "arrive", 5, 30).limit(1, "resolve", 5, 120)
    row = s.rows()[LEAD]
    assert (row["sign_due"], row.get("sign_on_time", 0)) == (1, 1)  # signed at 10, due 20
    assert (row["contact_due"], row.get("contact_on_time", 0)) == (1, 0)  # contacted at 20, due 15
    assert (row["arrive_due"], row.get("arrive_on_time", 0)) == (1, 0)
    assert (row["close_due"], row["close_on_time"]) == (1, 1)  # asked to close at 110, due 120
    assert "responded" not in row  # the contact deadline was missed
    v = values(row)
    assert v["sign_on_time_rate"] == 1.0 and v["contact_on_time_rate"] == 0.0 and v["response_rate"] == 0.0
    # A step not done whose overdue event was recorded is late; one not yet overdue is not counted.
    open_ = Script().assign(1, LEAD, 5)(5, "dispatch").limit(1, "sign", 5, 6).limit(1, "resolve", 5, 600)
    assert step_outcome(open_.events, open_.limits[0]) is None
    open_(7, "overdue", 1, step="sign")
    assert step_outcome(open_.events, open_.limits[0]) is False
    row = open_.rows()[LEAD]
    assert (row["sign_due"], row.get("sign_on_time", 0), row["overdue"]) == (1, 0, 1)
    assert "close_due" not in row
    assert values(row)["overdue_rate"] == 1.0
    # An approved extension moved the resolve deadline (the deadline row holds the extended one).
    extended = handled(Script(), rating=None).limit(1, "resolve", 5, 100 + 24 * 60)
    assert extended.rows()[LEAD]["close_on_time"] == 1


def test_after_a_reopen_the_restarted_deadline_is_met_by_the_next_step() -> None:
    s = handled(Script(), rating="dissatisfied")(1500, "reopen")(1500, "reopen", 1)
    s.limit(1, "feedback", 1500, 1560)
    assert s.rows()[LEAD].get("feedback_due", 0) == 0  # the first feedback came before the new deadline began
    s(1550, "feedback", 1)
    row = s.rows()[LEAD]
    assert (row["feedback_due"], row["feedback_on_time"]) == (1, 1)
    assert row["feedback_seconds"] == 95 * 60  # the time to the first feedback is the assignment's first


def test_working_time_follows_the_calendar() -> None:
    # Friday 17:00 to Monday 10:00 in Shanghai: 1 h on Friday, 1 h on Monday in working time.
    friday = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    monday = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    cal = WorkCalendar()
    natural, work = duration(friday, monday, [], cal)
    assert natural == int((monday - friday).total_seconds()) and work == 2 * 3600
    # A pause over Monday 09:00-09:30 is taken out of the working time too.
    natural, work = duration(friday, monday, [(monday - 60 * M, monday - 30 * M)], cal)
    assert work == 2 * 3600 - 1800 and natural == int((monday - friday).total_seconds()) - 1800
    s = Script()
    s.ticket = TicketInfo(1, friday, "phone", "complaint", 5, 7)
    s.assignments = [AssignmentInfo(1, LEAD, "lead", friday)]
    s.events = [Event(1, friday, "intake"), Event(2, friday, "dispatch"), Event(3, monday, "sign", 1)]
    (counters,) = contribution(s.timeline(), cal).values()
    assert counters["sign_work_seconds"] == 2 * 3600
    assert values(counters, MeasureSettings(working_time=True))["avg_sign_hours"] == 2.0
    assert values(counters)["avg_sign_hours"] == pytest.approx(natural / 3600 + 0.5)


def test_histogram_buckets_and_percentiles() -> None:
    assert bucket_of(0) == 0 and bucket_of(300) == 0 and bucket_of(301) == 1
    assert bucket_of(10**9) == 12
    from minsheng.measures.values import percentile

    assert percentile([0] * 13, 0.9) is None
    assert percentile([10] + [0] * 12, 0.9) == pytest.approx(270)  # 9 of 10 within (0, 300]
    assert percentile([0] * 12 + [5], 0.9) == 1728000  # the open bucket reports its floor
