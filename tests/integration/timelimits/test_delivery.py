"""The worker's outbox against real local receivers (loopback HTTP for the SMS gateway and the robots, aiosmtpd
for email): a receiver that fails then recovers gets each message exactly once; an unreachable gateway and a
bad template are recorded and the worker keeps going. The clock jumps to each retry time: no sleeps."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from minsheng.domain.clock import FixedClock
from minsheng.notify.channels import DingTalkRobotSender, SmsGatewaySender, SmtpSender, SmtpSettings
from minsheng.notify.delivery import RetryPolicy
from minsheng.services import org
from minsheng.services.timelimits.config import TimeLimitConfig
from minsheng.services.uow import reading, writing
from minsheng.storage.db import Database
from minsheng.storage.timelimit_tables import DutyShift, MessageTemplate, OutboxMessage, Timer
from minsheng.timelimits import presets
from tests.factories import small_city
from tests.integration.notify.test_notify_delivery import HttpReceiver, SmtpReceiver
from tests.integration.timelimits.helpers import Harness

RETRY = RetryPolicy(max_attempts=4, base_delay=timedelta(seconds=30), jitter=0.0)
MIN = timedelta(minutes=1)


def _drain(h: Harness, senders: dict, passes: int = 8) -> None:
    """Worker passes, jumping the clock to the next retry instead of waiting for it."""
    for _ in range(passes):
        h.run(senders=senders, retry=RETRY)
        with reading(h.db) as session:
            nxt = session.scalar(
                select(OutboxMessage.next_attempt_at)
                .where(OutboxMessage.status == "pending")
                .order_by(OutboxMessage.next_attempt_at)
            )
        if nxt is None:
            return
        h.clock.set(max(nxt, h.clock.now()))


def test_failing_then_recovering_receivers_get_each_message_once(
    db: Database, clock: FixedClock, http_receiver: HttpReceiver, smtp_receiver: SmtpReceiver
) -> None:
    with writing(db) as session:
        small_city(session, clock.now())
        session.add(
            DutyShift(
                unit_id=org.add_unit(session, "DUTY", "值班单位", "department").id,
                person_name="值班员",
                phone="13700000000",
                email="duty@example.org",
                tier=1,
                starts_at=clock.now() - timedelta(hours=1),
                ends_at=clock.now() + timedelta(hours=23),
            )
        )
    # SMS gateway: 503 twice, then fine; DingTalk robot: rate-limited once.
    http_receiver.script = [(503, "busy"), (503, "busy")]
    smtp_receiver.data_script = ["451 4.3.0 try again later"]
    senders = {
        "sms": SmsGatewaySender(f"{http_receiver.url}/sms/send", token="tok"),
        "dingtalk": DingTalkRobotSender(f"{http_receiver.url}/robot/send?access_token=t", secret="SECx"),
        "email": SmtpSender(SmtpSettings(host="127.0.0.1", port=smtp_receiver.port)),
    }
    config = TimeLimitConfig.from_preset("qiannan", channels=frozenset(senders))
    h = Harness.build(db, clock, config)
    number = h.intake_and_dispatch(lead="DUTY")
    clock.advance(16 * MIN)
    _drain(h, senders)
    rows = h.outbox()
    assert rows and all(r.status == "sent" for r in rows), [(r.channel, r.status, r.last_error) for r in rows]
    assert max(r.attempts for r in rows) >= 2
    sms_ids = [k for k, p in http_receiver.accepted.items() if "phone" in p]
    assert sorted(sms_ids) == sorted(r.message_id for r in rows if r.channel == "sms")
    # the citizen's intake SMS and the duty officer's warning/overdue/press texts, once each
    phones = sorted(p["phone"] for p in http_receiver.accepted.values() if "phone" in p)
    assert phones == ["13700000000"] * 4 + ["13800138000"]
    assert len(smtp_receiver.messages) == 4  # warning, overdue, press, and the new-order notice
    # passes after the end send nothing more
    before = len(http_receiver.requests)
    clock.advance(timedelta(hours=1))
    h.run(senders=senders, retry=RETRY)
    # only the two leader steps that just came due (robot posts: the city leader has no phone)
    assert len(http_receiver.requests) == before + 2
    assert number


def test_unreachable_gateway_and_bad_template_are_recorded_and_the_worker_goes_on(
    db: Database, clock: FixedClock
) -> None:
    with writing(db) as session:
        small_city(session, clock.now())
        # Saved behind the API's back: the worker must still send the built-in text and say what was wrong.
        session.add(MessageTemplate(kind="warning", text="{{ no_such_placeholder }}", updated_at=clock.now()))
    senders = {"sms": SmsGatewaySender("http://127.0.0.1:9/sms", timeout=0.5)}
    h = Harness.build(
        db, clock, TimeLimitConfig(fallback=presets.qiannan().policies, channels=frozenset(senders))
    )
    number = h.intake_and_dispatch(lead="ZJJ")
    with writing(db) as session:
        org.add_user(session, "h_zjj2", "承办人二", "handler", None, clock.now(), "ZJJ", phone="13600000000")
    clock.advance(12 * MIN)
    stats = h.run(senders=senders, retry=RETRY)
    assert stats.fired == 1 and stats.retrying >= 1
    assert h.clock_events(number) == [("warning", "sign", "unit")]
    with reading(db) as session:
        timer = session.scalars(select(Timer).where(Timer.kind == "warning")).one()
        assert timer.outcome == "fired" and "no_such_placeholder" in (timer.error or "")
    warning_sms = [m for m in h.outbox("sms") if m.kind == "warning"]
    assert warning_sms and "预警" in warning_sms[0].text  # the built-in text went out instead
    assert "connection failed" in (warning_sms[0].last_error or "")
    for _ in range(6):  # out of attempts: dead, with the reason
        clock.advance(timedelta(hours=2))
        h.run(senders=senders, retry=RETRY)
    assert all(m.status == "dead" and "gave up" in (m.last_error or "") for m in h.outbox("sms"))
    assert [e[0] for e in h.clock_events(number)] == [
        "warning",
        "overdue",
        "press",
        "escalation",
        "escalation",
    ]
