"""SQL helpers shared by the triage modules."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

_T = TypeVar("_T")


def chunks(items: Sequence[_T], size: int = 500) -> Iterator[Sequence[_T]]:
    """``items`` in slices of ``size``: IN lists kept under SQLite's limit on bound parameters."""
    for i in range(0, len(items), size):
        yield items[i : i + size]
