"""Working days and working time for deadlines counted in 工作日 / 工作时间.

A day is a working day according to, in this order:

1. a local entry (`CalendarEntry`) kept by admins: a local holiday, or a day the city declares a
   working day;
2. the Chinese statutory calendar of the ``chinese_calendar`` package (holidays and 调休 swapped
   working weekends);
3. for years the package does not know (it raises ``NotImplementedError``): Monday to Friday. Such
   days are *flagged*: ``day_info(d).source == "fallback"``, and ``uses_fallback_between(a, b)``
   tells whether a span of time relied on a guess (`Deadline.calendar_fallback`). Admins silence the
   flag by entering that year's holidays and listing the year in ``complete_years``.

Calendar reasoning happens in the city's zone (Asia/Shanghai by default); every datetime going in
must be timezone-aware, every datetime coming out is UTC.

What "N working days" means (`add_working_days`)
-----------------------------------------------
The day on which the request arrives is never counted (期间开始之日不计算在内), whatever the hour
and whether or not it is a working day. Working day 1 is the first working day *after* the arrival
date; the deadline is the end of the working hours (by default 18:00) of working day N. So a request
arriving on a holiday starts counting on the next working day, and one arriving on Tuesday at 08:00
or at 23:00 has the same deadline.

What "N working hours" means (`add_working_hours`)
-------------------------------------------------
Only time inside the working periods of working days counts (by default 09:00-12:00 and
13:30-18:00). The deadline is the instant at which that much working time has elapsed; a limit used
up exactly at the end of a period ends there (12:00), not at the start of the next one.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import chinese_calendar

DayKind = Literal["holiday", "workday"]
DaySource = Literal["local", "statutory", "fallback"]

DEFAULT_ZONE = "Asia/Shanghai"
# Ten years without a single working day means the calendar is broken, not that the deadline is far away.
_SEARCH_LIMIT_DAYS = 3660


class CalendarError(ValueError):
    """A calendar that cannot be used as given (conflicting entries, bad hours, no working day in sight)."""


@dataclass(frozen=True)
class CalendarEntry:
    """A local override for one date: ``kind="holiday"`` closes it, ``kind="workday"`` opens it."""

    date: date
    kind: DayKind
    name: str = ""


def entries_for_range(first: date, last: date, kind: DayKind, name: str = "") -> list[CalendarEntry]:
    """One entry per date from ``first`` to ``last`` inclusive (a multi-day local holiday)."""
    if last < first:
        raise CalendarError(f"calendar range {name!r} ends ({last}) before it starts ({first})")
    return [CalendarEntry(first + timedelta(days=i), kind, name) for i in range((last - first).days + 1)]


@dataclass(frozen=True)
class WorkingHours:
    """The working periods of a working day, in local wall-clock time, sorted and disjoint."""

    periods: tuple[tuple[time, time], ...] = ((time(9, 0), time(12, 0)), (time(13, 30), time(18, 0)))

    def __post_init__(self) -> None:
        if not self.periods:
            raise CalendarError("working hours need at least one period")
        previous_end: time | None = None
        for start, end in self.periods:
            if start >= end:
                raise CalendarError(f"working period {start:%H:%M}-{end:%H:%M} ends before it starts")
            if previous_end is not None and start < previous_end:
                raise CalendarError(
                    f"working period starting {start:%H:%M} overlaps the one ending {previous_end:%H:%M} "
                    "(periods must be sorted and disjoint)"
                )
            previous_end = end

    @property
    def per_day(self) -> timedelta:
        return sum(
            (datetime.combine(date.min, e) - datetime.combine(date.min, s) for s, e in self.periods),
            timedelta(0),
        )


@dataclass(frozen=True)
class DayInfo:
    date: date
    working: bool
    source: DaySource
    name: str = ""


@functools.lru_cache(maxsize=8192)
def _statutory(d: date) -> tuple[bool, str] | None:
    """(is working day, holiday name) from chinese_calendar, or None for a year it does not know."""
    try:
        is_holiday, name = chinese_calendar.get_holiday_detail(d)
    except NotImplementedError:
        return None
    return (not is_holiday, name or "")


@functools.lru_cache(maxsize=256)
def statutory_covers(year: int) -> bool:
    """Whether the installed chinese_calendar knows the statutory holidays of ``year``."""
    return _statutory(date(year, 6, 1)) is not None


def _require_aware(value: datetime, what: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware (got naive {value.isoformat()})")


class WorkCalendar:
    """Statutory calendar + local overrides + working hours, in one zone."""

    def __init__(
        self,
        entries: Iterable[CalendarEntry] = (),
        *,
        hours: WorkingHours | None = None,
        zone: str | ZoneInfo = DEFAULT_ZONE,
        complete_years: Iterable[int] = (),
        statutory: bool = True,
    ) -> None:
        self.hours = hours or WorkingHours()
        self.zone = zone if isinstance(zone, ZoneInfo) else ZoneInfo(zone)
        self.complete_years = frozenset(complete_years)
        self.statutory = statutory
        self.entries: dict[date, CalendarEntry] = self._validated(entries)

    @staticmethod
    def _validated(entries: Iterable[CalendarEntry]) -> dict[date, CalendarEntry]:
        by_date: dict[date, CalendarEntry] = {}
        problems: list[str] = []
        for entry in entries:
            if entry.kind not in ("holiday", "workday"):
                problems.append(f"{entry.date}: unknown kind {entry.kind!r} (use 'holiday' or 'workday')")
                continue
            seen = by_date.get(entry.date)
            if seen is None:
                by_date[entry.date] = entry
            elif seen.kind != entry.kind:
                problems.append(
                    f"{entry.date}: conflicting entries "
                    f"{seen.kind} {seen.name!r} and {entry.kind} {entry.name!r}"
                )
            else:
                problems.append(f"{entry.date}: overlapping entries {seen.name!r} and {entry.name!r}")
        if problems:
            raise CalendarError("calendar entries refused: " + "; ".join(problems))
        return by_date

    # -- days ---------------------------------------------------------------------------------------------

    def day_info(self, d: date) -> DayInfo:
        entry = self.entries.get(d)
        if entry is not None:
            return DayInfo(d, entry.kind == "workday", "local", entry.name)
        if self.statutory:
            known = _statutory(d)
            if known is not None:
                return DayInfo(d, known[0], "statutory", known[1])
        source: DaySource = "local" if d.year in self.complete_years else "fallback"
        return DayInfo(d, d.weekday() < 5, source)

    def is_working_day(self, d: date) -> bool:
        return self.day_info(d).working

    def is_fallback_year(self, year: int) -> bool:
        """True when days of ``year`` are guessed (Mon-Fri) rather than known."""
        if year in self.complete_years:
            return False
        return not (self.statutory and statutory_covers(year))

    def uses_fallback_between(self, a: datetime, b: datetime) -> bool:
        """Whether any local date from ``a`` to ``b`` lies in a guessed year (see module docstring)."""
        first, last = sorted((self.local_date(a), self.local_date(b)))
        return any(self.is_fallback_year(y) for y in range(first.year, last.year + 1))

    def local_date(self, at: datetime) -> date:
        _require_aware(at, "datetime")
        return at.astimezone(self.zone).date()

    def periods_on(self, d: date) -> list[tuple[datetime, datetime]]:
        """The working periods of ``d`` as aware datetimes in the calendar's zone (empty on a day off)."""
        if not self.is_working_day(d):
            return []
        return [
            (datetime.combine(d, s, tzinfo=self.zone), datetime.combine(d, e, tzinfo=self.zone))
            for s, e in self.hours.periods
        ]

    def end_of_working_day(self, d: date) -> datetime:
        """Close of business of ``d`` in UTC, whether or not ``d`` is a working day."""
        return datetime.combine(d, self.hours.periods[-1][1], tzinfo=self.zone).astimezone(UTC)

    def _days_from(self, d: date) -> Iterator[date]:
        for i in range(_SEARCH_LIMIT_DAYS):
            yield d + timedelta(days=i)
        raise CalendarError(f"no working time found within {_SEARCH_LIMIT_DAYS} days after {d}")

    # -- arithmetic ---------------------------------------------------------------------------------------

    def add_working_days(self, start: datetime, n: int) -> datetime:
        """End of working day ``n`` counted after the local date of ``start`` (see module docstring)."""
        _require_aware(start, "start")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"a number of working days must be a whole number >= 1 (got {n!r})")
        counted = 0
        for d in self._days_from(self.local_date(start) + timedelta(days=1)):
            if self.is_working_day(d):
                counted += 1
                if counted == n:
                    return self.end_of_working_day(d)
        raise AssertionError("unreachable: _days_from raises when exhausted")

    def add_working_hours(self, start: datetime, hours: float | timedelta) -> datetime:
        """The instant when ``hours`` of working time have elapsed after ``start``."""
        _require_aware(start, "start")
        remaining = hours if isinstance(hours, timedelta) else timedelta(hours=hours)
        if remaining < timedelta(0):
            raise ValueError(f"working time to add must not be negative (got {remaining})")
        if remaining == timedelta(0):
            return start.astimezone(UTC)
        for d in self._days_from(self.local_date(start)):
            for p_start, p_end in self.periods_on(d):
                if p_end <= start:
                    continue
                begin = max(p_start, start)
                available = p_end - begin
                if remaining <= available:
                    return (begin + remaining).astimezone(UTC)
                remaining -= available
        raise AssertionError("unreachable: _days_from raises when exhausted")

    def working_time_between(self, a: datetime, b: datetime) -> timedelta:
        """Working time inside [a, b]; negative when ``b`` is before ``a``."""
        _require_aware(a, "a")
        _require_aware(b, "b")
        if b < a:
            return -self.working_time_between(b, a)
        total = timedelta(0)
        d, last = self.local_date(a), self.local_date(b)
        while d <= last:
            for p_start, p_end in self.periods_on(d):
                overlap = min(p_end, b) - max(p_start, a)
                if overlap > timedelta(0):
                    total += overlap
            d += timedelta(days=1)
        return total
