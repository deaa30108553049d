"""The demo city's data files (``minsheng/demo/data/*.toml``), each read once per process.

Name lists, phrase lists, request templates, the category tree, the departments and the knowledge base are
data; the modules here hold the rules that draw from them. Word lists are written as space-separated words
(see :func:`words`); a word repeated in a list weighs more in the draw.
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib.resources import files
from typing import Any


@cache
def load(name: str) -> dict[str, Any]:
    """The parsed ``data/<name>.toml``. Shared between callers: read it, never change it."""
    text = (files("minsheng.demo") / "data" / f"{name}.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def words(text: str) -> tuple[str, ...]:
    """A word list written as space-separated words over any number of lines."""
    return tuple(text.split())
