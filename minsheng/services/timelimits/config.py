"""What the time limits need besides the database: fallback policies, 黔西's ladder, channels, texts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from minsheng.timelimits import presets
from minsheng.timelimits.calendar import DEFAULT_ZONE, WorkingHours
from minsheng.timelimits.escalation import RepeatedFailureLadder
from minsheng.timelimits.policy import PolicySet


class ClockSettings(Protocol):
    """The settings the time limits read (MINSHENG_CLOCK_PRESET, _HOTLINE_NAME, _RATING_URL)."""

    clock_preset: str
    hotline_name: str
    rating_url: str


@dataclass
class TimeLimitConfig:
    """What the clockwork needs besides the database: fallback policies, 黔西's ladder, channels, texts."""

    fallback: PolicySet = field(default_factory=lambda: presets.demo_city().policies)
    repeated_failures: RepeatedFailureLadder | None = None
    repeated_failure_steps: frozenset[str] = frozenset({"sign"})
    hotline_name: str = "12345"
    rating_url: str = ""
    channels: frozenset[str] = frozenset()
    zone: str = DEFAULT_ZONE
    hours: WorkingHours | None = None

    @classmethod
    def from_preset(cls, name: str, **kw: Any) -> TimeLimitConfig:
        preset = presets.PRESETS[name]()
        return cls(fallback=preset.policies, repeated_failures=preset.repeated_failures, **kw)

    @classmethod
    def from_settings(cls, ns: ClockSettings, channels: Iterable[str]) -> TimeLimitConfig:
        return cls.from_preset(
            ns.clock_preset,
            hotline_name=ns.hotline_name,
            rating_url=ns.rating_url,
            channels=frozenset(channels),
        )
