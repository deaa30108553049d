"""Rows as the API and the pages show them: most views are a plain projection of some fields."""

from __future__ import annotations

from typing import Any


def fields(row: object, *names: str, **computed: Any) -> dict[str, Any]:
    """``{name: row.name}`` for each name, then the computed values (which may override)."""
    return {name: getattr(row, name) for name in names} | computed
