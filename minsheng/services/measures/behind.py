"""The tickets behind a figure: every number on a page links to the list of tickets it was computed from.

`tickets_behind` returns a SELECT of ticket ids (for `queries` to page through with the viewer's visibility):
the tickets of the period and scope (and of a table row's key) that make the measure's denominator
(``part="base"``), its numerator (``"numerator"``), or the base without the numerator (``"rest"``: the
tickets that pulled a rate down). The conditions restate docs/METRICS.md over the ticket, assignment and
timeline rows; for on-time and response rates they read the time limits' deadline rows (met or not by the
due time), which a step met by a return or a withdrawal also marks met: there the list can hold a few tickets
more than the facts count.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, and_, exists, false, or_, select, true
from sqlalchemy.orm import Session, aliased

from minsheng.domain.states import AssignmentState, TicketState
from minsheng.measures.catalogue import BY_CODE, STEPS
from minsheng.measures.periods import Period, PeriodError
from minsheng.measures.values import MeasureSettings
from minsheng.services.errors import Invalid
from minsheng.services.measures import org_tree
from minsheng.services.measures.report import Scope, measure_settings, resolve
from minsheng.storage.models import Area, Assignment, Category, Ticket, TimelineEvent
from minsheng.storage.timelimit_tables import StepDeadline

Part = Literal["base", "numerator", "rest"]
Cond = ColumnElement[bool]
_DONE = (TicketState.CLOSED.value, TicketState.RATED.value)
_STAMP = {
    "sign": Assignment.signed_at,
    "contact": Assignment.contacted_at,
    "arrive": Assignment.arrived_at,
    "feedback": Assignment.reported_at,
}
_LIMIT_STEP = {
    "sign": "sign",
    "contact": "contact",
    "arrive": "arrive",
    "feedback": "feedback",
    "close": "resolve",
}


def _event(*actions: str) -> Cond:
    return exists().where(TimelineEvent.ticket_id == Ticket.id, TimelineEvent.action.in_(actions))


class _Behind:
    """The conditions of one query: the assignment-unit condition and the settings."""

    def __init__(self, units: set[int] | None, ms: MeasureSettings) -> None:
        self.units = units
        self.ms = ms

    def assignment(self, *conds: Cond) -> Cond:
        q = exists().where(Assignment.ticket_id == Ticket.id, *conds)
        return q.where(Assignment.unit_id.in_(sorted(self.units))) if self.units is not None else q

    def on_time(self, step: str, met: bool | None) -> Cond:
        """Tickets with a deadline of ``step`` met (``met`` None: met or overdue; True: met by the due time)."""
        d = aliased(StepDeadline)
        conds: list[Cond] = [d.ticket_id == Ticket.id, d.step == _LIMIT_STEP[step]]
        if step == "close":
            conds.append(
                d.assignment_id.in_(
                    select(Assignment.id).where(
                        Assignment.ticket_id == Ticket.id, Assignment.unit_id == Ticket.lead_unit_id
                    )
                )
            )
        elif self.units is not None:
            conds.append(
                d.assignment_id.in_(select(Assignment.id).where(Assignment.unit_id.in_(sorted(self.units))))
            )
        if met is True:
            return exists().where(*conds, d.met_at.is_not(None), d.met_at <= d.due_at)
        overdue = exists().where(
            TimelineEvent.ticket_id == Ticket.id,
            TimelineEvent.action == "overdue",
            TimelineEvent.assignment_id == d.assignment_id,
        )
        return exists().where(*conds, or_(d.met_at.is_not(None), overdue))

    @staticmethod
    def rating(weights: Mapping[str, float] | tuple[str, ...]) -> Cond:
        """Tickets rated at a level that counts (a weight above 0, or one of the levels listed)."""
        levels = [r for r in weights if weights[r] > 0] if isinstance(weights, Mapping) else list(weights)
        return Ticket.rating.in_(levels) if levels else false()

    def rule(self, code: str) -> tuple[Cond, Cond]:
        """(base, numerator) of one measure (built alone: the subqueries of the others cost time to build)."""
        ms = self.ms
        for step in STEPS:
            if code.endswith(f"{step}_on_time_rate"):
                return self.on_time(step, None), self.on_time(step, True)
            if code in (f"avg_{step}_hours", f"p90_{step}_hours"):
                timed = (
                    and_(Ticket.state.in_(_DONE), _event("review_accept"))
                    if step == "close"
                    else self.assignment(_STAMP[step].is_not(None))
                )
                return timed, timed
        closed = Ticket.state.in_(_DONE)
        dispatched = Ticket.dispatched_at.is_not(None)
        rated = Ticket.rating.is_not(None)
        rules: dict[str, Callable[[], tuple[Cond, Cond]]] = {
            "volume": lambda: (true(), true()),
            "direct_answer_rate": lambda: (true(), _event("answer_directly")),
            "diversion_rate": lambda: (
                true(),
                or_(
                    dispatched,
                    Ticket.state.in_((TicketState.TRANSFERRED.value, TicketState.MERGED.value)),
                    _event("answer_directly"),
                ),
            ),
            "transfer_count": lambda: (true(), Ticket.state == TicketState.TRANSFERRED.value),
            "repeat_count": lambda: (true(), Ticket.state == TicketState.MERGED.value),
            "sign_rate": lambda: (self.due(), self.assignment(Assignment.signed_at.is_not(None))),
            "return_rate": lambda: (self.due(), self.assignment(Assignment.returned_at.is_not(None))),
            "feedback_rate": lambda: (
                self.assignment(Assignment.signed_at.is_not(None)),
                self.assignment(Assignment.signed_at.is_not(None), Assignment.reported_at.is_not(None)),
            ),
            "completion_rate": lambda: (
                Ticket.state.not_in((TicketState.MERGED.value, TicketState.TRANSFERRED.value)),
                closed,
            ),
            "first_time_completion_rate": lambda: (
                closed,
                and_(closed, Ticket.reopen_count == 0, Ticket.return_count == 0),
            ),
            "reopen_rate": lambda: (_event("lead_requested_close", "review_accept"), Ticket.reopen_count > 0),
            "complaint_rate": lambda: (
                _event("review_accept", "answer_directly"),
                or_(_complained(), self.rating(ms.dissatisfaction_weights))
                if ms.complaint_includes_dissatisfied
                else _complained(),
            ),
            "satisfaction_rate": lambda: (rated, self.rating(ms.satisfaction_weights)),
            "dissatisfaction_rate": lambda: (rated, self.rating(ms.dissatisfaction_weights)),
            "resolution_rate": lambda: (rated, self.rating(tuple(ms.resolved_ratings))),
            "response_rate": lambda: (
                dispatched,
                or_(self.on_time("contact", True), self.on_time("sign", True)),
            ),
            "overdue_count": lambda: (true(), _event("overdue")),
            "overdue_rate": lambda: (dispatched, _event("overdue")),
        }
        return rules[code]()

    def due(self) -> Cond:
        """An assignment of the unit due a signature: not withdrawn before the unit acted."""
        return self.assignment(
            or_(
                Assignment.state != AssignmentState.CANCELLED.value,
                Assignment.signed_at.is_not(None),
                Assignment.returned_at.is_not(None),
            )
        )


def _complained() -> Cond:
    """A repeat linked to the ticket after it was first closed."""
    closing = aliased(TimelineEvent)
    linked = aliased(TimelineEvent)
    return exists().where(
        linked.ticket_id == Ticket.id,
        linked.action == "repeat_linked",
        exists().where(
            closing.ticket_id == Ticket.id,
            closing.action.in_(("review_accept", "answer_directly")),
            closing.seq < linked.seq,
        ),
    )


def tickets_behind(
    session: Session,
    period: Period,
    scope: Scope,
    measure_code: str,
    key: str | None = None,
    *,
    part: Part = "base",
    settings: object = None,
) -> Select[Any]:
    """A SELECT of the ids of the tickets behind one figure (see the module docstring).

    ``key`` is a table row's key ("unit:ZJJ", "area:C01", "category:01", "channel:phone", "day:2026-11-03",
    "week:2026-W45", "month:2026-11", "total"); it narrows the scope or the period as the row did.
    Ticket-level measures follow the ticket's lead unit, assignment-level ones any assignment of the unit.
    """
    if measure_code not in BY_CODE:
        raise Invalid(f"unknown measure {measure_code!r}", field="measure")
    if part not in ("base", "numerator", "rest"):
        raise Invalid("part is base, numerator or rest", field="part")
    ms = (
        settings
        if isinstance(settings, MeasureSettings)
        else measure_settings(settings)
        if settings is not None
        else MeasureSettings()
    )
    area_code, unit_code, extra, period = _narrow(session, scope, key, period)
    r = resolve(session, Scope(area_code, unit_code))
    start, end = period.utc_bounds()
    conds: list[Cond] = [Ticket.created_at >= start, Ticket.created_at < end, *extra]
    if r.area is not None:
        conds.append(
            Ticket.area_id.in_(select(Area.id).where(Area.path.startswith(r.area.path, autoescape=True)))
        )
    units = r.flt.unit_ids
    behind = _Behind(units, ms)
    if units is not None:
        if BY_CODE[measure_code].subject == "ticket":
            conds.append(Ticket.lead_unit_id.in_(sorted(units)))
        else:
            conds.append(behind.assignment(true()))
    base, numerator = behind.rule(measure_code)
    pick: dict[str, Callable[[], list[Cond]]] = {
        "base": lambda: [base],
        "numerator": lambda: [base, numerator],
        "rest": lambda: [base, ~numerator],
    }
    return select(Ticket.id).where(*conds, *pick[part]())


def _narrow(
    session: Session, scope: Scope, key: str | None, period: Period
) -> tuple[str | None, str | None, list[Cond], Period]:
    """The scope and period of a table row, and any condition of its own (category, channel)."""
    if key is None or key == "total":
        return scope.area_code, scope.unit_code, [], period
    what, _, code = key.partition(":")
    if what == "unit":
        return scope.area_code, code, [], period
    if what == "area":
        return code, scope.unit_code, [], period
    if what == "channel":
        return scope.area_code, scope.unit_code, [Ticket.channel == code], period
    if what == "category":
        if not code:
            return scope.area_code, scope.unit_code, [Ticket.category_id.is_(None)], period
        node = org_tree.categories(session).by_code(code, "category")
        sub = select(Category.id).where(Category.path.startswith(node.path, autoescape=True))
        return scope.area_code, scope.unit_code, [Ticket.category_id.in_(sub)], period
    if what in ("day", "week", "month", "range"):
        try:
            part = Period.parse(code)
        except PeriodError as e:
            raise Invalid(str(e), field="key") from None
        start, end = max(part.start, period.start), min(part.end, period.end)
        if end <= start:
            raise Invalid(f"{key} lies outside the period {period}", field="key")
        return scope.area_code, scope.unit_code, [], Period(start, end, part.grain)
    raise Invalid(f"unknown row key {key!r}", field="key")
