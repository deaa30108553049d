"""A real server for concurrency tests: `minsheng serve` (uvicorn on loopback) in a child process over a
migrated database holding the small test city, with helpers to fire concurrent requests and watch /healthz."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from minsheng.domain.clock import SystemClock
from minsheng.storage.db import open_database
from tests.factories import PASSWORD, small_city

START_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def seed_small_city(db_url: str) -> None:
    database = open_database(db_url)
    try:
        with database.write_sessions() as session, session.begin():
            small_city(session, SystemClock().now())
    finally:
        database.dispose()


@dataclass
class LiveServer:
    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]

    def login(self, username: str, password: str = PASSWORD, timeout: float = 30.0) -> httpx.Client:
        """A client with its own cookie jar, logged in, CSRF header set."""
        c = httpx.Client(base_url=self.base_url, timeout=timeout)
        r = c.post("/api/v1/auth/login", json={"username": username, "password": password})
        assert r.status_code == 200, r.text
        c.headers["X-CSRF-Token"] = r.json()["csrf_token"]
        return c

    def terminate(self, timeout: float) -> float:
        """SIGTERM; returns the seconds until the process exited (raises if it did not within timeout)."""
        t0 = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=timeout)
        return time.monotonic() - t0


@contextmanager
def live_server(db_url: str, data_dir: Path, **env: str) -> Iterator[LiveServer]:
    """Serve the platform through the real CLI (`minsheng serve`) until the block ends; killed if it hangs."""
    port = free_port()
    log_path = data_dir / f"server-{port}.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    child_env = {
        **os.environ,
        "MINSHENG_DATABASE_URL": db_url,
        "MINSHENG_DATA_DIR": str(data_dir),
        "MINSHENG_ENVIRONMENT": "test",
        **env,
    }
    cmd = [sys.executable, "-m", "minsheng.cli.main", "serve", "--host", "127.0.0.1", "--port", str(port)]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, env=child_env, stdout=log, stderr=subprocess.STDOUT)
    server = LiveServer(f"http://127.0.0.1:{port}", proc, log_path)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}:\n{server.log()}")
            try:
                if httpx.get(server.base_url + "/healthz", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server did not start in {START_TIMEOUT} s:\n{server.log()}")
            time.sleep(0.1)
        yield server
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
