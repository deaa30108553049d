"""How a `TriageRuntime` keeps its recent tickets in step with the tickets other processes take.

Each process (API processes, workers on other hosts) indexes its own intake at once. Other processes' tickets
come in two ways: `catch_up` reads them from the database at most every ``recent_sync_seconds``, and between two
reads intake looks at the newest ones (`_read_fresh`) so that calls seconds apart on different processes are
still compared. docs/TRIAGE.md describes both.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from minsheng.services.tickets import CLAIMED_KEY, TicketEngine
from minsheng.services.triage.analysis import NO_AREA, Analysis, request_text
from minsheng.services.triage.clusters import record_cluster
from minsheng.services.triage.recent import RecentTickets, recent_rows
from minsheng.services.triage.settings import TriageConfig
from minsheng.services.triage.snapshot import OrgSnapshot
from minsheng.services.triage.sql import chunks
from minsheng.storage.db import Database
from minsheng.storage.models import Ticket
from minsheng.storage.triage_tables import TriageJob
from minsheng.triage.clusters import ClusterWarning
from minsheng.triage.repeats import RepeatIndex, signature

if TYPE_CHECKING:
    from minsheng.domain.clock import Clock

log = logging.getLogger("minsheng.triage")

#: At most this many of the newest unseen tickets are compared at intake (see `RecentSync._read_fresh`).
_FRESH_LIMIT = 256


class RecentSync:
    """The part of `TriageRuntime` that reads other processes' tickets into its recent-ticket state."""

    db: Database
    engine: TicketEngine
    clock: Clock
    config: TriageConfig
    org: OrgSnapshot
    recent: RecentTickets

    def _init_sync(self, now: datetime) -> None:
        self._sync_lock = threading.Lock()
        self._synced_check = time.monotonic()
        self._synced_at = now
        self._awaiting_since: datetime | None = None
        self._max_id_seen = 0
        # The highest id intake's look at other processes' newest tickets has listed, and when it last looked.
        self._fresh_floor = 0
        self._fresh_checked = 0.0

    # --------------------------------------------------------------------------------------- intake's look
    def _read_fresh(self, session: Session, ticket: Ticket, batch: RepeatIndex | None) -> None:
        """Take the tickets other processes stored since this one last read theirs into ``recent.fresh``.

        Between two `catch_up` reads, calls seconds apart on other processes would be missed. Ids come from a
        sequence, so the newest ids are the unseen ones: the look lists at most `_FRESH_LIMIT` of them (the next
        `catch_up` reads the rest), at most every ``fresh_look_seconds``, and computes the signature of each one
        once; in one process there are none. docs/TRIAGE.md says why it is made this way.
        """
        if time.monotonic() - self._fresh_checked < self.config.fresh_look_seconds:
            return
        self._fresh_checked = time.monotonic()
        recent = self.recent
        with session.no_autoflush:  # nothing of this transaction is wanted, so nothing needs flushing first
            unseen = self._unseen_ids(session, ticket, batch, recent)
            if not unseen:
                return
            # A ticket waiting for deferred triage is left out, as `catch_up` leaves it: its area is not known.
            found = session.execute(
                recent_rows()
                .outerjoin(TriageJob, TriageJob.ticket_id == Ticket.id)
                .where(Ticket.id.in_(unseen), TriageJob.ticket_id.is_(None))
            ).all()
        rows = [
            (number, area_code or NO_AREA, text, at, signature(text))
            for number, title, detail, at, area_code, _ in found
            for text in [request_text(title, detail)]
        ]
        with recent.lock:
            for number, area, text, at, sig in rows:
                if number not in recent.fresh and number not in recent.repeats:
                    recent.fresh.add(number, area, text, at, sig=sig)

    def _unseen_ids(
        self, session: Session, ticket: Ticket, batch: RepeatIndex | None, recent: RecentTickets
    ) -> list[int]:
        """Ids above the last look's highest that ``recent`` lacks, less what this transaction holds."""
        # Read in the intake transaction (cheaper than a session of its own), so what it holds uncommitted is left
        # out by name: the ticket itself, tickets earlier in the batch, and those whose deferred-triage jobs it
        # claimed. Ids and numbers only, from above the highest id the last look listed; a ticket committed
        # after that look under an older id is left to the next `catch_up`.
        claimed: set[int] = session.info.get(CLAIMED_KEY) or set()
        listed = session.execute(
            select(Ticket.id, Ticket.number)
            .where(Ticket.id > max(self._max_id_seen, self._fresh_floor))
            .order_by(Ticket.id.desc())
            .limit(_FRESH_LIMIT)
        ).all()
        if not listed:
            return []
        self._fresh_floor = max(self._fresh_floor, listed[0][0])
        with recent.lock:
            return [
                tid
                for tid, number in listed
                if number not in recent.repeats
                and number not in recent.fresh
                and number != ticket.number
                and tid not in claimed
                and (batch is None or number not in batch)
            ]

    def _fresh_repeats(self, a: Analysis, now: datetime, number: str | None = None) -> list[Any]:
        """Repeat candidates among the other processes' tickets `_read_fresh` took (``number``: the ticket's own,
        which another transaction's look may have taken after it was stored, in a re-triage)."""
        if not a.text:
            return []
        with self.recent.lock:
            found = self.recent.fresh.query_since(
                a.text, a.area_code or NO_AREA, now, 0, limit=6, sig=a.signature
            )
        return [c for c in found if c.ticket_id != number][:5]

    # ------------------------------------------------------------------------------------------ other processes
    def catch_up(self, *, force: bool = False) -> int:
        """Index the tickets other processes took since the last look; returns how many.

        Throttled to once per ``recent_sync_seconds`` (unless ``force``), and skipped while another thread of this
        process is at it.
        Tickets whose deferred triage is still pending are left for a later look: their area is not known yet.
        A cluster that the new tickets complete is stored at once (once per cluster: `record_cluster`).
        """
        config = self.config
        if not force and time.monotonic() - self._synced_check < config.recent_sync_seconds:
            return 0
        if not self._sync_lock.acquire(blocking=False):
            return 0
        try:
            self._synced_check = time.monotonic()
            return self._catch_up(config)
        except Exception:
            # Repeats and clusters are advice: a failed look is tried again next time, intake goes on.
            log.warning("triage: reading other processes' tickets failed", exc_info=True)
            return 0
        finally:
            self._sync_lock.release()

    def _catch_up(self, config: TriageConfig) -> int:
        recent = self.recent
        started = self.clock.now()
        since = self._synced_at - timedelta(seconds=config.recent_sync_margin_seconds)
        if self._awaiting_since is not None:
            since = min(since, self._awaiting_since)
        with self.db.read_sessions() as session:
            # Also every ticket stored since the last look whatever its created_at (an import of older tickets,
            # a ticket entered after the fact): ids come from a sequence, so those are above the highest seen.
            listed = session.execute(
                select(Ticket.id, Ticket.number, Ticket.created_at, TriageJob.ticket_id)
                .outerjoin(TriageJob, TriageJob.ticket_id == Ticket.id)
                .where(or_(Ticket.created_at >= since, Ticket.id > self._max_id_seen))
            ).all()
            waiting = [at for _, _, at, job in listed if job is not None]
            with recent.lock:
                new_ids = [
                    tid for tid, number, _, job in listed if job is None and number not in recent.repeats
                ]
            rows: list[Any] = []
            for chunk in chunks(new_ids):
                rows += session.execute(recent_rows().where(Ticket.id.in_(chunk))).all()
        rows.sort(key=lambda r: (r[3], r[0]))
        cluster_since = started - timedelta(days=config.cluster_window_days)
        warnings: list[ClusterWarning] = []
        with recent.lock:
            for row in rows:
                warnings += recent.index(row, cluster_since)
            # What intake saw of other processes' tickets is in the index now, or will be read again.
            recent.fresh = recent.repeats.empty_like()
        self._synced_at = started
        self._awaiting_since = min(waiting) if waiting else None
        self._max_id_seen = max([self._max_id_seen, *(tid for tid, _, _, _ in listed)])
        if warnings:
            # A flood of similar tickets grows one cluster with each: its last warning holds every member.
            self._store_clusters(_merge_warnings(warnings), started)
        if rows:
            log.debug("triage: %d tickets of other processes indexed", len(rows))
        return len(rows)

    def recent_status(self) -> dict[str, Any]:
        """What this process's repeat index holds, and when it last read other processes' tickets."""
        return {
            "indexed": len(self.recent.repeats),
            # Other processes' tickets intake compared since the last read (`_read_fresh`), indexed at the next.
            "seen_at_intake": len(self.recent.fresh),
            "read_up_to": self._synced_at,
            "waiting_for_triage_since": self._awaiting_since,
            "look_every_seconds": self.config.recent_sync_seconds,
        }

    def _store_clusters(self, warnings: list[ClusterWarning], now: datetime) -> None:
        with self.db.write_sessions() as session, session.begin():
            for w in warnings:
                member = session.scalar(select(Ticket).where(Ticket.number == w.member_ticket_ids[-1]))
                if member is not None:
                    record_cluster(session, self.engine, w, member, now, self.org)


def _merge_warnings(warnings: list[ClusterWarning]) -> list[ClusterWarning]:
    """One warning per cluster: a flood read in one look grows a cluster with each ticket, and its last warning
    holds every member; the members that joined are those any of them brought in (all, if one is new)."""
    merged: dict[str, ClusterWarning] = {}
    for w in warnings:
        prev = merged.get(w.key)
        if prev is None:
            merged[w.key] = w
            continue
        everyone = not prev.joined or not w.joined
        merged[w.key] = replace(w, joined=() if everyone else tuple(sorted({*prev.joined, *w.joined})))
    return list(merged.values())
