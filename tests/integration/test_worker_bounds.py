"""Issue 14, loose end: the worker under a heavy outbox (BENCHMARKS.md, the soak: timers fired minutes late and
`minsheng worker run` outlived SIGTERM). A pass delivers at most `notify_batch` messages and `notify_seconds`
seconds' worth, the stop flag ends a pass between messages (the claimed rows go back at once), and a timer that
comes due while thousands of messages wait fires after one slice, not after the whole outbox. Time is the
injected clock's (the fake sender moves it), never a sleep. Both stores; and the worker prunes failed logins.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select

from minsheng.domain.clock import FixedClock
from minsheng.notify.channels import DeliveryResult, Message
from minsheng.services.auth import prune_login_failures
from minsheng.services.background import PassLimits, run_loop, run_once
from minsheng.services.timelimits.config import TimeLimitConfig
from minsheng.services.uow import reading, writing
from minsheng.storage.db import Database
from minsheng.storage.limit_tables import LoginFailure
from minsheng.storage.timelimit_tables import OutboxMessage, Timer
from tests.factories import small_city
from tests.integration.timelimits.helpers import Harness

MIN = timedelta(minutes=1)


class FakeSender:
    """A robot that takes `seconds` per message on the injected clock, and may ask the worker to stop."""

    channel = "wecom"

    def __init__(self, clock: FixedClock, seconds: float = 1.0) -> None:
        self.clock, self.seconds = clock, seconds
        self.sent: list[str] = []
        self.stop_after: tuple[int, threading.Event] | None = None

    def send(self, message: Message, now: datetime) -> DeliveryResult:
        self.sent.append(message.message_id)
        self.clock.advance(timedelta(seconds=self.seconds))
        if self.stop_after and len(self.sent) == self.stop_after[0]:
            self.stop_after[1].set()  # SIGTERM arrives while this message is being sent
        return DeliveryResult(True, False, "ok")

    def monotonic(self) -> float:
        return self.clock.now().timestamp()


def _outbox(db: Database, n: int, due: datetime) -> None:
    rows = [
        {
            "message_id": f"bulk-{i}",
            "kind": "warning",
            "channel": "wecom",
            "recipient": "",
            "mention": [],
            "title": "",
            "text": f"消息 {i}",
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": due,
            "created_at": due,
        }
        for i in range(n)
    ]
    with writing(db) as session:
        session.execute(insert(OutboxMessage), rows)


def _pending(db: Database, now: datetime) -> tuple[int, int]:
    """(pending rows due at `now` and free to claim, pending rows leased to a worker)."""
    with reading(db) as session:
        pending = OutboxMessage.status == "pending"
        free = session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(pending, OutboxMessage.next_attempt_at <= now, OutboxMessage.locked_by.is_(None))
        )
        leased = session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(pending, OutboxMessage.locked_by.is_not(None))
        )
    return int(free or 0), int(leased or 0)


def test_a_pass_delivers_at_most_its_batch(db: Database, clock: FixedClock) -> None:
    _outbox(db, 1000, clock.now())
    sender = FakeSender(clock, seconds=0.0)
    now = clock.now()
    stats = run_once(
        db, now, senders={"wecom": sender}, limits=PassLimits(notify_batch=120, notify_seconds=None)
    )
    assert stats.sent == 120 and len(sender.sent) == 120 and stats.more
    # The rest is still due and claimable by the next pass or another worker: nothing leased beyond the batch.
    assert _pending(db, now) == (880, 0)


def test_a_pass_spends_at_most_its_delivery_time(db: Database, clock: FixedClock) -> None:
    _outbox(db, 300, clock.now())
    sender = FakeSender(clock, seconds=1.0)
    now = clock.now()
    stats = run_once(
        db,
        now,
        senders={"wecom": sender},
        limits=PassLimits(notify_batch=200, notify_seconds=5.0),
        monotonic=sender.monotonic,
    )
    assert stats.sent == 5 and stats.more
    assert _pending(db, now) == (295, 0)


def test_a_stop_request_ends_the_pass_between_messages(db: Database, clock: FixedClock) -> None:
    _outbox(db, 500, clock.now())
    stop = threading.Event()
    sender = FakeSender(clock, seconds=0.0)
    sender.stop_after = (3, stop)
    now = clock.now()
    stats = run_once(db, now, senders={"wecom": sender}, limits=PassLimits(notify_seconds=None), stop=stop)
    assert len(sender.sent) == 3 and stats.sent == 3
    # The rows claimed with them are handed back at once, not left for their 5-minute lease.
    assert _pending(db, now) == (497, 0)


def test_timers_fire_while_thousands_of_messages_wait(db: Database, clock: FixedClock) -> None:
    with writing(db) as session:
        small_city(session, clock.now())
    h = Harness.build(db, clock, TimeLimitConfig.from_preset("qiannan"))
    t0 = clock.now()
    number = h.intake_and_dispatch(lead="XFL")  # sign within 15 minutes: a warning at 12
    with reading(db) as session:
        warning = session.scalars(select(Timer).where(Timer.kind == "warning")).one()
    assert warning.due_at == t0 + 12 * MIN
    _outbox(db, 3000, t0)
    clock.set(t0 + 11 * MIN)  # the warning comes due after 60 messages of 1 s each
    sender = FakeSender(clock, seconds=1.0)
    stop = threading.Event()
    seen: list[dict[str, Any]] = []

    def on_pass(stats: Any) -> None:
        free, _ = _pending(db, clock.now())
        seen.append({"fired": stats.fired, "sent": stats.sent, "waiting": free, "at": clock.now()})
        if stats.fired or len(seen) > 50:
            stop.set()

    run_loop(
        db,
        clock,
        h.clockwork,
        {"wecom": sender},
        interval=0.01,
        stop=stop,
        on_pass=on_pass,
        limits=PassLimits(notify_batch=100, notify_seconds=None),
        monotonic=sender.monotonic,
    )
    fired = next(p for p in seen if p["fired"])
    # Fired on the pass right after the slice in which it came due, while nearly all the outbox still waited.
    assert fired["waiting"] > 2500, seen
    with reading(db) as session:
        fired_at = session.scalar(select(Timer.fired_at).where(Timer.id == warning.id))
    assert fired_at is not None and fired_at - warning.due_at <= timedelta(seconds=100), seen
    assert h.clock_events(number) == [("warning", "sign", "unit")]


class StopAfter(threading.Event):
    """A stop flag that is raised after it has been looked at ``n`` times (SIGTERM between two batches)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.looks = n

    def is_set(self) -> bool:
        self.looks -= 1
        if self.looks < 0:
            self.set()
        return super().is_set()


def test_a_stop_request_ends_a_backlog_of_timers_between_batches(db: Database, clock: FixedClock) -> None:
    with writing(db) as session:
        small_city(session, clock.now())
    h = Harness.build(db, clock, TimeLimitConfig.from_preset("qiannan"))
    t0 = clock.now()
    for _ in range(6):
        h.intake_and_dispatch(lead="XFL")
    clock.set(t0 + 3 * 60 * MIN)  # after downtime: every sign warning, overdue and escalation is due at once

    def due() -> int:
        with reading(db) as session:
            q = (
                select(func.count())
                .select_from(Timer)
                .where(Timer.fired_at.is_(None), Timer.due_at <= clock.now())
            )
            return int(session.scalar(q) or 0)

    backlog = due()
    assert backlog > 8
    stats = run_once(db, clock.now(), batch=4, clockwork=h.clockwork, stop=StopAfter(1))
    # One batch of 4, then the stop: the rest stays due for the next worker, none of it leased.
    assert (stats.batches, stats.fired + stats.skipped) == (1, 4)
    assert due() == backlog - 4
    stats = run_once(db, clock.now(), batch=4, clockwork=h.clockwork)
    assert due() == 0 and stats.batches >= 2


def test_old_failed_logins_are_pruned_by_the_worker(db: Database, clock: FixedClock) -> None:
    now = clock.now()
    ages = [40, 31, 30.5, 29, 1, 0]
    with writing(db) as session:
        for i, days in enumerate(ages):
            session.add(
                LoginFailure(
                    username=f"u{i}", at=now - timedelta(days=days), address="203.0.113.9", reason="x"
                )
            )
    stop = threading.Event()
    run_loop(
        db,
        clock,
        Harness.build(db, clock, TimeLimitConfig()).clockwork,
        {},
        interval=0.01,
        stop=stop,
        on_pass=lambda _stats: stop.set(),
        limits=PassLimits(keep_login_failures_days=30),
    )
    with reading(db) as session:
        left = sorted(session.scalars(select(LoginFailure.username)))
    assert left == ["u3", "u4", "u5"]
    assert prune_login_failures(db, now, 30) == 0  # idempotent


def test_several_workers_prune_at_once_without_waiting_or_failing(db: Database, clock: FixedClock) -> None:
    now = clock.now()
    with writing(db) as session:
        session.execute(
            insert(LoginFailure),
            [
                {
                    "username": f"u{i}",
                    "at": now - timedelta(days=60, seconds=i),
                    "address": None,
                    "reason": "x",
                }
                for i in range(3000)
            ]
            + [{"username": "recent", "at": now, "address": None, "reason": "x"}],
        )
    counts: list[int] = []
    errors: list[BaseException] = []

    def prune() -> None:
        try:
            counts.append(prune_login_failures(db, now, 30, batch=200))
        except BaseException as e:  # collected: a thread's exception would not fail the test
            errors.append(e)

    threads = [threading.Thread(target=prune) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors and sum(counts) == 3000, (counts, errors)
    with reading(db) as session:
        assert list(session.scalars(select(LoginFailure.username))) == ["recent"]
