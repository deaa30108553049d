"""黔西's repeated-failure ladder at work: a unit's n-th failure within the period goes up the n-th rung.

A failure is a missed deadline (its overdue timer, fired by `firing`) or, when the city counts them, a unit
returning a ticket (the `Clockwork` subscriber). The rules come from the store (`city.failure_rules`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from minsheng.domain.roles import Actor, Role
from minsheng.storage.models import Assignment, Ticket
from minsheng.storage.timelimit_tables import UnitFailure
from minsheng.timelimits.escalation import RepeatedFailureLadder

if TYPE_CHECKING:
    from minsheng.services.timelimits.messages import Pass
    from minsheng.services.timelimits.subscriber import Clockwork

STEP_LABELS = {
    "sign": "签收",
    "contact": "联系群众",
    "arrive": "到场",
    "instruct": "处置意见",
    "feedback": "反馈",
    "resolve": "办结",
    "return": "退回",
}
TARGET_LABELS = {
    "unit": "承办单位",
    "unit_leader": "单位领导",
    "district_leader": "区县领导",
    "city_leader": "市领导",
    "deputy_mayor": "分管副市长",
    "mayor": "市长",
    "duty_commander": "当日轮值指挥长",
}
CLOCK_ACTOR = Actor(role=Role.SYSTEM, name="时限监控")


def repeated_failure(
    cw: Clockwork,
    session: Session,
    p: Pass,
    ladder: RepeatedFailureLadder,
    t: Ticket,
    a: Assignment,
    step: str,
    at: datetime,
    key: str,
    ctx: Mapping[str, Any],
) -> None:
    """Record the unit's failure at ``at`` (once per ``key``), note it on the timeline and notify the rung."""
    if session.scalar(select(UnitFailure.id).where(UnitFailure.timer_key == key)) is not None:
        return
    previous = list(
        session.scalars(
            select(UnitFailure.at).where(
                UnitFailure.unit_id == a.unit_id, UnitFailure.at > at - ladder.period
            )
        )
    )
    number = ladder.failure_number(previous, at)
    target = ladder.target_for_failure(previous, at)
    session.add(
        UnitFailure(
            unit_id=a.unit_id,
            ticket_id=t.id,
            assignment_id=a.id,
            step=step,
            number=number,
            target=target,
            timer_key=key,
            at=at,
        )
    )
    payload = {
        "step": step,
        "step_label": STEP_LABELS.get(step, step),
        "kind": "repeated_failure",
        "repeated_failure": number,
        "period_days": ladder.period.total_seconds() / 86400,
        "target": target,
        "target_label": TARGET_LABELS.get(target, target),
        "timer": key,
        "unit": a.unit.code,
    }
    cw.engine.record_note(session, t, CLOCK_ACTOR, "escalation", p.now, payload, assignment=a)
    esc = {
        **ctx,
        "overdue_by": p.now - at,
        "target_label": payload["target_label"],
        "level_name": f"该单位{ladder.period.total_seconds() / 86400:g}天内第{number}次超时",
    }
    cw.messages.notify(session, p, t, a.unit, target, "escalation", esc, f"{key}:repeated")
