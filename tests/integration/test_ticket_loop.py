"""The ticket engine's whole loop at the service level, one transaction per step as the web handlers run it:
intake → dispatch → sign → contact, arrive, feedback → request close → review → close → follow-up → rating.

Each step is checked where it lands: ticket and assignment states, stamps and counters, the timeline (in order,
with actors and states) and the events handed to subscribers, read back in fresh transactions. A ticket closed
without a follow-up is rated by the citizen. Runs on SQLite and on PostgreSQL (the `db` fixture).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from minsheng.domain.clock import FixedClock
from minsheng.domain.roles import Actor, Role
from minsheng.domain.states import AssignmentState, Rating, TicketState
from minsheng.domain.transitions import AssignmentAction
from minsheng.services import schemas as s
from minsheng.services.errors import Conflict
from minsheng.services.tickets import DomainEvent, TicketEngine
from minsheng.services.uow import reading, writing
from minsheng.storage.db import Database
from minsheng.storage.models import Assignment, Ticket, TimelineEvent, Unit, User
from tests.factories import small_city

MIN = timedelta(minutes=1)


class Loop:
    """The engine with a recording subscriber, and the actors of the small city."""

    def __init__(self, db: Database, clock: FixedClock) -> None:
        self.db, self.clock = db, clock
        self.engine = TicketEngine()
        self.published: list[tuple[str, str | None]] = []
        self.engine.subscribers.append(self._record)

    def _record(self, session: Session, ev: DomainEvent, now: object) -> None:
        assert session.in_transaction()
        self.published.append((ev.action, ev.assignment.unit.code if ev.assignment else None))

    def actor(self, username: str) -> Actor:
        with reading(self.db) as session:
            u = session.scalars(select(User).where(User.username == username)).one()
            return Actor(Role(u.role), user_id=u.id, unit_id=u.unit_id, name=u.display_name)

    def ticket(self, method: str, username: str, number: str, *args: object) -> None:
        with writing(self.db) as session:
            getattr(self.engine, method)(session, self.actor(username), number, *args, self.clock.now())

    def unit_step(self, username: str, number: str, action: AssignmentAction, params: s.Checked) -> None:
        actor = self.actor(username)
        with writing(self.db) as session:
            a_id = session.scalar(
                select(Assignment.id)
                .join(Ticket, Ticket.id == Assignment.ticket_id)
                .where(Ticket.number == number, Assignment.unit_id == actor.unit_id)
            )
            assert a_id is not None
            self.engine.assignment_step(session, actor, a_id, action, params, self.clock.now())

    def states(self, number: str) -> tuple[str, dict[str, str]]:
        with reading(self.db) as session:
            t = session.scalars(select(Ticket).where(Ticket.number == number)).one()
            return t.state, {a.unit.code: a.state for a in t.assignments}


def test_the_whole_loop_through_the_engine(db: Database, clock: FixedClock) -> None:
    with writing(db) as session:
        small_city(session, clock.now())
    loop = Loop(db, clock)
    t0 = clock.now()

    with writing(db) as session:
        req = s.IntakeRequest(
            detail="幸福路3号路灯坏了一个星期，晚上很黑",
            category_code="010101",
            area_code="C0101",
            citizen_phone="13800138000",
        )
        t, code, created = loop.engine.intake(session, loop.actor("operator1"), req, clock.now())
        number = t.number
    assert created and code is not None and len(code) == 10
    assert loop.states(number) == (TicketState.ACCEPTED.value, {})

    clock.advance(5 * MIN)
    loop.ticket("dispatch", "dispatcher1", number, s.Dispatch(lead_unit="CGJ", assist_units=["XFL"]))
    assert loop.states(number) == ("dispatched", {"CGJ": "pending", "XFL": "pending"})

    clock.advance(5 * MIN)
    loop.unit_step("h_cgj", number, AssignmentAction.SIGN, s.WithNote())
    loop.unit_step("h_xfl", number, AssignmentAction.SIGN, s.WithNote())
    assert loop.states(number) == ("in_progress", {"CGJ": "signed", "XFL": "signed"})

    clock.advance(10 * MIN)
    loop.unit_step("h_cgj", number, AssignmentAction.CONTACT, s.Contact(method="phone"))
    clock.advance(30 * MIN)
    loop.unit_step("h_cgj", number, AssignmentAction.ARRIVE, s.WithNote(note="已到现场"))
    clock.advance(2 * 60 * MIN)
    loop.unit_step("h_xfl", number, AssignmentAction.FEEDBACK, s.Feedback(text="已配合围挡"))
    loop.unit_step("h_cgj", number, AssignmentAction.FEEDBACK, s.Feedback(text="已更换灯泡"))
    loop.unit_step("h_cgj", number, AssignmentAction.REQUEST_CLOSE, s.RequestClose(summary="已修复"))
    assert loop.states(number) == ("close_requested", {"CGJ": "close_requested", "XFL": "reported"})

    clock.advance(60 * MIN)
    loop.ticket("review", "supervisor1", number, True, "处理到位")
    assert loop.states(number) == ("closed", {"CGJ": "closed", "XFL": "closed"})

    clock.advance(24 * 60 * MIN)
    loop.ticket("follow_up_unreached", "followup1", number, s.WithNote(note="无人接听"))
    assert loop.states(number)[0] == TicketState.CLOSED.value
    clock.advance(60 * MIN)
    loop.ticket("follow_up", "followup1", number, s.FollowUp(rating=Rating.SATISFIED, comment="很快"))

    with reading(db) as session:
        t = session.scalars(select(Ticket).where(Ticket.number == number)).one()
        units = {a.unit.code: a for a in t.assignments}
        events = list(
            session.scalars(
                select(TimelineEvent).where(TimelineEvent.ticket_id == t.id).order_by(TimelineEvent.seq)
            )
        )
        cgj = session.scalar(select(Unit.id).where(Unit.code == "CGJ"))
    assert (t.state, t.rating, t.reopen_count, t.return_count) == ("rated", "satisfied", 0, 0)
    assert t.dispatched_at == t0 + 5 * MIN and t.closed_at == t0 + 230 * MIN and t.rated_at == t0 + 1730 * MIN
    assert t.lead_unit_id == cgj and t.event_count == len(events)
    lead = units["CGJ"]
    assert (lead.role, lead.state) == ("lead", AssignmentState.CLOSED.value)
    assert (lead.signed_at, lead.contacted_at, lead.arrived_at) == (
        t0 + 10 * MIN,
        t0 + 20 * MIN,
        t0 + 50 * MIN,
    )
    assert lead.reported_at == lead.close_requested_at == t0 + 170 * MIN and lead.closed_at == t0 + 230 * MIN
    assert units["XFL"].role == "assist" and units["XFL"].reported_at == t0 + 170 * MIN

    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert [(e.action, e.actor_role, e.from_state, e.to_state) for e in events] == [
        ("intake", "operator", None, "accepted"),
        ("dispatch", "dispatcher", "accepted", "dispatched"),
        ("sign", "handler", "pending", "signed"),
        ("lead_signed", "system", "dispatched", "in_progress"),
        ("sign", "handler", "pending", "signed"),
        ("contact", "handler", "signed", "signed"),
        ("arrive", "handler", "signed", "signed"),
        ("feedback", "handler", "signed", "reported"),
        ("feedback", "handler", "signed", "reported"),
        ("request_close", "handler", "reported", "close_requested"),
        ("lead_requested_close", "system", "in_progress", "close_requested"),
        ("review_accept", "supervisor", "close_requested", "closed"),
        ("close", "system", "close_requested", "closed"),
        ("close", "system", "reported", "closed"),
        ("follow_up_unreached", "followup", "closed", "closed"),
        ("follow_up", "followup", "closed", "rated"),
    ]
    assert all(e.machine == ("assignment" if e.assignment_id else "ticket") for e in events)
    assert events[-1].payload["rating"] == "satisfied" and events[7].payload["text"] == "已配合围挡"
    # Subscribers saw every step, in the same order, inside its transaction; the new assignments too.
    assert loop.published == [
        ("intake", None),
        ("dispatch", None),
        ("assignment_created", "CGJ"),
        ("assignment_created", "XFL"),
        *[(e.action, code) for e, code in _units_of(events[2:], units)],
    ]


def test_a_closed_ticket_is_rated_by_the_citizen(db: Database, clock: FixedClock) -> None:
    with writing(db) as session:
        small_city(session, clock.now())
    loop = Loop(db, clock)
    with writing(db) as session:
        req = s.IntakeRequest(detail="和平街道菜市场门口垃圾堆积", area_code="C0201")
        number = loop.engine.intake(session, loop.actor("operator1"), req, clock.now())[0].number
    loop.ticket("dispatch", "dispatcher1", number, s.Dispatch(lead_unit="HBJ"))
    for action, params in (
        (AssignmentAction.SIGN, s.WithNote()),
        (AssignmentAction.FEEDBACK, s.Feedback(text="已清运")),
        (AssignmentAction.REQUEST_CLOSE, s.RequestClose(summary="已清运完毕")),
    ):
        clock.advance(MIN)
        loop.unit_step("h_hbj", number, action, params)
    loop.ticket("review", "supervisor1", number, True, None)
    clock.advance(60 * MIN)
    with writing(db) as session:
        rate = s.Rate(rating=Rating.BASICALLY_SATISFIED)
        loop.engine.rate(session, Actor.citizen(), number, rate, clock.now())
    assert loop.states(number) == ("rated", {"HBJ": "closed"})
    with reading(db) as session:
        t = session.scalars(select(Ticket).where(Ticket.number == number)).one()
        last = session.scalars(
            select(TimelineEvent).where(TimelineEvent.ticket_id == t.id).order_by(TimelineEvent.seq.desc())
        ).first()
    assert (t.rating, t.rated_at) == ("basically_satisfied", clock.now())
    assert last is not None and (last.action, last.actor_role, last.to_state) == ("rate", "citizen", "rated")


def _units_of(
    events: list[TimelineEvent], units: dict[str, Assignment]
) -> list[tuple[TimelineEvent, str | None]]:
    by_id = {a.id: code for code, a in units.items()}
    return [(e, by_id.get(e.assignment_id) if e.assignment_id else None) for e in events]


def test_a_returned_ticket_is_not_dispatched_again_to_a_unit_still_on_it(
    db: Database, clock: FixedClock
) -> None:
    """The lead returns; the assisting unit's assignment stays active. Dispatching to that unit again (as lead
    or assist) is a conflict with a clear reason, not a broken unique index; another lead is accepted and the
    assist keeps its assignment; a redispatch cancels it first and may then name it."""
    with writing(db) as session:
        small_city(session, clock.now())
    loop = Loop(db, clock)
    with writing(db) as session:
        req = s.IntakeRequest(detail="幸福路3号路灯坏了一个星期", category_code="010101", area_code="C0101")
        number = loop.engine.intake(session, loop.actor("operator1"), req, clock.now())[0].number
    loop.ticket("dispatch", "dispatcher1", number, s.Dispatch(lead_unit="CGJ", assist_units=["XFL"]))
    clock.advance(MIN)
    loop.unit_step("h_cgj", number, AssignmentAction.RETURN, s.WithReason(reason="非本单位职责"))
    assert loop.states(number) == ("returned", {"CGJ": "returned", "XFL": "pending"})
    for again in (s.Dispatch(lead_unit="XFL"), s.Dispatch(lead_unit="HBJ", assist_units=["XFL"])):
        with pytest.raises(Conflict, match="XFL"):
            loop.ticket("dispatch", "dispatcher1", number, again)
    assert loop.states(number) == ("returned", {"CGJ": "returned", "XFL": "pending"})
    loop.ticket("dispatch", "dispatcher1", number, s.Dispatch(lead_unit="HBJ"))
    assert loop.states(number) == ("dispatched", {"CGJ": "returned", "XFL": "pending", "HBJ": "pending"})
    loop.ticket("dispatch", "dispatcher1", number, s.Redispatch(lead_unit="XFL", reason="改由消防配合牵头"))
    with reading(db) as session:
        t = session.scalars(select(Ticket).where(Ticket.number == number)).one()
        active = sorted((a.unit.code, a.role, a.state) for a in t.assignments if a.state == "pending")
    assert active == [("XFL", "lead", "pending")]
