"""The catalogue of measures: one entry per rate, count and time the platform reports, in display order.

Codes follow docs/GLOSSARY.md (sign_rate, diversion_rate …); the exact definitions, their sources and the
choices a city makes differently are in docs/METRICS.md, and `minsheng.measures.values` computes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

MeasureKind = Literal["rate", "count", "hours"]

#: The steps whose times are measured (from the assignment's creation; ``close`` from the ticket's intake).
STEPS: tuple[str, ...] = ("sign", "contact", "arrive", "feedback", "close")
STEP_LABELS: dict[str, str] = {
    "sign": "签收",
    "contact": "联系群众",
    "arrive": "到场",
    "feedback": "反馈",
    "close": "办结",
}


@dataclass(frozen=True)
class Measure:
    """One measure. ``kind``: a rate (0-1, shown as a percentage), a count, or hours.

    ``subject`` says what is counted: ``ticket`` (attributed to the ticket's lead unit) or ``assignment``
    (attributed to each assignment's unit). ``higher_is_better`` orders rankings.
    """

    code: str
    label_zh: str
    kind: MeasureKind
    higher_is_better: bool
    doc: str
    subject: Literal["ticket", "assignment"] = "ticket"


def _step_measures() -> list[Measure]:
    out: list[Measure] = []
    for step in STEPS:
        label = STEP_LABELS[step]
        subject: Literal["ticket", "assignment"] = "ticket" if step == "close" else "assignment"
        start = "the ticket's intake" if step == "close" else "the assignment's creation (dispatch)"
        out += [
            Measure(
                f"{step}_on_time_rate",
                f"按时{label}率",
                "rate",
                True,
                f"Steps '{step}' done by their deadline, over the steps '{step}' done or overdue.",
                subject,
            ),
            Measure(
                f"avg_{step}_hours",
                f"平均{label}时长",
                "hours",
                False,
                f"Mean time from {start} to the first '{step}', pauses excluded.",
                subject,
            ),
            Measure(
                f"p90_{step}_hours",
                f"{label}时长90分位",
                "hours",
                False,
                "90th percentile of the same times (from the histogram buckets of the facts).",
                subject,
            ),
        ]
    return out


MEASURES: list[Measure] = [
    Measure("volume", "受理量", "count", True, "Tickets taken in (every channel, repeats included)."),
    Measure(
        "direct_answer_rate",
        "直接办结率",
        "rate",
        True,
        "Tickets answered at the desk (answer_directly) over tickets taken in.",
    ),
    Measure(
        "diversion_rate",
        "分流率",
        "rate",
        True,
        "Tickets the desk routed (dispatched, transferred, answered, linked as repeats) over tickets taken in.",
    ),
    Measure(
        "transfer_count", "转办量", "count", True, "Tickets transferred to 110/119/120/122 or another system."
    ),
    Measure("repeat_count", "重复件数", "count", False, "Tickets merged into or marked a repeat of another."),
    Measure(
        "sign_rate",
        "签收率",
        "rate",
        True,
        "Assignments signed over assignments due a signature (not withdrawn before the unit acted).",
        "assignment",
    ),
    Measure(
        "return_rate",
        "退回率",
        "rate",
        False,
        "Assignments returned by the unit over assignments due a signature.",
        "assignment",
    ),
    Measure(
        "feedback_rate",
        "反馈率",
        "rate",
        True,
        "Signed assignments with feedback over signed assignments.",
        "assignment",
    ),
    Measure(
        "completion_rate",
        "办结率",
        "rate",
        True,
        "Tickets closed (and not reopened since) over tickets to be handled (not transferred, not repeats).",
    ),
    Measure(
        "first_time_completion_rate",
        "一次办结率",
        "rate",
        True,
        "Closed tickets never returned, rejected at review or reopened, over closed tickets.",
    ),
    Measure(
        "reopen_rate",
        "回流率",
        "rate",
        False,
        "Tickets sent back to handling (review rejected or reopened) over tickets submitted as done.",
    ),
    Measure(
        "complaint_rate",
        "投诉率",
        "rate",
        False,
        "Closed tickets the citizen complained about again (a repeat after closing; optionally a "
        "dissatisfied rating) over tickets closed at least once.",
    ),
    Measure(
        "satisfaction_rate",
        "满意率",
        "rate",
        True,
        "Weighted ratings (满意 and 基本满意 count 1 by default) over rated tickets.",
    ),
    Measure(
        "dissatisfaction_rate",
        "不满意率",
        "rate",
        False,
        "Weighted ratings (不满意 1, 基本不满意 1 by default) over rated tickets.",
    ),
    Measure(
        "response_rate",
        "响应率",
        "rate",
        True,
        "Dispatched tickets whose lead unit contacted the citizen by the deadline (signed, where the policy "
        "has no contact step) over dispatched tickets.",
    ),
    Measure(
        "resolution_rate",
        "解决率",
        "rate",
        True,
        "Rated tickets the citizen counts as solved (satisfied or basically satisfied by default) over rated "
        "tickets.",
    ),
    Measure(
        "overdue_count",
        "超期件数",
        "count",
        False,
        "Tickets with at least one overdue step (an overdue event on the timeline).",
    ),
    Measure("overdue_rate", "超期率", "rate", False, "Overdue tickets over dispatched tickets."),
    *_step_measures(),
]

BY_CODE: dict[str, Measure] = {m.code: m for m in MEASURES}


def measure(code: str) -> Measure:
    """The measure named ``code``; KeyError with the known codes otherwise."""
    try:
        return BY_CODE[code]
    except KeyError:
        raise KeyError(f"unknown measure {code!r}; known: {', '.join(BY_CODE)}") from None
