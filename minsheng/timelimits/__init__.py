"""Time (issue 4): calendars and working time, time-limit policies, deadlines, warnings, escalation ladders.

Pure code: no database, no web, no system clock. See `calendar`, `policy`, `escalation` and `presets`.
"""

from minsheng.timelimits.calendar import CalendarEntry, CalendarError, WorkCalendar, WorkingHours
from minsheng.timelimits.escalation import (
    EscalationError,
    EscalationLadder,
    EscalationStep,
    RepeatedFailureLadder,
    TimerFired,
    TimerSpec,
    due_events,
    due_steps,
    due_warnings,
    plan_timers,
    timer_fired,
)
from minsheng.timelimits.policy import (
    Deadline,
    PolicyError,
    PolicySet,
    TimeLimit,
    TimeLimitPolicy,
    compute_deadlines,
    extend,
    shift_for_pause,
)

__all__ = [
    "CalendarEntry",
    "CalendarError",
    "Deadline",
    "EscalationError",
    "EscalationLadder",
    "EscalationStep",
    "PolicyError",
    "PolicySet",
    "RepeatedFailureLadder",
    "TimeLimit",
    "TimeLimitPolicy",
    "TimerFired",
    "TimerSpec",
    "WorkCalendar",
    "WorkingHours",
    "compute_deadlines",
    "due_events",
    "due_steps",
    "due_warnings",
    "extend",
    "plan_timers",
    "shift_for_pause",
    "timer_fired",
]
