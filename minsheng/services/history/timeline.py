"""The timeline of an imported ticket: the events the ticket engine would have written for the same loop.

An imported row becomes intake → dispatch to its unit → sign → feedback (the reply) → request to close →
review → close → rating, as far as its state goes, each at the row's historic time, with the same actions,
machines, states and payload keys as `services.ticket_steps` (tests/integration/test_history_import.py
compares the two). A closed row without a unit is answered directly by the centre. Events of the import carry
``imported`` (source and id) on the intake and ``estimated`` on a step whose time the file did not give.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from minsheng.domain.roles import Role
from minsheng.domain.states import AssignmentRole, AssignmentState, TicketState
from minsheng.services.history.rows import HistoricTicket

ACTOR_NAME = "历史导入"
NO_REPLY = "（历史数据未载明答复内容）"


@dataclass
class Step:
    at: datetime
    action: str
    machine: str  # "ticket" | "assignment"
    from_state: str | None
    to_state: str | None
    payload: dict[str, Any]
    unit_step: bool = False  # taken by the unit (actor: a handler of the unit) rather than the centre


@dataclass
class Plan:
    """What one imported ticket looks like: its final states, stamps and the steps of its timeline."""

    state: str
    steps: list[Step] = field(default_factory=list)
    assignment_state: str | None = None
    stamps: dict[str, datetime] = field(default_factory=dict)  # assignment's signed_at, reported_at …


def plan(t: HistoricTicket, source: str, unit: tuple[int, str, str] | None) -> Plan:
    """The timeline of ``t`` (whose times are ordered already) when dispatched to ``unit`` (or to none)."""
    times = t.times
    imported: dict[str, Any] = {"source": source, "id": t.source_id}
    if t.estimated:
        imported["estimated"] = list(t.estimated)
    intake = {"channel": t.channel, "kind": t.kind, "urgency": t.urgency, "imported": imported}
    p = Plan(TicketState.ACCEPTED.value)
    p.steps.append(Step(t.created, "intake", "ticket", None, TicketState.ACCEPTED.value, intake))
    if unit is None:
        if t.state == "closed":
            _ticket(
                p, times["closed"], "answer_directly", TicketState.CLOSED, {"answer": t.reply or NO_REPLY}
            )
            _rate(p, t)
        return p
    if t.state == "accepted":
        return p
    _, code, name = unit
    au = {"unit": code, "unit_name": name, "assignment_role": AssignmentRole.LEAD.value}
    dispatch = {"lead_unit": code, "lead_unit_name": name, "assist_units": [], "auto": False}
    _ticket(p, times["dispatched"], "dispatch", TicketState.DISPATCHED, dispatch)
    p.assignment_state = AssignmentState.PENDING.value
    if t.state == "dispatched":
        return p
    _assignment(p, times["signed"], "sign", AssignmentState.SIGNED, dict(au), unit_step=True)
    p.stamps["signed_at"] = times["signed"]
    _lead(p, times["signed"], "lead_signed", TicketState.IN_PROGRESS, code)
    if "replied" in times:
        feedback = {"text": t.reply or NO_REPLY, "attachment_ids": [], **au}
        _assignment(p, times["replied"], "feedback", AssignmentState.REPORTED, feedback, unit_step=True)
        p.stamps["reported_at"] = times["replied"]
    if t.state != "closed":
        return p
    closed = times["closed"]
    summary = {"summary": t.reply or NO_REPLY, **au}
    _assignment(p, closed, "request_close", AssignmentState.CLOSE_REQUESTED, summary, unit_step=True)
    p.stamps["close_requested_at"] = closed
    _lead(p, closed, "lead_requested_close", TicketState.CLOSE_REQUESTED, code)
    _ticket(p, closed, "review_accept", TicketState.CLOSED, {})
    _assignment(p, closed, "close", AssignmentState.CLOSED, dict(au))
    p.stamps["closed_at"] = closed
    _rate(p, t)
    return p


def _ticket(p: Plan, at: datetime, action: str, to: TicketState, payload: dict[str, Any]) -> None:
    p.steps.append(Step(at, action, "ticket", p.state, to.value, payload))
    p.state = to.value


def _lead(p: Plan, at: datetime, action: str, to: TicketState, unit_code: str) -> None:
    # The assignment's id is known only when the rows are written: the writer fills "assignment_id".
    _ticket(p, at, action, to, {"assignment_id": None, "unit": unit_code})


def _assignment(
    p: Plan,
    at: datetime,
    action: str,
    to: AssignmentState,
    payload: dict[str, Any],
    *,
    unit_step: bool = False,
) -> None:
    p.steps.append(Step(at, action, "assignment", p.assignment_state, to.value, payload, unit_step))
    p.assignment_state = to.value


def _rate(p: Plan, t: HistoricTicket) -> None:
    if t.rating and "rated" in t.times:
        _ticket(p, t.times["rated"], "rate", TicketState.RATED, {"rating": t.rating})


def actor_role(step: Step) -> str:
    return Role.HANDLER.value if step.unit_step else Role.SYSTEM.value
