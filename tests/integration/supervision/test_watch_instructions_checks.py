"""提级盯办, 批示 and 不满意核查 on both stores: a watching leader is told of each step of the ticket (and no
longer after letting it go); an instruction reaches the unit, which acknowledges it once, and is found by its
text only by those who may see the ticket; every dissatisfied rating opens a check, whose three outcomes work,
and an explanation approved by a second person takes the rating out of the unit's satisfaction rate."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from minsheng.domain.states import Rating
from minsheng.domain.transitions import AssignmentAction
from minsheng.measures.values import values
from minsheng.services import schemas as s
from minsheng.services.errors import Conflict, Invalid, NotFound, PermissionDenied
from minsheng.services.measures.report import Filter, sums
from minsheng.services.supervision import checks, instructions, watch
from minsheng.services.uow import reading, writing
from minsheng.storage.models import Ticket, Unit
from minsheng.storage.supervision_tables import RatingCheck
from tests.integration.supervision.helpers import City

HOUR = timedelta(hours=1)


def test_watch_tells_the_leader_each_step(city: City) -> None:
    db, clock = city.db, city.clock
    number = city.ticket(sign=False)
    leader = city.who("leader1")
    with writing(db) as session:
        assert watch.watch(session, city.engine, leader, number, clock.now()) is True
        assert watch.watch(session, city.engine, leader, number, clock.now()) is False
    with writing(db) as session, pytest.raises(PermissionDenied):
        watch.watch(session, city.engine, city.who("supervisor1"), number, clock.now())
    city.unit_step(number, "CGJ", AssignmentAction.SIGN, s.WithNote())
    city.unit_step(number, "CGJ", AssignmentAction.CONTACT, s.Contact(method="phone"))
    steps = city.inbox("leader1", "watch_step", number)
    assert len(steps) == 3  # sign (the assignment), lead_signed (the ticket), contact
    assert any("签收" in n.title for n in steps) and any("联系群众" in n.title for n in steps)
    with reading(db) as session:
        assert next(t.number for t, _ in watch.watched(session, leader)) == number
    with writing(db) as session:
        assert watch.unwatch(session, city.engine, leader, number, clock.now()) is True
    city.unit_step(number, "CGJ", AssignmentAction.ARRIVE, s.WithNote())
    assert len(city.inbox("leader1", "watch_step", number)) == 3
    assert city.actions(number).count("watch") == 1 and "unwatch" in city.actions(number)


def test_instruction_is_acknowledged_once_and_searched_by_who_may_see(city: City) -> None:
    db, clock = city.db, city.clock
    number = city.ticket()
    secret = city.ticket("ZJJ", confidential=True)
    leader = city.who("leader1")
    with writing(db) as session:
        row = instructions.instruct(
            session, city.engine, leader, number, "请城管局本周内彻底修复路灯", clock.now()
        )
        iid = row.id
        instructions.instruct(session, city.engine, leader, secret, "保密件请彻底修复并回复", clock.now())
    assert len(city.inbox("h_cgj", "instruction", number)) == 1
    with reading(db) as session:
        pending = instructions.search(session, city.who("h_cgj"), pending_only=True)
        assert [p["ticket"] for p in pending if p["id"] == iid] == [number]
        # 城管局 never sees 住建局's confidential ticket's instruction; the leader finds both by their words.
        assert all(
            p["ticket"] != secret for p in instructions.search(session, city.who("h_cgj"), text="彻底修复")
        )
        found = {p["ticket"] for p in instructions.search(session, leader, text="彻底修复")}
        assert {number, secret} <= found
        assert instructions.search(session, leader, text="%") == [] or all(
            "%" in p["text"] for p in instructions.search(session, leader, text="%")
        )
    with writing(db) as session, pytest.raises(NotFound):
        instructions.acknowledge(session, city.engine, city.who("h_zjj"), iid, clock.now())
    with writing(db) as session:
        instructions.acknowledge(session, city.engine, city.who("h_cgj"), iid, clock.now())
    with writing(db) as session, pytest.raises(Conflict):
        instructions.acknowledge(session, city.engine, city.who("h_cgj"), iid, clock.now())
    assert city.actions(number)[-2:] == ["instruct", "instruction_ack"]
    assert len(city.inbox("leader1", "instruction_ack", number)) == 1
    with reading(db) as session:
        assert all(p["id"] != iid for p in instructions.search(session, city.who("h_cgj"), pending_only=True))


def _rate(city: City, number: str, rating: Rating) -> int:
    city.clock.advance(HOUR)
    with writing(city.db) as session:
        city.engine.follow_up(
            session, city.who("followup1").actor, number, s.FollowUp(rating=rating), city.clock.now()
        )
    with reading(city.db) as session:
        tid = session.scalar(select(Ticket.id).where(Ticket.number == number))
        check = session.scalar(
            select(RatingCheck.id).where(RatingCheck.ticket_id == tid, RatingCheck.state == "open")
        )
    assert check is not None
    return check


def test_check_outcomes_and_the_exclusion_from_the_satisfaction_rate(city: City) -> None:
    db, clock = city.db, city.clock
    unit = "HBJ"  # a unit of its own: the satisfaction rate below is this test's alone
    reopened, explained, referred, content = (city.ticket(unit) for _ in range(4))
    for number in (reopened, explained, referred, content):
        city.close(number, unit)
    fu, sup = city.who("followup1"), city.who("supervisor1")

    # A satisfied rating opens nothing.
    city.clock.advance(HOUR)
    with writing(db) as session:
        city.engine.follow_up(session, fu.actor, content, s.FollowUp(rating=Rating.SATISFIED), clock.now())
    assert "check_opened" not in city.actions(content)

    c1 = _rate(city, reopened, Rating.DISSATISFIED)
    with writing(db) as session:
        checks.decide(session, city.engine, fu, c1, "reopen", clock.now(), justification="群众反映仍未修好")
    assert city.actions(reopened)[-3:][0] == "check_reopen" and "reopen" in city.actions(reopened)[-3:]
    with reading(db) as session:
        assert session.scalar(select(Ticket.state).where(Ticket.number == reopened)) == "in_progress"

    c3 = _rate(city, referred, Rating.BASICALLY_DISSATISFIED)
    with writing(db) as session, pytest.raises(Invalid):
        checks.decide(session, city.engine, fu, c3, "referred", clock.now())  # to whom?
    with writing(db) as session:
        checks.decide(
            session,
            city.engine,
            fu,
            c3,
            "referred",
            clock.now(),
            referred_to="市纪委监委",
            justification="推诿",
        )
    assert city.actions(referred)[-1] == "check_referred"

    c2 = _rate(city, explained, Rating.DISSATISFIED)
    with writing(db) as session:
        checks.decide(
            session, city.engine, fu, c2, "explained", clock.now(), justification="要求在主干道设私人停车位"
        )
    with writing(db) as session, pytest.raises(PermissionDenied):  # not by the one who explained it
        checks.approve(session, city.engine, fu, c2, True, clock.now())
    with writing(db) as session, pytest.raises(PermissionDenied):
        checks.approve(session, city.engine, city.who("h_hbj"), c2, True, clock.now())

    def rate_of_unit() -> tuple[float | None, int]:
        with reading(db) as session:
            hbj = session.scalar(select(Unit.id).where(Unit.code == unit))
            assert hbj is not None
            got = sums(session, date(2026, 1, 1), date(2030, 1, 1), [], Filter(unit_ids={hbj}))
        counters = got[()]
        v = values(counters)
        return v["satisfaction_rate"], counters.get("rated", 0)

    before, rated_before = rate_of_unit()
    with writing(db) as session:
        checks.approve(session, city.engine, sup, c2, True, clock.now())
    after, rated_after = rate_of_unit()
    assert city.actions(explained)[-1] == "rating_excluded"
    # content (satisfied), referred (basically dissatisfied), explained (dissatisfied): 1/3, then 1/2.
    assert rated_before == 3 and rated_after == 2
    assert before == pytest.approx(1 / 3) and after == pytest.approx(1 / 2)
    with reading(db) as session:
        states = {c["id"]: (c["state"], c["outcome"]) for c in checks.list_checks(session, sup)}
    assert states[c1] == ("closed", "reopen") and states[c2] == ("closed", "explained")
    assert states[c3] == ("closed", "referred")
