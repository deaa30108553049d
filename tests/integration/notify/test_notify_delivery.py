"""Delivery against real local receivers: aiosmtpd on loopback and an HTTP server standing in for the SMS
gateway and the WeCom/DingTalk robots. The retry loop is driven by an injected clock: no sleeps."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.header import decode_header, make_header
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from minsheng.domain.clock import FixedClock
from minsheng.notify.channels import (
    DingTalkRobotSender,
    Message,
    Sender,
    SmsGatewaySender,
    SmtpSender,
    SmtpSettings,
    WeComRobotSender,
)
from minsheng.notify.delivery import OutboxState, RetryPolicy, deliver, make_message_id

START = datetime(2025, 6, 10, 2, 0, tzinfo=UTC)
POLICY = RetryPolicy(max_attempts=5, base_delay=timedelta(seconds=30), jitter=0.2, seed=7)
SECRET = "SECtest-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- HTTP receiver -------------------------------------------------------------------------------------


@dataclass
class HttpReceiver:
    """Answers from ``script`` (then ``default``); keeps what it accepted, deduplicated by message id."""

    script: list[tuple[int, Any]] = field(default_factory=list)
    default: tuple[int, Any] = (200, {"errcode": 0, "errmsg": "ok"})
    store_before_answer: bool = False
    requests: list[dict[str, Any]] = field(default_factory=list)
    accepted: dict[str, dict[str, Any]] = field(default_factory=dict)
    url: str = ""

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        payload = json.loads(body)
        query = parse_qs(urlsplit(path).query)
        self.requests.append({"path": path, "query": query, "headers": headers, "json": payload})
        status, answer = self.script.pop(0) if self.script else self.default
        delivered = 200 <= status < 300 and not (isinstance(answer, dict) and answer.get("errcode", 0) != 0)
        if delivered or self.store_before_answer:
            key = headers.get("idempotency-key") or headers.get("x-message-id") or str(len(self.accepted))
            self.accepted.setdefault(key, payload)
        return status, answer


@pytest.fixture
def http_receiver() -> Iterator[HttpReceiver]:
    receiver = HttpReceiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, answer = receiver.handle(self.path, headers, body)
            data = (answer if isinstance(answer, str) else json.dumps(answer)).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# -- SMTP receiver -------------------------------------------------------------------------------------


@dataclass
class SmtpReceiver:
    data_script: list[str] = field(default_factory=list)
    refuse_rcpt: set[str] = field(default_factory=set)
    messages: list[Envelope] = field(default_factory=list)
    port: int = 0

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.refuse_rcpt:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.data_script:
            return self.data_script.pop(0)
        self.messages.append(envelope)
        return "250 Message accepted"


def _authenticator(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"robot", b"pw")
    # handled=False makes aiosmtpd answer 535 itself instead of leaving the client waiting.
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp_receiver() -> Iterator[SmtpReceiver]:
    receiver = SmtpReceiver(port=free_port())
    controller = Controller(
        receiver,
        hostname="127.0.0.1",
        port=receiver.port,
        authenticator=_authenticator,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield receiver
    finally:
        controller.stop()


# -- the loop ------------------------------------------------------------------------------------------


def run_outbox(
    message: Message, sender: Sender, clock: FixedClock, max_passes: int = 20
) -> tuple[OutboxState, list[datetime]]:
    """The worker's loop for one row, jumping the clock to each computed retry time instead of sleeping."""
    state = OutboxState(message.message_id)
    attempted_at: list[datetime] = []
    for _ in range(max_passes):
        if state.status != "pending":
            break
        if state.next_attempt_at is not None:
            # One pass a second early must not send: the row is not due yet.
            assert (
                deliver(state, message, sender, state.next_attempt_at - timedelta(seconds=1), POLICY)[1]
                is None
            )
            clock.set(state.next_attempt_at)
        state, result = deliver(state, message, sender, clock.now(), POLICY)
        assert result is not None
        attempted_at.append(clock.now())
    # More passes after the end send nothing more.
    for hours in (1, 24):
        assert deliver(state, message, sender, clock.now() + timedelta(hours=hours), POLICY)[1] is None
    return state, attempted_at


def expected_attempt_times(message_id: str, failures: int) -> list[datetime]:
    times = [START]
    for k in range(1, failures + 1):
        times.append(times[-1] + POLICY.delay(k, message_id))
    return times


def message(kind: str, **kw: Any) -> Message:
    return Message(
        make_message_id("outbox", kind), "工单2025061000001已超时，请立即办理。", title="工单已超时", **kw
    )


SENDERS: dict[str, Callable[[str], Sender]] = {
    "sms": lambda url: SmsGatewaySender(f"{url}/sms/send", token="tok", sign="某市12345"),
    "wecom": lambda url: WeComRobotSender(f"{url}/cgi-bin/webhook/send?key=k1"),
    "dingtalk": lambda url: DingTalkRobotSender(f"{url}/robot/send?access_token=t1", secret=SECRET),
}


@pytest.mark.parametrize("channel", list(SENDERS))
def test_receiver_failing_twice_then_recovering_gets_the_message_exactly_once(
    channel: str, http_receiver: HttpReceiver
) -> None:
    http_receiver.script = [(500, {"error": "busy"}), (500, {"error": "busy"})]
    msg = message(channel, to="13800000000", mention_mobiles=("13900000000",))
    clock = FixedClock(START)
    state, attempted_at = run_outbox(msg, SENDERS[channel](http_receiver.url), clock)
    assert (state.status, state.attempts) == ("sent", 3)
    assert attempted_at == expected_attempt_times(msg.message_id, 2)
    assert len(http_receiver.requests) == 3
    assert list(http_receiver.accepted) == [msg.message_id]


def test_sms_gateway_request_format(http_receiver: HttpReceiver) -> None:
    http_receiver.default = (200, {"ok": True})
    msg = message("sms-format", to="13800000000")
    assert SENDERS["sms"](http_receiver.url).send(msg, START).ok
    (request,) = http_receiver.requests
    assert request["path"] == "/sms/send"
    assert request["json"] == {
        "phone": "13800000000",
        "text": msg.text,
        "sign": "某市12345",
        "message_id": msg.message_id,
    }
    assert request["headers"]["authorization"] == "Bearer tok"
    assert request["headers"]["idempotency-key"] == msg.message_id


def test_wecom_request_format(http_receiver: HttpReceiver) -> None:
    msg = message("wecom-format", mention_mobiles=("13900000000",))
    assert SENDERS["wecom"](http_receiver.url).send(msg, START).ok
    (request,) = http_receiver.requests
    assert request["query"] == {"key": ["k1"]}
    assert request["json"]["msgtype"] == "text"
    assert request["json"]["text"]["mentioned_mobile_list"] == ["13900000000"]


def test_dingtalk_signature_verifies_on_the_receiving_side(http_receiver: HttpReceiver) -> None:
    msg = message("dingtalk-sign", mention_mobiles=("13900000000",))
    assert SENDERS["dingtalk"](http_receiver.url).send(msg, START).ok
    (request,) = http_receiver.requests
    query = {k: v[0] for k, v in request["query"].items()}
    assert query["access_token"] == "t1"
    assert int(query["timestamp"]) == int(START.timestamp() * 1000)
    # parse_qs has already URL-decoded the sign, as DingTalk's server does.
    digest = hmac.new(SECRET.encode(), f"{query['timestamp']}\n{SECRET}".encode(), hashlib.sha256).digest()
    assert query["sign"] == base64.b64encode(digest).decode()
    assert request["json"]["at"] == {"atMobiles": ["13900000000"], "isAtAll": False}


def test_robot_errcode_is_a_failure_and_retried(http_receiver: HttpReceiver) -> None:
    http_receiver.script = [(200, {"errcode": 130101, "errmsg": "send too fast"})]
    msg = message("dingtalk-errcode")
    state, attempted_at = run_outbox(msg, SENDERS["dingtalk"](http_receiver.url), FixedClock(START))
    assert (state.status, state.attempts, len(attempted_at)) == ("sent", 2, 2)
    assert list(http_receiver.accepted) == [msg.message_id]


def test_permanent_errors_are_not_retried(http_receiver: HttpReceiver) -> None:
    http_receiver.script = [(404, {"error": "no such route"})]
    state, attempted_at = run_outbox(
        message("sms-404", to="1"), SENDERS["sms"](http_receiver.url), FixedClock(START)
    )
    assert (state.status, state.attempts, len(attempted_at)) == ("dead", 1, 1)
    assert "HTTP 404" in state.last_error
    http_receiver.script = [(200, {"errcode": 310000, "errmsg": "sign not match"})]
    state, _ = run_outbox(message("ding-310000"), SENDERS["dingtalk"](http_receiver.url), FixedClock(START))
    assert state.status == "dead" and "310000" in state.last_error


def test_lost_acknowledgement_is_deduplicated_by_message_id(http_receiver: HttpReceiver) -> None:
    # The gateway stores the message but its answer is an error: the retry carries the same id.
    http_receiver.script = [(502, "bad gateway")]
    http_receiver.store_before_answer = True
    msg = message("sms-lost-ack", to="13800000000")
    state, _ = run_outbox(msg, SENDERS["sms"](http_receiver.url), FixedClock(START))
    assert state.status == "sent" and len(http_receiver.requests) == 2
    assert [r["headers"]["idempotency-key"] for r in http_receiver.requests] == [msg.message_id] * 2
    assert list(http_receiver.accepted) == [msg.message_id]


def test_unreachable_gateway_is_a_retryable_failure_and_ends_dead() -> None:
    port = free_port()  # closed again: nothing listens there
    sender = SmsGatewaySender(f"http://127.0.0.1:{port}/sms", timeout=2)
    msg = message("unreachable", to="13800000000")
    result = sender.send(msg, START)
    assert not result.ok and not result.permanent and "connection failed" in result.detail
    state, attempted_at = run_outbox(msg, sender, FixedClock(START))
    assert (state.status, state.attempts) == ("dead", POLICY.max_attempts)
    assert attempted_at == expected_attempt_times(msg.message_id, POLICY.max_attempts - 1)
    assert "gave up after 5 attempts" in state.last_error
    smtp = SmtpSender(SmtpSettings("127.0.0.1", port, timeout=2)).send(Message("m", "x", to="a@b.c"), START)
    assert smtp.retryable


# -- SMTP ----------------------------------------------------------------------------------------------


def smtp_sender(receiver: SmtpReceiver, **kw: Any) -> SmtpSender:
    return SmtpSender(
        SmtpSettings("127.0.0.1", receiver.port, sender="noreply@minsheng.local", timeout=5, **kw)
    )


def test_smtp_delivery_with_login(smtp_receiver: SmtpReceiver) -> None:
    msg = message("email", to="leader@example.org")
    assert smtp_sender(smtp_receiver, username="robot", password="pw").send(msg, START).ok
    (envelope,) = smtp_receiver.messages
    assert envelope.rcpt_tos == ["leader@example.org"]
    assert envelope.content is not None
    parsed = message_from_bytes(
        envelope.content if isinstance(envelope.content, bytes) else envelope.content.encode()
    )
    assert parsed["Message-ID"] == f"<{msg.message_id}@minsheng.local>"
    assert str(make_header(decode_header(parsed["Subject"]))) == "工单已超时"
    payload = parsed.get_payload(decode=True)
    assert isinstance(payload, bytes) and "工单2025061000001已超时" in payload.decode("utf-8")


def test_smtp_bad_login_is_permanent(smtp_receiver: SmtpReceiver) -> None:
    result = smtp_sender(smtp_receiver, username="robot", password="wrong").send(
        message("e", to="a@b.c"), START
    )
    assert not result.ok and result.permanent and "535" in result.detail
    assert smtp_receiver.messages == []


def test_smtp_temporary_failures_then_recovery_delivers_once(smtp_receiver: SmtpReceiver) -> None:
    smtp_receiver.data_script = ["451 4.3.0 try again later", "451 4.3.0 try again later"]
    msg = message("email-retry", to="unit@example.org")
    state, attempted_at = run_outbox(msg, smtp_sender(smtp_receiver), FixedClock(START))
    assert (state.status, state.attempts) == ("sent", 3)
    assert attempted_at == expected_attempt_times(msg.message_id, 2)
    assert len(smtp_receiver.messages) == 1


def test_smtp_refused_recipient_is_permanent(smtp_receiver: SmtpReceiver) -> None:
    smtp_receiver.refuse_rcpt = {"ghost@example.org"}
    state, _ = run_outbox(
        message("email-ghost", to="ghost@example.org"), smtp_sender(smtp_receiver), FixedClock(START)
    )
    assert (state.status, state.attempts) == ("dead", 1)
    assert "ghost@example.org" in state.last_error
