"""One deadline rule set: for the same ticket events, the time-limit subscriber (deadlines kept as each event
happens) and the demo seeder (deadlines planned afterwards from the timelines, `plan_open_deadlines`) leave the
same deadlines. Both apply `minsheng.timelimits.rules`; a change to either side's handling alone breaks this test.

The events cover every rule: a lead's and an assisting unit's steps, a return and redispatch, an approved
extension, a pause over a weekend and its resume, a rejected closing, a dissatisfied rating's reopen, a ticket
left paused and one left unsigned. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import delete, select, update

from minsheng.demo.open_deadlines import plan_open_deadlines
from minsheng.domain.clock import FixedClock
from minsheng.domain.roles import Role
from minsheng.domain.states import ACTIVE_ASSIGNMENT_STATES, Rating
from minsheng.services import schemas as s
from minsheng.services.timelimits.config import TimeLimitConfig
from minsheng.services.uow import reading, writing
from minsheng.storage.db import Database
from minsheng.storage.models import Assignment, Ticket, Unit
from minsheng.storage.timelimit_tables import StepDeadline, Timer
from tests.factories import small_city
from tests.integration.timelimits.helpers import Harness

MIN = timedelta(minutes=1)
HOUR = timedelta(hours=1)


def _walk(h: Harness, clock: FixedClock) -> None:
    """Ticket events touching every deadline rule; every ticket is left open."""
    # The lead signs, contacts and arrives; the assisting unit's signature settles everything it owes.
    joint = h.intake_and_dispatch(lead="CGJ", assists=["XFL"], urgency="urgent")
    clock.advance(5 * MIN)
    h.step(joint, "CGJ", "sign")
    h.step(joint, "XFL", "sign")
    clock.advance(20 * MIN)
    h.step(joint, "CGJ", "contact", s.Contact())
    clock.advance(HOUR)
    h.step(joint, "CGJ", "arrive")

    # Returned, redispatched: the new lead's clock starts at the redispatch, unsigned.
    returned = h.intake_and_dispatch(lead="ZJJ", urgency="urgent")
    clock.advance(10 * MIN)
    h.step(returned, "ZJJ", "return", s.WithReason(reason="非我单位职责"))
    clock.advance(5 * MIN)
    h.ticket_step(
        "dispatch", returned, s.Redispatch(lead_unit="CGJ", reason="按职责改派"), role=Role.DISPATCHER
    )

    # An approved extension, then a pause from Saturday morning to Monday evening, then feedback.
    extended = h.intake_and_dispatch(lead="ZJJ")
    clock.advance(10 * MIN)
    h.step(extended, "ZJJ", "sign")
    h.ticket_step(
        "request_extension",
        extended,
        s.RequestExtension(hours=48, reason="需采购材料"),
        role=Role.HANDLER,
        unit="ZJJ",
    )
    h.ticket_step("decide_extension", extended, s.DecideExtension(approve=True))
    h.ticket_step("pause", extended, s.WithReason(reason="等待群众提供材料"))
    clock.advance(2 * 24 * HOUR + 9 * HOUR)
    h.ticket_step("resume", extended, s.WithNote())
    clock.advance(HOUR)
    h.step(extended, "ZJJ", "feedback", s.Feedback(text="已处理"))

    # Closing rejected: the lead owes a new report and a new result.
    rejected = h.intake_and_dispatch(lead="CGJ")
    clock.advance(30 * MIN)
    h.step(rejected, "CGJ", "sign")
    h.step(rejected, "CGJ", "feedback", s.Feedback(text="已处理"))
    h.step(rejected, "CGJ", "request_close", s.RequestClose(summary="已处理完毕"))
    clock.advance(2 * HOUR)
    h.ticket_step("review", rejected, False, "缺少现场照片")

    # Closed, rated dissatisfied, reopened: fresh feedback and resolve deadlines from the reopen.
    reopened = h.intake_and_dispatch(lead="CGJ", urgency="urgent")
    clock.advance(10 * MIN)
    h.step(reopened, "CGJ", "sign")
    h.step(reopened, "CGJ", "feedback", s.Feedback(text="已处理"))
    h.step(reopened, "CGJ", "request_close", s.RequestClose(summary="已处理完毕"))
    h.ticket_step("review", reopened, True, None)
    clock.advance(24 * HOUR)
    h.ticket_step("follow_up", reopened, s.FollowUp(rating=Rating.DISSATISFIED), role=Role.FOLLOWUP)
    h.ticket_step("reopen", reopened, s.WithReason(reason="群众不满意"), role=Role.FOLLOWUP)

    # Left paused, and left unsigned.
    paused = h.intake_and_dispatch(lead="HBJ")
    clock.advance(HOUR)
    h.step(paused, "HBJ", "sign")
    h.ticket_step("pause", paused, s.WithReason(reason="群众外出"))
    h.intake_and_dispatch(lead="XFL", urgency="emergency")
    clock.advance(3 * HOUR)


class Held(NamedTuple):
    """One step deadline of an open assignment as stored, with the due times mirrored from it."""

    started_at: datetime
    due_at: datetime
    unit: str
    warn_at: tuple[str, ...]
    warn_shares: tuple[float, ...]
    calendar_fallback: bool
    generation: int
    met_at: datetime | None
    sign_due_at: datetime | None
    resolve_due_at: datetime | None
    ticket_resolve_due_at: datetime | None  # the lead's only


Plan = dict[tuple[str, str, int, str], Held]


def _open_deadlines(db: Database) -> Plan:
    """Every open assignment's step deadlines and due times, by (ticket, unit, generation of assignment, step)."""
    active = [x.value for x in ACTIVE_ASSIGNMENT_STATES]
    with reading(db) as session:
        rows = session.execute(
            select(StepDeadline, Ticket.number, Unit.code, Assignment, Ticket.resolve_due_at)
            .join(Assignment, Assignment.id == StepDeadline.assignment_id)
            .join(Ticket, Ticket.id == Assignment.ticket_id)
            .join(Unit, Unit.id == Assignment.unit_id)
            .where(Assignment.state.in_(active))
        ).all()
        plan: Plan = {}
        for d, number, unit, a, ticket_due in rows:
            plan[(number, unit, a.id, d.step)] = Held(
                d.started_at,
                d.due_at,
                d.unit,
                tuple(d.warn_at),
                tuple(d.warn_shares),
                d.calendar_fallback,
                d.generation,
                d.met_at,
                a.sign_due_at,
                a.resolve_due_at,
                ticket_due if a.role == "lead" else None,
            )
    return plan


def test_subscriber_and_seeder_plan_the_same_deadlines(db: Database, clock: FixedClock) -> None:
    with writing(db) as session:
        small_city(session, clock.now())
    config = TimeLimitConfig()
    h = Harness.build(db, clock, config)
    _walk(h, clock)  # from Saturday 09:00 in Shanghai: working-time limits start on Monday
    by_subscriber = _open_deadlines(db)
    steps = {(unit, step) for (_n, unit, _a, step) in by_subscriber}
    assert {("CGJ", "arrive"), ("XFL", "sign"), ("ZJJ", "feedback"), ("CGJ", "resolve")} <= steps
    assert {d.met_at is None for d in by_subscriber.values()} == {True, False}
    assert max(d.generation for d in by_subscriber.values()) >= 1  # reopened and extended

    # The seeder's pass over the same timelines, with nothing the subscriber left behind.
    with writing(db) as session:
        session.execute(delete(Timer))
        session.execute(delete(StepDeadline))
        session.execute(update(Assignment).values(sign_due_at=None, resolve_due_at=None))
        session.execute(update(Ticket).values(resolve_due_at=None))
    deadlines, _timers = plan_open_deadlines(db, clock.now(), config)
    by_seeder = _open_deadlines(db)

    assert deadlines == len(by_subscriber)
    assert by_seeder == by_subscriber
