"""Whole numbers that arrive as text (path ids, counts, signature timestamps): ASCII digits only.

`str.isdigit()` is true for "²" and "٣", which `int()` refuses or reads as another number, and `int()` of a
string of thousands of digits raises; every such number is read through here.
"""

from __future__ import annotations


def ascii_digits(text: str) -> bool:
    """Whether ``text`` is one or more of the digits 0-9 and nothing else."""
    return text.isascii() and text.isdigit()


def whole_number(text: str, least: int, most: int) -> int | None:
    """``text`` as an int when it is ASCII digits with a value in [least, most]; else None."""
    significant = text.lstrip("0")
    if not ascii_digits(text) or len(significant) > len(str(most)):
        return None
    value = int(significant or "0")
    return value if least <= value <= most else None
