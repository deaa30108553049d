"""A loopback robot webhook (WeCom's answer format) that counts what the outbox delivers, by message id.

Point `MINSHENG_WECOM_WEBHOOK_URL` at `url`. Every POST is recorded with its `X-Message-Id` before it is
answered `{"errcode": 0}`. After `arm()` the next delivery is kept unanswered until `release()`: the sender is
then inside a send, its claimed batch leased, which is the moment a crash test kills the process at.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class Receiver:
    def __init__(self, *, delay: float = 0.0, hold_timeout: float = 60.0) -> None:
        self.url = ""
        self._armed = False
        self.delay = delay
        self.hold_timeout = hold_timeout
        self.received: list[str] = []
        self.held: str | None = None
        self.holding = threading.Event()
        self._release = threading.Event()
        self._lock = threading.Lock()

    def counts(self) -> Counter[str]:
        with self._lock:
            return Counter(self.received)

    def __len__(self) -> int:
        with self._lock:
            return len(self.received)

    def arm(self) -> None:
        """Hold the next delivery (once) until `release()`."""
        with self._lock:
            self._armed = True

    def release(self) -> None:
        self._release.set()

    def _record(self, message_id: str) -> bool:
        """Record a delivery; True when this one is to be held."""
        with self._lock:
            self.received.append(message_id)
            hold = self._armed
            if hold:
                self._armed = False
                self.held = message_id
        return hold

    def handle(self, message_id: str) -> None:
        if self._record(message_id):
            self.holding.set()
            self._release.wait(self.hold_timeout)
        elif self.delay:
            time.sleep(self.delay)


@contextmanager
def robot_receiver(**kw: Any) -> Iterator[Receiver]:
    receiver = Receiver(**kw)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            receiver.handle(self.headers.get("X-Message-Id", ""))
            data = json.dumps({"errcode": 0, "errmsg": "ok"}).encode()
            try:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                pass  # the sender was killed while we held its message

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/robot"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.release()
        server.shutdown()
        server.server_close()
        thread.join()


class ReceiverProcess:
    """The receiver in a process of its own (`python -m tests.e2e.live.receiver FILE`), writing each message id
    to FILE as it arrives: a load generator's threads then do not slow the deliveries down (one GIL)."""

    def __init__(self, out: Path) -> None:
        self.out = out
        out.write_text("")
        cmd = [sys.executable, "-m", "tests.e2e.live.receiver", str(out)]
        self.process = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()
        if not self.url.startswith("http://"):
            self.stop()
            raise RuntimeError(f"the receiver did not start: {self.url!r}")

    def counts(self) -> Counter[str]:
        return Counter(x for x in self.out.read_text().splitlines() if x)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


def _serve_to_file(out: Path) -> None:
    lock = threading.Lock()
    fh = out.open("a", buffering=1, encoding="ascii")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:
                fh.write(self.headers.get("X-Message-Id", "") + "\n")
            data = json.dumps({"errcode": 0, "errmsg": "ok"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(f"http://127.0.0.1:{server.server_address[1]}/robot", flush=True)
    server.serve_forever(poll_interval=0.2)


if __name__ == "__main__":
    _serve_to_file(Path(sys.argv[1]))
