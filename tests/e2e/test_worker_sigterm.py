"""Issue 14, loose end: `minsheng worker run` ends promptly on SIGTERM while it works off a long outbox through a
slow gateway (the soak's worker was still sending after systemd's 30 s and was killed). Before the fix a pass
sent the whole outbox before looking at the stop flag: 1,500 messages at 50 ms each is over a minute.
Both stores; the process is real, the gateway a loopback robot that answers slowly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from minsheng.services.uow import reading, writing
from minsheng.storage.db import Database
from minsheng.storage.timelimit_tables import OutboxMessage

MESSAGES = 1500
SEND_SECONDS = 0.05


class SlowRobot:
    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()
        self.url = ""


@pytest.fixture
def robot() -> Iterator[SlowRobot]:
    r = SlowRobot()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            time.sleep(SEND_SECONDS)  # the gateway's own slowness, not the test waiting
            with r.lock:
                r.count += 1
            data = b'{"errcode": 0, "errmsg": "ok"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    r.url = f"http://127.0.0.1:{server.server_address[1]}/cgi-bin/webhook/send?key=test"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield r
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _outbox(db: Database) -> None:
    due = datetime.now(UTC)
    rows = [
        {
            "message_id": f"sigterm-{i}",
            "kind": "warning",
            "channel": "wecom",
            "recipient": "",
            "mention": [],
            "title": "",
            "text": f"预警 {i}",
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": due,
            "created_at": due,
        }
        for i in range(MESSAGES)
    ]
    with writing(db) as session:
        session.execute(insert(OutboxMessage), rows)


def test_worker_ends_within_seconds_of_sigterm_under_a_long_outbox(
    db: Database, db_url: str, robot: SlowRobot, tmp_path: Path
) -> None:
    _outbox(db)
    env = {
        **os.environ,
        "MINSHENG_DATABASE_URL": db_url,
        "MINSHENG_DATA_DIR": str(tmp_path / "data"),
        "MINSHENG_ENVIRONMENT": "test",
        "MINSHENG_WECOM_WEBHOOK_URL": robot.url,
    }
    exe = Path(sys.executable).with_name("minsheng")
    proc = subprocess.Popen(
        [str(exe), "worker", "run", "--interval", "0.2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while robot.count < 20 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert robot.count >= 20, "the worker never started sending"
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running 15 s after SIGTERM ({robot.count} of {MESSAGES} sent)")
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
        out = proc.communicate()[0]
    assert proc.returncode == 0, out
    assert took < 5, f"ended {took:.1f} s after SIGTERM"
    with reading(db) as session:
        pending = OutboxMessage.status == "pending"
        leased = session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(pending, OutboxMessage.locked_by.is_not(None))
        )
        left = session.scalar(select(func.count()).select_from(OutboxMessage).where(pending))
    # Most of the outbox is still waiting, and none of it is held by the worker that left.
    assert left and left > MESSAGES // 2 and leased == 0, (left, leased)
