"""Reading the times of exported requests: ISO 8601 and the slash dates spreadsheets write (2019/4/25 9:32:09)."""

from __future__ import annotations

import re
from datetime import datetime

__all__ = ["parse_time"]

# 2019/4/25 9:32:09, 2019-04-25 09:32, 2019.4.25, 2019年4月25日 9时32分: date, then an optional time.
_LOOSE = re.compile(
    r"^(\d{4})[/.\-年](\d{1,2})[/.\-月](\d{1,2})日?"
    r"(?:[ T]*(\d{1,2})[:时点](\d{1,2})分?(?::(\d{1,2})|(\d{1,2})秒)?(?:\.\d+)?)?$"
)


def parse_time(text: str) -> datetime:
    """A time as written in a data file. Without an offset it stays naive (the file's local time).

    Raises ValueError for anything else, with the text in the message.
    """
    value = text.strip()
    if not value:
        raise ValueError("empty time")
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        pass
    m = _LOOSE.match(value)
    if m is None:
        raise ValueError(f"unreadable time {value!r}")
    year, month, day, hour, minute, second, seconds = (int(g) if g else 0 for g in m.groups())
    second = second or seconds
    try:
        return datetime(year, month, day, hour, minute, second)
    except ValueError as e:
        raise ValueError(f"unreadable time {value!r}: {e}") from None
