"""Working days and working time: statutory calendar, 调休, local overrides, unknown years, hours."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from minsheng.timelimits.calendar import (
    CalendarEntry,
    CalendarError,
    WorkCalendar,
    WorkingHours,
    entries_for_range,
    statutory_covers,
)

SH = ZoneInfo("Asia/Shanghai")


def sh(y: int, m: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, m, d, h, mi, tzinfo=SH)


CAL = WorkCalendar()


def test_statutory_holidays_and_swapped_working_weekends_2025() -> None:
    assert not CAL.is_working_day(date(2025, 10, 1))
    assert not CAL.is_working_day(date(2025, 10, 8))
    assert CAL.is_working_day(date(2025, 10, 9))
    # 调休: Sunday 28 Sep and Saturday 11 Oct 2025 are working days.
    assert CAL.is_working_day(date(2025, 9, 28))
    assert CAL.is_working_day(date(2025, 10, 11))
    info = CAL.day_info(date(2025, 10, 11))
    assert info.source == "statutory" and info.working


def test_local_entries_override_the_statutory_calendar() -> None:
    cal = WorkCalendar(
        [
            CalendarEntry(date(2025, 6, 10), "holiday", "台风停工"),
            CalendarEntry(date(2025, 10, 4), "workday", "应急值守日"),
        ]
    )
    assert not cal.is_working_day(date(2025, 6, 10))
    assert cal.day_info(date(2025, 6, 10)).name == "台风停工"
    assert cal.is_working_day(date(2025, 10, 4))
    assert cal.day_info(date(2025, 10, 4)).source == "local"


def test_conflicting_and_overlapping_entries_are_refused_with_the_dates() -> None:
    with pytest.raises(
        CalendarError, match=r"2025-06-10: conflicting entries holiday '台风' and workday '补班'"
    ):
        WorkCalendar(
            [
                CalendarEntry(date(2025, 6, 10), "holiday", "台风"),
                CalendarEntry(date(2025, 6, 10), "workday", "补班"),
            ]
        )
    overlapping = entries_for_range(
        date(2027, 2, 5), date(2027, 2, 11), "holiday", "春节"
    ) + entries_for_range(date(2027, 2, 10), date(2027, 2, 12), "holiday", "地方假")
    with pytest.raises(CalendarError) as err:
        WorkCalendar(overlapping)
    assert "2027-02-10: overlapping entries '春节' and '地方假'" in str(err.value)
    assert "2027-02-11" in str(err.value)
    with pytest.raises(CalendarError, match="unknown kind 'rest'"):
        WorkCalendar([CalendarEntry(date(2025, 1, 2), "rest", "x")])  # type: ignore[arg-type]
    with pytest.raises(CalendarError, match="ends"):
        entries_for_range(date(2027, 2, 5), date(2027, 2, 1), "holiday")


def test_unknown_year_falls_back_to_monday_to_friday_and_is_flagged() -> None:
    assert statutory_covers(2025)
    year = 2035
    assert not statutory_covers(year)
    info = CAL.day_info(date(year, 1, 1))  # a Monday
    assert info.working and info.source == "fallback"
    assert not CAL.is_working_day(date(year, 1, 6))  # Saturday
    assert CAL.uses_fallback_between(sh(2025, 12, 30), sh(year, 1, 2))
    assert not CAL.uses_fallback_between(sh(2025, 1, 1), sh(2025, 12, 31))
    # Local entries still apply in a guessed year; declaring the year complete silences the flag.
    cal = WorkCalendar([CalendarEntry(date(year, 1, 1), "holiday", "元旦")], complete_years=[year])
    assert not cal.is_working_day(date(year, 1, 1))
    assert cal.day_info(date(year, 1, 2)).source == "local"
    assert not cal.uses_fallback_between(sh(year, 1, 1), sh(year, 3, 1))


def test_working_hours_arithmetic() -> None:
    # Tuesday 2025-06-10.
    assert CAL.add_working_hours(sh(2025, 6, 10, 11), 2) == sh(2025, 6, 10, 14, 30)
    assert CAL.add_working_hours(sh(2025, 6, 10, 11), 1) == sh(2025, 6, 10, 12)  # ends at the period's end
    assert CAL.add_working_hours(sh(2025, 6, 10, 12, 30), 1) == sh(
        2025, 6, 10, 14, 30
    )  # lunch does not count
    assert CAL.add_working_hours(sh(2025, 6, 10, 20), 1) == sh(2025, 6, 11, 10)
    # Friday 17:00 + 2 h → Monday 10:00.
    assert CAL.add_working_hours(sh(2025, 6, 13, 17), timedelta(hours=2)) == sh(2025, 6, 16, 10)
    assert CAL.add_working_hours(sh(2025, 6, 10, 11), 0) == sh(2025, 6, 10, 11)
    assert CAL.add_working_hours(sh(2025, 6, 10, 11), 2).tzinfo == UTC
    with pytest.raises(ValueError, match="negative"):
        CAL.add_working_hours(sh(2025, 6, 10, 11), -1)


def test_working_time_between() -> None:
    assert CAL.working_time_between(sh(2025, 6, 10, 11), sh(2025, 6, 10, 14)) == timedelta(
        hours=1, minutes=30
    )
    assert CAL.working_time_between(sh(2025, 6, 13, 17), sh(2025, 6, 16, 10)) == timedelta(hours=2)
    assert CAL.working_time_between(sh(2025, 6, 14, 9), sh(2025, 6, 15, 18)) == timedelta(0)
    assert CAL.working_time_between(sh(2025, 6, 10, 14), sh(2025, 6, 10, 11)) == -timedelta(
        hours=1, minutes=30
    )
    # A whole working day is 7.5 h with the default hours.
    assert CAL.working_time_between(sh(2025, 6, 10), sh(2025, 6, 11)) == WorkingHours().per_day


def test_working_days_do_not_count_the_arrival_day() -> None:
    # Tuesday 10 June 2025: day 1 is Wednesday, day 2 Thursday.
    assert CAL.add_working_days(sh(2025, 6, 10, 10), 2) == sh(2025, 6, 12, 18)
    # The hour of arrival does not matter.
    assert CAL.add_working_days(sh(2025, 6, 10, 0, 5), 2) == CAL.add_working_days(sh(2025, 6, 10, 23, 55), 2)
    # Arrival on Saturday: counting starts Monday.
    assert CAL.add_working_days(sh(2025, 6, 14, 10), 1) == sh(2025, 6, 16, 18)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="whole number"):
            CAL.add_working_days(sh(2025, 6, 10), bad)  # type: ignore[arg-type]


def test_custom_hours_zone_and_validation() -> None:
    cal = WorkCalendar(hours=WorkingHours(((time(8, 30), time(12)), (time(14), time(17, 30)))))
    assert cal.add_working_hours(sh(2025, 6, 10, 12), 1) == sh(2025, 6, 10, 15)
    assert cal.end_of_working_day(date(2025, 6, 10)) == sh(2025, 6, 10, 17, 30)
    with pytest.raises(CalendarError, match="overlaps"):
        WorkingHours(((time(9), time(12)), (time(11), time(18))))
    with pytest.raises(CalendarError, match="ends before"):
        WorkingHours(((time(12), time(9)),))
    with pytest.raises(CalendarError, match="at least one"):
        WorkingHours(())


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        CAL.add_working_days(datetime(2025, 6, 10, 10), 1)


def test_a_calendar_without_working_days_is_reported() -> None:
    cal = WorkCalendar(entries_for_range(date(2025, 1, 1), date(2035, 12, 31), "holiday", "永久休假"))
    with pytest.raises(CalendarError, match="no working time"):
        cal.add_working_days(sh(2025, 1, 1), 1)
