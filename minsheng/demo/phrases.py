"""What callers say, as data: problem phrases per level-3 category, request templates, slot fillers.

Read from ``data/issues.toml``, ``data/templates.toml`` and ``data/phrases.toml``; :mod:`minsheng.demo.texts`
and :mod:`minsheng.demo.addresses` combine them into requests and test cases.
"""

from __future__ import annotations

from functools import cache

from minsheng.demo.tables import load, words

__all__ = [
    "Template",
    "asks",
    "emergency",
    "generic_templates",
    "issues",
    "kind_weights",
    "often_urgent",
    "phrase",
    "templates",
    "tone_weights",
    "topic_like",
]

Template = tuple[str, str, str]
"""(kind, title, detail): a request template; :func:`minsheng.demo.texts.generate_request` fills its slots."""


@cache
def issues() -> dict[str, tuple[str, ...]]:
    """Level-3 category name → what people say about it, in the order of the category tree."""
    return {name: tuple(said) for name, said in load("issues")["issues"].items()}


@cache
def topic_like() -> frozenset[str]:
    """Level-3 categories whose phrases are topics to ask about rather than problems to complain about."""
    return frozenset(words(load("issues")["topic_like"]))


@cache
def emergency() -> frozenset[str]:
    """Level-3 categories that are emergencies."""
    return frozenset(words(load("issues")["emergency"]))


@cache
def often_urgent() -> frozenset[str]:
    """Level-3 categories often urgent."""
    return frozenset(words(load("issues")["often_urgent"]))


def _templates(rows: list[list[str]]) -> tuple[Template, ...]:
    return tuple((kind, title, detail) for kind, title, detail in rows)


@cache
def templates() -> dict[str, tuple[Template, ...]]:
    """First-level category name → its own request templates."""
    return {name: _templates(rows) for name, rows in load("templates")["templates"].items()}


@cache
def generic_templates() -> tuple[Template, ...]:
    """Templates in the plain wording any operator could have typed, for every category."""
    return _templates(load("templates")["generic"])


@cache
def kind_weights() -> dict[str, tuple[int, ...]]:
    """First-level category name → weights of the request kinds, in :data:`~minsheng.demo.texts.KINDS` order."""
    return {name: tuple(w) for name, w in load("templates")["kind_weights"].items()}


@cache
def phrase(name: str) -> tuple[str, ...]:
    """A list of ``data/phrases.toml``: slot fillers (when, dur, who …) and the test sets' wording."""
    value = load("phrases")[name]
    return words(value) if isinstance(value, str) else tuple(value)


@cache
def asks() -> dict[str, tuple[str, ...]]:
    """Tone (polite, angry, urgent, neutral) → how a request of that tone ends."""
    return {tone: tuple(v) for tone, v in load("phrases")["ask"].items()}


@cache
def tone_weights() -> dict[str, tuple[int, ...]]:
    """Request kind → weights of the tones polite, angry, urgent, neutral (kinds not listed are polite)."""
    return {kind: tuple(w) for kind, w in load("phrases")["tone_weights"].items()}
