"""Cluster warnings (一类事预警): many similar tickets in one area within a short period raise one warning.

Tickets are linked when they fall in the same area bucket, within ``window`` of each other, and are
similar: by default the same category or character-bigram Jaccard ≥ ``similarity`` of their texts. Linked
tickets form a cluster (single linkage). A cluster raises one ``new`` warning when ``min_count`` of its
members fall within the window ending at the latest one; every later member produces a ``grown`` update
under the same key, never a second ``new`` warning. The key is built from the area bucket and the first
member, so it is stable, and the whole thing is deterministic: time is passed in, nothing reads a clock.

Feed ``observe`` in time order (``find_clusters`` sorts history for you); tickets older than the window are
forgotten, which keeps memory bounded by the traffic of one window.
"""

from __future__ import annotations

import bisect
import heapq
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from minsheng.triage.repeats import normalize_text, shingles

__all__ = ["ClusterDetector", "ClusterTicket", "ClusterWarning", "find_clusters"]

Match = Literal["either", "category", "text", "both"]
_SWEEP_EVERY = 4096
_SUMMARY_TERMS = 5


@dataclass(frozen=True, slots=True)
class ClusterTicket:
    """Input row for ``find_clusters``."""

    ticket_id: str
    category_code: str | None
    area_code: str
    text: str
    at: datetime


@dataclass(frozen=True, slots=True)
class ClusterWarning:
    """A warning event for supervisors: ``kind`` is "new" once per cluster, then "grown" as members join."""

    key: str
    kind: Literal["new", "grown"]
    category_code: str | None
    area_code: str
    member_ticket_ids: tuple[str, ...]
    first_at: datetime
    last_at: datetime
    summary: tuple[str, ...]
    #: The members this ticket brought in: itself, and on a "grown" warning any tickets it linked to the cluster
    #: (empty means all of ``member_ticket_ids``). What a store of the warning has to add, without comparing a
    #: flood's thousands of members with every new one.
    joined: tuple[str, ...] = ()


@dataclass(slots=True, eq=False)
class _Member:
    ticket_id: str
    category_code: str | None
    text: str
    grams: frozenset[int]
    at: datetime
    cluster: _Cluster | None = None
    terms: frozenset[str] | None = None


@dataclass(slots=True, eq=False)
class _Cluster:
    key: str
    seq: int
    bucket: str
    members: list[_Member] = field(default_factory=list)
    warned: bool = False
    # How many members each term occurs in; kept from the first warning on, so that a cluster growing through a
    # flood (thousands of calls about one burst main) does not re-read every member for each new one.
    df: Counter[str] | None = None

    # Category counts and the members' ids are kept as members join: a cluster growing through a flood reports
    # both with every new member.
    cats: Counter[str] = field(default_factory=Counter)
    ids: tuple[str, ...] | None = None

    def add(self, member: _Member, at: int | None = None) -> None:
        member.cluster = self
        if at is None or at == len(self.members):
            self.members.append(member)
            if self.ids is not None:
                self.ids += (member.ticket_id,)
        else:
            self.members.insert(at, member)
            self.ids = None
        if member.category_code is not None:
            self.cats[member.category_code] += 1
        if self.df is not None:
            self.df.update(_terms(member))


class ClusterDetector:
    """Incremental cluster detection over a stream of tickets; one instance per configuration."""

    def __init__(
        self,
        min_count: int = 3,
        window: timedelta = timedelta(days=3),
        similarity: float = 0.5,
        area_level: int | Callable[[str], str] | None = None,
        match: Match = "either",
    ) -> None:
        """``area_level``: None compares exact area codes; an int keeps that many leading characters of
        hierarchical codes (e.g. 9 for the street of a 12-digit community code); a callable maps a code to its
        bucket. ``match`` says what makes two tickets similar: same category, similar text, either, or both.
        """
        if min_count < 2:
            raise ValueError("min_count must be at least 2")
        if window <= timedelta(0):
            raise ValueError("window must be positive")
        self.min_count = min_count
        self.window = window
        self.similarity = similarity
        self.match: Match = match
        if isinstance(area_level, int):
            n = area_level
            self._bucket: Callable[[str], str] = lambda code: code[:n]
        elif area_level is None:
            self._bucket = lambda code: code
        else:
            self._bucket = area_level
        self._recent: dict[str, deque[_Member]] = {}
        self._seen: set[str] = set()
        self._seq = 0
        self._observed = 0

    def _similar(self, a: _Member, b: _Member) -> bool:
        same_cat = a.category_code is not None and a.category_code == b.category_code
        if self.match == "category":
            return same_cat
        if self.match == "either" and same_cat:
            return True
        # Jaccard is at most min(|A|, |B|) / max(|A|, |B|): texts of very different lengths are ruled out without
        # building the intersection.
        la, lb = len(a.grams), len(b.grams)
        if min(la, lb) < self.similarity * max(la, lb):
            return False
        # |A ∪ B| = |A| + |B| - |A ∩ B|: one set built per pair instead of two.
        shared = len(a.grams & b.grams)
        union = la + lb - shared
        close = union > 0 and shared / union >= self.similarity
        return close and (same_cat or self.match != "both")

    def _expire(self, bucket: str, now: datetime) -> None:
        recent = self._recent.get(bucket)
        if recent is None:
            return
        horizon = now - self.window
        while recent and recent[0].at < horizon:
            self._seen.discard(recent.popleft().ticket_id)
        if not recent:
            del self._recent[bucket]

    def observe(
        self, ticket_id: str, category_code: str | None, area_code: str, text: str, at: datetime
    ) -> list[ClusterWarning]:
        """Take one ticket; returns the warning it raises (new or grown), or nothing."""
        if ticket_id in self._seen:
            return []
        bucket = self._bucket(area_code)
        self._observed += 1
        if self._observed % _SWEEP_EVERY == 0:
            for b in list(self._recent):
                self._expire(b, at)
        self._expire(bucket, at)
        grams = frozenset(shingles(normalize_text(text)).tolist())
        new = _Member(ticket_id, category_code, text, grams, at)
        recent = self._recent.setdefault(bucket, deque())
        clusters: dict[int, _Cluster] = {}
        loose: list[_Member] = []
        # Only which clusters the new ticket links to matters, so once one member links a cluster its other members
        # are not tested. Newest first, because a flood links to its cluster's latest member: this keeps a flood
        # of thousands of similar calls from testing each new one against all the others.
        for m in reversed(recent):
            c = m.cluster
            if c is not None and c.seq in clusters:
                continue
            if self._similar(new, m):
                if c is None:
                    loose.append(m)
                else:
                    clusters[c.seq] = c
        recent.append(new)
        self._seen.add(ticket_id)
        if not clusters and not loose:
            return []

        # Join the oldest warned cluster if any (its key must not change), else the oldest cluster.
        ordered = sorted(clusters.values(), key=lambda c: (not c.warned, c.seq))
        if ordered:
            target = ordered[0]
        else:
            # The new member counts too: fed out of time order (tickets read late from other processes), it may
            # be the earliest.
            first = min((*loose, new), key=lambda m: (m.at, m.ticket_id))
            target = _Cluster(key=f"{bucket}/{first.ticket_id}", seq=self._seq, bucket=bucket)
            self._seq += 1
        joined = [m for m in (*loose, new) if m.cluster is None]
        for other in ordered[1:]:
            if not other.warned:
                joined += other.members
                for m in other.members:
                    target.add(m)
                other.members.clear()
        if len(joined) > 1:
            for m in joined:
                if m.cluster is not target:
                    target.add(m)
            target.members.sort(key=_order)
            target.ids = None
        else:
            # One ticket joining a cluster, mostly at its end: a binary search instead of re-sorting the members.
            target.add(new, bisect.bisect_right(target.members, _order(new), key=_order))

        if target.warned:
            return [self._warning(target, "grown", tuple(sorted(m.ticket_id for m in joined)))]
        horizon = at - self.window
        in_window = len(target.members) - bisect.bisect_left(target.members, horizon, key=lambda m: m.at)
        if in_window >= self.min_count:
            target.warned = True
            return [self._warning(target, "new")]
        return []

    def _warning(
        self, cluster: _Cluster, kind: Literal["new", "grown"], joined: tuple[str, ...] = ()
    ) -> ClusterWarning:
        cats = cluster.cats
        category = min(cats.items(), key=lambda kv: (-kv[1], kv[0]))[0] if cats else None
        if cluster.ids is None:
            cluster.ids = tuple(m.ticket_id for m in cluster.members)
        return ClusterWarning(
            key=cluster.key,
            kind=kind,
            category_code=category,
            area_code=cluster.bucket,
            member_ticket_ids=cluster.ids,
            first_at=cluster.members[0].at,
            last_at=cluster.members[-1].at,
            summary=_summary_of(cluster),
            joined=joined,
        )


def _order(member: _Member) -> tuple[datetime, str]:
    return member.at, member.ticket_id


def _terms(member: _Member) -> frozenset[str]:
    if member.terms is None:
        import jieba

        words = (normalize_text(w) for w in jieba.lcut(member.text))
        member.terms = frozenset(w for w in words if len(w) >= 2 and not w.isdigit())
    return member.terms


def _summary_of(cluster: _Cluster) -> tuple[str, ...]:
    """Words found in most members (at least two): what the cluster is about, for the warning's headline."""
    if cluster.df is None:
        cluster.df = Counter()
        for m in cluster.members:
            cluster.df.update(_terms(m))
    shared = ((w, n) for w, n in cluster.df.items() if n >= 2)
    best = heapq.nsmallest(_SUMMARY_TERMS, shared, key=lambda wn: (-wn[1], -len(wn[0]), wn[0]))
    return tuple(w for w, _ in best)


def find_clusters(
    tickets: Iterable[ClusterTicket],
    *,
    min_count: int = 3,
    window: timedelta = timedelta(days=3),
    similarity: float = 0.5,
    area_level: int | Callable[[str], str] | None = None,
    match: Match = "either",
) -> list[ClusterWarning]:
    """Recompute clusters from history: the final state of every cluster that reached a warning.

    Each returned warning has ``kind="new"`` and lists all members the cluster ever had; order is by first
    member time, then key.
    """
    detector = ClusterDetector(min_count, window, similarity, area_level, match)
    final: dict[str, ClusterWarning] = {}
    for t in sorted(tickets, key=lambda t: (t.at, t.ticket_id)):
        for w in detector.observe(t.ticket_id, t.category_code, t.area_code, t.text, t.at):
            final[w.key] = w
    out = [
        ClusterWarning(
            w.key, "new", w.category_code, w.area_code, w.member_ticket_ids, w.first_at, w.last_at, w.summary
        )
        for w in final.values()
    ]
    out.sort(key=lambda w: (w.first_at, w.key))
    return out
