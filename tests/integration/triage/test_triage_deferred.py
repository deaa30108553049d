"""Deferred triage on SQLite and PostgreSQL: intake stores a job and answers; each job is applied exactly once,
also by concurrent runners; a dispatcher who acts first wins; a broken job ends in the queue with its error."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from minsheng.demo.city import DemoCity
from minsheng.domain.clock import FixedClock
from minsheng.domain.roles import Actor, Role
from minsheng.services import schemas as s
from minsheng.services.tickets import submit
from minsheng.services.triage.jobs import MAX_ATTEMPTS, TriageWorker, pending_jobs, run_triage_jobs
from minsheng.storage.db import Database
from minsheng.storage.models import Ticket, TimelineEvent
from minsheng.storage.triage_tables import TriageJob
from tests.integration.triage.conftest import Desk, FakeClassifier, MakeDesk, generated_texts

OPERATOR = Actor(role=Role.OPERATOR, name="话务员")
DISPATCHER = Actor(role=Role.DISPATCHER, name="派单员")


@pytest.fixture
def triage_mode() -> str:
    return "deferred"


def _store(desk: Desk, **fields: object) -> str:
    """Intake only: the ticket and its job are stored, the job is not run."""
    number, code, created = submit(
        desk.db, desk.engine, OPERATOR, s.IntakeRequest(**fields), desk.clock.now()
    )
    assert created and code
    return str(number)


def _ticket(db: Database, number: str) -> Ticket:
    with db.read_sessions() as session:
        t = session.scalar(select(Ticket).where(Ticket.number == number))
        assert t is not None
        session.expunge_all()
        return t


def _count(db: Database, model: type, *where: object) -> int:
    with db.read_sessions() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0  # type: ignore[arg-type]


def _dispatches(db: Database) -> int:
    return _count(db, TimelineEvent, TimelineEvent.action == "dispatch")


def test_intake_stores_a_job_without_personal_data_and_the_job_applies_once(make_desk: MakeDesk) -> None:
    desk = make_desk(FakeClassifier("060101", 0.99))
    number = _store(
        desk, title="医院态度", detail="医生态度很差", citizen_phone="13900001111", citizen_name="张三"
    )
    t = _ticket(desk.db, number)
    assert t.state == "accepted" and t.triage is None and t.category_id is None
    with desk.db.read_sessions() as session:
        job = session.get(TriageJob, t.id)
        assert job is not None
        assert job.request["detail"] == "医生态度很差"
        assert not {"citizen_phone", "citizen_name", "citizen_id_number"} & set(job.request)
    assert pending_jobs(desk.db)[0] == 1

    stats = run_triage_jobs(desk.db, desk.engine, desk.clock.now())
    assert (stats.triaged, stats.failed) == (1, 0)
    t = _ticket(desk.db, number)
    assert t.state == "dispatched" and t.triage["decision"] == "auto_dispatch"
    assert t.category_id is not None
    dispatch = desk.events(number, "dispatch")
    assert len(dispatch) == 1 and dispatch[0].actor_role == "system"
    assert pending_jobs(desk.db) == (0, None)

    again = run_triage_jobs(desk.db, desk.engine, desk.clock.now())
    assert again.triaged == 0 and len(desk.events(number, "dispatch")) == 1


def test_a_dispatcher_who_acts_first_keeps_the_ticket(make_desk: MakeDesk) -> None:
    desk = make_desk(FakeClassifier("060101", 0.99))
    number = _store(desk, title="医院态度", detail="医生态度很差")
    with desk.db.write_sessions() as session, session.begin():
        desk.engine.dispatch(session, DISPATCHER, number, s.Dispatch(lead_unit="cgj"), desk.clock.now())
    run_triage_jobs(desk.db, desk.engine, desk.clock.now())
    t = _ticket(desk.db, number)
    # The advice is recorded, the dispatcher's decision stands: no second dispatch by the system.
    assert t.triage["category"]["code"] == "060101"
    events = desk.events(number, "dispatch")
    assert len(events) == 1 and events[0].actor_role == "dispatcher"


def test_a_batch_compares_each_ticket_with_the_earlier_ones_only(make_desk: MakeDesk) -> None:
    # Both jobs are claimed by one transaction: to it the later ticket no longer waits, but it is not triaged
    # yet, and it is not another process's; the earlier ticket must not be offered it as a repeat.
    desk = make_desk(FakeClassifier("060101", 0.99))
    first = _store(desk, title="医院态度", detail="第三诊室的医生态度很差，问两句就不耐烦")
    second = _store(desk, title="医院态度", detail="第三诊室的医生态度很差，问两句就不耐烦！")
    run_triage_jobs(desk.db, desk.engine, desk.clock.now(), batch=2)
    t1, t2 = _ticket(desk.db, first), _ticket(desk.db, second)
    assert t1.triage["repeats"] == [] and t1.state == "dispatched"
    assert [r["number"] for r in t2.triage["repeats"]] == [first] and t2.state == "accepted"


def test_concurrent_runners_apply_each_job_exactly_once(make_desk: MakeDesk) -> None:
    desk = make_desk(FakeClassifier("060101", 0.99))
    numbers = [
        _store(desk, title="医院态度", detail=f"第{i}号诊室医生态度很差，第{i * 7}次了") for i in range(30)
    ]
    errors: list[BaseException] = []

    def run() -> None:
        try:
            run_triage_jobs(desk.db, desk.engine, desk.clock.now(), batch=4)
        except BaseException as e:  # pragma: no cover - reported by the assertion below
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert not errors
    assert pending_jobs(desk.db)[0] == 0
    assert _dispatches(desk.db) == len(numbers)
    assert all(_ticket(desk.db, n).state == "dispatched" for n in numbers)


def test_a_broken_job_ends_in_the_queue_and_the_others_are_triaged(make_desk: MakeDesk) -> None:
    desk = make_desk(FakeClassifier("060101", 0.99))
    bad = _store(desk, title="医院态度", detail="医生态度很差")
    good = _store(desk, title="医院态度", detail="护士态度也很差")
    bad_id = _ticket(desk.db, bad).id
    with desk.db.write_sessions() as session, session.begin():
        job = session.get(TriageJob, bad_id)
        assert job is not None
        job.request = ["not", "a", "request"]  # type: ignore[assignment]
    first = run_triage_jobs(desk.db, desk.engine, desk.clock.now())
    assert first.failed == 1
    assert _ticket(desk.db, good).state == "dispatched"
    for _ in range(MAX_ATTEMPTS - 1):
        run_triage_jobs(desk.db, desk.engine, desk.clock.now())
    t = _ticket(desk.db, bad)
    assert t.state == "accepted" and t.triage["decision"] == "queue"
    assert t.triage["reasons"][0]["code"] == "error"
    assert pending_jobs(desk.db)[0] == 0


def test_the_worker_yields_to_busy_intake_until_the_oldest_job_is_late(make_desk: MakeDesk) -> None:
    desk = make_desk(FakeClassifier("060101", 0.99))
    clock: FixedClock = desk.clock
    _store(desk, title="医院态度", detail="医生态度很差")
    busy = True
    worker = TriageWorker(desk.db, desk.engine, clock, busy=lambda: busy, max_lag=30)
    assert worker._yielding()
    clock.advance(timedelta(seconds=31))
    assert not worker._yielding()
    clock.advance(timedelta(seconds=-31))
    busy = False
    assert not worker._yielding()


def test_the_worker_thread_triages_what_intake_wakes_it_for(make_desk: MakeDesk) -> None:
    desk = make_desk(FakeClassifier("060101", 0.99))
    worker = TriageWorker(desk.db, desk.engine, desk.clock, interval=30).start()
    try:
        number = _store(desk, title="医院态度", detail="医生态度很差")
        worker.wake()
        done = threading.Event()
        for _ in range(200):  # waits for the thread, not for a rule of time: the clock is fixed
            if _ticket(desk.db, number).state == "dispatched":
                done.set()
                break
            done.wait(0.05)
        assert done.is_set(), "the woken worker did not triage the ticket"
    finally:
        worker.stop()
    assert worker.stats.triaged == 1


def test_a_batch_is_classified_in_one_call_with_the_same_result(
    make_desk: MakeDesk, tiny_model_dir: Path, demo_city: DemoCity
) -> None:
    desk = make_desk(model_dir=tiny_model_dir)
    texts, _ = generated_texts(demo_city, 3, seed=5)
    reqs = [s.IntakeRequest(detail=t) for t in texts] + [s.IntakeRequest.model_construct(detail="　")]
    at = [desk.clock.now()] * len(reqs)
    calls: list[int] = []
    model = desk.runtime.model
    assert model is not None
    real_predict = model.predict

    def counting(batch: list[str]) -> Any:
        calls.append(len(batch))
        return real_predict(batch)

    model.predict = counting  # type: ignore[method-assign]
    together = desk.runtime.prepare_many(reqs, at)
    assert calls == [len(texts)]  # one call; the blank text is not sent
    alone = [desk.runtime.prepare(r, w) for r, w in zip(reqs, at, strict=True)]
    for a, b in zip(together, alone, strict=True):
        assert a is not None and b is not None
        # The same guesses: labels exactly, confidences up to float rounding (one text alone is scored without
        # sparse matrices, in float32 sums of another order).
        assert [g.label for g in a.classification.top] == [g.label for g in b.classification.top]
        for g, h in zip(a.classification.top, b.classification.top, strict=True):
            assert g.confidence == pytest.approx(h.confidence, abs=1e-6)
        assert a.classification.cues == b.classification.cues
        assert a.category_code == b.category_code and a.reasons == b.reasons
