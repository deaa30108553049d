"""The recent tickets a process keeps in memory: the repeat index and the cluster detector."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from minsheng.services.triage.analysis import NO_AREA, request_text
from minsheng.services.triage.settings import TriageConfig
from minsheng.services.triage.snapshot import OrgSnapshot
from minsheng.storage.models import Area, Category, Ticket
from minsheng.triage.clusters import ClusterDetector, ClusterWarning
from minsheng.triage.repeats import RepeatIndex


class RecentTickets:
    """Recent tickets in memory: the repeat index and the cluster detector (one lock guards both)."""

    def __init__(self, config: TriageConfig, org: OrgSnapshot) -> None:
        self.repeats = RepeatIndex(
            window_days=config.repeat_window_days,
            threshold=config.repeat_threshold,
            area_key=lambda code: org.area_at(code, config.repeat_area_level) if code != NO_AREA else code,
        )
        self.clusters = ClusterDetector(
            min_count=config.cluster_min_count,
            window=timedelta(days=config.cluster_window_days),
            similarity=config.cluster_similarity,
            area_level=lambda code: org.area_at(code, config.cluster_area_level),
            match=config.cluster_match,  # type: ignore[arg-type]
        )
        #: Other processes' tickets seen at intake since the last `catch_up` (see `TriageRuntime._read_fresh`),
        #: kept so that each one's text is read and its signature computed once, not at every intake.
        self.fresh = self.repeats.empty_like()
        self.lock = threading.Lock()

    def index(self, row: Any, cluster_since: datetime) -> list[ClusterWarning]:
        """Take a stored ticket (a `recent_rows` row) into both; returns the cluster warnings it raises."""
        number, title, detail, at, area_code, cat_code = row
        text = request_text(title, detail)
        self.repeats.add(number, area_code or NO_AREA, text, at)
        if area_code and at >= cluster_since:
            return self.clusters.observe(number, cat_code, area_code, text, at)
        return []


def recent_rows() -> Any:
    """What the recent-ticket state is built from: number, title, detail, created_at, area and category codes."""
    return (
        select(Ticket.number, Ticket.title, Ticket.detail, Ticket.created_at, Area.code, Category.code)
        .outerjoin(Area, Area.id == Ticket.area_id)
        .outerjoin(Category, Category.id == Ticket.category_id)
    )
