"""Periods (parsing, neighbours, labels) and the values layer (settings, composite score, the catalogue)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from minsheng.config import Settings
from minsheng.measures.catalogue import MEASURES, measure
from minsheng.measures.periods import Period, PeriodError
from minsheng.measures.values import MeasureSettings, base_of, composite, evaluate, values


@pytest.mark.parametrize(
    ("text", "start", "end", "grain", "label"),
    [
        ("2026-11", date(2026, 11, 1), date(2026, 12, 1), "month", "2026年11月"),
        ("2026-Q4", date(2026, 10, 1), date(2027, 1, 1), "quarter", "2026年第4季度"),
        ("2026", date(2026, 1, 1), date(2027, 1, 1), "year", "2026年"),
        ("2026-W48", date(2026, 11, 23), date(2026, 11, 30), "week", "2026年第48周"),
        ("2026-11-03", date(2026, 11, 3), date(2026, 11, 4), "day", "2026年11月3日"),
        (
            "2026-11-01..2026-11-30",
            date(2026, 11, 1),
            date(2026, 12, 1),
            "range",
            "2026年11月1日至2026年11月30日",
        ),
    ],
)
def test_periods_parse_and_print_back(text: str, start: date, end: date, grain: str, label: str) -> None:
    p = Period.parse(text)
    assert (p.start, p.end, p.grain, p.label) == (start, end, grain, label)
    assert Period.parse(str(p)) == p


def test_previous_and_last_year() -> None:
    assert Period.parse("2026-01").previous() == Period.parse("2025-12")
    assert Period.parse("2026-Q1").previous() == Period.parse("2025-Q4")
    assert Period.parse("2026").previous() == Period.parse("2025")
    assert Period.parse("2026-W01").previous() == Period.parse("2025-W52")
    assert Period.parse("2026-03-01").previous() == Period.parse("2026-02-28")
    assert Period.parse("2026-11-10..2026-11-19").previous() == Period.parse("2026-10-31..2026-11-09")
    assert Period.parse("2026-11").last_year() == Period.parse("2025-11")
    assert Period.parse("2026-W48").last_year() == Period.parse("2025-W48")
    assert Period.parse("2020-W53").last_year() == Period.parse("2019-W52")  # 2019 has 52 weeks
    assert Period.parse("2024-02-29").last_year() == Period.parse("2023-02-28")


def test_bad_periods_are_refused_with_the_forms() -> None:
    for text in (
        "",
        "2026-13",
        "2026-Q5",
        "2026-W60",
        "2026/11",
        "2026-11-31",
        "2026-11-30..2026-11-01",
        "x",
    ):
        with pytest.raises(PeriodError):
            Period.parse(text)
    with pytest.raises(PeriodError):
        Period.parse("2020-01-01..2026-01-01")  # longer than three years


def test_local_bounds() -> None:
    start, end = Period.parse("2026-11-03").utc_bounds()
    assert start == datetime(2026, 11, 2, 16, 0, tzinfo=UTC) and end == datetime(
        2026, 11, 3, 16, 0, tzinfo=UTC
    )
    assert Period.containing(date(2026, 11, 30), "week") == Period.parse("2026-W49")
    assert Period.last_days(date(2026, 11, 30), 7) == Period.parse("2026-11-24..2026-11-30")


def test_the_catalogue_names_the_glossary_rates() -> None:
    codes = [m.code for m in MEASURES]
    for code in (
        "sign_rate",
        "diversion_rate",
        "feedback_rate",
        "completion_rate",
        "reopen_rate",
        "complaint_rate",
        "satisfaction_rate",
        "dissatisfaction_rate",
        "response_rate",
        "resolution_rate",
        "first_time_completion_rate",
        "return_rate",
        "direct_answer_rate",
        "overdue_count",
        "volume",
        "sign_on_time_rate",
        "avg_close_hours",
        "p90_feedback_hours",
    ):
        assert code in codes
    assert len(codes) == len(set(codes))
    assert set(evaluate({})) == set(codes)
    assert measure("reopen_rate").higher_is_better is False
    with pytest.raises(KeyError):
        measure("nope")


def test_composite_score_weights_turn_lower_is_better_rates() -> None:
    vals = {"sign_rate": 1.0, "completion_rate": 0.5, "reopen_rate": 0.2, "satisfaction_rate": None}
    assert composite(vals, {"sign_rate": 1, "completion_rate": 1}) == 75.0
    assert composite(vals, {"reopen_rate": 1}) == pytest.approx(80.0)
    assert composite(vals, {"satisfaction_rate": 1}) is None  # no value: no score
    assert composite(vals, {"sign_rate": 3, "satisfaction_rate": 1}) == 100.0  # missing rates leave the mean


def test_settings_come_from_the_environment_and_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINSHENG_MEASURES_COMPOSITE_WEIGHTS", '{"completion_rate": 2, "reopen_rate": 1}')
    monkeypatch.setenv("MINSHENG_MEASURES_MIN_TICKETS", "5")
    ms = MeasureSettings.from_settings(Settings())
    assert ms.composite_weights == {"completion_rate": 2, "reopen_rate": 1} and ms.min_tickets == 5
    assert MeasureSettings.from_settings(object()) == MeasureSettings()
    for bad in (
        {"composite_weights": {"avg_close_hours": 1}},
        {"composite_weights": {"sign_rate": -1}},
        {"satisfaction_weights": {"happy": 1}},
        {"satisfaction_weights": {"satisfied": 2}},
        {"resolved_ratings": ("happy",)},
        {"min_tickets": -1},
    ):
        with pytest.raises(ValueError):
            MeasureSettings(**bad)  # type: ignore[arg-type]


def test_the_base_of_a_figure() -> None:
    counts = {"tickets": 40, "assignments": 50, "assignments_due": 45, "signed": 44, "rated": 12}
    assert base_of(counts, None) == 50
    assert base_of(counts, "sign_rate") == 45
    assert base_of(counts, "satisfaction_rate") == 12
    assert base_of(counts, "overdue_count") == 40
    assert values(counts)["sign_rate"] == pytest.approx(44 / 45)
