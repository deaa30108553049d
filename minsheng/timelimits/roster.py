"""Duty rosters generated from rules (issue 17 §3): a commander of the day rotating over units (海口: 91 units in
turn) and shifts by duty tier (黔西: tier 1 on 24-hour shifts, tier 2 on 8-hour, tier 3 on 12-hour).

Pure: people and dates in, shifts out (UTC), laid out in the city's zone from a local start hour.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

TIER_HOURS: dict[int, int] = {1: 24, 2: 8, 3: 12}
MAX_DAYS = 92


class RosterError(ValueError):
    """A roster that cannot be generated as asked."""


@dataclass(frozen=True)
class Person:
    """Someone who can be on duty for a unit: a user (``username``) or a name with a phone number."""

    unit_code: str
    name: str
    phone: str | None = None
    username: str | None = None


@dataclass(frozen=True)
class Shift:
    person: Person
    starts_at: datetime
    ends_at: datetime
    tier: int
    commander: bool = False
    duty_role: str = "duty"


def _start(first: date, at: time, zone: str) -> datetime:
    return datetime.combine(first, at, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def _check(days: int) -> None:
    if not 1 <= days <= MAX_DAYS:
        raise RosterError(f"一次生成 1 至 {MAX_DAYS} 天的排班（收到 {days}）")


def commander_rotation(
    people: Sequence[Person], first: date, days: int, *, at: time, zone: str, offset: int = 0
) -> list[Shift]:
    """One 24-hour commander shift a day from ``at`` local time; day i goes to ``people[(offset + i) % n]``."""
    _check(days)
    if not people:
        raise RosterError("没有可轮值的单位")
    start = _start(first, at, zone)
    return [
        Shift(
            people[(offset + i) % len(people)],
            start + timedelta(days=i),
            start + timedelta(days=i + 1),
            1,
            True,
            # Not "duty": the commander of the day is not thereby the unit's own cadre on duty.
            "commander",
        )
        for i in range(days)
    ]


def tier_shifts(
    people: Mapping[str, Sequence[Person]],
    tiers: Mapping[str, int],
    first: date,
    days: int,
    *,
    at: time,
    zone: str,
) -> list[Shift]:
    """Each unit's duty covered without a gap for ``days`` from ``at`` local time, in shifts of its tier's
    length (24 / 8 / 12 h), its people taking turns in order."""
    _check(days)
    start = _start(first, at, zone)
    out: list[Shift] = []
    for code, staff in people.items():
        tier = tiers.get(code, 3)
        if tier not in TIER_HOURS:
            raise RosterError(f"单位 {code} 的值班等级 {tier} 无效（1、2、3）")
        if not staff:
            continue
        hours = TIER_HOURS[tier]
        for i in range(days * 24 // hours):
            begin = start + timedelta(hours=i * hours)
            out.append(Shift(staff[i % len(staff)], begin, begin + timedelta(hours=hours), tier))
    return out
