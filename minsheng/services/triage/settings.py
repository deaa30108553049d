"""Triage settings: `TriageConfig` and the admin overrides stored in ``triage_settings``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from minsheng.services.errors import Invalid, NotFound
from minsheng.storage.triage_tables import TriageSetting


@dataclass
class TriageConfig:
    """Tunable triage settings; every field may be overridden by an admin through ``triage_settings``."""

    auto_threshold: float | None = None  # None: the model's own threshold (chosen for a target precision)
    default_threshold: float = 0.9  # used when a model states no threshold
    jurisdiction_min_confidence: float = 0.5
    repeat_window_days: float = 30.0
    repeat_threshold: float = 0.6  # proposed as a repeat
    repeat_strong: float = 0.85  # a strong repeat keeps the ticket for a dispatcher to link
    repeat_area_level: str = "community"
    cluster_min_count: int = 3
    cluster_window_days: float = 3.0
    cluster_similarity: float = 0.5
    cluster_area_level: str = "street"
    cluster_match: str = "either"
    stale_check_seconds: float = 30.0
    # Tickets other processes took (API processes, workers on other hosts) are read from the database at most
    # this often, so that each process's repeat index and cluster detector see the whole city's intake.
    recent_sync_seconds: float = 2.0
    # How far before the last read to look again: a ticket's created_at is stamped before its transaction
    # commits. (A ticket waiting for deferred triage is looked for again until it has been triaged.)
    recent_sync_margin_seconds: float = 30.0
    # Between those reads, intake looks at the newest tickets of other processes at most this often (looking at
    # every call costs a flood over several processes much of its throughput: docs/TRIAGE.md).
    fresh_look_seconds: float = 0.1
    model_level: int = 3

    def updated(self, overrides: dict[str, Any]) -> TriageConfig:
        out = TriageConfig(**asdict(self))
        for key, value in overrides.items():
            if key in _CONFIG_TYPES:
                setattr(out, key, value)
        return out


_CONFIG_TYPES: dict[str, str] = {f.name: str(f.type) for f in fields(TriageConfig)}
_AREA_LEVELS = ("city", "district", "street", "community", "grid")


# Beyond these, windows and periods leave what dates and timers can hold, and no hotline means them: ten years of
# history, one day of waiting.
_UPPER_BOUNDS: dict[str, float] = {
    "repeat_window_days": 3650.0,
    "cluster_window_days": 3650.0,
    "stale_check_seconds": 86_400.0,
    "recent_sync_seconds": 86_400.0,
    "recent_sync_margin_seconds": 86_400.0,
    "fresh_look_seconds": 86_400.0,
}


def check_setting(key: str, value: Any) -> Any:
    """Validate one admin override; raises Invalid with the reason."""
    if key not in _CONFIG_TYPES:
        raise NotFound(f"unknown triage setting '{key}'", known=sorted(_CONFIG_TYPES))
    kind = _CONFIG_TYPES[key]
    if value is None:
        if "None" not in kind:
            raise Invalid(f"{key} cannot be empty")
        return None
    if kind.startswith("float"):
        return _check_number(key, value)
    if kind == "int":
        return _check_whole(key, value)
    return _check_text(key, value)


# Settings that are shares or similarities.
_UNIT_INTERVAL = (
    "auto_threshold",
    "default_threshold",
    "repeat_threshold",
    "repeat_strong",
    "cluster_similarity",
    "jurisdiction_min_confidence",
)


def _check_number(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Invalid(f"{key} must be a number")
    value = float(value)
    if key in _UNIT_INTERVAL and not 0.0 <= value <= 1.0:
        raise Invalid(f"{key} must be within 0..1")
    if value < 0:
        raise Invalid(f"{key} must not be negative")
    if key in ("repeat_window_days", "cluster_window_days") and value <= 0:
        raise Invalid(f"{key} must be positive")
    top = _UPPER_BOUNDS.get(key)
    if top is not None and value > top:
        raise Invalid(f"{key} must be at most {top:g}")
    return value


def _check_whole(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(f"{key} must be a whole number")
    if key == "cluster_min_count" and not 2 <= value <= 10_000:
        raise Invalid("cluster_min_count must be within 2..10000")
    if key == "model_level" and value not in (1, 2, 3):
        raise Invalid("model_level must be 1, 2 or 3")
    return value


def _check_text(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise Invalid(f"{key} must be text")
    if key.endswith("area_level") and value not in _AREA_LEVELS:
        raise Invalid(f"{key} must be one of {', '.join(_AREA_LEVELS)}")
    if key == "cluster_match" and value not in ("either", "category", "text", "both"):
        raise Invalid("cluster_match must be either, category, text or both")
    return value


def read_settings(session: Session) -> dict[str, Any]:
    return {row.key: row.value for row in session.scalars(select(TriageSetting)) if row.key in _CONFIG_TYPES}


def write_setting(session: Session, key: str, value: Any, by: str, now: datetime) -> Any:
    value = check_setting(key, value)
    row = session.get(TriageSetting, key)
    if row is None:
        session.add(TriageSetting(key=key, value=value, updated_by=by, updated_at=now))
    else:
        row.value, row.updated_by, row.updated_at = value, by, now
    session.flush()
    return value


def delete_setting(session: Session, key: str) -> None:
    row = session.get(TriageSetting, key)
    if row is None:
        raise NotFound(f"triage setting '{key}' is not overridden")
    session.delete(row)
    session.flush()
