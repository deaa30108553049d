"""Whole numbers read from text: ASCII digits within bounds, nothing else, and no exception on any input."""

from __future__ import annotations

import pytest

from minsheng.domain.digits import ascii_digits, whole_number


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1", 1), ("42", 42), ("0042", 42), ("100", 100), ("0" * 5000 + "7", 7)],
)
def test_digits_within_bounds_are_read(text: str, expected: int) -> None:
    assert whole_number(text, 1, 100) == expected


@pytest.mark.parametrize("text", ["", "0", "101", "²", "٣", "1.5", "-1", " 1", "１", "9" * 5000, "1e3"])
def test_anything_else_is_none(text: str) -> None:
    assert whole_number(text, 1, 100) is None


def test_ascii_digits() -> None:
    assert ascii_digits("0123456789")
    assert not ascii_digits("") and not ascii_digits("12a") and not ascii_digits("²")
