"""The intake writer (group commit) on SQLite and PostgreSQL: batches commit together, a bad request in a batch
fails alone, a key sent twice in one batch makes one ticket, and nothing queued is lost at shutdown."""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime

import pytest
from sqlalchemy import func, select

from minsheng.domain.clock import FixedClock
from minsheng.domain.roles import Actor, Role
from minsheng.services import schemas as s
from minsheng.services.errors import Conflict, NotFound
from minsheng.services.intake_writer import IntakeWriter, _Job
from minsheng.services.tickets import TicketEngine
from minsheng.storage.db import Database
from minsheng.storage.models import Ticket, TimelineEvent
from tests.factories import small_city

OPERATOR = Actor(role=Role.OPERATOR, name="话务员")


def _writer(db: Database, clock: FixedClock, max_batch: int = 32) -> IntakeWriter:
    with db.write_sessions() as session, session.begin():
        small_city(session, clock.now())
    return IntakeWriter(db, TicketEngine(), max_batch=max_batch)


class _Box:
    """Collects what the writer hands back to one waiting request."""

    def __init__(self) -> None:
        self.result: tuple[object, str | None, bool] | None = None
        self.error: BaseException | None = None
        self.calls = 0

    def __call__(self, result: tuple[object, str | None, bool] | None, error: BaseException | None) -> None:
        self.calls += 1
        self.result, self.error = result, error


def _job(req: s.IntakeRequest, now: datetime) -> tuple[_Job, _Box]:
    box = _Box()
    return _Job(OPERATOR, req, now, None, None, box), box


def _count(db: Database) -> int:
    with db.read_sessions() as session:
        return session.scalar(select(func.count()).select_from(Ticket)) or 0


def test_a_batch_commits_together(db: Database, clock: FixedClock) -> None:
    w = _writer(db, clock)
    jobs = [_job(s.IntakeRequest(detail=f"第{i}盏路灯不亮"), clock.now()) for i in range(6)]
    w._write([j for j, _ in jobs])
    assert (w.batches, w.fallbacks) == (1, 0)
    numbers = [b.result[0] for _, b in jobs if b.result]
    assert len(set(numbers)) == 6 and all(b.calls == 1 and b.error is None for _, b in jobs)
    # The batch reserved its six numbers in one go: consecutive, in the order the requests came.
    seqs = [int(str(n)[8:]) for n in numbers]
    assert seqs == list(range(seqs[0], seqs[0] + 6))
    # The next ticket counts on after the reserve, on both backends.
    nxt = [_job(s.IntakeRequest(detail="第七盏路灯不亮"), clock.now())]
    w._write([j for j, _ in nxt])
    assert nxt[0][1].result is not None and int(str(nxt[0][1].result[0])[8:]) == seqs[-1] + 1
    assert all(b.result and b.result[1] and b.result[2] for _, b in jobs)  # query code, created
    with db.read_sessions() as session:
        assert _count(db) == 7
        # Every ticket has its own intake event, seq 1.
        events = session.scalars(select(TimelineEvent.seq).where(TimelineEvent.action == "intake")).all()
        assert sorted(events) == [1] * 7


def test_a_bad_request_fails_alone(db: Database, clock: FixedClock) -> None:
    w = _writer(db, clock)
    good = [_job(s.IntakeRequest(detail=f"噪音扰民{i}"), clock.now()) for i in range(3)]
    bad = _job(s.IntakeRequest(detail="分类不存在", category_code="NOPE"), clock.now())
    w._write([good[0][0], good[1][0], bad[0], good[2][0]])
    assert w.fallbacks == 1
    assert isinstance(bad[1].error, NotFound) and bad[1].result is None
    assert all(b.error is None and b.result for _, b in good)
    assert _count(db) == 3


def test_the_same_key_twice_in_one_batch_makes_one_ticket(db: Database, clock: FixedClock) -> None:
    w = _writer(db, clock)
    req = s.IntakeRequest(detail="井盖丢失", idempotency_key="same-key-0001")
    first, second = _job(req, clock.now()), _job(req.model_copy(), clock.now())
    other = _job(s.IntakeRequest(detail="别的内容", idempotency_key="same-key-0001"), clock.now())
    w._write([first[0], second[0], other[0]])
    assert first[1].result and second[1].result
    assert first[1].result[0] == second[1].result[0]
    assert [first[1].result[2], second[1].result[2]] == [True, False]
    assert isinstance(other[1].error, Conflict)
    assert _count(db) == 1


def test_concurrent_submits_are_batched_and_all_answered(db: Database, clock: FixedClock) -> None:
    w = _writer(db, clock, max_batch=8)
    gate = threading.Lock()
    sizes: list[int] = []
    original = w._write

    # The writer is held at its first batch, so that the other requests queue up behind it.
    def held_write(batch: list[_Job]) -> None:
        sizes.append(len(batch))
        with gate:
            original(batch)

    w._write = held_write  # type: ignore[method-assign]

    async def main() -> list[tuple[object, str | None, bool]]:
        gate.acquire()
        tasks = [
            asyncio.ensure_future(w.submit(OPERATOR, s.IntakeRequest(detail=f"占道经营{i}"), clock.now()))
            for i in range(20)
        ]
        while sum(sizes) + w._queue.qsize() < 20:
            await asyncio.sleep(0.001)
        gate.release()
        return list(await asyncio.gather(*tasks))

    results = asyncio.run(main())
    w.stop()
    assert len({r[0] for r in results}) == 20 and all(r[2] for r in results)
    assert _count(db) == 20
    assert sum(sizes) == 20 and max(sizes) <= 8 and len(sizes) >= 3
    assert w.batches == sum(1 for n in sizes if n > 1) and w.fallbacks == 0


def test_stop_finishes_what_is_queued(db: Database, clock: FixedClock) -> None:
    w = _writer(db, clock)
    results = []

    def post(i: int) -> None:
        results.append(w.submit_sync(OPERATOR, s.IntakeRequest(detail=f"垃圾未清运{i}"), clock.now()))

    threads = [threading.Thread(target=post, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    w.stop()
    assert len(results) == 10 and _count(db) == 10


def test_a_failure_reaches_a_sync_caller(db: Database, clock: FixedClock) -> None:
    w = _writer(db, clock)
    with pytest.raises(NotFound):
        w.submit_sync(OPERATOR, s.IntakeRequest(detail="x", area_code="NOWHERE"), clock.now())
    w.stop()
    assert _count(db) == 0
