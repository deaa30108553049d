"""Reading a year's holiday notice (国务院办公厅关于某年部分节假日安排的通知) into calendar entries.

The notice lists each holiday as one item::

    二、春节：2月15日（农历腊月二十八、周日）至23日（农历正月初七、周一）放假调休，共9天。2月14日（周六）、2月28日（周六）上班。

A sentence with 放假 gives the days off (a range ``M月D日 至 [M月]D日`` or one day); a sentence with 上班 lists the
swapped working days (调休). Parenthesised remarks (weekday, lunar date) are ignored. Pure: text in, entries out.
"""

from __future__ import annotations

import re
from datetime import date

from minsheng.timelimits.calendar import CalendarEntry, CalendarError, entries_for_range

_ITEM = re.compile(r"(?:^|\n|。)\s*[一二三四五六七八九十]+、\s*([^：:\n]{1,20})[：:]")
_REMARK = re.compile(r"[（(][^）)]*[）)]")
_RANGE = re.compile(r"(\d{1,2})月(\d{1,2})日\s*(?:至|-|—|～|~)\s*(?:(\d{1,2})月)?(\d{1,2})日")
_DAY = re.compile(r"(\d{1,2})月(\d{1,2})日")
MAX_HOLIDAY_DAYS = 15


def _date(year: int, month: str, day: str, where: str) -> date:
    try:
        return date(year, int(month), int(day))
    except ValueError:
        raise CalendarError(f"{where}：{month}月{day}日 不是 {year} 年的日期") from None


def parse_notice(text: str, year: int) -> list[CalendarEntry]:
    """Holidays and swapped working days of ``year`` named in ``text``; CalendarError names what is unreadable."""
    items = list(_ITEM.finditer(text))
    if not items:
        raise CalendarError("未找到节日条目（应为“一、元旦：……”的格式）")
    entries: list[CalendarEntry] = []
    for i, m in enumerate(items):
        name = m.group(1).strip()
        body = _REMARK.sub("", text[m.end() : items[i + 1].start() if i + 1 < len(items) else len(text)])
        found_off = False
        for sentence in re.split(r"[。；;\n]", body):
            if "放假" in sentence and not found_off:
                r = _RANGE.search(sentence)
                if r:
                    first = _date(year, r.group(1), r.group(2), name)
                    last = _date(year, r.group(3) or r.group(1), r.group(4), name)
                    if last < first or (last - first).days >= MAX_HOLIDAY_DAYS:
                        raise CalendarError(f"{name}：放假日期范围不合理（{first} 至 {last}）")
                    entries.extend(entries_for_range(first, last, "holiday", name))
                else:
                    d = _DAY.search(sentence)
                    if d is None:
                        raise CalendarError(f"{name}：未读出放假日期")
                    entries.append(CalendarEntry(_date(year, d.group(1), d.group(2), name), "holiday", name))
                found_off = True
            elif "上班" in sentence:
                for d in _DAY.finditer(sentence):
                    entries.append(
                        CalendarEntry(_date(year, d.group(1), d.group(2), name), "workday", f"{name}调休上班")
                    )
        if not found_off:
            raise CalendarError(f"{name}：未读出放假日期")
    return entries
