"""A small city with one ticket dispatched to 城管局 (signed), the engine wired as bootstrap wires it, and the
people of the small city as principals."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from minsheng.domain.clock import FixedClock
from minsheng.domain.roles import Role
from minsheng.domain.transitions import AssignmentAction
from minsheng.services import schemas as s
from minsheng.services import supervision
from minsheng.services.auth import Principal
from minsheng.services.tickets import TicketEngine
from minsheng.services.uow import reading, writing
from minsheng.storage.db import Database
from minsheng.storage.models import Assignment, Ticket, TimelineEvent, Unit, User
from minsheng.storage.timelimit_tables import Notification
from tests.factories import small_city

MIN = timedelta(minutes=1)


class City:
    def __init__(self, db: Database, clock: FixedClock) -> None:
        self.db, self.clock = db, clock
        self.engine = TicketEngine()
        self.engine.subscribers.extend(supervision.subscribers(self.engine))
        with writing(db) as session:
            small_city(session, clock.now())

    def who(self, username: str) -> Principal:
        with reading(self.db) as session:
            u = session.scalars(select(User).where(User.username == username)).one()
            unit = session.get(Unit, u.unit_id) if u.unit_id else None
            return Principal(
                u.id, u.username, u.display_name, Role(u.role), u.unit_id, unit.name if unit else None
            )

    def ticket(self, unit: str = "CGJ", *, sign: bool = True, confidential: bool = False) -> str:
        with writing(self.db) as session:
            req = s.IntakeRequest(
                detail="幸福路3号路灯坏了一个星期，晚上很黑",
                category_code="010101",
                area_code="C0101",
                citizen_phone="13800138000",
                confidential=confidential,
            )
            t, _, _ = self.engine.intake(session, self.who("operator1").actor, req, self.clock.now())
            number = t.number
        self.clock.advance(MIN)
        with writing(self.db) as session:
            self.engine.dispatch(
                session, self.who("dispatcher1").actor, number, s.Dispatch(lead_unit=unit), self.clock.now()
            )
        if sign:
            self.unit_step(number, unit, AssignmentAction.SIGN, s.WithNote())
        return number

    def unit_step(self, number: str, unit: str, action: AssignmentAction, params: s.Checked) -> None:
        handler = {"CGJ": "h_cgj", "ZJJ": "h_zjj", "HBJ": "h_hbj", "XFL": "h_xfl"}[unit]
        who = self.who(handler)
        self.clock.advance(MIN)
        with writing(self.db) as session:
            a_id = session.scalar(
                select(Assignment.id)
                .join(Ticket, Ticket.id == Assignment.ticket_id)
                .where(Ticket.number == number, Assignment.unit_id == who.unit_id)
                .order_by(Assignment.id.desc())
            )
            assert a_id is not None
            self.engine.assignment_step(session, who.actor, a_id, action, params, self.clock.now())

    def close(self, number: str, unit: str = "CGJ") -> None:
        """Contact, arrive, feedback, ask to close, and the supervisor accepts."""
        self.unit_step(number, unit, AssignmentAction.CONTACT, s.Contact(method="phone"))
        self.unit_step(number, unit, AssignmentAction.FEEDBACK, s.Feedback(text="已修复路灯"))
        self.unit_step(number, unit, AssignmentAction.REQUEST_CLOSE, s.RequestClose(summary="已修复"))
        with writing(self.db) as session:
            self.engine.review(
                session, self.who("supervisor1").actor, number, True, "处理到位", self.clock.now()
            )

    def actions(self, number: str) -> list[str]:
        with reading(self.db) as session:
            q = (
                select(TimelineEvent.action)
                .join(Ticket, Ticket.id == TimelineEvent.ticket_id)
                .where(Ticket.number == number)
                .order_by(TimelineEvent.seq)
            )
            return list(session.scalars(q))

    def inbox(self, username: str, kind: str, number: str | None = None) -> list[Notification]:
        """The notices of ``kind`` the person got (about ticket ``number``)."""
        who = self.who(username)
        with reading(self.db) as session:
            q = select(Notification).where(Notification.kind == kind)
            if number is not None:
                q = q.join(Ticket, Ticket.id == Notification.ticket_id).where(Ticket.number == number)
            rows = list(session.scalars(q))
            return [
                n
                for n in rows
                if n.user_id == who.user_id or (n.user_id is None and n.unit_id == who.unit_id)
            ]
