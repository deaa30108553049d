"""Hot topics and places (热点): many requests about one thing in one place over a period, found in their words.

A factory's night noise heard by one estate, a bus line that was cut, one employer's unpaid wages: unlike the
cluster warnings of :mod:`minsheng.triage.clusters` (similar tickets of one area within days, raised as they
arrive), a hot topic is found after the fact over any period, from the text alone when nothing else is known
(``minsheng analyze hotspots`` on a spreadsheet), and ranked by a documented heat index.

Pure: plain records in (:class:`Request`), plain records out (:class:`Hotspot`); no database and no web. The
method and the heat formula: docs/HOTSPOTS.md.
"""

from minsheng.hotspots.analysis import Options, find_hotspots
from minsheng.hotspots.grouping import Thresholds
from minsheng.hotspots.heat import HeatWeights, heat
from minsheng.hotspots.records import Hotspot, Request

__all__ = ["HeatWeights", "Hotspot", "Options", "Request", "Thresholds", "find_hotspots", "heat"]
