"""A tiny harness for clock scenarios: the real engine + clockwork on the `db` fixture, the worker run by hand."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select

from minsheng.domain.clock import FixedClock
from minsheng.domain.roles import Actor, Role
from minsheng.domain.transitions import AssignmentAction
from minsheng.services import schemas as s
from minsheng.services.background import RunStats, run_once
from minsheng.services.tickets import TicketEngine
from minsheng.services.timelimits.config import TimeLimitConfig
from minsheng.services.timelimits.subscriber import Clockwork
from minsheng.services.uow import reading, writing
from minsheng.storage.db import Database
from minsheng.storage.models import Assignment, Ticket, TimelineEvent, Unit, User
from minsheng.storage.timelimit_tables import Notification, OutboxMessage, Timer

CLOCK_ACTIONS = ("warning", "overdue", "press", "escalation")


@dataclass
class Harness:
    db: Database
    clock: FixedClock
    engine: TicketEngine
    clockwork: Clockwork

    @classmethod
    def build(cls, db: Database, clock: FixedClock, config: TimeLimitConfig) -> Harness:
        engine = TicketEngine()
        cw = Clockwork(engine, config)
        engine.subscribers.append(cw)
        return cls(db, clock, engine, cw)

    def intake_and_dispatch(self, lead: str = "ZJJ", assists: Iterable[str] = (), **req: Any) -> str:
        body = {"detail": "幸福路3号路灯坏了，晚上很黑", "citizen_phone": "13800138000", **req}
        with writing(self.db) as session:
            t, _, _ = self.engine.intake(
                session, Actor(Role.OPERATOR, name="话务员"), s.IntakeRequest(**body), self.clock.now()
            )
            self.engine.dispatch(
                session,
                Actor(Role.DISPATCHER, name="派单员"),
                t.number,
                s.Dispatch(lead_unit=lead, assist_units=list(assists)),
                self.clock.now(),
            )
            return t.number

    def step(self, number: str, unit: str, action: str, params: BaseModel | None = None) -> None:
        with writing(self.db) as session:
            a = self.assignment(session, number, unit)
            actor = Actor(Role.HANDLER, unit_id=a.unit_id, name="承办人")
            self.engine.assignment_step(
                session, actor, a.id, AssignmentAction(action), params or s.WithNote(), self.clock.now()
            )

    def ticket_step(
        self, method: str, number: str, *args: Any, role: Role = Role.SUPERVISOR, unit: str | None = None
    ) -> Any:
        with writing(self.db) as session:
            unit_id = session.scalar(select(Unit.id).where(Unit.code == unit)) if unit else None
            actor = Actor(role, unit_id=unit_id, name="督办员")
            return getattr(self.engine, method)(session, actor, number, *args, self.clock.now())

    @staticmethod
    def assignment(session: Any, number: str, unit: str) -> Assignment:
        q = (
            select(Assignment)
            .join(Ticket, Ticket.id == Assignment.ticket_id)
            .join(Unit, Unit.id == Assignment.unit_id)
            .where(Ticket.number == number, Unit.code == unit)
            .order_by(Assignment.id.desc())
        )
        return session.scalars(q).first()

    def run(self, **kw: Any) -> RunStats:
        return run_once(self.db, self.clock.now(), clockwork=self.clockwork, **kw)

    def clock_events(self, number: str) -> list[tuple[str, str, str]]:
        """(action, step, target) of the clock's timeline events, in order."""
        with reading(self.db) as session:
            tid = session.scalar(select(Ticket.id).where(Ticket.number == number))
            rows = session.scalars(
                select(TimelineEvent)
                .where(TimelineEvent.ticket_id == tid, TimelineEvent.action.in_(CLOCK_ACTIONS))
                .order_by(TimelineEvent.seq)
            )
            return [(e.action, e.payload.get("step", ""), e.payload.get("target", "")) for e in rows]

    def inbox_of(self, username: str) -> list[str]:
        with reading(self.db) as session:
            uid = session.scalar(select(User.id).where(User.username == username))
            rows = session.scalars(
                select(Notification).where(Notification.user_id == uid).order_by(Notification.id)
            )
            return [n.kind for n in rows]

    def outbox(self, channel: str | None = None) -> list[OutboxMessage]:
        with reading(self.db) as session:
            q = select(OutboxMessage).order_by(OutboxMessage.id)
            if channel:
                q = q.where(OutboxMessage.channel == channel)
            return list(session.scalars(q))

    def ticket(self, number: str) -> Ticket:
        with reading(self.db) as session:
            return session.scalars(select(Ticket).where(Ticket.number == number)).one()

    def pending_timers(self, number: str) -> list[tuple[str, str, datetime]]:
        with reading(self.db) as session:
            tid = session.scalar(select(Ticket.id).where(Ticket.number == number))
            rows = session.scalars(
                select(Timer)
                .where(Timer.ticket_id == tid, Timer.fired_at.is_(None))
                .order_by(Timer.due_at, Timer.id)
            )
            return [(t.kind, t.step, t.due_at) for t in rows]
