"""Message formats of each channel, DingTalk's signature, status classification and retry decisions."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from minsheng.notify.channels import (
    DeliveryResult,
    DingTalkRobotSender,
    InAppSender,
    Message,
    SmsGatewaySender,
    SmtpSettings,
    WeComRobotSender,
    classify_http_status,
    dingtalk_params,
    dingtalk_payload,
    dingtalk_sign,
    email_message,
    sms_payload,
    wecom_payload,
)
from minsheng.notify.delivery import (
    OutboxState,
    RetryPolicy,
    after_attempt,
    deliver,
    make_message_id,
    next_attempt_at,
)

NOW = datetime(2025, 6, 10, 2, 0, tzinfo=UTC)
MSG = Message("m-1", "工单2025061000001已超时", title="工单已超时", to="13800000000")


def test_sms_payload() -> None:
    assert sms_payload(MSG) == {"phone": "13800000000", "text": MSG.text, "message_id": "m-1"}
    assert sms_payload(MSG, sign="某市12345")["sign"] == "某市12345"


def test_wecom_payloads() -> None:
    assert wecom_payload(MSG) == {
        "msgtype": "markdown",
        "markdown": {"content": "**工单已超时**\n" + MSG.text},
    }
    mention = Message("m-2", "请处理", mention_mobiles=("13800000000",))
    assert wecom_payload(mention) == {
        "msgtype": "text",
        "text": {"content": "请处理", "mentioned_mobile_list": ["13800000000"]},
    }


def test_dingtalk_payloads() -> None:
    payload = dingtalk_payload(Message("m-3", "请处理", title="督办", mention_mobiles=("13900000000",)))
    assert payload == {
        "msgtype": "markdown",
        "markdown": {"title": "督办", "text": "#### 督办\n\n请处理 @13900000000"},
        "at": {"atMobiles": ["13900000000"], "isAtAll": False},
    }
    text = dingtalk_payload(Message("m-4", "请处理", markdown=False))
    assert text == {
        "msgtype": "text",
        "text": {"content": "请处理"},
        "at": {"atMobiles": [], "isAtAll": False},
    }


def test_dingtalk_signature_follows_the_documented_algorithm() -> None:
    secret = "SEC000example"
    ts = 1577262236757
    expected = base64.b64encode(
        hmac.new(secret.encode(), f"{ts}\n{secret}".encode(), hashlib.sha256).digest()
    )
    assert dingtalk_sign(secret, ts) == expected.decode()
    params = dingtalk_params(secret, datetime.fromtimestamp(ts / 1000, UTC))
    assert params == {"timestamp": str(ts), "sign": expected.decode()}
    assert dingtalk_params(None, NOW) == {}


def test_email_message_headers() -> None:
    email = email_message(
        Message("m-5", "正文", title="标题", to="a@example.org"), SmtpSettings("localhost"), NOW
    )
    assert email["Message-ID"] == "<m-5@minsheng.local>"
    assert email["Subject"] == "标题" and email["To"] == "a@example.org"
    assert email.get_content().strip() == "正文"


@pytest.mark.parametrize(
    ("status", "ok", "permanent"),
    [
        (200, True, False),
        (204, True, False),
        (400, False, True),
        (401, False, True),
        (404, False, True),
        (408, False, False),
        (429, False, False),
        (500, False, False),
        (503, False, False),
        (302, False, True),
    ],
)
def test_http_status_classification(status: int, ok: bool, permanent: bool) -> None:
    result = classify_http_status(status)
    assert (result.ok, result.permanent) == (ok, permanent)


def _mock(handler):  # type: ignore[no-untyped-def]
    return httpx.Client(transport=httpx.MockTransport(handler))


def test_robot_errcodes_are_failures() -> None:
    answers = iter(
        [
            {"errcode": 0, "errmsg": "ok"},
            {"errcode": 130101, "errmsg": "send too fast"},
            {"errcode": 310000, "errmsg": "sign not match"},
        ]
    )
    client = _mock(lambda request: httpx.Response(200, json=next(answers)))
    sender = DingTalkRobotSender(
        "https://oapi.dingtalk.com/robot/send?access_token=t", secret="s", client=client
    )
    assert sender.send(MSG, NOW).ok
    too_fast = sender.send(MSG, NOW)
    assert not too_fast.ok and not too_fast.permanent and "130101" in too_fast.detail
    bad_sign = sender.send(MSG, NOW)
    assert not bad_sign.ok and bad_sign.permanent
    wecom = WeComRobotSender(
        "https://x/send?key=k", client=_mock(lambda r: httpx.Response(200, text="<html>"))
    )
    assert wecom.send(MSG, NOW).retryable


def test_transport_errors_are_retryable_and_bad_urls_permanent() -> None:
    def boom(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    assert SmsGatewaySender("http://gw/sms", client=_mock(boom)).send(MSG, NOW).retryable
    assert SmsGatewaySender("ftp://gw/sms").send(MSG, NOW).permanent
    assert SmsGatewaySender("http://gw/sms").send(Message("m", "x"), NOW).permanent  # no phone
    assert InAppSender().send(MSG, NOW).ok


def test_backoff_grows_is_capped_jittered_and_reproducible() -> None:
    policy = RetryPolicy(
        max_attempts=10, base_delay=timedelta(seconds=10), max_delay=timedelta(minutes=5), jitter=0.2
    )
    delays = [policy.delay(k, "m-1") for k in range(1, 10)]
    for k, d in enumerate(delays, start=1):
        nominal = min(timedelta(seconds=10) * 2 ** (k - 1), timedelta(minutes=5))
        assert nominal * 0.8 <= d <= nominal * 1.2
    assert delays == [policy.delay(k, "m-1") for k in range(1, 10)]
    assert delays != [policy.delay(k, "m-2") for k in range(1, 10)]
    assert RetryPolicy(jitter=0).delay(3) == timedelta(seconds=120)
    assert next_attempt_at(10, NOW, policy) is None
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


def test_after_attempt_state_machine() -> None:
    policy = RetryPolicy(max_attempts=3, jitter=0)
    state = OutboxState(make_message_id("outbox", 1))
    state = after_attempt(state, DeliveryResult(False, False, "HTTP 500"), NOW, policy)
    assert (state.status, state.attempts, state.next_attempt_at) == (
        "pending",
        1,
        NOW + timedelta(seconds=30),
    )
    state = after_attempt(state, DeliveryResult(False, False, "HTTP 500"), NOW, policy)
    assert state.next_attempt_at == NOW + timedelta(seconds=60)
    dead = after_attempt(state, DeliveryResult(False, False, "HTTP 502"), NOW, policy)
    assert dead.status == "dead" and "gave up after 3 attempts" in dead.last_error
    assert after_attempt(state, DeliveryResult(False, True, "HTTP 404"), NOW, policy).status == "dead"
    sent = after_attempt(state, DeliveryResult(True), NOW, policy)
    assert (sent.status, sent.sent_at, sent.attempts) == ("sent", NOW, 3)


def test_deliver_sends_only_due_pending_rows() -> None:
    calls: list[str] = []

    class Recorder:
        channel = "test"

        def send(self, message: Message, now: datetime) -> DeliveryResult:
            calls.append(message.message_id)
            return DeliveryResult(True)

    state = OutboxState("m-1", next_attempt_at=NOW + timedelta(minutes=1))
    assert deliver(state, MSG, Recorder(), NOW) == (state, None)
    state, result = deliver(state, MSG, Recorder(), NOW + timedelta(minutes=1))
    assert result is not None and result.ok and state.status == "sent"
    assert deliver(state, MSG, Recorder(), NOW + timedelta(hours=1)) == (state, None)
    assert calls == ["m-1"]
    with pytest.raises(ValueError, match="does not hold"):
        deliver(OutboxState("other"), MSG, Recorder(), NOW)
    assert make_message_id("a", 1) == make_message_id("a", 1) != make_message_id("a", 2)
