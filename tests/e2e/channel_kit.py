"""What the channel adapters' end-to-end tests share: a fake SMS gateway on loopback (it takes the outbox's SMS),
the app with the channels' secrets set, signing, and the loop from dispatch to close."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from minsheng.asgi import create_app
from minsheng.config import Settings
from minsheng.domain.clock import FixedClock
from minsheng.services.channels.base import hmac_signature
from minsheng.services.notifications import deliver_due
from minsheng.storage.channel_tables import ChannelMessage
from minsheng.storage.db import Database
from minsheng.storage.models import Ticket
from minsheng.storage.timelimit_tables import OutboxMessage
from tests.factories import PASSWORD, small_city

SMS_SECRET = "sms-shared-secret-for-tests"
CALLS_SECRET = "calls-shared-secret-for-tests"
WECHAT_TOKEN = "wechat-token-for-tests"


class FakeSmsGateway:
    """An SMS gateway on loopback: records what the outbox's SmsGatewaySender posts (http.server)."""

    def __init__(self) -> None:
        sent: list[dict[str, Any]] = []
        self.sent = sent

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                sent.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"ok": true}')

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/send"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def texts_to(self, phone: str) -> list[str]:
        return [m["text"] for m in self.sent if m.get("phone") == phone]


@pytest.fixture(name="sms_gateway")
def fx_sms_gateway() -> Iterator[FakeSmsGateway]:
    gw = FakeSmsGateway()
    yield gw
    gw.close()


@pytest.fixture(name="channel_settings")
def fx_channel_settings() -> dict[str, Any]:
    """More settings for the app (a test module overrides this fixture)."""
    return {}


@pytest.fixture(name="channel_client")
def fx_channel_client(
    db: Database,
    db_url: str,
    clock: FixedClock,
    tmp_path: Path,
    sms_gateway: FakeSmsGateway,
    channel_settings: dict[str, Any],
) -> Iterator[TestClient]:
    with db.write_sessions() as session, session.begin():
        small_city(session, clock.now())
    settings = Settings(
        database_url=db_url,
        data_dir=tmp_path / "data",
        embedded_worker=False,
        environment="test",
        sms_gateway_url=sms_gateway.url,
        channel_sms_secret=SMS_SECRET,
        channel_calls_secret=CALLS_SECRET,
        wechat_token=WECHAT_TOKEN,
        **channel_settings,
    )
    app = create_app(settings, clock=clock, db=db)
    with TestClient(app) as client:
        yield client


@pytest.fixture(name="staff")
def fx_staff(channel_client: TestClient) -> Callable[[str], TestClient]:
    """A client logged in as a user, one per user (logging in costs a password hash)."""
    clients: dict[str, TestClient] = {}

    def _login(username: str) -> TestClient:
        if username in clients:
            return clients[username]
        c = clients[username] = TestClient(channel_client.app)
        r = c.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
        assert r.status_code == 200, r.text
        c.headers["X-CSRF-Token"] = r.json()["csrf_token"]
        return c

    return _login


def signed(secret: str, body: bytes, clock: FixedClock) -> dict[str, str]:
    stamp = str(int(clock.now().timestamp()))
    return {
        "content-type": "application/json",
        "X-Minsheng-Timestamp": stamp,
        "X-Minsheng-Signature": hmac_signature(secret, stamp, body),
    }


def deliver(client: TestClient, clock: FixedClock) -> int:
    """One delivery pass of the outbox through the platform's senders (the worker's job)."""
    platform = client.app.state.minsheng  # type: ignore[attr-defined]
    return deliver_due(platform.db, clock.now(), platform.senders).sent


def close_ticket(staff: Callable[[str], TestClient], number: str, unit: str = "CGJ") -> None:
    """The loop from dispatch to close, as dispatcher, handler and supervisor."""
    disp, sup = staff("dispatcher1"), staff("supervisor1")
    handler = staff({"CGJ": "h_cgj", "ZJJ": "h_zjj", "XFL": "h_xfl", "HBJ": "h_hbj"}[unit])
    t = disp.get(f"/api/v1/tickets/{number}").json()
    if t["state"] == "accepted":
        r = disp.post(f"/api/v1/tickets/{number}/dispatch", json={"lead_unit": unit})
        assert r.status_code == 200, r.text
        t = r.json()
    a = next(x["id"] for x in reversed(t["assignments"]) if x["unit_code"] == unit)
    for step, body in (
        ("sign", {}),
        ("feedback", {"text": "已现场处理"}),
        ("request_close", {"summary": "已处理完毕"}),
    ):
        r = handler.post(f"/api/v1/assignments/{a}/{step}", json=body)
        assert r.status_code == 200, (step, r.text)
    r = sup.post(f"/api/v1/tickets/{number}/review_accept", json={})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "closed"


def counts(db: Database) -> tuple[int, int, int]:
    """(tickets, channel messages, outbox rows): what a refused message must leave unchanged."""
    with db.read_sessions() as s, s.begin():
        return (
            s.scalar(select(func.count()).select_from(Ticket)) or 0,
            s.scalar(select(func.count()).select_from(ChannelMessage)) or 0,
            s.scalar(select(func.count()).select_from(OutboxMessage)) or 0,
        )
