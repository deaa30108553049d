"""督办: supervision orders. A supervisor (or leader) raises one on a ticket, or on a unit for a set of its
tickets, with a reason, a level and a deadline for the unit's written answer (督办回复).

Timeline (on every ticket of the order): ``supervision_order`` when raised, ``supervision_answer`` when answered
(``late: true`` after the deadline), ``supervision_overdue`` when the deadline passed unanswered. The last is
fired by `check_overdue_answers` in the worker's pass, exactly once per order even with several workers: on
PostgreSQL the due orders are claimed with ``FOR UPDATE SKIP LOCKED``; on SQLite the write transaction holds the
database's write lock. The order row remembers it (``overdue_at``), read again inside the claiming transaction.

Measures (docs/METRICS.md, "Supervision measures"): `measures` counts, per unit, the orders raised in a period,
those answered, answered on time, and those late (answered after the deadline, or unanswered past it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from minsheng.domain.roles import Actor, Role
from minsheng.services.auth import Principal
from minsheng.services.errors import Conflict, Invalid, NotFound, PermissionDenied
from minsheng.services.queries import may_see, past_viewer
from minsheng.services.supervision.common import LEVELS, allow, clean, holding_unit, tell
from minsheng.services.ticket_core import EngineCore
from minsheng.storage.db import Database
from minsheng.storage.models import Ticket, Unit
from minsheng.storage.supervision_tables import SupervisionOrder, SupervisionOrderTicket

log = logging.getLogger("minsheng.supervision")
CLOCK_ACTOR = Actor(role=Role.SYSTEM, name="督办时限")
MAX_TICKETS = 50
MAX_HOURS = 24 * 30
BATCH = 100


@dataclass(frozen=True)
class NewOrder:
    """What a supervisor fills in: the tickets (one, or several of one unit), the unit (default: the one that
    holds the single ticket), why, how pressing, and how many hours the unit has to answer."""

    tickets: tuple[str, ...]
    reason: str
    hours: float
    level: str = "normal"
    unit: str | None = None


def _tickets(session: Session, numbers: tuple[str, ...]) -> list[Ticket]:
    wanted = list(dict.fromkeys(n.strip() for n in numbers if n and n.strip()))
    if not wanted:
        raise Invalid("name at least one ticket")
    if len(wanted) > MAX_TICKETS:
        raise Invalid(f"at most {MAX_TICKETS} tickets in one order")
    found = {t.number: t for t in session.scalars(select(Ticket).where(Ticket.number.in_(wanted)))}
    missing = [n for n in wanted if n not in found]
    if missing:
        raise NotFound(f"ticket(s) not found: {', '.join(missing[:5])}")
    return [found[n] for n in wanted]


def raise_order(
    session: Session,
    engine: EngineCore,
    who: Principal,
    p: NewOrder,
    now: datetime,
    channels: frozenset[str] = frozenset(),
) -> SupervisionOrder:
    allow(who, "order")
    if p.level not in LEVELS:
        raise Invalid(f"unknown level: {p.level}")
    if not 0 < p.hours <= MAX_HOURS:
        raise Invalid(f"hours must be within (0, {MAX_HOURS}]")
    reason = clean(p.reason, "reason")
    tickets = _tickets(session, p.tickets)
    if p.unit:
        unit = session.scalar(select(Unit).where(Unit.code == p.unit))
        if unit is None:
            raise NotFound(f"unknown unit '{p.unit}'")
    else:
        if len(tickets) != 1:
            raise Invalid("an order on several tickets names their unit")
        unit = holding_unit(session, tickets[0])
        if unit is None:
            raise Invalid("the ticket has not been dispatched to a unit")
    for t in tickets:
        if not any(a.unit_id == unit.id for a in t.assignments):
            raise Invalid(f"ticket {t.number} was never assigned to {unit.name}")
    order = SupervisionOrder(
        unit_id=unit.id,
        level=p.level,
        reason=reason,
        answer_due_at=now + timedelta(hours=p.hours),
        created_at=now,
        created_by_user_id=who.user_id,
        created_by_name=who.display_name,
    )
    session.add(order)
    session.flush()
    payload = {
        "order": order.id,
        "unit": unit.code,
        "unit_name": unit.name,
        "level": p.level,
        "level_label": LEVELS[p.level],
        "reason": reason,
        "answer_due_at": order.answer_due_at.isoformat(),
        "tickets": len(tickets),
    }
    for t in tickets:
        session.add(SupervisionOrderTicket(order_id=order.id, ticket_id=t.id))
        engine.record_note(
            session, engine._lock(session, t.number), who.actor, "supervision_order", now, payload
        )
    numbers = "、".join(t.number for t in tickets[:5]) + ("等" if len(tickets) > 5 else "")
    tell(
        session,
        kind="supervision_order",
        title=f"【{LEVELS[p.level]}督办】{numbers}",
        text=f"{unit.name}：{reason}。请于 {_local(order.answer_due_at)} 前书面回复督办。",
        now=now,
        source=f"supervision-order:{order.id}",
        ticket_id=tickets[0].id if len(tickets) == 1 else None,
        unit=unit,
        leader=True,
        channels=channels,
    )
    return order


def _local(at: datetime) -> str:
    return (at + timedelta(hours=8)).strftime("%Y-%m-%d %H:%M")


def _order_tickets(session: Session, order_id: int) -> list[Ticket]:
    q = (
        select(Ticket)
        .join(SupervisionOrderTicket, SupervisionOrderTicket.ticket_id == Ticket.id)
        .where(SupervisionOrderTicket.order_id == order_id)
        .order_by(Ticket.id)
    )
    return list(session.scalars(q))


def answer_order(
    session: Session,
    engine: EngineCore,
    who: Principal,
    order_id: int,
    text: str,
    now: datetime,
    channels: frozenset[str] = frozenset(),
) -> SupervisionOrder:
    """The unit's written answer (督办回复), once; after the deadline it is marked late."""
    allow(who, "answer")
    answer = clean(text, "answer")
    order = session.scalar(select(SupervisionOrder).where(SupervisionOrder.id == order_id).with_for_update())
    if order is None or order.unit_id != who.unit_id:
        raise NotFound(f"supervision order {order_id} not found")
    if order.answered_at is not None:
        raise Conflict("this order has already been answered")
    order.answered_at = now
    order.answer = answer
    order.answered_by_user_id = who.user_id
    order.answered_by_name = who.display_name
    late = now > order.answer_due_at
    payload = {"order": order.id, "answer": answer, "late": late}
    tickets = _order_tickets(session, order.id)
    for t in tickets:
        engine.record_note(
            session, engine._lock(session, t.number), who.actor, "supervision_answer", now, payload
        )
    if order.created_by_user_id is not None:
        tell(
            session,
            kind="supervision_answer",
            title=f"督办已回复{'（逾期）' if late else ''}：{tickets[0].number if tickets else order.id}",
            text=f"{who.unit_name or ''}回复：{answer[:200]}",
            now=now,
            source=f"supervision-answer:{order.id}",
            ticket_id=tickets[0].id if len(tickets) == 1 else None,
            user_ids=[order.created_by_user_id],
            channels=channels,
        )
    return order


@dataclass
class OverdueStats:
    fired: int = 0


def check_overdue_answers(
    db: Database, now: datetime, engine: EngineCore, channels: frozenset[str] = frozenset()
) -> OverdueStats:
    """Mark the orders unanswered at their deadline, once each: a timeline event on each of their tickets and a
    notice to the unit and its leader. Called on every worker pass."""
    stats = OverdueStats()
    try:
        with db.write_sessions() as session, session.begin():
            q = (
                select(SupervisionOrder)
                .where(
                    SupervisionOrder.answered_at.is_(None),
                    SupervisionOrder.overdue_at.is_(None),
                    SupervisionOrder.answer_due_at <= now,
                )
                .order_by(SupervisionOrder.answer_due_at, SupervisionOrder.id)
                .limit(BATCH)
            )
            if not db.is_sqlite:
                q = q.with_for_update(skip_locked=True)
            for order in session.scalars(q).all():
                _fire_overdue(session, engine, order, now, channels)
                stats.fired += 1
    except Exception:  # a broken row must not stop the worker's pass
        log.exception("supervision deadline check failed")
    return stats


def _fire_overdue(
    session: Session, engine: EngineCore, order: SupervisionOrder, now: datetime, channels: frozenset[str]
) -> None:
    order.overdue_at = now
    unit = session.get(Unit, order.unit_id)
    payload = {"order": order.id, "answer_due_at": order.answer_due_at.isoformat()}
    tickets = _order_tickets(session, order.id)
    for t in tickets:
        engine.record_note(
            session, engine._lock(session, t.number), CLOCK_ACTOR, "supervision_overdue", now, payload
        )
    tell(
        session,
        kind="supervision_overdue",
        title=f"督办回复已逾期：{tickets[0].number if tickets else order.id}",
        text=f"{unit.name if unit else ''}未在 {_local(order.answer_due_at)} 前回复督办，请尽快书面回复。",
        now=now,
        source=f"supervision-overdue:{order.id}",
        ticket_id=tickets[0].id if len(tickets) == 1 else None,
        unit=unit,
        leader=True,
        user_ids=[order.created_by_user_id] if order.created_by_user_id else [],
        channels=channels,
    )


# ----------------------------------------------------------------------------------------------- reading
def order_json(o: SupervisionOrder, numbers: list[str], unit_name: str, now: datetime) -> dict[str, Any]:
    late = (o.answered_at is not None and o.answered_at > o.answer_due_at) or (
        o.answered_at is None and now > o.answer_due_at
    )
    return {
        "id": o.id,
        "unit_id": o.unit_id,
        "unit_name": unit_name,
        "level": o.level,
        "level_label": LEVELS.get(o.level, o.level),
        "reason": o.reason,
        "answer_due_at": o.answer_due_at,
        "created_at": o.created_at,
        "created_by": o.created_by_name,
        "answered_at": o.answered_at,
        "answer": o.answer,
        "answered_by": o.answered_by_name,
        "overdue_at": o.overdue_at,
        "late": late,
        "tickets": numbers,
    }


def list_orders(
    session: Session,
    who: Principal,
    now: datetime,
    *,
    ticket: Ticket | None = None,
    open_only: bool = False,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Orders the person may read: all for the centre's readers, their unit's for a handler; with ``ticket``,
    those covering it. A handler sees the numbers of an order's tickets it may see (never a confidential one it
    no longer holds)."""
    q = select(SupervisionOrder, Unit.name).join(Unit, Unit.id == SupervisionOrder.unit_id)
    if who.role is Role.HANDLER:
        q = q.where(SupervisionOrder.unit_id == who.unit_id)
    elif who.role not in (Role.SUPERVISOR, Role.LEADER, Role.FOLLOWUP, Role.ADMIN):
        raise PermissionDenied(f"role '{who.role.value}' may not read supervision orders")
    if ticket is not None:
        q = q.where(
            SupervisionOrder.id.in_(
                select(SupervisionOrderTicket.order_id).where(SupervisionOrderTicket.ticket_id == ticket.id)
            )
        )
    if open_only:
        q = q.where(SupervisionOrder.answered_at.is_(None))
    rows = session.execute(
        q.order_by(SupervisionOrder.created_at.desc(), SupervisionOrder.id.desc()).limit(limit)
    ).all()
    out = []
    for o, unit_name in rows:
        tickets = _order_tickets(session, o.id)
        numbers = [t.number for t in tickets if may_see(t, who) or (past_viewer(t, who))]
        out.append(order_json(o, numbers, unit_name, now))
    return out


def measures(session: Session, since: datetime, until: datetime, now: datetime) -> list[dict[str, Any]]:
    """Per unit, over the orders raised in [since, until]: orders, answered, answered on time, late (answered
    after the deadline, or unanswered past it at ``now``), and the on-time rate on_time / due, where due counts
    the orders answered or past their deadline (an order still within its time is not yet due)."""
    o = SupervisionOrder
    on_time = func.sum(case((o.answered_at <= o.answer_due_at, 1), else_=0))
    missed = func.sum(case((o.answered_at.is_(None) & (o.answer_due_at <= now), 1), else_=0))
    rows = session.execute(
        select(
            Unit.code,
            Unit.name,
            func.count(o.id),
            func.count(o.answered_at),
            on_time,
            missed,
        )
        .join(Unit, Unit.id == o.unit_id)
        .where(o.created_at >= since, o.created_at <= until)
        .group_by(Unit.code, Unit.name)
        .order_by(func.count(o.id).desc(), Unit.code)
    ).all()
    out = []
    for code, name, n, n_answered, n_ok, n_missed in rows:
        answered, ok = int(n_answered or 0), int(n_ok or 0)
        due = answered + int(n_missed or 0)
        out.append(
            {
                "unit": code,
                "unit_name": name,
                "orders": int(n),
                "answered": answered,
                "answered_on_time": ok,
                "late": due - ok,
                "due": due,
                "on_time_rate": ok / due if due else None,
            }
        )
    return out


__all__ = ["NewOrder", "answer_order", "check_overdue_answers", "list_orders", "measures", "raise_order"]
