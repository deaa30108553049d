"""One row of a history export, read through its mapping into a `HistoricTicket`, or refused with a reason.

Pure: no database. What needs the database (the unit and category a row names) is resolved by the writer.
Times are checked to follow the loop's order (created ≤ dispatched ≤ signed ≤ replied ≤ closed ≤ rated) for
the steps the row's state implies; a time the file lacks is taken from the step before it and listed in
``estimated`` (the timeline's events say so).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from minsheng.services.history.mapping import HistoryMapping

Row = dict[str, str]
MAX_SOURCE_ID = 100


class RowError(Exception):
    """A reason to refuse one row."""


@dataclass
class HistoricTicket:
    row: int
    source_id: str
    title: str
    detail: str
    state: str  # accepted | dispatched | in_progress | closed (rated follows from a rating)
    created: datetime
    channel: str
    kind: str
    urgency: str
    address: str | None = None
    citizen_name: str | None = None
    citizen_phone: str | None = None
    lat: float | None = None
    lon: float | None = None
    unit_code: str | None = None
    unit_name: str | None = None
    category_code: str | None = None
    category_path: tuple[str, ...] = ()
    reply: str | None = None
    rating: str | None = None
    times: dict[str, datetime] = field(default_factory=dict)
    estimated: list[str] = field(default_factory=list)


def parse_row(
    m: HistoryMapping, number: int, row: Row, now: datetime, default_created: datetime | None = None
) -> HistoricTicket:
    source_id = m.source_id.render(row)
    if not source_id:
        raise RowError("source id is empty")
    if len(source_id) > MAX_SOURCE_ID:
        raise RowError(f"source id is longer than {MAX_SOURCE_ID} characters")
    detail = m.detail.render(row)
    if not detail:
        raise RowError("detail is empty")
    title = m.title.render(row) or _title_from(detail)
    raw_times = {k: _time(m, k, row) for k, t in m.times.items() if t}
    created = raw_times.get("created") or default_created
    if created is None:
        raise RowError("created time is empty")
    if created > now:
        raise RowError(f"created time {_local(created, m.zone)} is in the future")
    t = HistoricTicket(
        row=number,
        source_id=source_id,
        title=title[:200],
        detail=detail,
        state="accepted",
        created=created,
        channel=_choice(m.channel.pick(row), "channel"),
        kind=_choice(m.kind.pick(row), "kind"),
        urgency=_choice(m.urgency.pick(row), "urgency"),
        address=(m.address.render(row) or None),
        citizen_name=(m.citizen_name.render(row)[:64] or None),
        citizen_phone=(m.citizen_phone.render(row)[:32] or None),
        lat=_coordinate(m.lat.render(row), "lat", 90),
        lon=_coordinate(m.lon.render(row), "lon", 180),
        reply=m.reply.render(row) or None,
    )
    if t.address:
        t.address = t.address[:300]
    if (t.lat is None) != (t.lon is None):
        t.lat = t.lon = None  # half a position places nothing
    if m.unit is not None:
        t.unit_code = m.unit.code.render(row) or None
        t.unit_name = m.unit.name.render(row) or None
    if m.category is not None:
        t.category_code = m.category.code.render(row) or None
        path = [p.render(row) for p in m.category.path]
        while path and not path[-1]:
            path.pop()
        if path and not all(path):
            raise RowError("a category level is empty while a deeper one is filled")
        t.category_path = tuple(p[:100] for p in path)
    rating, raw_rating = m.rating.pick(row)
    if raw_rating and rating is None:
        raise RowError(f"rating '{raw_rating}' is not in the mapping")
    t.rating = rating
    t.state = _state(m, row, raw_times)
    _order_times(t, raw_times, m.zone)
    return t


def _time(m: HistoryMapping, name: str, row: Row) -> datetime | None:
    text = m.times[name].render(row)
    try:
        return m.parse_time(text)
    except ValueError as e:
        raise RowError(f"{name} time: {e}") from None


def _choice(picked: tuple[str | None, str], what: str) -> str:
    value, raw = picked
    if value is None or value == "error":
        raise RowError(f"{what} '{raw}' is not in the mapping")
    return value


def _coordinate(text: str, what: str, bound: float) -> float | None:
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise RowError(f"{what} '{text}' is not a number") from None
    if not math.isfinite(value) or not -bound <= value <= bound:
        raise RowError(f"{what} {text} is outside -{bound}..{bound}")
    return value


def _state(m: HistoryMapping, row: Row, times: dict[str, datetime | None]) -> str:
    if m.state.template:
        value, raw = m.state.pick(row)
        if value is None or value == "error":
            raise RowError(f"state '{raw}' is not in the mapping" if raw else "state is empty")
        return value
    # No state column: a row with a close time is closed, any other is still open.
    return "closed" if times.get("closed") else ("dispatched" if m.unit is not None else "accepted")


_STEPS_OF_STATE = {
    "accepted": (),
    "dispatched": ("dispatched",),
    "in_progress": ("dispatched", "signed"),
    "closed": ("dispatched", "signed", "replied", "closed"),
}


def _order_times(t: HistoricTicket, raw: dict[str, datetime | None], zone: ZoneInfo) -> None:
    """Fill the times of the steps the state implies and check that they follow the loop's order."""
    steps = list(_STEPS_OF_STATE[t.state])
    if t.state == "in_progress" and t.reply:
        steps.append("replied")
    if t.state == "closed" and t.rating:
        steps.append("rated")
    t.times = {"created": t.created}
    previous, previous_name = "created", "created"
    for step in steps:
        value, name = raw.get(step), step
        if value is None and step == "replied" and t.state == "closed":
            value, name = raw.get("closed"), "closed"  # one time for both: the reply closed the ticket
        if value is None:
            value, name = t.times[previous], previous_name
            t.estimated.append(step)
        elif value < t.times[previous]:
            raise RowError(
                f"{name} time {_local(value, zone)} is before {previous_name} time "
                f"{_local(t.times[previous], zone)}"
            )
        t.times[step] = value
        previous, previous_name = step, name


def _local(value: datetime, zone: ZoneInfo) -> str:
    return f"{value.astimezone(zone):%Y-%m-%d %H:%M}"


def _title_from(detail: str) -> str:
    first = detail.strip().splitlines()[0] if detail.strip() else ""
    return (first[:30] + "…") if len(first) > 30 else first
