"""A real server for concurrency tests: `minsheng serve` (uvicorn on loopback) in a child process over a
migrated database holding the small test city, with helpers to fire concurrent requests and watch /healthz.

Also what the crash test and the soak bench need: a server started (and started again) on a port of the
caller's choosing, `kill -9`, `minsheng worker run` in a child process, and the resident memory of each.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
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


def rss_mb(pid: int) -> float | None:
    """Resident memory of a process in MB (from /proc), None once it has gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


@dataclass
class ChildProcess:
    """A `minsheng …` command in a child process, its output in `log_path`."""

    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]

    def rss_mb(self) -> float | None:
        return rss_mb(self.process.pid)

    def alive(self) -> bool:
        return self.process.poll() is None

    def terminate(self, timeout: float) -> float:
        """SIGTERM; returns the seconds until the process exited (raises if it did not within timeout)."""
        t0 = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=timeout)
        return time.monotonic() - t0

    def kill(self) -> None:
        """`kill -9`: no shutdown, no flush, no handler runs; what was not committed is gone."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def ensure_gone(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@dataclass
class LiveServer(ChildProcess):
    base_url: str = ""
    port: int = 0

    def login(self, username: str, password: str = PASSWORD, timeout: float = 30.0) -> httpx.Client:
        """A client with its own cookie jar, logged in, CSRF header set."""
        c = httpx.Client(base_url=self.base_url, timeout=timeout)
        r = c.post("/api/v1/auth/login", json={"username": username, "password": password})
        assert r.status_code == 200, r.text
        c.headers["X-CSRF-Token"] = r.json()["csrf_token"]
        return c


def child_env(db_url: str, data_dir: Path, env: dict[str, str]) -> dict[str, str]:
    return {
        **os.environ,
        "MINSHENG_DATABASE_URL": db_url,
        "MINSHENG_DATA_DIR": str(data_dir),
        "MINSHENG_ENVIRONMENT": "test",
        **env,
    }


def spawn(args: Sequence[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """`minsheng ARGS…` through the real CLI, output appended to log_path (a restart keeps the first run's)."""
    cmd = [sys.executable, "-m", "minsheng.cli.main", *args]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)


def start_server(db_url: str, data_dir: Path, *, port: int | None = None, **env: str) -> LiveServer:
    """Start `minsheng serve` and wait until /healthz answers; the caller ends it (terminate, kill)."""
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / f"server-{port}.log"
    args = ["serve", "--host", "127.0.0.1", "--port", str(port)]
    proc = spawn(args, child_env(db_url, data_dir, env), log_path)
    server = LiveServer(proc, log_path, f"http://127.0.0.1:{port}", port)
    try:
        wait_healthy(server)
    except BaseException:
        server.ensure_gone()
        raise
    return server


def wait_healthy(server: LiveServer, timeout: float = START_TIMEOUT) -> float:
    """Seconds until the server's /healthz answered 200 (raises with its log if it exits or never does)."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    while True:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited with {server.process.returncode}:\n{server.log()}")
        try:
            if httpx.get(server.base_url + "/healthz", timeout=1.0).status_code == 200:
                return time.monotonic() - t0
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"server did not start in {timeout} s:\n{server.log()}")
        time.sleep(0.05)


def start_worker(db_url: str, data_dir: Path, *, name: str = "worker", **env: str) -> ChildProcess:
    """Start `minsheng worker run` (timers, outbox, deferred triage) and wait until its loop runs (it says
    "worker …: every N s" then); the caller ends it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / f"{name}.log"
    start = log_path.stat().st_size if log_path.exists() else 0
    proc = spawn(["worker", "run"], child_env(db_url, data_dir, {"PYTHONUNBUFFERED": "1", **env}), log_path)
    worker = ChildProcess(proc, log_path)
    deadline = time.monotonic() + START_TIMEOUT
    while ": every " not in log_path.read_text(errors="replace")[start:]:
        if proc.poll() is not None or time.monotonic() > deadline:
            worker.ensure_gone()
            raise RuntimeError(f"the worker did not start (exit {proc.returncode}):\n{worker.log()}")
        time.sleep(0.05)
    return worker


@contextmanager
def live_server(db_url: str, data_dir: Path, *, port: int | None = None, **env: str) -> Iterator[LiveServer]:
    """Serve the platform through the real CLI (`minsheng serve`) until the block ends; killed if it hangs."""
    server = start_server(db_url, data_dir, port=port, **env)
    try:
        yield server
    finally:
        server.ensure_gone()
