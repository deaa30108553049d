"""Accountability figures (issue 15): measure tables, rankings and the tickets behind every figure, from the
daily facts that the ticket engine keeps exact in the transaction of each timeline event.

Public API (pages, reports, exports and the big screen build on it):

- `Scope(area_code=None, unit_code=None)`: the whole city, an area's subtree, a unit's subtree, or both.
- `measure_table(session, period, scope, by, settings) -> MeasureTable`: every measure of the catalogue for the
  scope over a `Period` (`minsheng.measures.periods`), as a total row and, with ``by`` in "unit" | "area" |
  "category" | "channel" | "day" | "week" | "month", one row per direct child unit / area of the scope (rolled
  up), top-level category, channel, or day / week / month. Each `MeasureRow` has ``key``, ``code``, ``name``,
  ``values``, ``counts``, ``previous``, ``last_year``, ``few``, ``base``, ``score``.
- `ranking(session, period, level, settings, measure=None, *, scope=None) -> list[RankRow]`: units of a kind
  ("department" …) or areas of a level ("district", "street" …) ranked by the composite score or one measure;
  those with too few tickets are ``few`` and get no rank.
- `tickets_behind(session, period, scope, measure_code, key=None, *, part="base") -> Select`: the ticket ids
  behind a figure (``part``: "base", "numerator", "rest").
- `rebuild_facts(session, *, since=None, progress=None) -> RebuildReport`: recompute the facts from the raw
  timeline (`minsheng measures rebuild`).
- `touch(session, ticket, event=None)`: the engine's hook; `facts_of`, `recompute_all`, `compare_facts` check
  the facts against the timeline (`minsheng measures check`).

``settings`` is `minsheng.config.Settings` (its ``measures_*`` fields) or a `MeasureSettings`.
The catalogue (`MEASURES`) and the definitions are in `minsheng.measures` and docs/METRICS.md.
"""

from minsheng.measures.catalogue import MEASURES, Measure, measure
from minsheng.measures.periods import Period, PeriodError
from minsheng.measures.values import MeasureSettings
from minsheng.services.measures.behind import tickets_behind
from minsheng.services.measures.facts import (
    RebuildReport,
    compare_facts,
    facts_of,
    rebuild_facts,
    recompute_all,
    touch,
)
from minsheng.services.measures.report import (
    BY_VALUES,
    MeasureRow,
    MeasureTable,
    RankRow,
    Scope,
    measure_settings,
    measure_table,
    ranking,
)

__all__ = [
    "BY_VALUES",
    "MEASURES",
    "Measure",
    "MeasureRow",
    "MeasureSettings",
    "MeasureTable",
    "Period",
    "PeriodError",
    "RankRow",
    "RebuildReport",
    "Scope",
    "compare_facts",
    "facts_of",
    "measure",
    "measure_settings",
    "measure_table",
    "ranking",
    "rebuild_facts",
    "recompute_all",
    "tickets_behind",
    "touch",
]
