"""A flood of intakes from several threads, each request with its own `Idempotency-Key`, every attempt recorded
before it is sent: what a crash test needs to tell acknowledged tickets from those in doubt, and to retry both.

A thread stops at its first transport error (the server is gone); the request cut off is kept as an attempt
without an answer. `replay` sends every attempt again, same key and body, as a client retrying would.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx

Body = Callable[[int, int], dict[str, Any]]


@dataclass
class Attempt:
    key: str
    body: dict[str, Any]
    status: int | None = None
    number: str | None = None
    error: str | None = None

    @property
    def acknowledged(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def intake_body(thread: int, i: int) -> dict[str, Any]:
    """A phone call about a street lamp, distinct per attempt (so a duplicate is visible by its text)."""
    return {
        "channel": "phone",
        "detail": f"幸福路{i % 50 + 1}号路灯坏了，晚上很黑，线程{thread}第{i}次来电",
        "citizen_phone": f"1380013{thread:02d}{i % 100:02d}",
    }


@dataclass
class IntakeFlood:
    """`clients[i]` (logged in) posts on thread i until `stop()` or its first transport error."""

    clients: list[httpx.Client]
    tag: str
    body: Body = intake_body
    attempts: list[Attempt] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _acked: int = 0

    def start(self) -> IntakeFlood:
        for n, client in enumerate(self.clients):
            t = threading.Thread(target=self._run, args=(n, client), daemon=True, name=f"flood-{n}")
            t.start()
            self._threads.append(t)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout)

    @property
    def acknowledged(self) -> int:
        return self._acked

    def acked(self) -> list[Attempt]:
        with self._lock:
            return [a for a in self.attempts if a.acknowledged]

    def _run(self, n: int, client: httpx.Client) -> None:
        i = 0
        while not self._stop.is_set():
            i += 1
            a = Attempt(f"{self.tag}-{n}-{i}", self.body(n, i))
            with self._lock:
                self.attempts.append(a)
            try:
                r = client.post("/api/v1/tickets", json=a.body, headers={"Idempotency-Key": a.key})
            except httpx.HTTPError as e:
                a.error = f"{type(e).__name__}: {e}"
                return
            a.status = r.status_code
            if a.acknowledged:
                a.number = str(r.json()["number"])
                with self._lock:
                    self._acked += 1
            else:
                with self._lock:
                    self.failures.append(f"{r.status_code} {r.text[:300]}")
                time.sleep(0.05)


@dataclass
class Replayed:
    attempt: Attempt
    status: int | None
    number: str | None
    created: bool | None
    error: str | None = None


def resend(client: httpx.Client, a: Attempt) -> Replayed:
    try:
        r = client.post("/api/v1/tickets", json=a.body, headers={"Idempotency-Key": a.key})
    except httpx.HTTPError as e:
        return Replayed(a, None, None, None, f"{type(e).__name__}: {e}")
    if r.status_code in (200, 201):
        j = r.json()
        return Replayed(a, r.status_code, str(j["number"]), bool(j.get("created")))
    return Replayed(a, r.status_code, None, None, r.text[:300])


def replay(clients: list[httpx.Client], attempts: list[Attempt]) -> list[Replayed]:
    """Send every attempt again with its key and body, as clients retrying after a failure (one thread each)."""
    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        futures = [pool.submit(resend, clients[i % len(clients)], a) for i, a in enumerate(attempts)]
        return [f.result() for f in futures]
