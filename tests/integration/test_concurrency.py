"""Real parallel connections: exactly one success and one clear conflict; numbers unique; idempotent intake."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from sqlalchemy import func, select

from minsheng.domain.clock import FixedClock
from minsheng.domain.roles import Actor, Role
from minsheng.domain.transitions import AssignmentAction, IllegalTransition
from minsheng.services import schemas as s
from minsheng.services.tickets import TicketEngine, submit
from minsheng.storage.db import Database
from minsheng.storage.models import Assignment, Ticket, TimelineEvent, Unit, User
from tests.factories import small_city

DISPATCHER = Actor(role=Role.DISPATCHER, name="派单员")


def _setup(db: Database, clock: FixedClock) -> tuple[TicketEngine, str]:
    engine = TicketEngine()
    with db.write_sessions() as session, session.begin():
        small_city(session, clock.now())
    number, _, _ = submit(
        db, engine, Actor(role=Role.OPERATOR), s.IntakeRequest(detail="路灯坏了"), clock.now()
    )
    return engine, number


def _race(n: int, fn: Callable[[int], object]) -> list[object]:
    barrier = threading.Barrier(n)

    def run(i: int) -> object:
        barrier.wait()
        try:
            return fn(i)
        except Exception as e:  # the loser's error is the result we check
            return e

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


def test_two_dispatchers_one_wins(db: Database, clock: FixedClock) -> None:
    engine, number = _setup(db, clock)

    def dispatch(i: int) -> str:
        with db.write_sessions() as session, session.begin():
            engine.dispatch(session, DISPATCHER, number, s.Dispatch(lead_unit=["ZJJ", "CGJ"][i]), clock.now())
        return "ok"

    results = _race(2, dispatch)
    assert results.count("ok") == 1
    loser = next(r for r in results if r != "ok")
    assert isinstance(loser, IllegalTransition) and loser.state == "dispatched"
    with db.read_sessions() as session:
        assert session.scalar(select(func.count()).select_from(Assignment)) == 1
        assert session.scalar(select(func.count()).where(TimelineEvent.action == "dispatch")) == 1


def test_two_handlers_sign_once(db: Database, clock: FixedClock) -> None:
    engine, number = _setup(db, clock)
    with db.write_sessions() as session, session.begin():
        engine.dispatch(session, DISPATCHER, number, s.Dispatch(lead_unit="ZJJ"), clock.now())
    with db.read_sessions() as session:
        unit_id = session.scalar(select(Unit.id).where(Unit.code == "ZJJ"))
        user_id = session.scalar(select(User.id).where(User.username == "h_zjj"))
        assignment_id = session.scalar(select(Assignment.id))
    assert assignment_id is not None
    handler = Actor(role=Role.HANDLER, unit_id=unit_id, user_id=user_id, name="承办人")

    def sign(i: int) -> str:
        with db.write_sessions() as session, session.begin():
            engine.assignment_step(
                session, handler, assignment_id, AssignmentAction.SIGN, s.WithNote(), clock.now()
            )
        return "ok"

    results = _race(2, sign)
    assert results.count("ok") == 1
    assert any(isinstance(r, IllegalTransition) and r.state == "signed" for r in results)
    with db.read_sessions() as session:
        assert session.scalar(select(func.count()).where(TimelineEvent.action == "sign")) == 1
        assert session.scalar(select(Ticket.state)) == "in_progress"


def test_ticket_numbers_unique_under_concurrency(db: Database, clock: FixedClock) -> None:
    engine, _ = _setup(db, clock)
    clock.advance(timedelta(seconds=1))

    def intake(i: int) -> str:
        number, _, _ = submit(
            db, engine, Actor(role=Role.OPERATOR), s.IntakeRequest(detail=f"诉求{i}"), clock.now()
        )
        return number

    numbers = _race(8, intake) + _race(8, intake)
    assert all(isinstance(n, str) for n in numbers), numbers
    assert len(set(numbers)) == 16
    assert sorted(numbers) == [f"20261121{i:05d}" for i in range(2, 18)]


def test_same_idempotency_key_in_parallel_makes_one_ticket(db: Database, clock: FixedClock) -> None:
    engine, _ = _setup(db, clock)
    req = s.IntakeRequest(detail="同一提交", idempotency_key="same-key-123456")

    def intake(i: int) -> tuple[str, bool]:
        number, _, created = submit(db, engine, Actor(role=Role.OPERATOR), req, clock.now())
        return number, created

    results = _race(6, intake)
    assert all(isinstance(r, tuple) for r in results), results
    assert len({r[0] for r in results}) == 1  # type: ignore[index]
    assert sum(1 for r in results if r[1]) == 1  # type: ignore[index]
    with db.read_sessions() as session:
        assert session.scalar(select(func.count()).select_from(Ticket)) == 2


def test_an_upload_waits_for_a_step_on_the_same_ticket(
    db: Database, clock: FixedClock, tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """An attachment's timeline note takes the ticket's next number: it must wait for a step that holds the
    ticket (PostgreSQL lets both run at once), not take the same number and fail."""
    from minsheng.services import attachments
    from minsheng.services.auth import Principal

    engine, number = _setup(db, clock)
    with db.write_sessions() as session, session.begin():
        engine.dispatch(session, DISPATCHER, number, s.Dispatch(lead_unit="CGJ"), clock.now())
    with db.read_sessions() as session:
        sup_id = session.scalars(select(User.id).where(User.username == "supervisor1")).one()
    supervisor = Principal(sup_id, "supervisor1", "督办员一", Role.SUPERVISOR, None, None)
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (4, 4), "red").save(buf, "PNG")
    png = buf.getvalue()
    holding, release, read = threading.Event(), threading.Event(), threading.Event()
    reads: list[str] = []
    ticket_for = attachments.queries.ticket_for

    def ticket_for_then_signal(session, who, n):  # type: ignore[no-untyped-def]
        t = ticket_for(session, who, n)
        reads.append(n)
        if len(reads) == 2:  # the write transaction has read the ticket, before the step commits
            read.set()
        return t

    def step_holding_the_ticket() -> None:
        with db.write_sessions() as session, session.begin():
            engine.confer(session, DISPATCHER, number, s.Conference(decision="城管主办"), clock.now())
            session.flush()
            holding.set()
            release.wait(10)

    def upload() -> object:
        return attachments.upload(
            db, engine, tmp_path, supervisor, number, "p.png", png, 1 << 20, clock.now()
        )

    monkeypatch.setattr(attachments.queries, "ticket_for", ticket_for_then_signal)
    with ThreadPoolExecutor(2) as pool:
        held = pool.submit(step_holding_the_ticket)
        assert holding.wait(10)
        uploaded = pool.submit(upload)
        read.wait(5)  # on SQLite the upload's write transaction waits for the step's, and reads after it
        release.set()
        held.result(timeout=30)
        uploaded.result(timeout=30)
    with db.read_sessions() as session:
        seqs = list(session.scalars(select(TimelineEvent.seq).join(Ticket).where(Ticket.number == number)))
    assert len(seqs) == len(set(seqs))
