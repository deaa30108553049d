"""Issue 14, loose end of finding 9: what a ticket view offers (`allowed_actions`, the ticket's and each
assignment's) is exactly what the steps accept from that viewer. In each situation of the loop (lead and
assisting units, first receiver, an assist that has not reported, a returned unit, paused, an extension waiting,
rated either way, answered directly) every viewer who may open the ticket tries every step, each in a savepoint
rolled back afterwards, as the API's routes take them: a step is offered if and only if it is accepted.

Before: an assisting unit was offered `request_close` (403), a lead `request_close` before its assists reported
(409), a first receiver `return` (409), and the JSON view offered every role the desk's steps (403)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from minsheng.domain import transitions as tx
from minsheng.domain.clock import FixedClock
from minsheng.domain.roles import Actor, Role
from minsheng.domain.transitions import AssignmentAction, TicketAction
from minsheng.services import queries
from minsheng.services import schemas as s
from minsheng.services.actions import ASSIGNMENT_STEPS, TICKET_STEPS
from minsheng.services.auth import Principal
from minsheng.services.errors import ServiceError
from minsheng.services.tickets import TicketEngine
from minsheng.services.uow import writing
from minsheng.storage.db import Database
from minsheng.storage.models import Assignment, Ticket, Unit, User
from tests.factories import small_city

OP = Actor(Role.OPERATOR, name="话务员")
DISP = Actor(Role.DISPATCHER, name="派单员")
SUP = Actor(Role.SUPERVISOR, name="督办员")
FU = Actor(Role.FOLLOWUP, name="回访员")

TICKET_PARAMS: dict[TicketAction, Callable[[str], BaseModel]] = {
    TicketAction.ANSWER_DIRECTLY: lambda _o: s.AnswerDirectly(answer="已答复群众"),
    TicketAction.TRANSFER: lambda _o: s.Transfer(target="110"),
    TicketAction.DISPATCH: lambda _o: s.Dispatch(lead_unit="HBJ"),
    TicketAction.REDISPATCH: lambda _o: s.Redispatch(lead_unit="HBJ", reason="改派环境局"),
    TicketAction.MARK_REPEAT: lambda other: s.LinkTicket(ticket=other),
    TicketAction.MERGE: lambda other: s.LinkTicket(ticket=other),
    TicketAction.CONFER: lambda _o: s.Conference(decision="会商决定由住建局牵头"),
    TicketAction.PAUSE: lambda _o: s.WithReason(reason="等待配件"),
    TicketAction.RESUME: lambda _o: s.WithNote(),
    TicketAction.REQUEST_EXTENSION: lambda _o: s.RequestExtension(hours=24, reason="需要采购"),
    TicketAction.DECIDE_EXTENSION: lambda _o: s.DecideExtension(approve=True),
    TicketAction.REVIEW_ACCEPT: lambda _o: s.WithNote(),
    TicketAction.REVIEW_REJECT: lambda _o: s.WithReason(reason="缺少照片"),
    TicketAction.FOLLOW_UP: lambda _o: s.FollowUp(rating="satisfied"),
    TicketAction.FOLLOW_UP_UNREACHED: lambda _o: s.WithNote(),
    TicketAction.REOPEN: lambda _o: s.WithReason(reason="群众不满意"),
}
UNIT_PARAMS: dict[AssignmentAction, BaseModel] = {
    AssignmentAction.SIGN: s.WithNote(),
    AssignmentAction.RETURN: s.WithReason(reason="非本单位职责"),
    AssignmentAction.CONTACT: s.Contact(),
    AssignmentAction.ARRIVE: s.WithNote(),
    AssignmentAction.FEEDBACK: s.Feedback(text="已处理"),
    AssignmentAction.REQUEST_CLOSE: s.RequestClose(summary="已办结"),
}
REFUSED = (ServiceError, tx.IllegalTransition, tx.Forbidden)


class City:
    def __init__(self, db: Database, clock: FixedClock) -> None:
        self.db, self.clock, self.engine = db, clock, TicketEngine()

    def now(self) -> datetime:
        self.clock.advance(timedelta(minutes=1))
        return self.clock.now()

    def intake(self, session: Session) -> str:
        req = s.IntakeRequest(detail="幸福路3号路灯坏了，晚上很黑", citizen_phone="13800138000")
        return self.engine.intake(session, OP, req, self.now())[0].number

    def dispatch(self, session: Session, number: str, lead: str, *assist: str, first: bool = False) -> None:
        p = s.Dispatch(lead_unit=lead, assist_units=list(assist), first_receiver=first)
        self.engine.dispatch(session, DISP, number, p, self.now())

    def unit_step(
        self, session: Session, number: str, unit: str, action: str, p: BaseModel | None = None
    ) -> None:
        a = session.scalars(
            select(Assignment)
            .join(Ticket, Ticket.id == Assignment.ticket_id)
            .join(Unit, Unit.id == Assignment.unit_id)
            .where(Ticket.number == number, Unit.code == unit)
            .order_by(Assignment.id.desc())
        ).first()
        assert a is not None
        actor = Actor(Role.HANDLER, unit_id=a.unit_id, name=unit)
        params = p or UNIT_PARAMS[AssignmentAction(action)]
        self.engine.assignment_step(session, actor, a.id, AssignmentAction(action), params, self.now())

    def ticket_step(self, session: Session, actor: Actor, number: str, action: TicketAction, p: Any) -> None:
        TICKET_STEPS[action][1](self.engine, session, actor, number, p, self.now())


def _situations(c: City, session: Session) -> dict[str, str]:
    out: dict[str, str] = {}
    out["new"] = c.intake(session)
    n = out["first receiver lead, assist pending"] = c.intake(session)
    c.dispatch(session, n, "CGJ", "XFL", first=True)
    n = out["lead signed, assist not reported"] = c.intake(session)
    c.dispatch(session, n, "ZJJ", "XFL")
    c.unit_step(session, n, "ZJJ", "sign")
    c.unit_step(session, n, "XFL", "sign")
    n = out["assist reported"] = c.intake(session)
    c.dispatch(session, n, "ZJJ", "XFL")
    for step in ("sign", "contact", "arrive"):
        c.unit_step(session, n, "ZJJ", step)
    c.unit_step(session, n, "XFL", "sign")
    c.unit_step(session, n, "XFL", "feedback")
    n = out["close requested"] = c.intake(session)
    c.dispatch(session, n, "ZJJ")
    c.unit_step(session, n, "ZJJ", "sign")
    c.unit_step(session, n, "ZJJ", "feedback")
    c.unit_step(session, n, "ZJJ", "request_close")
    closed = out["closed"] = c.intake(session)
    c.dispatch(session, closed, "ZJJ")
    c.unit_step(session, closed, "ZJJ", "sign")
    c.unit_step(session, closed, "ZJJ", "feedback")
    c.unit_step(session, closed, "ZJJ", "request_close")
    c.ticket_step(session, SUP, closed, TicketAction.REVIEW_ACCEPT, s.WithNote())
    for rating in ("satisfied", "dissatisfied"):
        n = out[f"rated {rating}"] = c.intake(session)
        c.dispatch(session, n, "ZJJ")
        c.unit_step(session, n, "ZJJ", "sign")
        c.unit_step(session, n, "ZJJ", "feedback")
        c.unit_step(session, n, "ZJJ", "request_close")
        c.ticket_step(session, SUP, n, TicketAction.REVIEW_ACCEPT, s.WithNote())
        c.ticket_step(session, FU, n, TicketAction.FOLLOW_UP, s.FollowUp(rating=rating))
    n = out["answered directly, rated dissatisfied"] = c.intake(session)
    c.ticket_step(session, OP, n, TicketAction.ANSWER_DIRECTLY, s.AnswerDirectly(answer="已答复"))
    c.ticket_step(session, FU, n, TicketAction.FOLLOW_UP, s.FollowUp(rating="dissatisfied"))
    n = out["returned by CGJ, redispatched to ZJJ with HBJ"] = c.intake(session)
    c.dispatch(session, n, "CGJ")
    c.unit_step(session, n, "CGJ", "return")
    c.ticket_step(session, DISP, n, TicketAction.DISPATCH, s.Dispatch(lead_unit="ZJJ", assist_units=["HBJ"]))
    c.unit_step(session, n, "ZJJ", "sign")
    n = out["paused"] = c.intake(session)
    c.dispatch(session, n, "ZJJ", "XFL")
    c.unit_step(session, n, "ZJJ", "sign")
    zjj = Actor(Role.HANDLER, unit_id=_unit_id(session, "ZJJ"), name="ZJJ")
    c.ticket_step(session, zjj, n, TicketAction.PAUSE, s.WithReason(reason="等待配件"))
    n = out["extension waiting"] = c.intake(session)
    c.dispatch(session, n, "ZJJ")
    c.unit_step(session, n, "ZJJ", "sign")
    c.ticket_step(session, zjj, n, TicketAction.REQUEST_EXTENSION, s.RequestExtension(hours=8, reason="采购"))
    return out


def _unit_id(session: Session, code: str) -> int:
    uid = session.scalar(select(Unit.id).where(Unit.code == code))
    assert uid is not None
    return uid


def _principals(session: Session) -> list[Principal]:
    return [
        Principal(u.id, u.username, u.display_name, Role(u.role), u.unit_id, u.unit.name if u.unit else None)
        for u in session.scalars(select(User).order_by(User.username))
    ]


def _accepted(session: Session, take: Callable[[], Any]) -> bool:
    sp = session.begin_nested()
    try:
        take()
        session.flush()
        return True
    except REFUSED:
        return False
    finally:
        sp.rollback()
        session.expire_all()  # what the rolled-back step changed in loaded rows is read again


def _check(
    c: City, session: Session, number: str, other: str, who: Principal, tried: list[bool]
) -> list[str]:
    """Disagreements between what `who` is offered on ticket `number` and what the steps accept; `tried` gets
    whether each step tried was accepted."""
    try:
        view = queries.ticket_view(session, queries.ticket_for(session, who, number, past=True), who)
    except ServiceError:
        return []  # the viewer cannot open the ticket: nothing is offered to it
    wrong = []
    for action in TICKET_STEPS:

        def take(action: TicketAction = action) -> None:
            queries.ticket_for(session, who, number)  # as the API's route does first
            c.ticket_step(session, who.actor, number, action, TICKET_PARAMS[action](other))

        offered, ok = action.value in view["allowed_actions"], _accepted(session, take)
        tried.append(ok)
        if offered != ok:
            wrong.append(f"{who.username}: ticket {action.value} offered={offered} accepted={ok}")
    for a in view["assignments"]:
        for unit_action in ASSIGNMENT_STEPS:

            def step(aid: int = a["id"], act: AssignmentAction = unit_action) -> None:
                c.engine.assignment_step(session, who.actor, aid, act, UNIT_PARAMS[act], c.clock.now())

            offered, ok = unit_action.value in a["allowed_actions"], _accepted(session, step)
            tried.append(ok)
            if offered != ok:
                wrong.append(
                    f"{who.username}: {a['unit_code']} ({a['role']}, {a['state']}) {unit_action.value} "
                    f"offered={offered} accepted={ok}"
                )
    return wrong


def test_every_step_offered_is_accepted_and_every_refused_one_is_not_offered(
    db: Database, clock: FixedClock
) -> None:
    if not db.is_sqlite:
        # The rules are Python over rows already loaded, the same on both stores; the ~3,000 savepoints cost
        # 15-70 s on PostgreSQL on the CI host. The steps themselves run on PostgreSQL in test_ticket_loop and
        # the HTTP tests, and the request_close case below runs on both.
        pytest.skip("store-independent rules: the full matrix runs on SQLite")
    c = City(db, clock)
    with writing(db) as session:
        small_city(session, clock.now())
        situations = _situations(c, session)
        other = c.intake(session)
    wrong: dict[str, list[str]] = {}
    tried: list[bool] = []
    with writing(db) as session:
        people = _principals(session)
        for name, number in situations.items():
            for who in people:
                found = _check(c, session, number, other, who, tried)
                if found:
                    wrong.setdefault(name, []).extend(found)
        session.rollback()
    assert not wrong, "\n".join(f"{k}:\n  " + "\n  ".join(v) for k, v in wrong.items())
    # The matrix did exercise both answers (a broken helper would refuse everything).
    assert len(tried) > 1000 and tried.count(True) > 100, (len(tried), tried.count(True))


def test_an_assisting_unit_is_not_offered_request_close(db: Database, clock: FixedClock) -> None:
    """The case the soak met 200 times (409/403 on request_close), as the JSON view shows it."""
    c = City(db, clock)
    with writing(db) as session:
        small_city(session, clock.now())
        number = c.intake(session)
        c.dispatch(session, number, "ZJJ", "XFL")
        c.unit_step(session, number, "ZJJ", "sign")
        c.unit_step(session, number, "XFL", "sign")
        people = {p.username: p for p in _principals(session)}
        t = queries.ticket_by_number(session, number)
        for who in ("h_xfl", "h_zjj"):
            view = queries.ticket_view(session, t, people[who])
            offered = {a["unit_code"]: a["allowed_actions"] for a in view["assignments"]}
            mine = "XFL" if who == "h_xfl" else "ZJJ"
            assert "request_close" not in offered[mine], (who, offered)
            assert "feedback" in offered[mine]
            assert all(not v for k, v in offered.items() if k != mine)  # nothing on another unit's part
