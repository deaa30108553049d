"""Concurrent load against a live server, and a watcher that keeps asking /healthz while it runs."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx

HEALTH_BUDGET = 2.0  # /healthz must answer within this throughout a test


@dataclass
class Outcome:
    name: str
    status: int | None
    seconds: float
    error: str | None = None


@dataclass
class HealthWatch:
    """Polls /healthz every `every` seconds on its own thread; records each answer's latency or failure."""

    base_url: str
    every: float = 0.1
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> HealthWatch:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=10)

    def _run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=HEALTH_BUDGET) as c:
            while not self._stop.is_set():
                t0 = time.monotonic()
                try:
                    r = c.get("/healthz")
                    if r.status_code != 200:
                        self.failures.append(f"status {r.status_code}")
                except httpx.HTTPError as e:
                    self.failures.append(f"{type(e).__name__} after {time.monotonic() - t0:.2f} s")
                self.latencies.append(time.monotonic() - t0)
                self._stop.wait(self.every)

    @property
    def worst(self) -> float:
        return max(self.latencies, default=0.0)

    def check(self, budget: float = HEALTH_BUDGET) -> None:
        assert self.latencies, "the health watch made no request"
        assert not self.failures, f"/healthz failed {len(self.failures)} times: {self.failures[:5]}"
        assert self.worst < budget, f"/healthz took up to {self.worst:.2f} s (budget {budget} s)"


def timed(name: str, call: Callable[[], httpx.Response]) -> Outcome:
    t0 = time.monotonic()
    try:
        r = call()
        return Outcome(name, r.status_code, time.monotonic() - t0, None if r.status_code < 500 else r.text)
    except httpx.HTTPError as e:
        return Outcome(name, None, time.monotonic() - t0, f"{type(e).__name__}: {e}")


def run_all(
    calls: list[tuple[str, Callable[[], httpx.Response]]], threads: int | None = None
) -> list[Outcome]:
    """Start every call at once (one thread each, released together) and wait for all."""
    barrier = threading.Barrier(len(calls))

    def go(item: tuple[str, Callable[[], httpx.Response]]) -> Outcome:
        barrier.wait(timeout=30)
        return timed(*item)

    with ThreadPoolExecutor(max_workers=threads or len(calls)) as pool:
        return list(pool.map(go, calls))


def assert_all_answered(outcomes: list[Outcome], ok: Callable[[Outcome], bool] | None = None) -> None:
    """Every request got an answer (no time-out, no reset) and none was a 5xx; `ok` checks more per answer."""
    bad = [o for o in outcomes if o.status is None or o.status >= 500 or (ok is not None and not ok(o))]
    assert not bad, f"{len(bad)} of {len(outcomes)} requests failed: {[vars(o) for o in bad[:5]]}"


def summary(outcomes: list[Outcome]) -> dict[str, Any]:
    secs = sorted(o.seconds for o in outcomes)
    return {
        "n": len(secs),
        "max": secs[-1] if secs else None,
        "median": secs[len(secs) // 2] if secs else None,
    }
