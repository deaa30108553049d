"""The daily facts kept by the engine equal a recomputation from the raw timeline, after any sequence of steps.

Hypothesis drives the real engine (with the time limits' clockwork, so deadlines, overdue events and timers are
real) through random sequences of intake, dispatch, sign, return, redispatch, contact, arrive, feedback,
request_close, review, follow-up, rating, reopen, pause, resume, extension, transfer, direct answers, repeats and
merges, with the clock moving and the worker firing timers; refused steps roll back. After each sequence the
maintained facts (every cube) must equal the facts recomputed in memory from the timeline, and a rebuild must
leave them unchanged. Both stores; each keeps to a budget of examples.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from minsheng.domain.clock import FixedClock
from minsheng.domain.roles import Actor, Role
from minsheng.domain.states import Channel, Kind, Rating, TransferTarget
from minsheng.domain.transitions import Forbidden, IllegalTransition, TicketAction
from minsheng.services import measures
from minsheng.services import schemas as s
from minsheng.services.errors import ServiceError
from minsheng.services.timelimits.config import TimeLimitConfig
from minsheng.services.uow import reading, writing
from minsheng.storage.db import Database
from minsheng.storage.models import Assignment, Ticket, Unit
from tests.factories import small_city
from tests.integration.timelimits.helpers import Harness

UNITS = ("ZJJ", "CGJ", "XFL", "HBJ")
AREAS = (None, "C0101", "C0201", "C01")
CATEGORIES = (None, "010101", "0201", "01")
UNIT_STEPS = ("sign", "return", "contact", "arrive", "feedback", "request_close")
# What may be tried in each ticket state (the engine still decides): a driver that picked blindly would spend
# most steps on terminal tickets. Terminal steps (transfer, answers, repeats) are listed once, others more often.
CANDIDATES: dict[str, tuple[str, ...]] = {
    "accepted": ("dispatch", "dispatch", "dispatch", "answer_directly", "transfer", "mark_repeat", "merge"),
    "returned": ("redispatch", "redispatch", "dispatch", "answer_directly", "mark_repeat"),
    "dispatched": ("sign", "sign", "sign", "sign", "return", "redispatch", "contact", "extension"),
    "in_progress": (
        *("feedback", "request_close") * 4,
        "contact",
        "arrive",
        "sign",
        "return",
        "pause",
        "redispatch",
        "extension",
    ),
    "paused": ("resume", "resume", "extension"),
    "close_requested": ("review_accept", "review_accept", "review_reject"),
    "closed": ("follow_up", "follow_up", "rate", "reopen"),
    "rated": ("reopen", "rate"),
}
KINDS = ("intake", *(["act"] * 12), "tick", "tick")

op = st.tuples(st.sampled_from(KINDS), st.integers(0, 7), st.integers(0, 29), st.integers(0, 240))


class Driver:
    """Applies one random operation through the engine, in its own transaction."""

    def __init__(self, h: Harness) -> None:
        self.h = h
        self.numbers: list[str] = []

    def pick(self, i: int) -> str | None:
        """One of the six newest tickets: acting on them, rather than on all, lets them reach their end."""
        return self.numbers[-1 - i % min(6, len(self.numbers))] if self.numbers else None

    def apply(self, kind: str, i: int, j: int, minutes: int) -> None:
        """``intake`` a ticket, ``tick`` (the clock moves, the worker fires timers) or ``act`` on ticket ``i``
        with the ``j``-th step its state suggests."""
        h = self.h
        if kind == "tick":
            h.clock.advance(timedelta(minutes=minutes))
            h.run()
            return
        h.clock.advance(timedelta(minutes=minutes % 7))
        try:
            if kind == "intake":
                self.intake(i, j)
                return
            number = self.pick(i)
            if number is None:
                return
            options = CANDIDATES.get(h.ticket(number).state, ())
            if options:
                self.step(options[j % len(options)], number, j // len(options))
        except (ServiceError, IllegalTransition, Forbidden):
            # A step the ticket's state refuses leaves nothing behind.
            pass

    def intake(self, i: int, j: int) -> None:
        req = s.IntakeRequest(
            detail=f"测试诉求{len(self.numbers)}：路灯不亮",
            channel=list(Channel)[i % len(Channel)],
            kind=list(Kind)[j % len(Kind)],
            area_code=AREAS[i % len(AREAS)],
            category_code=CATEGORIES[j % len(CATEGORIES)],
        )
        with writing(self.h.db) as session:
            t, _, _ = self.h.engine.intake(
                session, Actor(Role.OPERATOR, name="话务员"), req, self.h.clock.now()
            )
            self.numbers.append(t.number)

    def step(self, name: str, number: str, j: int) -> None:
        h = self.h
        if name in UNIT_STEPS:
            unit = self.active_unit(number, j)
            if unit is not None:
                h.step(number, unit, name, _unit_params(name))
            return
        if name in ("dispatch", "redispatch"):
            lead, assist = UNITS[j % len(UNITS)], UNITS[(j + 1) % len(UNITS)]
            body: dict[str, Any] = {"lead_unit": lead, "assist_units": [assist] if j % 2 else []}
            p = s.Redispatch(reason="改派", **body) if name == "redispatch" else s.Dispatch(**body)
            h.ticket_step("dispatch", number, p, role=Role.DISPATCHER)
        elif name in ("review_accept", "review_reject"):
            h.ticket_step("review", number, name == "review_accept", "审核")
        elif name == "follow_up":
            h.ticket_step("follow_up", number, s.FollowUp(rating=list(Rating)[j % 4]), role=Role.FOLLOWUP)
        elif name == "rate":
            h.ticket_step("rate", number, s.Rate(rating=list(Rating)[j % 4]), role=Role.CITIZEN)
        elif name == "reopen":
            h.ticket_step("reopen", number, s.WithReason(reason="不满意"))
        elif name == "pause":
            h.ticket_step("pause", number, s.WithReason(reason="等待群众"))
        elif name == "resume":
            h.ticket_step("resume", number, s.WithNote())
        elif name == "extension":
            self.extension(number, j)
        elif name == "answer_directly":
            h.ticket_step("answer_directly", number, s.AnswerDirectly(answer="已答复"), role=Role.OPERATOR)
        elif name == "transfer":
            h.ticket_step("transfer", number, s.Transfer(target=TransferTarget.POLICE), role=Role.OPERATOR)
        else:
            other = self.pick(j)
            action = TicketAction.MERGE if name == "merge" else TicketAction.MARK_REPEAT
            if other is not None and other != number:
                with writing(h.db) as session:
                    actor = Actor(Role.SUPERVISOR, name="督办员")
                    h.engine.link(session, actor, number, s.LinkTicket(ticket=other), h.clock.now(), action)

    def extension(self, number: str, j: int) -> None:
        lead = self.active_unit(number, 0, lead_only=True)
        if lead is None:
            return
        self.h.ticket_step(
            "request_extension",
            number,
            s.RequestExtension(hours=24, reason="需要协调"),
            role=Role.HANDLER,
            unit=lead,
        )
        self.h.ticket_step("decide_extension", number, s.DecideExtension(approve=j % 2 == 0))

    def active_unit(self, number: str, j: int, *, lead_only: bool = False) -> str | None:
        with reading(self.h.db) as session:
            q = (
                select(Unit.code)
                .join(Assignment, Assignment.unit_id == Unit.id)
                .join(Ticket, Ticket.id == Assignment.ticket_id)
                .where(Ticket.number == number, Assignment.state.not_in(("cancelled", "returned", "closed")))
                .order_by(Assignment.id)
            )
            if lead_only:
                q = q.where(Assignment.role == "lead")
            units = list(session.scalars(q))
        return units[j % len(units)] if units else None


def _unit_params(name: str) -> s.Checked:
    return {
        "return": s.WithReason(reason="不属于本单位职责"),
        "contact": s.Contact(method="phone"),
        "feedback": s.Feedback(text="已处理"),
        "request_close": s.RequestClose(summary="已办结"),
    }.get(name, s.WithNote())


@pytest.fixture
def driver(db: Database, clock: FixedClock) -> Driver:
    with writing(db) as session:
        small_city(session, clock.now())
    return Driver(Harness.build(db, clock, TimeLimitConfig.from_preset("jiaxing")))


def _check(db: Database) -> None:
    with reading(db) as session:
        kept = measures.facts_of(session)
        again = measures.recompute_all(session)
    assert kept == again


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure prints its whole sequence
)
@given(ops=st.lists(op, min_size=10, max_size=60))
def test_maintained_facts_equal_a_recomputation(driver: Driver, ops: list[tuple[str, int, int, int]]) -> None:
    # Every example starts with a ticket of its own, then acts on it and on earlier examples' tickets.
    driver.apply("intake", len(driver.numbers), 1, 0)
    for name, i, j, minutes in ops:
        driver.apply(name, i, j, minutes)
    _check(driver.h.db)


def test_a_rebuild_changes_nothing(driver: Driver) -> None:
    for k in range(4):
        driver.apply("intake", k, k, 0)
    script = [
        ("dispatch", 0, 0),
        ("dispatch", 1, 2),
        ("sign", 0, 0),
        ("return", 1, 0),
        ("feedback", 0, 0),
        ("request_close", 0, 0),
        ("review_accept", 0, 0),
        ("follow_up", 0, 3),
        ("reopen", 0, 0),
        ("answer_directly", 2, 0),
        ("mark_repeat", 3, 0),
    ]
    for name, i, j in script:
        driver.h.clock.advance(timedelta(minutes=7))
        driver.step(name, driver.numbers[i], j)
    driver.apply("tick", 0, 0, 200)
    db = driver.h.db
    with reading(db) as session:
        kept = measures.facts_of(session)
    with writing(db) as session:
        report = measures.rebuild_facts(session)
    with reading(db) as session:
        assert measures.facts_of(session) == kept
    assert report.tickets == 4
    assert kept, "the script left facts"
