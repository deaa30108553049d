"""The classifier's and the signal detector's answers as triage records them, with failures degraded to no
advice: a broken model or detector never fails an intake."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from minsheng.triage import signals as signal_rules
from minsheng.triage.classifier import Prediction

log = logging.getLogger("minsheng.triage")
MAX_CUES = 8


class ClassifierLike(Protocol):
    """What triage uses of a text classifier (`minsheng.triage.classifier.TextClassifier`; tests give fakes)."""

    threshold: float

    def predict(self, texts: Sequence[str]) -> Sequence[Prediction]: ...

    def explain(self, text: str, *, label: str | None = None) -> list[tuple[str, float]]: ...


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


def _explain_cues(model: ClassifierLike, text: str, label: str) -> list[str]:
    try:
        # With the label already predicted, the model need not predict it again (half the cost of explaining).
        return [term for term, _weight in model.explain(text, label=label)][:MAX_CUES]
    except Exception:  # an explanation is a courtesy: never let it fail a triage
        log.debug("classifier explain failed", exc_info=True)
        return []


def classify(model: ClassifierLike | None, text: str, pred: Prediction | None = None) -> Classification:
    """The model's guesses for a text, with the cues; ``pred`` is its prediction when already made (in a batch)."""
    if model is None or not text:
        return Classification([], [])
    try:
        if pred is None:
            pred = model.predict([text])[0]
    except Exception as e:  # a broken model degrades to "no suggestion", it never fails intake
        log.warning("classifier failed on a text of %d characters: %s", len(text), e)
        return Classification([], [], error=f"{type(e).__name__}: {e}")
    top = [Guess(label, float(p)) for label, p in pred.top][:3]
    if not top or top[0].label != pred.label:
        top = [Guess(pred.label, float(pred.confidence)), *top][:3]
    return Classification(top, _explain_cues(model, text, pred.label))


@dataclass(frozen=True)
class SignalsView:
    kind: str | None = None
    urgency: str | None = None
    transfer: str | None = None
    cues: dict[str, list[str]] = field(default_factory=dict)
    note: str | None = None


def detect_signals(text: str) -> SignalsView:
    """Kind, urgency and transfer suggestion of the text, with the cues that decided them."""
    if not text:
        return SignalsView()
    try:
        found = signal_rules.detect(text)
    except Exception as e:
        log.warning("signal detection failed: %s", e)
        return SignalsView(note=f"{type(e).__name__}: {e}")
    cues = {
        name: [str(c) for c in result.cues][:MAX_CUES]
        for name, result in (("kind", found.kind), ("urgency", found.urgency), ("transfer", found.transfer))
        if result.cues
    }
    return SignalsView(
        kind=found.kind.value.value,
        urgency=found.urgency.value.value,
        transfer=found.transfer.target.value if found.transfer.target is not None else None,
        cues=cues,
    )
