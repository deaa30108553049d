"""Requests about one thing in one place, grouped.

Each request is read once (:func:`prepare`): its words (jieba), the places, administrative names and crowds they
name (:mod:`minsheng.hotspots.places`), and its *problem words*: the words left when places, administrative
names, request words (投诉, 反映 …) and function words are taken out, the title's twice. A word of three characters or more also
counts by its character pairs, so that 拖欠工资 meets 工资. The problem words are
weighted by TF-IDF (scikit-learn, sublinear term frequency, L2 norm), so two requests' problem similarity is the
cosine of their vectors.

Two requests are linked (:func:`links`) when

- they name one place (share a place key) and their problems are similar (cosine ≥ ``same_place``), or
- they lie in the same known area (the platform's grid) and their problems are similar (≥ ``same_area``), or
- their problems are very similar (≥ ``same_text``), wherever they are,

and never when they name different places, lie in different known areas, or name different administrative areas
at the same level (A市 and B市), for links of the last two kinds. Linked requests form groups; a group larger
than two is cut again by average-linkage clustering (scikit-learn) over the same similarities, so that a chain
A–B–C in which A and C have nothing in common does not make one topic.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from minsheng.hotspots.places import Found, find_places
from minsheng.hotspots.records import Request
from minsheng.hotspots.words import (
    ADMIN_SUFFIXES,
    CROWD_WORDS,
    REQUEST_WORDS,
    STOP_WORDS,
    KnownNames,
    Word,
    tag_words,
)
from minsheng.triage.textnorm import normalize

__all__ = ["Prepared", "Thresholds", "group", "prepare", "vectorise"]

# Characters read per request: the title and the start of the detail say what and where; the rest of a long
# letter repeats it and costs tokenising time.
MAX_CHARS = 600
PLACE_CHARS = 150
_BLOCK = 1024
_CROWDS = frozenset(
    CROWD_WORDS
)  # who asks is the crowd's business, not the problem's  # rows of the similarity product computed at once


@dataclass(frozen=True, slots=True)
class Thresholds:
    same_place: float = 0.1
    same_area: float = 0.2
    same_text: float = 0.55
    #: A place key shared by more requests than this share of all (and more than 30) is a common word, not a place.
    max_key_share: float = 0.05
    #: A topic of two requests needs this similarity between them.
    pair: float = 0.2
    #: Average-linkage cut: members of one topic are on average at least this similar.
    cohesion: float = 0.1
    #: Without citizen keys, requests this similar count as one voice (the same person writing again).
    duplicate: float = 0.85


@dataclass(slots=True)
class Prepared:
    request: Request
    found: Found
    problem: list[str]
    words: frozenset[str] = frozenset()  # the problem's whole words (keywords are chosen among them)

    @property
    def regions(self) -> dict[str, frozenset[str]]:
        """Administrative names by level (city, district, street)."""
        by_level: dict[str, set[str]] = defaultdict(set)
        for name in self.found.admins:
            level = next((lv for s, lv in _ADMIN_BY_LENGTH if name.endswith(s)), None)
            if level is not None:
                by_level[level].add(name)
        return {k: frozenset(v) for k, v in by_level.items()}


_ADMIN_BY_LENGTH = sorted(ADMIN_SUFFIXES.items(), key=lambda kv: -len(kv[0]))


def _problem_words(
    words: list[Word], skip: set[int], title_end: int
) -> tuple[list[str], list[str], frozenset[str]]:
    """The title's and the rest's problem words (with the character pairs of long words), and the whole words."""
    body: list[str] = []
    title: list[str] = []
    whole: set[str] = set()
    for i, w in enumerate(words):
        t = w.text
        if i in skip or w.punct or len(t) < 2 or t in STOP_WORDS or t in REQUEST_WORDS or t in _CROWDS:
            continue
        if t.isascii() and not t.isalpha():
            continue  # numbers, codes, amounts
        t = t.lower()
        whole.add(t)
        # A long word also counts by its character pairs: 拖欠工资 meets 拖欠 | 工资 and 工人工资.
        (title if w.start < title_end else body).extend(
            [t, *(t[k : k + 2] for k in range(len(t) - 1))] if len(t) > 2 else [t]
        )
    return title, body, frozenset(whole)


def prepare(requests: Sequence[Request], known: Mapping[str, str] | None = None) -> list[Prepared]:
    """Read every request once: words, places, problem words."""
    known = KnownNames(known) if known else None
    out: list[Prepared] = []
    for r in requests:
        title = normalize(r.title, max_chars=200, lower=False)
        rest = [normalize(t, max_chars=MAX_CHARS, lower=False) for t in r.texts]
        if rest and rest[0].startswith(title):
            rest[0] = rest[0][len(title) :]
        text = (title + "。" + "。".join(t for t in rest if t))[:MAX_CHARS]
        words = tag_words(text, known)
        # Places are read from the title and the start of the detail, where requests say where; further on a
        # letter names the places it compares with, passes or remembers, and those would join unrelated requests.
        place_end = len(title) + 1 + PLACE_CHARS
        found = find_places([w for w in words if w.start < place_end], known, len(title))
        title_words, body, whole = _problem_words(words, found.place_words, len(title))
        # The title states the problem in a few words; counted twice it outweighs the letter's digressions.
        out.append(Prepared(r, found, title_words * 2 + body, whole))
    return out


def vectorise(prepared: Sequence[Prepared]) -> tuple[sp.csr_matrix, list[str]]:
    """The problem words of every request as L2-normalised TF-IDF rows, and the words of the columns."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    docs = [p.problem for p in prepared]
    if not any(docs):
        return sp.csr_matrix((len(docs), 1)), [""]
    vectoriser = TfidfVectorizer(analyzer=_identity, sublinear_tf=True, norm="l2", min_df=1)
    matrix = sp.csr_matrix(vectoriser.fit_transform(docs))
    return matrix, [str(w) for w in vectoriser.get_feature_names_out()]


def _identity(doc: Any) -> Any:
    return doc


def _conflict(a: Prepared, b: Prepared) -> bool:
    """Whether two requests cannot be about one place: they name different administrative areas of one level;
    or, naming no place in common, they name different places or lie in different known areas."""
    if _regions_differ(a, b):
        return True
    ka, kb = a.found.keys, b.found.keys
    if ka & kb:
        return False
    if ka and kb:
        return True
    ra, rb = a.request, b.request
    return ra.area is not None and rb.area is not None and ra.area != rb.area


def _regions_differ(a: Prepared, b: Prepared) -> bool:
    ga, gb = a.regions, b.regions
    return any(level in gb and not names & gb[level] for level, names in ga.items())


def _pairs_by_key(prepared: Sequence[Prepared], t: Thresholds) -> Iterator[tuple[int, int]]:
    index: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(prepared):
        for k in p.found.keys:
            index[k].append(i)
    limit = max(30, int(t.max_key_share * len(prepared)))
    for members in index.values():
        if 1 < len(members) <= limit:
            for x, i in enumerate(members):
                for j in members[x + 1 :]:
                    yield i, j


def _pairs_by_area(prepared: Sequence[Prepared]) -> Iterator[tuple[int, int]]:
    index: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(prepared):
        if p.request.area is not None:
            index[p.request.area].append(i)
    for members in index.values():
        for x, i in enumerate(members):
            for j in members[x + 1 :]:
                yield i, j


def _similar_pairs(matrix: sp.csr_matrix, threshold: float) -> Iterator[tuple[int, int, float]]:
    """Every pair i < j with cosine ≥ threshold, a block of rows at a time (memory stays bounded)."""
    n = matrix.shape[0]
    transposed = matrix.T.tocsc()
    for start in range(0, n, _BLOCK):
        block = (matrix[start : start + _BLOCK] @ transposed).tocoo()
        rows = block.row + start
        keep = (block.data >= threshold) & (rows < block.col)
        for i, j, s in zip(rows[keep], block.col[keep], block.data[keep], strict=True):
            yield int(i), int(j), float(s)


def _cosines(matrix: sp.csr_matrix, pairs: Sequence[tuple[int, int]]) -> np.ndarray:
    """The problem similarity of each pair, in one sparse product per block of pairs."""
    out = np.zeros(len(pairs))
    for start in range(0, len(pairs), 50_000):
        chunk = pairs[start : start + 50_000]
        left = matrix[[i for i, _ in chunk]]
        right = matrix[[j for _, j in chunk]]
        out[start : start + len(chunk)] = np.asarray(left.multiply(right).sum(axis=1)).ravel()
    return out


def links(prepared: Sequence[Prepared], matrix: sp.csr_matrix, t: Thresholds) -> dict[tuple[int, int], float]:
    """Linked pairs (i < j) with their problem similarity."""
    by_key = sorted(
        {(i, j) for i, j in _pairs_by_key(prepared, t) if not _regions_differ(prepared[i], prepared[j])}
    )
    found: dict[tuple[int, int], float] = {
        pair: float(s) for pair, s in zip(by_key, _cosines(matrix, by_key), strict=True) if s >= t.same_place
    }
    by_area = sorted(set(_pairs_by_area(prepared)) - set(found))
    for pair, s in zip(by_area, _cosines(matrix, by_area), strict=True):
        if s >= t.same_area and not _conflict(prepared[pair[0]], prepared[pair[1]]):
            found[pair] = float(s)
    for i, j, s in _similar_pairs(matrix, t.same_text):
        if (i, j) not in found and not _conflict(prepared[i], prepared[j]):
            found[(i, j)] = s
    return found


def _split(
    prepared: Sequence[Prepared], members: list[int], linked: Mapping[tuple[int, int], float], t: Thresholds
) -> list[list[int]]:
    """Cut a linked group by average linkage: linked pairs are 1 − similarity apart, other pairs 1, and pairs that
    cannot be about one place (:func:`_conflict`) so far apart that no cut keeps them together."""
    if len(members) <= 2:
        return [members]
    from sklearn.cluster import AgglomerativeClustering

    n = len(members)
    distance = np.ones((n, n))
    np.fill_diagonal(distance, 0.0)
    check = n <= _MAX_CONFLICT_CHECK
    for x in range(n):
        for y in range(x + 1, n):
            s = linked.get((members[x], members[y]))
            if s is not None:
                distance[x, y] = distance[y, x] = 1.0 - s
            elif check and _conflict(prepared[members[x]], prepared[members[y]]):
                distance[x, y] = distance[y, x] = _APART
    labels = AgglomerativeClustering(
        n_clusters=None, metric="precomputed", linkage="average", distance_threshold=1.0 - t.cohesion
    ).fit_predict(distance)
    parts: dict[int, list[int]] = defaultdict(list)
    for m, label in zip(members, labels, strict=True):
        parts[int(label)].append(m)
    return list(parts.values())


_APART = 1000.0
_MAX_CONFLICT_CHECK = 400


#: Groups larger than this are not cut again (a flood of calls about one burst main: the n² distances would cost
#: more than they tell).
MAX_SPLIT = 1500


def group(prepared: Sequence[Prepared], matrix: sp.csr_matrix, t: Thresholds) -> list[list[int]]:
    """The groups of linked requests (two or more), each a list of indices into ``prepared``."""
    from scipy.sparse.csgraph import connected_components

    linked = links(prepared, matrix, t)
    n = len(prepared)
    if not linked:
        return []
    rows, cols = zip(*linked, strict=True)
    graph = sp.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    components: dict[int, list[int]] = defaultdict(list)
    for i, label in enumerate(labels):
        components[int(label)].append(i)
    out: list[list[int]] = []
    for members in components.values():
        if len(members) < 2:
            continue
        parts = [members] if len(members) > MAX_SPLIT else _split(prepared, members, linked, t)
        out.extend(p for p in parts if len(p) > 2 or (len(p) == 2 and _pair_holds(p, linked, t)))
    return out


def _pair_holds(pair: list[int], linked: Mapping[tuple[int, int], float], t: Thresholds) -> bool:
    """Two requests alone make a topic only when clearly about the same thing: a larger topic is held together
    by its many links, a pair by its one (on the taidi2020c messages, pairs linked below 0.2 were mostly two
    different requests about one place)."""
    i, j = sorted(pair)
    return linked.get((i, j), 0.0) >= t.pair


def voices(prepared: Sequence[Prepared], members: Sequence[int], matrix: sp.csr_matrix, t: Thresholds) -> int:
    """Distinct citizens among ``members``; requests without a citizen key count as one voice per wording
    (near-identical requests are taken to be one person writing again)."""
    keyed = {prepared[i].request.citizen for i in members if prepared[i].request.citizen is not None}
    anonymous = [i for i in members if prepared[i].request.citizen is None]
    if not anonymous:
        return len(keyed)
    sub = matrix[anonymous]
    sims = (sub @ sub.T).toarray()
    seen: list[int] = []
    for x in range(len(anonymous)):
        if not any(sims[x, y] >= t.duplicate for y in seen):
            seen.append(x)
    return len(keyed) + len(seen)
