"""督办 and 催办 on both stores, with an injected clock: an order is on the timeline and notified; its answer
deadline passing unanswered fires once, even when two workers check at the same moment; a late answer is
marked late; the measures count orders per unit and answers on time; reminders count up and reach the unit's
leader from the second one on."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from minsheng.services.errors import Conflict, Invalid, NotFound, PermissionDenied
from minsheng.services.supervision import orders, reminders
from minsheng.services.uow import reading, writing
from minsheng.storage.models import Ticket
from tests.integration.supervision.helpers import City

HOUR = timedelta(hours=1)


def test_order_deadline_fires_once_and_late_answer_is_marked(city: City) -> None:
    db, clock = city.db, city.clock
    number = city.ticket()
    sup = city.who("supervisor1")
    mark = clock.now()
    with writing(db) as session:
        order = orders.raise_order(
            session,
            city.engine,
            sup,
            orders.NewOrder((number,), "群众反映多次未修复", 24, "key"),
            clock.now(),
        )
        order_id = order.id
    assert city.actions(number)[-1] == "supervision_order"
    assert len(city.inbox("h_cgj", "supervision_order", number)) == 1  # the unit
    assert (
        len(city.inbox("leader1", "supervision_order", number)) == 1
    )  # its leader (the city's, in the small city)

    clock.advance(23 * HOUR)
    assert orders.check_overdue_answers(db, clock.now(), city.engine).fired == 0
    clock.advance(2 * HOUR)
    # Two workers check at the same moment: the order is marked overdue once.
    results: list[int] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        barrier.wait()
        results.append(orders.check_overdue_answers(db, clock.now(), city.engine).fired)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(results) == [0, 1]
    assert orders.check_overdue_answers(db, clock.now() + HOUR, city.engine).fired == 0
    assert city.actions(number).count("supervision_overdue") == 1
    assert len(city.inbox("h_cgj", "supervision_overdue", number)) == 1

    # Another unit cannot answer it; the unit answers late, once.
    with writing(db) as session, pytest.raises(NotFound):
        orders.answer_order(session, city.engine, city.who("h_zjj"), order_id, "不是我们", clock.now())
    with writing(db) as session:
        orders.answer_order(
            session, city.engine, city.who("h_cgj"), order_id, "已安排抢修，明日完成", clock.now()
        )
    with writing(db) as session, pytest.raises(Conflict):
        orders.answer_order(session, city.engine, city.who("h_cgj"), order_id, "再答一次", clock.now())
    assert city.actions(number)[-1] == "supervision_answer"
    assert len(city.inbox("supervisor1", "supervision_answer", number)) == 1
    with reading(db) as session:
        rows = orders.list_orders(session, sup, clock.now(), open_only=False)
        m = orders.measures(session, mark, clock.now(), clock.now())
    assert rows[0]["late"] is True and rows[0]["answer"] == "已安排抢修，明日完成"
    assert m == [
        {
            "unit": "CGJ",
            "unit_name": "市城管局",
            "orders": 1,
            "answered": 1,
            "answered_on_time": 0,
            "late": 1,
            "due": 1,
            "on_time_rate": 0.0,
        }
    ]


def test_order_on_a_unit_for_several_tickets_and_on_time_answer(city: City) -> None:
    db, clock = city.db, city.clock
    a, b, other = city.ticket(), city.ticket(), city.ticket("ZJJ")
    sup = city.who("supervisor1")
    with writing(db) as session, pytest.raises(Invalid):  # 住建局's ticket was never 城管局's
        orders.raise_order(
            session, city.engine, sup, orders.NewOrder((a, other), "批量督办", 8, unit="CGJ"), clock.now()
        )
    with writing(db) as session, pytest.raises(PermissionDenied):
        orders.raise_order(
            session, city.engine, city.who("h_cgj"), orders.NewOrder((a,), "x", 8), clock.now()
        )
    mark = clock.now()
    with writing(db) as session:
        order_id = orders.raise_order(
            session,
            city.engine,
            sup,
            orders.NewOrder((a, b), "两件路灯均超期", 8, "listed", "CGJ"),
            clock.now(),
        ).id
    clock.advance(HOUR)
    with writing(db) as session:
        orders.answer_order(session, city.engine, city.who("h_cgj"), order_id, "均已修复", clock.now())
    assert orders.check_overdue_answers(db, clock.now() + 10 * HOUR, city.engine).fired == 0
    for number in (a, b):
        assert city.actions(number)[-2:] == ["supervision_order", "supervision_answer"]
    with reading(db) as session:
        m = orders.measures(session, mark, clock.now(), clock.now())
        mine = orders.list_orders(session, city.who("h_cgj"), clock.now())
        theirs = orders.list_orders(session, city.who("h_zjj"), clock.now())
    assert (m[0]["orders"], m[0]["answered_on_time"], m[0]["on_time_rate"]) == (1, 1, 1.0)
    assert sorted(mine[0]["tickets"]) == sorted([a, b])
    assert all(o["id"] != order_id for o in theirs) and all(o["unit_name"] == "市城管局" for o in mine)


def test_reminders_count_and_reach_the_leader_from_the_second(city: City) -> None:
    db, clock = city.db, city.clock
    number = city.ticket()
    sup = city.who("supervisor1")
    counts = []
    for _ in range(3):
        clock.advance(HOUR)
        with writing(db) as session:
            counts.append(reminders.remind(session, city.engine, sup, number, "请尽快", clock.now()))
    assert counts == [1, 2, 3]
    assert city.actions(number).count("remind") == 3
    assert len(city.inbox("h_cgj", "remind", number)) == 3
    assert len(city.inbox("leader1", "remind", number)) == 2  # the 2nd and the 3rd
    with reading(db) as session:
        tid = session.scalar(select(Ticket.id).where(Ticket.number == number))
        assert tid is not None and reminders.count(session, tid) == 3
    with writing(db) as session, pytest.raises(PermissionDenied):
        reminders.remind(session, city.engine, city.who("followup1"), number, None, clock.now())


def test_the_worker_pass_runs_the_deadline_check(city: City) -> None:
    """`background.run_once` (the embedded worker and `minsheng worker run`) fires the 督办 deadlines."""
    from minsheng.services.background import run_once
    from minsheng.services.timelimits.config import TimeLimitConfig
    from minsheng.services.timelimits.subscriber import Clockwork

    db, clock = city.db, city.clock
    number = city.ticket()
    with writing(db) as session:
        orders.raise_order(
            session, city.engine, city.who("leader1"), orders.NewOrder((number,), "限时回复", 2), clock.now()
        )
    clock.advance(3 * HOUR)
    run_once(db, clock.now(), clockwork=Clockwork(city.engine, TimeLimitConfig()))
    run_once(db, clock.now(), clockwork=Clockwork(city.engine, TimeLimitConfig()))
    assert city.actions(number).count("supervision_overdue") == 1


def test_notices_go_through_the_outbox_where_a_channel_is_configured(city: City) -> None:
    """With SMS configured, the unit's leader gets the order by SMS through the outbox (delivered later by the
    worker); without it, only the in-app inbox."""
    from minsheng.storage.models import User
    from minsheng.storage.timelimit_tables import OutboxMessage

    db, clock = city.db, city.clock
    with writing(db) as session:
        leader = session.scalars(select(User).where(User.username == "leader1")).one()
        leader.phone = "13900000001"
    number = city.ticket()
    with writing(db) as session:
        o = orders.raise_order(
            session,
            city.engine,
            city.who("supervisor1"),
            orders.NewOrder((number,), "请限期回复", 4),
            clock.now(),
            frozenset({"sms"}),
        )
        order_id = o.id
    with reading(db) as session:
        rows = list(session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "supervision_order")))
    mine = [r for r in rows if number in r.title]
    assert [(r.channel, r.recipient) for r in mine] == [("sms", "13900000001")]
    assert str(order_id) and "请限期回复" in mine[0].text
