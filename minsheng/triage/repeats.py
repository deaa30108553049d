"""Repeat (重复件) detection: recent tickets of the same area whose text nearly duplicates a new one.

Texts are normalised, cut into character 2-gram shingles and summarised by a 64-value MinHash signature.
Candidates come from banded LSH (16 bands of 4 rows) and are scored by signature agreement, an unbiased
estimate of the Jaccard similarity of the shingle sets.

Memory layout (about 300 bytes per ticket, plus the ticket id itself), chosen so that 1,000,000 tickets fit in
a few hundred MB and a query costs a few numpy calls whatever the index size:

- signatures are kept as the low 16 bits of each MinHash value (b-bit minwise hashing): two different 32-bit
  minima agree on their low 16 bits with probability 1/65536, far below the estimator's own noise;
- band keys are 32-bit hashes of (area bucket, band number, band values); a collision only adds a candidate
  that verification then rejects, so 32 bits are enough;
- band keys live in one sorted numpy array queried with ``searchsorted``; new entries wait in a small dict and
  are merged in bulk, which costs a linear copy instead of a re-sort.

Area matching is exact on a bucket key: by default the ticket's own area code. Pass ``area_key`` to compare at
a coarser level (for example ``lambda code: code[:9]`` to treat a whole street as one bucket when area codes
are hierarchical prefixes). The time window is symmetric (``|t - at| <= window_days``) so that back-filling
history finds the same pairs as live intake.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["RepeatCandidate", "RepeatIndex", "minhash_signature", "normalize_text", "shingles", "signature"]

_NON_WORD = re.compile(r"[\W_]+")
_NUM_PERM = 64
_BANDS = 16
_ROWS = _NUM_PERM // _BANDS
_SEED = 20_240_612
_CHUNK = 4096


def normalize_text(text: str) -> str:
    """Lower-case, fold full-width to half-width, drop whitespace, punctuation and symbols (emoji)."""
    if not text:
        return ""
    folded = unicodedata.normalize("NFKC", text).lower()
    return _NON_WORD.sub("", folded)


def shingles(text: str, size: int = 2) -> npt.NDArray[np.uint64]:
    """Distinct character shingles of normalised text, as exact integers (code points packed in 21 bits).

    A text shorter than ``size`` yields one shingle of what is there, so one-character texts still compare.
    """
    if not text:
        return np.empty(0, dtype=np.uint64)
    cps = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    if cps.size < size:
        size = int(cps.size)
    codes = cps[: cps.size - size + 1].copy()
    for offset in range(1, size):
        codes = (codes << np.uint64(21)) | cps[offset : cps.size - size + 1 + offset]
    return _unique(codes)


def _unique(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """Sorted distinct values. `np.unique` takes its hash-table path here, which costs ~0.1 ms even for a few
    hundred values; a sort and a neighbour comparison take a tenth of that at the sizes a query sees."""
    if a.size < 2:
        return a.copy()
    a = np.sort(a)
    keep = np.empty(a.size, dtype=bool)
    keep[0] = True
    np.not_equal(a[1:], a[:-1], out=keep[1:])
    return a[keep]


def _splitmix(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    # Packed code points are highly structured; mixing first keeps multiply-shift hashing close to universal.
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _permutation_params() -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64]]:
    rng = np.random.default_rng(_SEED)
    mult = rng.integers(1, 2**63, size=_NUM_PERM, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    add = rng.integers(0, 2**63, size=_NUM_PERM, dtype=np.uint64)
    return mult, add


_MULT, _ADD = _permutation_params()
_BAND_MULT = np.arange(_ROWS, dtype=np.uint64) * np.uint64(0x9E3779B1) + np.uint64(0x85EBCA77)
_BAND_MULT |= np.uint64(1)


def minhash_signature(codes: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint32]:
    """64 MinHash values (32-bit, multiply-shift hash family) of a shingle set; empty input gives all-max."""
    sig = np.full(_NUM_PERM, 0xFFFFFFFF, dtype=np.uint32)
    if codes.size == 0:
        return sig
    mixed = _splitmix(codes)
    for start in range(0, mixed.size, _CHUNK):
        block = mixed[start : start + _CHUNK, None] * _MULT[None, :] + _ADD[None, :]
        np.minimum(sig, (block >> np.uint64(32)).astype(np.uint32).min(axis=0), out=sig)
    return sig


def signature(text: str) -> npt.NDArray[np.uint32] | None:
    """The MinHash signature of a text as the index computes it, or None for a text with nothing to compare.

    Callers that look a text up more than once (query, then add) compute it once and pass it on.
    """
    codes = shingles(normalize_text(text))
    return minhash_signature(codes) if codes.size else None


_EMPTY_SIG = np.full(_NUM_PERM, 0xFFFFFFFF, dtype=np.uint32)


def _band_keys(sig: npt.NDArray[np.uint32], bucket: int) -> npt.NDArray[np.uint32]:
    bands = sig.reshape(_BANDS, _ROWS).astype(np.uint64)
    combined = (bands * _BAND_MULT[None, :]).sum(axis=1, dtype=np.uint64)
    combined ^= np.arange(_BANDS, dtype=np.uint64) << np.uint64(56)
    combined ^= np.uint64((bucket * 0xC2B2AE3D27D4EB4F) & 0xFFFFFFFFFFFFFFFF)
    return (_splitmix(combined) >> np.uint64(32)).astype(np.uint32)


def _to_seconds(at: datetime) -> int:
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return int(at.timestamp())


@dataclass(frozen=True, slots=True)
class RepeatCandidate:
    """An indexed ticket proposed as a repeat, with its estimated Jaccard similarity in [0, 1]."""

    ticket_id: Hashable
    score: float
    area_code: str
    at: datetime


class RepeatIndex:
    """In-memory near-duplicate index of recent tickets, bucketed by area and limited to a time window."""

    def __init__(
        self,
        window_days: float = 30,
        threshold: float = 0.6,
        *,
        area_key: Callable[[str], str] | None = None,
        merge_every: int = 8_192,
        max_candidates_per_band: int = 256,
    ) -> None:
        """``max_candidates_per_band``: only the most recent rows of each band bucket are scored. A bucket holds
        more only during a flood of near-identical requests, where the most recent of them are the ones to
        show; the cap keeps a query's cost flat through such a flood (2,000 cost ~0.6 ms per query in one)."""
        if not 0.0 <= threshold <= 1.0:
            raise ValueError("threshold must be within [0, 1]")
        if window_days <= 0:
            raise ValueError("window_days must be positive")
        self.window = timedelta(days=window_days)
        self.threshold = threshold
        self._window_s = int(self.window.total_seconds())
        self._area_key = area_key
        self._merge_every = merge_every
        self._max_per_band = max_candidates_per_band

        cap = 1024
        self._sigs = np.zeros((cap, _NUM_PERM), dtype=np.uint16)
        self._times = np.zeros(cap, dtype=np.int64)
        self._areas = np.zeros(cap, dtype=np.int32)
        self._buckets = np.zeros(cap, dtype=np.int32)
        self._alive = np.zeros(cap, dtype=bool)
        self._gens = np.zeros(cap, dtype=np.int64)
        self._size = 0
        #: Counts every ``add``; a row remembers the count it was added at (see :meth:`query_since`).
        self.generation = 0
        self._ids: list[Hashable] = []
        self._row_of: dict[Hashable, int] = {}
        self._dead = 0

        self._area_ids: dict[str, int] = {}
        self._area_names: list[str] = []

        self._main_keys = np.empty(0, dtype=np.uint32)
        self._main_rows = np.empty(0, dtype=np.int32)
        self._pending: dict[int, list[int]] = {}
        self._pending_rows = 0

    def __len__(self) -> int:
        return len(self._row_of)

    def __contains__(self, ticket_id: object) -> bool:
        return ticket_id in self._row_of

    # -- adding ------

    def _intern(self, code: str) -> int:
        ident = self._area_ids.get(code)
        if ident is None:
            ident = len(self._area_names)
            self._area_ids[code] = ident
            self._area_names.append(code)
        return ident

    def _grow(self) -> None:
        cap = self._sigs.shape[0] * 2
        self._sigs = np.resize(self._sigs, (cap, _NUM_PERM))
        self._times = np.resize(self._times, cap)
        self._areas = np.resize(self._areas, cap)
        self._buckets = np.resize(self._buckets, cap)
        self._gens = np.resize(self._gens, cap)
        alive = np.zeros(cap, dtype=bool)
        alive[: self._size] = self._alive[: self._size]
        self._alive = alive

    def add(
        self,
        ticket_id: Hashable,
        area_code: str,
        text: str,
        at: datetime,
        *,
        sig: npt.NDArray[np.uint32] | bool | None = False,
    ) -> None:
        """Index a ticket; adding an id again replaces its previous entry. ``sig``: the text's :func:`signature`
        when already computed (None included), so that it is not computed again."""
        if ticket_id in self._row_of:
            self.remove(ticket_id)
        if self._size == self._sigs.shape[0]:
            self._grow()
        row = self._size
        self._size += 1
        bucket = self._intern(self._area_key(area_code) if self._area_key else area_code)
        if sig is False:
            sig = signature(text)
        self._sigs[row] = (sig if isinstance(sig, np.ndarray) else _EMPTY_SIG).astype(np.uint16)
        self._times[row] = _to_seconds(at)
        self._areas[row] = self._intern(area_code)
        self._buckets[row] = bucket
        self._alive[row] = True
        self.generation += 1
        self._gens[row] = self.generation
        self._ids.append(ticket_id)
        self._row_of[ticket_id] = row
        if not isinstance(sig, np.ndarray):
            # Nothing to compare on (empty or emoji-only text): kept for remove/prune, never a candidate.
            return
        pending = self._pending
        for key in _band_keys(sig, bucket).tolist():
            rows = pending.get(key)
            if rows is None:
                pending[key] = [row]
            else:
                rows.append(row)
        self._pending_rows += 1
        if self._pending_rows >= self._merge_every:
            self._merge()

    def _merge(self) -> None:
        if not self._pending:
            return
        keys = np.fromiter((k for k, rows in self._pending.items() for _ in rows), dtype=np.uint32, count=-1)
        rows = np.fromiter((r for v in self._pending.values() for r in v), dtype=np.int32, count=-1)
        order = np.lexsort((rows, keys))
        keys, rows = keys[order], rows[order]
        # side="right" keeps older rows first within a key, which the per-band candidate cap relies on.
        at = np.searchsorted(self._main_keys, keys, side="right")
        self._main_keys = np.insert(self._main_keys, at, keys)
        self._main_rows = np.insert(self._main_rows, at, rows)
        self._pending = {}
        self._pending_rows = 0

    # -- removing ------

    def remove(self, ticket_id: Hashable) -> bool:
        """Forget a ticket; returns whether it was indexed."""
        row = self._row_of.pop(ticket_id, None)
        if row is None:
            return False
        self._alive[row] = False
        self._dead += 1
        self._maybe_compact()
        return True

    def prune(self, before: datetime) -> int:
        """Forget every ticket older than ``before``; returns how many were dropped."""
        cutoff = _to_seconds(before)
        n = self._size
        rows = np.nonzero(self._alive[:n] & (self._times[:n] < cutoff))[0]
        for row in rows.tolist():
            del self._row_of[self._ids[row]]
        self._alive[rows] = False
        self._dead += int(rows.size)
        self._maybe_compact()
        return int(rows.size)

    def _maybe_compact(self) -> None:
        if self._dead < 1024 or self._dead * 2 < self._size:
            return
        self._merge()
        n = self._size
        keep = np.nonzero(self._alive[:n])[0]
        new_row = np.full(n, -1, dtype=np.int32)
        new_row[keep] = np.arange(keep.size, dtype=np.int32)
        cap = max(1024, int(keep.size * 2))
        sigs = np.zeros((cap, _NUM_PERM), dtype=np.uint16)
        sigs[: keep.size] = self._sigs[keep]
        self._sigs = sigs
        for name in ("_times", "_areas", "_buckets", "_gens"):
            old = getattr(self, name)
            fresh = np.zeros(cap, dtype=old.dtype)
            fresh[: keep.size] = old[keep]
            setattr(self, name, fresh)
        self._alive = np.zeros(cap, dtype=bool)
        self._alive[: keep.size] = True
        self._ids = [self._ids[r] for r in keep.tolist()]
        self._row_of = {tid: i for i, tid in enumerate(self._ids)}
        mapped = new_row[self._main_rows]
        live = mapped >= 0
        self._main_keys = self._main_keys[live]
        self._main_rows = mapped[live]
        self._size = int(keep.size)
        self._dead = 0

    # -- querying ------

    def query(
        self,
        text: str,
        area_code: str,
        at: datetime,
        limit: int = 5,
        *,
        sig: npt.NDArray[np.uint32] | bool | None = False,
    ) -> list[RepeatCandidate]:
        """Indexed tickets of the same area bucket, within the window, scoring at least ``threshold``.

        Best score first, then most recent; at most ``limit`` results.
        """
        found = self._lookup(text, area_code, sig) if limit > 0 else None
        if found is None:
            return []
        bucket, sig = found
        keys = _band_keys(sig, bucket)
        parts: list[npt.NDArray[np.int32]] = []
        if self._main_keys.size:
            lo = np.searchsorted(self._main_keys, keys, side="left")
            hi = np.searchsorted(self._main_keys, keys, side="right")
            for a, b in zip(lo.tolist(), hi.tolist(), strict=True):
                if b > a:
                    parts.append(self._main_rows[max(a, b - self._max_per_band) : b])
        if self._pending:
            # One conversion for all bands: per-band arrays cost more than the rows they hold.
            pending: list[int] = []
            for key in keys.tolist():
                rows = self._pending.get(key)
                if rows:
                    pending.extend(rows[-self._max_per_band :])
            if pending:
                parts.append(np.array(pending, dtype=np.int32))
        if not parts:
            return []
        return self._score(_unique(np.concatenate(parts)), sig, bucket, at, limit)

    def query_since(
        self,
        text: str,
        area_code: str,
        at: datetime,
        generation: int,
        limit: int = 5,
        *,
        sig: npt.NDArray[np.uint32] | bool | None = False,
    ) -> list[RepeatCandidate]:
        """Like :meth:`query`, among the tickets added after ``generation`` (a value of :attr:`generation`) only.

        Rows are appended in the order they were added, so these are a tail of the arrays and are all scored,
        without the band lookup: cheap while the tail is short. Triage uses it to see what was indexed between
        a request's analysis and its commit, and on a small per-transaction index to compare a batch's tickets.
        """
        found = self._lookup(text, area_code, sig) if limit > 0 and generation < self.generation else None
        if found is None:
            return []
        bucket, sig = found
        start = int(np.searchsorted(self._gens[: self._size], generation, side="right"))
        cand = np.arange(start, self._size, dtype=np.int32)
        # Rows of texts with no shingles hold the all-max signature and are never candidates (as in `query`).
        cand = cand[(self._sigs[cand] != 0xFFFF).any(axis=1)]
        return self._score(cand, sig, bucket, at, limit)

    def _lookup(
        self, text: str, area_code: str, sig: npt.NDArray[np.uint32] | bool | None
    ) -> tuple[int, npt.NDArray[np.uint32]] | None:
        """The area bucket's id and the text's signature, or None when nothing can match (unknown bucket, or a
        text with nothing to compare)."""
        bucket = self._area_ids.get(self._area_key(area_code) if self._area_key else area_code)
        if bucket is None:
            return None
        if sig is False:
            sig = signature(text)
        return (bucket, sig) if isinstance(sig, np.ndarray) else None

    def _score(
        self, cand: npt.NDArray[np.int32], sig: npt.NDArray[np.uint32], bucket: int, at: datetime, limit: int
    ) -> list[RepeatCandidate]:
        t = _to_seconds(at)
        ok = (
            self._alive[cand]
            & (self._buckets[cand] == bucket)
            & (np.abs(self._times[cand] - t) <= self._window_s)
        )
        cand = cand[ok]
        if cand.size == 0:
            return []
        agree = np.count_nonzero(self._sigs[cand] == sig.astype(np.uint16)[None, :], axis=1)
        scores = agree / _NUM_PERM
        hit = scores >= self.threshold
        cand, scores = cand[hit], scores[hit]
        if cand.size == 0:
            return []
        order = np.lexsort((-self._times[cand], -scores))[:limit]
        return [
            RepeatCandidate(
                ticket_id=self._ids[row],
                score=float(scores[i]),
                area_code=self._area_names[int(self._areas[row])],
                at=datetime.fromtimestamp(int(self._times[row]), tz=UTC),
            )
            for i, row in ((int(i), int(cand[i])) for i in order)
        ]

    def empty_like(self) -> RepeatIndex:
        """A new, empty index with the same window, threshold and area buckets."""
        return RepeatIndex(
            window_days=self.window.total_seconds() / 86400,
            threshold=self.threshold,
            area_key=self._area_key,
            merge_every=self._merge_every,
            max_candidates_per_band=self._max_per_band,
        )

    def memory_bytes(self) -> int:
        """Bytes held by the numpy arrays (ids and the id map are Python objects, not counted)."""
        arrays = (self._sigs, self._times, self._areas, self._buckets, self._alive, self._main_keys)
        return sum(a.nbytes for a in arrays) + self._main_rows.nbytes
