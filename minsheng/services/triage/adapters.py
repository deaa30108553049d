"""What triage needs from the text classifier and the signal detector, with failures degraded to no advice."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger("minsheng.triage")


class ClassifierLike(Protocol):
    """What triage needs from a text classifier (``minsheng.triage.classifier.TextClassifier``)."""

    threshold: float

    def predict(self, text: str) -> Any: ...


@dataclass(frozen=True)
class Guess:
    label: str
    confidence: float


@dataclass(frozen=True)
class Classification:
    top: list[Guess]
    cues: list[str]
    error: str | None = None

    @property
    def best(self) -> Guess | None:
        return self.top[0] if self.top else None


def _as_guesses(top: Any, limit: int = 3) -> list[Guess]:
    out: list[Guess] = []
    for item in top or ():
        if isinstance(item, tuple | list) and len(item) >= 2:
            out.append(Guess(str(item[0]), float(item[1])))
        elif hasattr(item, "label"):
            out.append(
                Guess(str(item.label), float(getattr(item, "confidence", getattr(item, "score", 0.0))))
            )
    return out[:limit]


def _explain_cues(model: Any, text: str, label: str | None = None) -> list[str]:
    explain = getattr(model, "explain", None)
    if explain is None:
        return []
    try:
        # With the label already predicted, the model need not predict it again (half the cost of explaining).
        try:
            raw = explain(text, label=label) if label is not None else explain(text)
        except TypeError:
            raw = explain(text)
    except Exception:  # an explanation is a courtesy: never let it fail a triage
        log.debug("classifier explain failed", exc_info=True)
        return []
    items = raw.get("cues", raw.get("terms", [])) if isinstance(raw, dict) else getattr(raw, "cues", raw)
    cues: list[str] = []
    for item in items or ():
        if isinstance(item, str):
            cues.append(item)
        elif isinstance(item, tuple | list) and item:
            cues.append(str(item[0]))
        elif isinstance(item, dict) and ("term" in item or "feature" in item):
            cues.append(str(item.get("term", item.get("feature"))))
    return cues[:8]


def classify(model: Any, text: str, pred: Any = None) -> Classification:
    """The model's guesses for a text, with the cues; ``pred`` is its prediction when already made (in a batch)."""
    if model is None or not text:
        return Classification([], [])
    try:
        if pred is None:
            pred = model.predict([text])[0]
    except Exception as e:  # a broken model degrades to "no suggestion", it never fails intake
        log.warning("classifier failed on a text of %d characters: %s", len(text), e)
        return Classification([], [], error=f"{type(e).__name__}: {e}")
    top = _as_guesses(getattr(pred, "top", None))
    label = getattr(pred, "label", None)
    if label is not None and (not top or top[0].label != str(label)):
        top = [Guess(str(label), float(getattr(pred, "confidence", 0.0))), *top][:3]
    return Classification(top, _explain_cues(model, text, str(label) if label is not None else None))


@dataclass(frozen=True)
class SignalsView:
    kind: str | None = None
    urgency: str | None = None
    transfer: str | None = None
    cues: dict[str, list[str]] = field(default_factory=dict)
    note: str | None = None


def _signals_module() -> Any:
    import importlib

    try:
        # Looked up at call time: the signals part may be installed after this one.
        return importlib.import_module("minsheng.triage.signals")
    except ModuleNotFoundError:
        return None


def detect_signals(text: str) -> SignalsView:
    """Kind, urgency and transfer suggestion of the text, with the cues that decided them."""
    mod = _signals_module()
    if mod is None:
        return SignalsView(note="signals module not available")
    if not text:
        return SignalsView()
    try:
        raw = mod.detect(text)
    except Exception as e:
        log.warning("signal detection failed: %s", e)
        return SignalsView(note=f"{type(e).__name__}: {e}")
    return _signals_view(raw)


def _signals_view(raw: Any) -> SignalsView:
    def value(x: Any) -> str | None:
        if x is None:
            return None
        for attr in ("value", "label", "target", "kind", "level"):
            v = getattr(x, attr, None)
            if isinstance(v, str):
                return str(v)  # a StrEnum member becomes its plain value, for JSON
        return str(x) if isinstance(x, str) else None

    cues: dict[str, list[str]] = {}
    for name in ("kind", "urgency", "transfer"):
        item = getattr(raw, name, None)
        found = getattr(item, "cues", None) or getattr(raw, f"{name}_cues", None)
        if found:
            cues[name] = [str(c) for c in found][:8]
    return SignalsView(
        kind=value(getattr(raw, "kind", None)),
        urgency=value(getattr(raw, "urgency", None)),
        transfer=value(getattr(raw, "transfer", None)),
        cues=cues,
    )
