"""Reporting periods: a day, an ISO week, a month, a quarter, a year, or any range of days.

``Period.parse`` reads "2026-11-03", "2026-W48", "2026-11", "2026-Q4", "2026" and "2026-11-01..2026-11-30"
(both ends included in the text; ``end`` is exclusive). Days are the hotline's local days (Asia/Shanghai):
``utc_bounds`` gives the instants a period covers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

Grain = Literal["day", "week", "month", "quarter", "year", "range"]
DEFAULT_ZONE = "Asia/Shanghai"
#: The longest range accepted (a query over decades is a mistake, not a report).
MAX_RANGE_DAYS = 3 * 366

_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_WEEK = re.compile(r"^(\d{4})-W(\d{1,2})$", re.IGNORECASE)
_MONTH = re.compile(r"^(\d{4})-(\d{1,2})$")
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$", re.IGNORECASE)
_YEAR = re.compile(r"^(\d{4})$")


class PeriodError(ValueError):
    """A period text that cannot be read, or a range that is empty or too long."""


def _month_start(year: int, month: int) -> date:
    return date(year, month, 1)


def _add_months(d: date, months: int) -> date:
    index = d.year * 12 + d.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _minus_year(d: date) -> date:
    try:
        return d.replace(year=d.year - 1)
    except ValueError:  # 29 February
        return d.replace(year=d.year - 1, day=28)


@dataclass(frozen=True, order=True)
class Period:
    """``start`` ≤ day < ``end`` (local dates), of one grain."""

    start: date
    end: date
    grain: Grain = "range"

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise PeriodError(f"a period must end after it starts ({self.start} .. {self.end})")
        if (self.end - self.start).days > MAX_RANGE_DAYS:
            raise PeriodError(f"a period may span at most {MAX_RANGE_DAYS} days")

    # ------------------------------------------------------------------ constructors
    @classmethod
    def parse(cls, text: str) -> Period:
        """Read a period; PeriodError (a ValueError) with the accepted forms otherwise."""
        s = (text or "").strip()
        try:
            if ".." in s:
                a, b = (x.strip() for x in s.split("..", 1))
                first, last = _parse_day(a), _parse_day(b)
                if last < first:
                    raise PeriodError(f"range {s!r} ends before it starts")
                return cls(first, last + timedelta(days=1), "range")
            if m := _DAY.match(s):
                return cls.day(date(int(m[1]), int(m[2]), int(m[3])))
            if m := _WEEK.match(s):
                return cls.week(int(m[1]), int(m[2]))
            if m := _MONTH.match(s):
                return cls.month(int(m[1]), int(m[2]))
            if m := _QUARTER.match(s):
                return cls.quarter(int(m[1]), int(m[2]))
            if m := _YEAR.match(s):
                return cls.year(int(m[1]))
        except PeriodError:
            raise
        except ValueError as e:
            raise PeriodError(f"not a valid period: {s!r} ({e})") from None
        raise PeriodError(
            f"not a period: {s!r}; use 2026-11-03, 2026-W48, 2026-11, 2026-Q4, 2026 or 2026-11-01..2026-11-30"
        )

    @classmethod
    def day(cls, d: date) -> Period:
        return cls(d, d + timedelta(days=1), "day")

    @classmethod
    def week(cls, year: int, week: int) -> Period:
        start = date.fromisocalendar(year, week, 1)
        return cls(start, start + timedelta(days=7), "week")

    @classmethod
    def month(cls, year: int, month: int) -> Period:
        start = _month_start(year, month)
        return cls(start, _add_months(start, 1), "month")

    @classmethod
    def quarter(cls, year: int, quarter: int) -> Period:
        if not 1 <= quarter <= 4:
            raise PeriodError(f"no quarter {quarter}")
        start = _month_start(year, 3 * (quarter - 1) + 1)
        return cls(start, _add_months(start, 3), "quarter")

    @classmethod
    def year(cls, year: int) -> Period:
        return cls(date(year, 1, 1), date(year + 1, 1, 1), "year")

    @classmethod
    def containing(cls, d: date, grain: Grain) -> Period:
        """The period of ``grain`` that holds day ``d`` (for "range": the day itself)."""
        if grain == "day" or grain == "range":
            return cls.day(d)
        if grain == "week":
            iso = d.isocalendar()
            return cls.week(iso.year, iso.week)
        if grain == "month":
            return cls.month(d.year, d.month)
        if grain == "quarter":
            return cls.quarter(d.year, (d.month - 1) // 3 + 1)
        return cls.year(d.year)

    @classmethod
    def last_days(cls, today: date, n: int) -> Period:
        """The ``n`` days ending with ``today`` (the big screen's rolling window)."""
        return cls(today - timedelta(days=n - 1), today + timedelta(days=1), "range")

    # ------------------------------------------------------------------ neighbours
    @property
    def days(self) -> int:
        return (self.end - self.start).days

    def previous(self) -> Period:
        """The period of the same grain just before (a range: the same number of days just before)."""
        if self.grain == "month":
            return Period(_add_months(self.start, -1), self.start, "month")
        if self.grain == "quarter":
            return Period(_add_months(self.start, -3), self.start, "quarter")
        if self.grain == "year":
            return Period.year(self.start.year - 1)
        return Period(self.start - timedelta(days=self.days), self.start, self.grain)

    def last_year(self) -> Period:
        """The same period a year before (同比): the same ISO week for a week, the same dates otherwise."""
        if self.grain == "week":
            iso = self.start.isocalendar()
            weeks = date(iso.year - 1, 12, 28).isocalendar().week
            return Period.week(iso.year - 1, min(iso.week, weeks))
        if self.grain in ("month", "quarter", "year"):
            return Period(_minus_year(self.start), _minus_year(self.end), self.grain)
        start = _minus_year(self.start)
        return Period(start, start + timedelta(days=self.days), self.grain)

    def contains(self, d: date) -> bool:
        return self.start <= d < self.end

    def each_day(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range(self.days)]

    def utc_bounds(self, zone: str = DEFAULT_ZONE) -> tuple[datetime, datetime]:
        """The instants (aware, UTC) at which the period's first day starts and the day after it starts."""
        tz = ZoneInfo(zone)
        return (
            datetime.combine(self.start, time(0), tz).astimezone(UTC),
            datetime.combine(self.end, time(0), tz).astimezone(UTC),
        )

    # ------------------------------------------------------------------ text
    @property
    def label(self) -> str:
        """The period in Chinese, as reports title it (2026年11月, 2026年第4季度 …)."""
        s = self.start
        if self.grain == "day":
            return f"{s.year}年{s.month}月{s.day}日"
        if self.grain == "week":
            iso = s.isocalendar()
            return f"{iso.year}年第{iso.week}周"
        if self.grain == "month":
            return f"{s.year}年{s.month}月"
        if self.grain == "quarter":
            return f"{s.year}年第{(s.month - 1) // 3 + 1}季度"
        if self.grain == "year":
            return f"{s.year}年"
        last = self.end - timedelta(days=1)
        return f"{s.year}年{s.month}月{s.day}日至{last.year}年{last.month}月{last.day}日"

    def __str__(self) -> str:
        """The canonical text, which ``parse`` reads back to an equal period."""
        s = self.start
        if self.grain == "day":
            return s.isoformat()
        if self.grain == "week":
            iso = s.isocalendar()
            return f"{iso.year}-W{iso.week:02d}"
        if self.grain == "month":
            return f"{s.year}-{s.month:02d}"
        if self.grain == "quarter":
            return f"{s.year}-Q{(s.month - 1) // 3 + 1}"
        if self.grain == "year":
            return str(s.year)
        return f"{s.isoformat()}..{(self.end - timedelta(days=1)).isoformat()}"


def _parse_day(text: str) -> date:
    m = _DAY.match(text)
    if not m:
        raise PeriodError(f"not a day: {text!r} (use YYYY-MM-DD)")
    return date(int(m[1]), int(m[2]), int(m[3]))


def local_day(at: datetime, zone: str = DEFAULT_ZONE) -> date:
    """The hotline's local date of an aware instant."""
    if at.tzinfo is None:
        raise ValueError("local_day needs an aware datetime")
    return at.astimezone(ZoneInfo(zone)).date()


__all__ = ["DEFAULT_ZONE", "Grain", "Period", "PeriodError", "local_day"]
