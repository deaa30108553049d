"""What hot-topic analysis takes and gives: plain records, no database rows and no web types."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["Hotspot", "Request"]


@dataclass(frozen=True, slots=True)
class Request:
    """One request as the analysis reads it.

    ``texts`` are the request's words, the title (or the line that says most) first. ``citizen`` is any stable key
    of who asked (a phone number, a user name): it is only compared, never shown. ``area`` is an area code the
    platform already knows (the ticket's grid), ``area_name`` its name; ``lat``/``lon`` a map point; ``support``
    and ``against`` the agreement counts some portals collect (点赞/反对).
    """

    id: str
    texts: Sequence[str]
    at: datetime
    citizen: str | None = None
    area: str | None = None
    area_name: str | None = None
    support: int = 0
    against: int = 0
    lat: float | None = None
    lon: float | None = None

    @property
    def title(self) -> str:
        first = next((t for t in self.texts if t and t.strip()), "")
        return first.strip().splitlines()[0].strip() if first.strip() else ""


@dataclass(frozen=True, slots=True)
class Hotspot:
    """A hot topic: many requests about one thing in one place, ranked by :attr:`heat`."""

    rank: int
    heat: float
    place: str | None
    crowd: str | None
    summary: str
    ticket_ids: tuple[str, ...]
    first: datetime
    last: datetime
    count: int
    voices: int  # distinct citizens (or, without citizen keys, distinct wordings: see docs/HOTSPOTS.md)
    keywords: tuple[str, ...] = ()
    area: str | None = None  # the area most of its requests lie in, when requests carry areas
    area_name: str | None = None
    lat: float | None = None
    lon: float | None = None
    support: int = 0
    against: int = 0
    growth: float = 0.0  # -1 (all early) … 1 (all late): see :func:`minsheng.hotspots.heat.growth`
    #: Requests of the same topic in the period before (when the analysis was given one), for the trend.
    previous: int | None = None
    previous_ids: tuple[str, ...] = field(default=())

    def as_json(self) -> dict[str, Any]:
        """The public record (``minsheng analyze hotspots``): exactly the fields the issue names."""
        return {
            "rank": self.rank,
            "heat": self.heat,
            "place": self.place,
            "crowd": self.crowd,
            "summary": self.summary,
            "ticket_ids": list(self.ticket_ids),
            "first": self.first.isoformat(),
            "last": self.last.isoformat(),
            "count": self.count,
        }
