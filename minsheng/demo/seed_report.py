"""What seeding the demo city reports: counts, timings, the demo logins, the model trained."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from minsheng.demo.city import DemoCity

__all__ = ["Login", "Progress", "SeedReport"]

Progress = Callable[[str, int, int], None]
"""progress(stage, done, total): called as the seeder advances (stages: city, tickets, deadlines, model)."""


@dataclass(frozen=True)
class Login:
    username: str
    role: str
    display_name: str
    unit_code: str | None
    unit_name: str | None


@dataclass
class SeedReport:
    city: DemoCity
    areas: int = 0
    categories: int = 0
    units: int = 0
    users: int = 0
    tickets: int = 0
    steps: int = 0
    events: int = 0
    seconds: float = 0.0
    city_seconds: float = 0.0
    # Steps the engine refused, by action: the ticket stays where the step before left it.
    refused: Counter[str] = field(default_factory=Counter)
    states: Counter[str] = field(default_factory=Counter)
    logins: list[Login] = field(default_factory=list)
    places: int = 0
    routes: int = 0
    kb_entries: int = 0
    deadlines: int = 0  # deadlines planned for open assignments
    timers: int = 0
    # The training record of the demo model (train_from_db's), None when no model directory was given.
    model: dict[str, Any] | None = None
    model_path: Path | None = None
    model_error: str | None = None  # why no model was trained (a history too small to learn from)
    # Seconds per stage (city, tickets, deadlines, model), for the summary and for measuring.
    stage_seconds: dict[str, float] = field(default_factory=dict)
