"""The console's pages of tickets cost a fixed number of statements, not a few per row: on PostgreSQL every
statement is a round trip, and a per-row query turned a 50-row inbox into 56 of them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, select

from minsheng.domain.clock import FixedClock
from minsheng.domain.roles import Actor, Role
from minsheng.services import queries
from minsheng.services import schemas as s
from minsheng.services.auth import Principal
from minsheng.services.tickets import TicketEngine, submit
from minsheng.storage.db import Database
from minsheng.storage.models import Unit
from tests.factories import small_city

DISPATCHER = Actor(role=Role.DISPATCHER, name="派单员")


@contextmanager
def counting(db: Database) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


def _tickets(db: Database, clock: FixedClock, engine: TicketEngine, n: int, *, dispatch: bool) -> None:
    for i in range(n):
        number, _, _ = submit(
            db, engine, Actor(role=Role.OPERATOR), s.IntakeRequest(detail=f"占道{i}"), clock.now()
        )
        if dispatch:
            with db.write_sessions() as session, session.begin():
                engine.dispatch(
                    session,
                    DISPATCHER,
                    number,
                    s.Dispatch(lead_unit="ZJJ", assist_units=["CGJ"]),
                    clock.now(),
                )


def _statements(db: Database, page: Callable[[Any], list[Any]]) -> int:
    with counting(db) as seen, db.read_sessions() as session:
        page(session)
    return len(seen)


def test_queue_and_inbox_pages_cost_the_same_for_3_or_12_rows(db: Database, clock: FixedClock) -> None:
    engine = TicketEngine()
    with db.write_sessions() as session, session.begin():
        small_city(session, clock.now())
    with db.read_sessions() as session:
        unit_id = session.scalar(select(Unit.id).where(Unit.code == "ZJJ"))
    handler = Principal(1, "h", "承办人", Role.HANDLER, unit_id, "住建局")
    leader = Principal(2, "l", "领导", Role.LEADER, None, None)

    def queue(session: Any) -> list[Any]:
        return [queries.ticket_view(session, t, leader) for t in queries.dispatch_queue(session, limit=50)]

    def inbox(session: Any) -> list[Any]:
        return [
            queries.ticket_view(session, a.ticket, handler, detail=False)
            for a in queries.inbox(session, handler)
        ]

    def tickets(session: Any) -> list[Any]:
        rows, _, _ = queries.list_tickets(session, leader, queries.TicketFilter(), limit=50)
        return [queries.ticket_view(session, t, leader, detail=False) for t in rows]

    counts = []
    for more in (3, 9):
        _tickets(db, clock, engine, more, dispatch=False)
        _tickets(db, clock, engine, more, dispatch=True)
        counts.append({f.__name__: _statements(db, f) for f in (queue, inbox, tickets)})
    assert counts[0] == counts[1], counts
    assert all(n <= 8 for n in counts[1].values()), counts
