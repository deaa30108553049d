"""The daily measure facts (issue 15): exact counters per day and key, summed by every report and ranking.

`measure_facts` holds one row per (cube, day, unit, area, category, channel, kind). Cube 0 is the full detail;
the other cubes keep the same counters with fewer keys (the rest set to 0 / ""), so that a city-wide year or a
ranking of units reads a few hundred thousand rows instead of one per ticket:

| cube | keys kept |
| --- | --- |
| 0 | day, unit, area, category, channel, kind |
| 1 | day, unit |
| 2 | day, area |
| 3 | day, category |
| 4 | day, channel, kind |
| 5 | day |
| 11-15 | as 1-5, by month (``day`` is the first of the month) |

`measure_contributions` remembers what each ticket last added (its cube-0 rows as JSON), so that the next
event of that ticket takes exactly that away before adding its new contribution. Both are written by
`minsheng.services.measures.facts` in the transaction of the timeline event, and rebuilt by
`minsheng measures rebuild`. Counter columns come from `minsheng.measures.timeline.COUNTERS`.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
)
from sqlalchemy.orm import Mapped, mapped_column

from minsheng.measures.timeline import COUNTERS, SECONDS_COUNTERS
from minsheng.storage.models import Base, BigId

KEY_COLUMNS: tuple[str, ...] = ("cube", "day", "unit_id", "area_id", "category_id", "channel", "kind")

measure_facts = Table(
    "measure_facts",
    Base.metadata,
    Column("cube", SmallInteger, nullable=False),
    Column("day", Date, nullable=False),
    Column("unit_id", Integer, nullable=False),
    Column("area_id", Integer, nullable=False),
    Column("category_id", Integer, nullable=False),
    Column("channel", String(16), nullable=False),
    Column("kind", String(16), nullable=False),
    *(Column(name, BigInteger if name in SECONDS_COUNTERS else Integer, nullable=False) for name in COUNTERS),
    PrimaryKeyConstraint(*KEY_COLUMNS, name="pk_measure_facts"),
    Index("ix_measure_facts_unit", "cube", "unit_id", "day"),
    Index("ix_measure_facts_area", "cube", "area_id", "day"),
)


class MeasureContribution(Base):
    """What one ticket contributes to the facts now: its cube-0 rows, ``[[day, unit, area, category,
    channel, kind, {counter: n}], …]`` (days as ISO text)."""

    __tablename__ = "measure_contributions"
    ticket_id: Mapped[int] = mapped_column(BigId, ForeignKey("tickets.id"), primary_key=True)
    day: Mapped[date] = mapped_column(index=True)
    rows: Mapped[list[Any]] = mapped_column(default=list)


__all__ = ["KEY_COLUMNS", "MeasureContribution", "measure_facts"]
