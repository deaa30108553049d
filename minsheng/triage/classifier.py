"""Category classifier for raw Chinese request text, with calibrated confidence and an auto-dispatch threshold.

The model reads the citizen's words as typed (title and detail joined, no pre-segmentation) and returns a category
with a probability. Confident tickets are dispatched automatically, the rest go to a dispatcher's queue: the
threshold between the two is chosen at training time, on out-of-fold predictions, for a target precision.
Features are hashed character n-grams (whole text and title), TF-IDF weighted; a linear SVM scores them and a
multinomial logistic regression on out-of-fold scores calibrates them; :meth:`TextClassifier.explain` names the
n-grams behind a prediction. The design and the alternatives measured against it: docs/CLASSIFIER.md.

Nothing is loaded at import time. Models are saved as a directory (``model.joblib`` + ``meta.json``); joblib files
are pickles, so only load model directories you trust.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from minsheng.triage.textnorm import normalize

__all__ = [
    "FORMAT_VERSION",
    "META_FILE",
    "MODEL_FILE",
    "ModelLoadError",
    "Prediction",
    "TextClassifier",
    "evaluate",
    "load_model",
    "save_model",
    "train_classifier",
]

MODEL_FILE = "model.joblib"
META_FILE = "meta.json"
#: Bumped whenever the pickled classes change shape; older directories are then refused with a clear message.
FORMAT_VERSION = 1

#: A threshold no probability can reach: used when the target precision cannot be met, so nothing auto-dispatches.
UNREACHABLE_THRESHOLD = math.nextafter(1.0, 2.0)

#: Added to the target precision when the auto-dispatch threshold is chosen on out-of-fold predictions. In 5-fold
#: CV on the taidi2020c training part (two fold seeds), the deployed model's precision on held-out text was about
#: 0.004 below its out-of-fold precision at the same threshold, and its coverage about 0.03 higher.
THRESHOLD_MARGIN = 0.005

_PRIME = np.uint64(1099511628211)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_BATCH = 2000


class ModelLoadError(ValueError):
    """A model directory is missing, incomplete, corrupt, or not a minsheng text classifier."""


@dataclass(frozen=True)
class Prediction:
    """One classification: the best label, its calibrated probability, and the three best labels."""

    label: str
    confidence: float
    top: list[tuple[str, float]] = field(default_factory=list)


def _ngram_hashes(
    texts: Sequence[str], orders: Sequence[int], salt: int, max_chars: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Hash every character n-gram of every text in one vectorised pass.

    Returns parallel arrays: document index, start position in the document's code-point array, order, hash.
    Documents are concatenated with a 0 code point between them (normalised text contains no NUL), and n-grams
    that span a separator are dropped.
    """
    encoded = [np.frombuffer(t[:max_chars].encode("utf-32-le"), dtype=np.uint32) for t in texts]
    lengths = np.fromiter((len(e) for e in encoded), dtype=np.int64, count=len(encoded))
    empty = np.zeros(0, dtype=np.int64)
    if not encoded:
        return empty, empty, empty.astype(np.int8), empty.astype(np.uint64)
    separator = np.zeros(1, dtype=np.uint32)
    pieces: list[np.ndarray] = []
    for e in encoded:
        pieces.append(e)
        pieces.append(separator)
    codes = np.concatenate(pieces).astype(np.uint64)
    starts = np.concatenate([[0], np.cumsum(lengths + 1)[:-1]])
    doc_of = np.repeat(np.arange(len(encoded)), lengths + 1)
    seps = np.concatenate([[0], np.cumsum(codes == 0)])
    total = len(codes)
    docs, positions, kinds, hashes = [], [], [], []
    for k in orders:
        m = total - k + 1
        if m <= 0:
            continue
        h = np.full(m, np.uint64(salt * 1_000_003 + k), dtype=np.uint64)
        for j in range(k):
            h = (h ^ codes[j : j + m]) * _PRIME
        # A splitmix finaliser spreads FNV's weak low bits, which are the ones kept as the bucket.
        h ^= h >> np.uint64(31)
        h *= _MIX1
        h ^= h >> np.uint64(29)
        h *= _MIX2
        h ^= h >> np.uint64(32)
        idx = np.nonzero(seps[k : k + m] == seps[:m])[0]
        d = doc_of[idx]
        docs.append(d)
        positions.append(idx - starts[d])
        kinds.append(np.full(len(idx), k, dtype=np.int8))
        hashes.append(h[idx])
    if not docs:
        return empty, empty, empty.astype(np.int8), empty.astype(np.uint64)
    return np.concatenate(docs), np.concatenate(positions), np.concatenate(kinds), np.concatenate(hashes)


class _CharView:
    """Hashed character n-gram TF-IDF over the first ``max_chars`` characters of a text."""

    def __init__(self, name: str, orders: tuple[int, ...], max_chars: int, salt: int, min_df: int, bits: int):
        self.name = name
        self.orders = orders
        self.max_chars = max_chars
        self.salt = salt
        self.min_df = min_df
        self.bits = bits
        self.kept = np.zeros(0, dtype=np.int64)
        self.idf = np.zeros(0, dtype=np.float64)
        self._colmap: np.ndarray | None = None

    # The bucket→column map is 4 bytes per bucket; rebuilding it from the kept buckets keeps model files small.
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_colmap"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    @property
    def n_features(self) -> int:
        return len(self.kept)

    def _columns(self, hashes: np.ndarray) -> np.ndarray:
        if self._colmap is None:
            colmap = np.full(1 << self.bits, -1, dtype=np.int32)
            colmap[self.kept] = np.arange(len(self.kept), dtype=np.int32)
            self._colmap = colmap
        return self._colmap[(hashes & np.uint64((1 << self.bits) - 1)).astype(np.int64)]

    def _tf(self, docs: np.ndarray, cols: np.ndarray, n_docs: int) -> sp.csr_matrix:
        ok = cols >= 0
        x = sp.csr_matrix(
            (np.ones(int(ok.sum()), dtype=np.float64), (docs[ok], cols[ok])), shape=(n_docs, self.n_features)
        )
        x.sum_duplicates()
        x.data = 1.0 + np.log(x.data)
        return x

    def _weight(self, x: sp.csr_matrix) -> sp.csr_matrix:
        x = x.multiply(self.idf[np.newaxis, :]).tocsr()
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        return sp.csr_matrix(sp.diags(1.0 / norms) @ x)

    def one_row(self, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The feature row of one text from its n-grams' columns, as (sorted columns, values): the same numbers as
        :meth:`transform`, without the sparse-matrix machinery, whose overhead is most of the cost for one text."""
        cols, counts = np.unique(cols[cols >= 0], return_counts=True)
        values = (1.0 + np.log(counts)) * self.idf[cols]
        norm = math.sqrt(float(values @ values))
        return cols, values / norm if norm else values

    def fit_transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        docs, _, _, hashes = _ngram_hashes(texts, self.orders, self.salt, self.max_chars)
        buckets = (hashes & np.uint64((1 << self.bits) - 1)).astype(np.int64)
        presence = sp.csr_matrix(
            (np.ones(len(buckets), dtype=np.float32), (docs, buckets)), shape=(len(texts), 1 << self.bits)
        )
        presence.sum_duplicates()
        df = np.bincount(presence.indices, minlength=1 << self.bits)
        self.kept = np.nonzero(df >= self.min_df)[0]
        self._colmap = None
        x = self._tf(docs, self._columns(hashes), len(texts))
        doc_freq = np.bincount(x.indices, minlength=self.n_features)
        self.idf = np.log((1.0 + len(texts)) / (1.0 + doc_freq)) + 1.0
        return self._weight(x)

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        docs, _, _, hashes = _ngram_hashes(texts, self.orders, self.salt, self.max_chars)
        return self._weight(self._tf(docs, self._columns(hashes), len(texts)))

    def grams(self, text: str) -> dict[int, str]:
        """Column → n-gram text for the features of one text (for explanations)."""
        _, pos, order, hashes = _ngram_hashes([text], self.orders, self.salt, self.max_chars)
        cols = self._columns(hashes)
        out: dict[int, str] = {}
        for c, p, k in zip(cols.tolist(), pos.tolist(), order.tolist(), strict=True):
            if c >= 0 and c not in out:
                out[c] = text[p : p + k]
        return out


def _default_views() -> list[_CharView]:
    return [
        _CharView("text", (1, 2), 3000, salt=1, min_df=2, bits=22),
        _CharView("head", (1, 2, 3), 30, salt=2, min_df=1, bits=20),
    ]


class TextClassifier:
    """A trained category classifier; build it with :func:`train_classifier`, persist it with :func:`save_model`."""

    def __init__(
        self,
        views: list[_CharView],
        svm: Any,
        calibrator: Any,
        labels: list[str],
        threshold: float,
        metadata: dict[str, Any],
    ):
        self._views = views
        self._svm = svm
        self._calibrator = calibrator
        self.labels: list[str] = list(labels)
        self.threshold = float(threshold)
        self.metadata: dict[str, Any] = metadata
        counts = metadata.get("class_counts") or {}
        self._fallback_label = max(self.labels, key=lambda lab: counts.get(lab, 0)) if self.labels else ""

    # -- features ------------------------------------------------------------------------------------------
    def _features(self, clean: Sequence[str]) -> sp.csr_matrix:
        return sp.hstack([v.transform(clean) for v in self._views], format="csr")

    def _scores(self, x: sp.csr_matrix) -> np.ndarray:
        return np.asarray(self._svm.decision_function(x)).reshape(x.shape[0], -1)

    def _proba_from_scores(self, scores: np.ndarray) -> np.ndarray:
        return np.asarray(self._calibrator.predict_proba(scores))

    @staticmethod
    def _informative(clean: str) -> bool:
        return any(ch.isalnum() for ch in clean)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Calibrated probabilities, one row per text, columns in the order of :attr:`labels`."""
        texts = list(texts)
        k = len(self.labels)
        if len(texts) == 1 and isinstance(self._svm, _AveragedLinear):
            return self._proba_one(texts[0])
        out = np.full((len(texts), k), 1.0 / k if k else 0.0)
        for start in range(0, len(texts), _BATCH):
            clean = [normalize(t) for t in texts[start : start + _BATCH]]
            x = self._features(clean)
            proba = self._proba_from_scores(self._scores(x))
            # Text with no letters, digits or ideographs, or with no n-gram ever seen in training, says nothing:
            # the model's answer for it would be its bias, so report ignorance instead of a confident guess.
            known = np.diff(x.indptr) > 0
            useful = np.array([self._informative(c) for c in clean], dtype=bool) & known
            out[start : start + len(clean)][useful] = proba[useful]
        return out

    def _proba_one(self, text: str) -> np.ndarray:
        """`predict_proba` of one text (what intake asks for) without sparse matrices: their construction cost
        about two thirds of classifying one text. Same rules; probabilities agree with the batch path to ~1e-6."""
        assert isinstance(self._svm, _AveragedLinear)
        k = len(self.labels)
        out = np.full((1, k), 1.0 / k if k else 0.0)
        clean = normalize(text)
        weights_t = self._svm.weights_t()
        scores = np.zeros(weights_t.shape[1], dtype=np.float32)
        offset, found = 0, 0
        for view in self._views:
            _, _, _, hashes = _ngram_hashes([clean], view.orders, view.salt, view.max_chars)
            cols, values = view.one_row(view._columns(hashes))
            if cols.size:
                scores += values.astype(np.float32) @ weights_t[offset + cols]
                found += cols.size
            offset += view.n_features
        if found and self._informative(clean):
            out[0] = self._proba_from_scores(
                (scores.astype(np.float64) + self._svm.intercept_)[np.newaxis, :]
            )[0]
        return out

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        """Classify each text; never raises on odd text (empty, emoji only, very long, mixed scripts)."""
        texts = [t if isinstance(t, str) else ("" if t is None else str(t)) for t in texts]
        proba = self.predict_proba(texts)
        result: list[Prediction] = []
        labels = self.labels
        for row in proba:
            if np.allclose(row, row[0]):
                # Uniform row: no evidence. Name the commonest category so the queue still gets a suggestion.
                order = [labels.index(self._fallback_label)] + [
                    i for i in range(len(labels)) if labels[i] != self._fallback_label
                ]
            else:
                order = list(np.argsort(-row, kind="stable"))
            top = [(labels[i], float(row[i])) for i in order[:3]]
            result.append(Prediction(label=top[0][0], confidence=top[0][1], top=top))
        return result

    def is_confident(self, prediction: Prediction) -> bool:
        """True when ``prediction`` may be dispatched without a dispatcher (confidence ≥ :attr:`threshold`)."""
        return prediction.confidence >= self.threshold

    def explain(self, text: str, *, label: str | None = None, top_k: int = 10) -> list[tuple[str, float]]:
        """The n-grams that pushed ``text`` towards ``label`` (default: the predicted label), strongest first.

        Weights are feature value × SVM weight; n-grams from the title view are prefixed with ``^``.
        Returns ``[]`` for text with no known features.
        """
        clean = normalize(text if isinstance(text, str) else ("" if text is None else str(text)))
        if label is None:
            label = self.predict([clean])[0].label
        if label not in self.labels:
            raise ValueError(f"unknown label {label!r}; known: {self.labels}")
        classes = [str(c) for c in self._svm.classes_]
        coef = self._svm.coef_
        row = classes.index(label)
        contributions: dict[str, float] = {}
        offset = 0
        for view in self._views:
            # One hashing pass gives both the features and, for the few strongest, the n-grams behind them:
            # naming every feature of a long text in Python cost more than classifying it.
            _, pos, order, hashes = _ngram_hashes([clean], view.orders, view.salt, view.max_chars)
            cols = view._columns(hashes)
            indices, values = view.one_row(cols)
            weights = values * coef[row, offset + indices]
            positive = np.nonzero(weights > 0)[0]
            strongest = positive[np.argsort(-weights[positive], kind="stable")[:top_k]]
            for col, weight in zip(indices[strongest].tolist(), weights[strongest].tolist(), strict=True):
                first = int(np.argmax(cols == col))
                name = clean[int(pos[first]) : int(pos[first]) + int(order[first])]
                key = ("^" + name) if view.name == "head" else name
                contributions[key] = contributions.get(key, 0.0) + weight
            offset += view.n_features
        ordered = sorted(contributions.items(), key=lambda kv: kv[1], reverse=True)
        ranked = [(name, round(weight, 6)) for name, weight in ordered if weight > 0]
        return ranked[:top_k]


# -- training ----------------------------------------------------------------------------------------------


def _make_svm(seed: int) -> Any:
    from sklearn.svm import LinearSVC

    # Balanced class weights lift macro-F1 a little: small categories matter as much as big ones to citizens.
    return LinearSVC(C=2.0, class_weight="balanced", tol=1e-3, random_state=seed)


class _AveragedLinear:
    """The mean of the fold SVMs, as one linear model (the mean of linear functions is linear).

    Predicting with the fold models rather than one SVM refitted on everything keeps the scores on the scale the
    calibrator was fitted on: a refitted SVM is more confident than its folds were, which would push the real
    precision of auto-dispatch below the target.
    """

    def __init__(self, coef: np.ndarray, intercept: np.ndarray, classes: list[str]):
        self.coef_ = coef.astype(np.float32)
        self.intercept_ = intercept.astype(np.float64)
        self.classes_ = np.array(classes, dtype=object)

    def decision_function(self, x: sp.csr_matrix) -> np.ndarray:
        # scipy multiplies a sparse matrix by a dense one of the same dtype and C order only, and otherwise copies
        # the dense one first: with float64 features and `coef_.T` (float32, F-ordered) that was the whole weight
        # matrix on every call, ~5 ms for one text. The C-ordered transpose is made once per process and the
        # (small) feature matrix is cast instead; float32 sums of a few hundred terms change scores by ~1e-7.
        return np.asarray(x.astype(np.float32) @ self.weights_t(), dtype=np.float64) + self.intercept_

    def weights_t(self) -> np.ndarray:
        """The weights as (features, classes), C-ordered: a text's scores are the sum of its features' rows."""
        coef_t = self.__dict__.get("_coef_t")
        if coef_t is None:
            coef_t = self.__dict__["_coef_t"] = np.ascontiguousarray(self.coef_.T)
        return coef_t

    def __getstate__(self) -> dict[str, Any]:
        # The transpose is a cache: model files keep only the weights, as before.
        return {k: v for k, v in self.__dict__.items() if k != "_coef_t"}


def _make_calibrator() -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=1.0, max_iter=1000)


def _scores_for(svm: Any, x: sp.csr_matrix, labels: list[str]) -> np.ndarray:
    """SVM scores as a (n, len(labels)) array even when the SVM saw fewer classes (a class absent from a fold)."""
    coef, intercept = _expand(svm, labels)
    return np.asarray(x @ coef.T) + intercept


def _expand(svm: Any, labels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """A fold SVM's weights laid out over all ``labels``; a class the fold never saw gets a strongly negative bias."""
    classes = [str(c) for c in svm.classes_]
    coef = np.zeros((len(labels), svm.coef_.shape[1]))
    intercept = np.full(len(labels), -10.0)
    if len(classes) == 2:
        coef[labels.index(classes[1])] = svm.coef_[0]
        coef[labels.index(classes[0])] = -svm.coef_[0]
        intercept[labels.index(classes[1])] = svm.intercept_[0]
        intercept[labels.index(classes[0])] = -svm.intercept_[0]
        return coef, intercept
    for j, c in enumerate(classes):
        coef[labels.index(c)] = svm.coef_[j]
        intercept[labels.index(c)] = svm.intercept_[j]
    return coef, intercept


def _wilson_lower(hits: np.ndarray, n: np.ndarray, z: float) -> np.ndarray:
    p = hits / n
    denom = 1.0 + z * z / n
    centre = p + z * z / (2 * n)
    spread = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return np.asarray((centre - spread) / denom)


def choose_threshold(
    confidence: np.ndarray, correct: np.ndarray, target_precision: float
) -> tuple[float, float, float]:
    """The lowest confidence threshold whose auto-dispatched set reaches ``target_precision``.

    "Reaches" means the one-sided 95% Wilson lower bound of its precision is at least the target.

    Returns ``(threshold, coverage, precision)``; when no threshold reaches the target the threshold is above 1
    and coverage is 0, which sends every ticket to the queue.
    """
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    if len(confidence) == 0:
        return UNREACHABLE_THRESHOLD, 0.0, 0.0
    order = np.argsort(-confidence, kind="stable")
    hits = np.cumsum(correct[order])
    n = np.arange(1, len(order) + 1)
    # The Wilson lower bound (one-sided 95%) rather than the raw precision: a threshold picked on a finite
    # sample is optimistic, and the deployed model is a little more confident than its folds were.
    precision = _wilson_lower(hits, n, z=1.645)
    # Only a cut between distinct confidence values is a real threshold: ties fall on the same side.
    conf_sorted = confidence[order]
    boundary = np.append(conf_sorted[1:] < conf_sorted[:-1], True)
    ok = np.nonzero((precision >= target_precision) & boundary)[0]
    if len(ok) == 0:
        return UNREACHABLE_THRESHOLD, 0.0, 0.0
    k = int(ok.max())
    threshold = float(conf_sorted[k])
    chosen = confidence >= threshold
    return threshold, float(chosen.mean()), float(correct[chosen].mean())


def _labelled(texts: Sequence[str], labels: Sequence[str]) -> list[tuple[str, str]]:
    """The (text, label) pairs with a label; refuses what cannot be trained on."""
    if len(texts) != len(labels):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
    label_list = [str(lab).strip() for lab in labels]
    pairs = [(t, lab) for t, lab in zip(texts, label_list, strict=True) if lab]
    if not pairs:
        raise ValueError("no labelled texts to train on")
    counts = Counter(lab for _, lab in pairs)
    if len(counts) < 2:
        raise ValueError(f"need at least two categories to train, got {sorted(counts)}")
    return pairs


def _fit_folds(
    x: sp.csr_matrix, y: np.ndarray, classes: list[str], n_splits: int, seed: int, n_jobs: int
) -> tuple[_AveragedLinear, np.ndarray]:
    """The fold SVMs averaged into one, and their out-of-fold scores: what the model says about texts it has
    not seen, for calibration and the threshold."""
    from joblib import Parallel, delayed
    from sklearn.model_selection import StratifiedKFold

    oof = np.zeros((len(y), len(classes)))
    splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        # Rare categories (fewer members than folds) are expected in real category trees.
        warnings.filterwarnings("ignore", message=".*least populated class.*")
        warnings.filterwarnings("ignore", message=".*members, which is less than n_splits.*")
        splits = list(splitter.split(np.zeros(len(y)), y))

    def fit_fold(train_idx: np.ndarray) -> Any:
        if len(set(y[train_idx])) < 2:
            return None
        return _make_svm(seed).fit(x[train_idx], y[train_idx])

    # liblinear releases the GIL, so threads fit folds in parallel without copying the matrix.
    fold_models = Parallel(n_jobs=min(n_jobs, len(splits)), prefer="threads")(
        delayed(fit_fold)(train_idx) for train_idx, _ in splits
    )
    coef = np.zeros((len(classes), x.shape[1]))
    intercept = np.zeros(len(classes))
    used = 0
    for svm, (_, test_idx) in zip(fold_models, splits, strict=True):
        if svm is None:
            continue
        oof[test_idx] = _scores_for(svm, x[test_idx], classes)
        c, b = _expand(svm, classes)
        coef += c
        intercept += b
        used += 1
    if used == 0:
        raise ValueError("every training fold held a single category; add more labelled texts")
    return _AveragedLinear(coef / used, intercept / used, classes), oof


def _training_metadata(
    views: list[_CharView],
    y: np.ndarray,
    oof_pred: np.ndarray,
    counts: Counter[str],
    n_splits: int,
    chosen: tuple[float, float, float, float],
    target_precision: float,
    seed: int,
    seconds: float,
) -> dict[str, Any]:
    from sklearn.metrics import accuracy_score, f1_score

    threshold, coverage, precision, threshold_target = chosen
    return {
        "version": FORMAT_VERSION,
        "kind": "minsheng.triage.TextClassifier",
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "n_train": len(y),
        "labels": sorted(counts),
        "class_counts": dict(sorted(counts.items())),
        "threshold": threshold,
        "target_precision": target_precision,
        "threshold_target": threshold_target,
        "seed": seed,
        "features": [
            {"view": v.name, "orders": list(v.orders), "max_chars": v.max_chars, "n_features": v.n_features}
            for v in views
        ],
        "metrics": {
            "source": f"{n_splits}-fold out-of-fold predictions on the training data",
            "accuracy": float(accuracy_score(y, oof_pred)),
            "macro_f1": float(f1_score(y, oof_pred, average="macro", zero_division=0)),
            "auto_threshold": threshold,
            "auto_coverage": coverage,
            "auto_precision": precision,
        },
        "train_seconds": round(seconds, 3),
    }


def train_classifier(
    texts: Sequence[str],
    labels: Sequence[str],
    *,
    target_precision: float = 0.97,
    seed: int = 0,
    folds: int = 5,
    n_jobs: int = 2,
) -> TextClassifier:
    """Train a classifier on raw texts and their category labels.

    Calibration and the auto-dispatch threshold come from ``folds``-fold out-of-fold predictions on the training
    data; the final SVM is then trained on everything. ``auto_coverage`` and ``auto_precision`` in the metadata
    are those out-of-fold figures.
    """
    if not 0.0 < target_precision <= 1.0:
        raise ValueError("target_precision must be in (0, 1]")
    pairs = _labelled(texts, labels)
    counts = Counter(lab for _, lab in pairs)
    started = time.perf_counter()
    clean = [normalize(t) for t, _ in pairs]
    y = np.array([lab for _, lab in pairs], dtype=object)
    classes = sorted(counts)
    views = _default_views()
    x = sp.hstack([v.fit_transform(clean) for v in views], format="csr")
    n_splits = max(2, min(folds, max(counts.values())))
    svm, oof = _fit_folds(x, y, classes, n_splits, seed, n_jobs)

    calibrator = _make_calibrator().fit(oof, y)
    cal_classes = [str(c) for c in calibrator.classes_]
    oof_proba = np.asarray(calibrator.predict_proba(oof))
    best = oof_proba.argmax(axis=1)
    oof_pred = np.array([cal_classes[i] for i in best], dtype=object)
    # The deployed (averaged) model is a little more confident on new text than its folds were on theirs, so the
    # threshold is chosen for a slightly stricter precision than the one asked for.
    threshold_target = min(1.0, target_precision + THRESHOLD_MARGIN)
    threshold, coverage, precision = choose_threshold(oof_proba.max(axis=1), oof_pred == y, threshold_target)
    metadata = _training_metadata(
        views,
        y,
        oof_pred,
        counts,
        n_splits,
        (threshold, coverage, precision, threshold_target),
        target_precision,
        seed,
        time.perf_counter() - started,
    )
    # The calibrator's column order is the one predict_proba reports: keep labels in that order.
    return TextClassifier(views, svm, calibrator, cal_classes, threshold, metadata)


# -- persistence -------------------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_model(model: TextClassifier, directory: str | Path) -> Path:
    """Write ``model`` to ``directory`` (created if needed) as ``model.joblib`` + ``meta.json``."""
    import joblib

    if not isinstance(model, TextClassifier):
        raise TypeError(f"expected a TextClassifier, got {type(model).__name__}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model_path = directory / MODEL_FILE
    tmp = directory / (MODEL_FILE + ".tmp")
    joblib.dump(model, tmp, compress=3)
    # Write then rename so a crash never leaves a half-written model next to a valid meta.json.
    tmp.replace(model_path)
    meta = dict(model.metadata)
    meta["model_file"] = MODEL_FILE
    meta["sha256"] = _sha256(model_path)
    (directory / META_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")
    return directory


def load_model(directory: str | Path) -> TextClassifier:
    """Load a model directory written by :func:`save_model`; raise :class:`ModelLoadError` if it is unusable."""
    directory = Path(directory)
    if not directory.exists():
        raise ModelLoadError(f"model directory {directory} does not exist")
    if not directory.is_dir():
        raise ModelLoadError(f"model path {directory} is not a directory")
    meta_path = directory / META_FILE
    model_path = directory / MODEL_FILE
    if not meta_path.is_file():
        raise ModelLoadError(f"model directory {directory} has no {META_FILE}")
    if not model_path.is_file():
        raise ModelLoadError(f"model directory {directory} has no {MODEL_FILE}")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{meta_path} is not valid JSON: {exc}") from exc
    if not isinstance(meta, dict):
        raise ModelLoadError(f"{meta_path} does not describe a model")
    if meta.get("version") != FORMAT_VERSION:
        raise ModelLoadError(
            f"{directory} holds a model of format {meta.get('version')!r}; this version reads {FORMAT_VERSION}: "
            "retrain it with `minsheng model train`"
        )
    expected = meta.get("sha256")
    if expected and _sha256(model_path) != expected:
        raise ModelLoadError(f"{model_path} does not match the checksum in {META_FILE}: the file is corrupt")
    import joblib

    try:
        model = joblib.load(model_path)
    except Exception as exc:  # unpickling can raise almost anything on a damaged file
        raise ModelLoadError(f"{model_path} could not be read ({type(exc).__name__}: {exc})") from exc
    if not isinstance(model, TextClassifier):
        raise ModelLoadError(f"{model_path} does not contain a minsheng text classifier")
    return model


# -- evaluation --------------------------------------------------------------------------------------------


def evaluate(model: TextClassifier, texts: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    """Measure ``model`` on labelled texts: accuracy, macro-F1, per-class figures, auto-dispatch and speed.

    ``auto_coverage`` / ``auto_precision`` are measured here at the model's own threshold.
    """
    from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

    if len(texts) != len(labels):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
    y_true = [str(lab).strip() for lab in labels]
    started = time.perf_counter()
    predictions = model.predict(list(texts))
    seconds = time.perf_counter() - started
    y_pred = [p.label for p in predictions]
    n = len(y_true)
    result: dict[str, Any] = {
        "n": n,
        "accuracy": 0.0,
        "macro_f1": 0.0,
        "per_class": {},
        "auto_threshold": model.threshold,
        "auto_coverage": 0.0,
        "auto_precision": 0.0,
        "auto_n": 0,
        "texts_per_second": (n / seconds) if seconds > 0 else 0.0,
        "unknown_labels": sorted(set(y_true) - set(model.labels)),
    }
    if n == 0:
        return result
    present = sorted(set(y_true) | set(y_pred))
    prec, rec, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=present, zero_division=0)
    result["accuracy"] = float(accuracy_score(y_true, y_pred))
    result["macro_f1"] = float(f1_score(y_true, y_pred, average="macro", zero_division=0))
    result["per_class"] = {
        lab: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for lab, p, r, f, s in zip(present, prec, rec, f1, support, strict=True)
    }
    confident = np.array([model.is_confident(p) for p in predictions], dtype=bool)
    correct = np.array([a == b for a, b in zip(y_true, y_pred, strict=True)], dtype=bool)
    result["auto_n"] = int(confident.sum())
    result["auto_coverage"] = float(confident.mean())
    result["auto_precision"] = float(correct[confident].mean()) if confident.any() else 0.0
    return result
