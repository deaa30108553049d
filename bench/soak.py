"""Soak: every role's mixed load for minutes over two API processes and one worker on one PostgreSQL, with one
`kill -9` of an API process (and its restart) in the middle.

The layout of docs/DEPLOY.md on one host: `minsheng serve` twice (two ports, `MINSHENG_EMBEDDED_WORKER=false`,
deferred triage) and one `minsheng worker run` (timers, escalations, the outbox, triage), on a database this
script creates and drops. Clients alternate between the two ports as nginx does and, like nginx
(`proxy_next_upstream error`), send a request whose connection is refused to the other one; a request cut off
by the kill is not resent, except intakes, which their caller retries at once with the same `Idempotency-Key`.

The load (virtual users, each with its own login and a short pause between actions): operators take calls,
dispatchers dispatch from the queue, handlers sign, give feedback and request closing, a supervisor reviews,
a follow-up agent rates, citizens submit and track, a leader watches the big screen and lists; everyone views
their pages and logs in again now and then. A time-limit policy of minutes (sign within 2 minutes, a warning at
half time, a press at the deadline and the unit's leader 2 minutes later) keeps the worker firing and notifying
throughout, as the handlers leave a quarter of what they could sign; a loopback robot webhook receives the
notifications and counts them by message id.

Reports: requests per route class with 4xx, 5xx, refused (the killed process during its downtime) and cut off,
p50/p99 per route class; after the load has drained: acknowledged tickets lost, tickets stored twice, clock events
recorded twice for one timer, in-app notifications stored twice, robot messages delivered twice; how late the
worker fired the timers; how long each process took to end on SIGTERM; the resident memory of each process at
start, peak and end (api 1: its first life at start, its second at the end). A Rich table, bench/results/soak.json, and a last line
`soak: PASS` or `soak: FAIL (reasons)` (exit code 0/1). PASS needs no 5xx, nothing lost, nothing twice, and the
backlog (triage jobs, due timers, due outbox rows) drained after the load.

    .venv/bin/python bench/soak.py [--minutes 10] [--kill-at 0.5] [--think 0.2] [--keep-db]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from common import write_results
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from minsheng.services.timelimits.admin import PolicySpec, create_policy
from minsheng.storage.db import Database, open_database
from minsheng.storage.migrate import upgrade
from minsheng.storage.models import Ticket, TimelineEvent
from minsheng.storage.timelimit_tables import Notification, OutboxMessage, Timer
from minsheng.storage.triage_tables import TriageJob
from tests.conftest import create_pg_database, drop_pg_database, pg_skip_reason
from tests.e2e.live.receiver import ReceiverProcess
from tests.e2e.live.server import (
    ChildProcess,
    LiveServer,
    free_port,
    seed_small_city,
    start_server,
    start_worker,
)
from tests.factories import PASSWORD

console = Console(width=160)

CLOCK_ACTIONS = ("warning", "overdue", "press", "escalation")
UNITS = ["ZJJ", "CGJ", "HBJ", "XFL"]
HANDLERS = {"ZJJ": "h_zjj", "CGJ": "h_cgj", "HBJ": "h_hbj", "XFL": "h_xfl"}
PLACES = ["幸福路", "和平街道", "东城", "西城", "幸福路口", "和平里"]
PROBLEMS = [
    "路灯坏了，晚上很黑",
    "工地夜间施工噪声扰民",
    "垃圾堆了三天没人清理",
    "井盖丢失很危险",
    "下水道堵塞污水外溢",
]
RATINGS = ["satisfied", "satisfied", "basically_satisfied", "basically_dissatisfied", "dissatisfied"]
RELOGIN_EVERY = 40  # actions between two logins of one virtual user
DRAIN_TIMEOUT = 300.0  # seconds the worker gets, once the load stops, to finish what was due then

# Minutes, not days: unsigned tickets escalate while the soak runs.
FAST_POLICY = PolicySpec(
    name="soak: minutes",
    limits={"sign": {"amount": 2, "unit": "minutes"}},
    warn_at=[0.5],
    escalation={
        "sign": [
            {"after_minutes": 0, "action": "press", "target": "unit", "name": "催办"},
            {"after_minutes": 2, "action": "notify", "target": "unit_leader", "name": "单位领导"},
        ]
    },
)


# ------------------------------------------------------------------------------------------------ measures
@dataclass
class Route:
    latencies: list[float] = field(default_factory=list)
    status: Counter[int] = field(default_factory=Counter)
    refused: int = 0  # connection refused: the process was down; sent to the other
    cut: int = 0  # connection lost mid-request (the kill)
    unavailable: int = 0  # refused by both


class Stats:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.errors: Counter[str] = Counter()  # unexpected answers, by class, status and text
        self._lock = threading.Lock()

    def route(self, cls: str) -> Route:
        with self._lock:
            return self.routes.setdefault(cls, Route())

    def answered(self, cls: str, r: httpx.Response, seconds: float) -> None:
        route = self.route(cls)
        with self._lock:
            route.latencies.append(seconds)
            route.status[r.status_code] += 1
            if r.status_code >= 400:
                # Grouped by text without its numbers (ticket numbers, ids).
                self.errors[f"{cls} {r.status_code} {re.sub(r'[0-9]+', 'N', r.text[:200])}"] += 1

    def count(self, cls: str, what: str) -> None:
        route = self.route(cls)
        with self._lock:
            setattr(route, what, getattr(route, what) + 1)


@dataclass
class Intake:
    key: str
    body: dict[str, Any]
    citizen: bool
    number: str | None = None
    code: str | None = None
    tries: int = 0


@dataclass
class Shared:
    intakes: list[Intake] = field(default_factory=list)
    tracked: list[tuple[str, str]] = field(default_factory=list)
    numbers: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, i: Intake) -> None:
        with self.lock:
            self.intakes.append(i)

    def acked(self, i: Intake) -> None:
        with self.lock:
            assert i.number is not None
            self.numbers.append(i.number)
            if i.code:
                self.tracked.append((i.number, i.code))


class Upstreams:
    """Two API processes, round robin; a refused connection goes to the other (nginx's next upstream)."""

    def __init__(self, urls: list[str], stats: Stats) -> None:
        self.urls = urls
        self.stats = stats
        self._turn = 0
        self._lock = threading.Lock()

    def request(
        self, client: httpx.Client, method: str, path: str, cls: str, *, retry_cut: bool = False, **kw: Any
    ) -> httpx.Response | None:
        with self._lock:
            first = self._turn
            self._turn = (self._turn + 1) % len(self.urls)
        cut = False
        for k in range(len(self.urls)):
            url = self.urls[(first + k) % len(self.urls)]
            t0 = time.perf_counter()
            try:
                r = client.request(method, url + path, **kw)
            except (httpx.ConnectError, httpx.ConnectTimeout):
                self.stats.count(cls, "refused")
                continue
            except httpx.HTTPError:
                self.stats.count(cls, "cut")
                if not retry_cut or cut:
                    return None
                cut = True  # an intake: its caller retries at once with the same key, on the other process
                continue
            self.stats.answered(cls, r, time.perf_counter() - t0)
            return r
        self.stats.count(cls, "unavailable")
        return None


# ------------------------------------------------------------------------------------------- virtual users
class User:
    def __init__(
        self, username: str | None, up: Upstreams, shared: Shared, stop: threading.Event, seed: int, slot: int
    ) -> None:
        self.username = username
        self.slot = slot
        self.up = up
        self.shared = shared
        self.stop = stop
        self.rng = random.Random(seed)
        self.client = httpx.Client(timeout=30)
        self.actions = 0

    def call(self, method: str, path: str, cls: str, **kw: Any) -> httpx.Response | None:
        r = self.up.request(self.client, method, path, cls, **kw)
        if r is not None and r.status_code == 401 and self.username:
            self.login()
        return r

    def login(self) -> None:
        if not self.username:
            return
        body = {"username": self.username, "password": PASSWORD}
        r = self.up.request(self.client, "POST", "/api/v1/auth/login", "login", json=body)
        if r is not None and r.status_code == 200:
            self.client.headers["X-CSRF-Token"] = r.json()["csrf_token"]

    def run(self, act: Callable[[User], None], think: float) -> None:
        self.login()
        while not self.stop.is_set():
            try:
                act(self)
            except Exception as e:  # a bench bug must not end the thread silently
                self.up.stats.errors[f"client error {type(e).__name__}: {e}"[:200]] += 1
            self.actions += 1
            if self.username and self.actions % RELOGIN_EVERY == 0:
                self.login()
            self.stop.wait(self.rng.uniform(0.5, 1.5) * think)
        self.client.close()

    def page(self, *paths: str) -> None:
        self.call("GET", self.rng.choice(paths), "page")

    def detail(self) -> str:
        return f"{self.rng.choice(PLACES)}{self.rng.randint(1, 300)}号{self.rng.choice(PROBLEMS)}"

    def intake(self, citizen: bool) -> None:
        key = f"soak-{uuid.uuid4().hex}"
        body: dict[str, Any] = {
            "channel": "web" if citizen else "phone",
            "detail": f"{self.detail()}（{key[-8:]}）",
            "citizen_phone": f"139{self.rng.randint(0, 99_999_999):08d}",
        }
        i = Intake(key, body, citizen)
        self.shared.add(i)
        if citizen:
            body["idempotency_key"] = key
            r = self.call("POST", "/api/v1/public/tickets", "citizen submit", retry_cut=True, json=body)
        else:
            headers = {"Idempotency-Key": key}
            r = self.call("POST", "/api/v1/tickets", "intake", retry_cut=True, json=body, headers=headers)
        i.tries += 1
        if r is not None and r.status_code in (200, 201):
            j = r.json()
            i.number, i.code = str(j["number"]), j.get("query_code")
            self.shared.acked(i)

    def pick(self, items: list[Any], n: int) -> list[Any]:
        return self.rng.sample(items, min(n, len(items)))


def operator(u: User) -> None:
    roll = u.rng.random()
    if roll < 0.75:
        u.intake(citizen=False)
    elif roll < 0.9:
        u.call("GET", "/api/v1/tickets?limit=20", "api read")
    else:
        u.page("/desk", "/tickets")


def dispatcher(u: User) -> None:
    if u.rng.random() < 0.15:
        u.page("/queue", "/tickets")
        return
    r = u.call("GET", "/api/v1/queue?limit=30", "api read")
    if r is None or r.status_code != 200:
        return
    # The dispatchers share the queue, one the odd places and the other the even ones (they still meet at times).
    for t in u.pick(r.json()[u.slot :: 2], 3):
        lead = u.rng.choice(UNITS)
        body: dict[str, Any] = {"lead_unit": lead}
        if u.rng.random() < 0.2:
            body["assist_units"] = [u.rng.choice([x for x in UNITS if x != lead])]
        u.call("POST", f"/api/v1/tickets/{t['number']}/dispatch", "dispatch", json=body)


HANDLER_STEPS = {
    "sign": ("sign", {}),
    "feedback": ("feedback", {"text": "已到现场处理完毕"}),
    "request_close": ("request close", {"summary": "问题已解决，申请结案"}),
}


def handler_step(a: dict[str, Any]) -> str | None:
    """Sign, then give feedback, then (feedback given, lead unit) request closing; None when none is allowed."""
    allowed = a["allowed_actions"]
    if "request_close" in allowed and a.get("reported_at") and a["role"] == "lead":
        return "request_close"
    return next((s for s in ("sign", "feedback") if s in allowed), None)


def handler(u: User) -> None:
    if u.rng.random() < 0.1:
        u.page("/inbox", "/tickets", "/kb")
        return
    r = u.call("GET", "/api/v1/inbox?limit=50", "api read")
    if r is None or r.status_code != 200:
        return
    # A unit keeps up with part of its work only: what it leaves unsigned escalates.
    for item in u.pick(r.json(), 2):
        a = item["assignment"]
        step = handler_step(a)
        if step is None or (step == "sign" and u.rng.random() < 0.25):
            continue
        cls, body = HANDLER_STEPS[step]
        u.call("POST", f"/api/v1/assignments/{a['id']}/{step}", cls, json=body)


def supervisor(u: User) -> None:
    if u.rng.random() < 0.2:
        u.page("/board", "/tickets", "/screen")
        return
    r = u.call("GET", "/api/v1/tickets?state=close_requested&limit=20", "api read")
    if r is None or r.status_code != 200:
        return
    for t in u.pick(r.json()["items"], 3):
        if u.rng.random() < 0.9:
            u.call(
                "POST", f"/api/v1/tickets/{t['number']}/review_accept", "review", json={"note": "处理到位"}
            )
        else:
            body = {"reason": "未联系群众，退回重办"}
            u.call("POST", f"/api/v1/tickets/{t['number']}/review_reject", "review", json=body)


def followup(u: User) -> None:
    if u.rng.random() < 0.2:
        u.page("/followup", "/tickets")
        return
    r = u.call("GET", "/api/v1/tickets?state=closed&limit=20", "api read")
    if r is None or r.status_code != 200:
        return
    for t in u.pick(r.json()["items"], 2):
        body = {"rating": u.rng.choice(RATINGS), "method": "phone"}
        u.call("POST", f"/api/v1/tickets/{t['number']}/follow_up", "follow-up", json=body)


def citizen(u: User) -> None:
    roll = u.rng.random()
    if roll < 0.4:
        u.intake(citizen=True)
    elif roll < 0.8:
        with u.shared.lock:
            mine = u.rng.choice(u.shared.tracked) if u.shared.tracked else None
        if mine:
            u.call("GET", f"/api/v1/public/tickets/{mine[0]}?query_code={mine[1]}", "citizen track")
    else:
        u.page("/", "/track", "/public", "/help")


def leader(u: User) -> None:
    roll = u.rng.random()
    if roll < 0.5:
        u.page("/screen", "/screen/data", "/tickets", "/board")
    elif roll < 0.8:
        u.call("GET", "/api/v1/tickets?limit=20&with_total=true", "api read")
    else:
        with u.shared.lock:
            number = u.rng.choice(u.shared.numbers) if u.shared.numbers else None
        if number:
            u.page(f"/tickets/{number}")
            u.call("GET", f"/api/v1/tickets/{number}/timeline", "api read")


ROLES: list[tuple[str | None, Callable[[User], None], int]] = [
    ("operator1", operator, 3),
    ("dispatcher1", dispatcher, 2),
    *[(h, handler, 1) for h in HANDLERS.values()],
    ("supervisor1", supervisor, 1),
    ("followup1", followup, 1),
    (None, citizen, 2),
    ("leader1", leader, 1),
]


# ------------------------------------------------------------------------------------------------- processes
@dataclass
class Processes:
    api: list[LiveServer]
    worker: ChildProcess
    rss: list[dict[str, Any]] = field(default_factory=list)

    def named(self) -> dict[str, ChildProcess]:
        return {"api 1": self.api[0], "api 2": self.api[1], "worker": self.worker}

    def sample(self, t: float) -> None:
        self.rss.append({"t": round(t, 1), **{n: p.rss_mb() for n, p in self.named().items()}})


def sampler(procs: Processes, t0: float, stop: threading.Event, every: float = 10.0) -> None:
    while not stop.wait(every):
        procs.sample(time.monotonic() - t0)


@contextmanager
def receiver_process(out: Path) -> Iterator[ReceiverProcess]:
    """The robot webhook in a process of its own: in this one it would wait for the load threads' GIL."""
    rx = ReceiverProcess(out)
    try:
        yield rx
    finally:
        rx.stop()


def stop_within(p: ChildProcess, timeout: float) -> float | None:
    """SIGTERM and the seconds until the process ended; None when it had not after ``timeout`` (then killed),
    as systemd does after the units' 30 s."""
    try:
        return round(p.terminate(timeout=timeout), 2)
    except subprocess.TimeoutExpired:
        p.kill()
        return None


def setup(url: str) -> None:
    upgrade(url)
    seed_small_city(url)
    db = open_database(url)
    try:
        with db.write_sessions() as s, s.begin():
            create_policy(s, FAST_POLICY, datetime.now(UTC))
    finally:
        db.dispose()


# ------------------------------------------------------------------------------------------------- checking
def backlog(db: Database, cutoff: datetime) -> dict[str, int]:
    """What was due when the load stopped and is not done yet (timers keep coming due after it: not those)."""
    with db.read_sessions() as s:
        jobs = select(func.count()).select_from(TriageJob)
        timers = (
            select(func.count()).select_from(Timer).where(Timer.fired_at.is_(None), Timer.due_at <= cutoff)
        )
        outbox = (
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.status == "pending", OutboxMessage.created_at <= cutoff)
        )
        return {
            "triage jobs": int(s.scalar(jobs) or 0),
            "due timers": int(s.scalar(timers) or 0),
            "due outbox": int(s.scalar(outbox) or 0),
        }


def drain(db: Database, cutoff: datetime, timeout: float) -> tuple[float, dict[str, int], dict[str, int]]:
    """Seconds until the backlog at ``cutoff`` was done, the backlog then, and what is left (all 0 if done)."""
    t0 = time.monotonic()
    first = left = backlog(db, cutoff)
    while any(left.values()) and time.monotonic() - t0 < timeout:
        time.sleep(0.5)
        left = backlog(db, cutoff)
    return time.monotonic() - t0, first, left


def retry_in_doubt(up: Upstreams, shared: Shared) -> int:
    """Intakes without an answer are sent again with their key, as their caller would once a server answers."""
    client = httpx.Client(timeout=30)
    r = up.request(
        client, "POST", "/api/v1/auth/login", "login", json={"username": "operator1", "password": PASSWORD}
    )
    assert r is not None and r.status_code == 200
    client.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    n = 0
    for i in [x for x in shared.intakes if x.number is None]:
        n += 1
        if i.citizen:
            r = up.request(client, "POST", "/api/v1/public/tickets", "citizen submit", json=i.body)
        else:
            headers = {"Idempotency-Key": i.key}
            r = up.request(client, "POST", "/api/v1/tickets", "intake", json=i.body, headers=headers)
        i.tries += 1
        if r is not None and r.status_code in (200, 201):
            i.number = str(r.json()["number"])
    client.close()
    return n


def integrity(db: Database, shared: Shared, rx: ReceiverProcess) -> dict[str, Any]:
    with db.read_sessions() as s:
        keyed = select(Ticket.idempotency_key, Ticket.number).where(Ticket.idempotency_key.is_not(None))
        by_key = {k: n for k, n in s.execute(keyed)}
        details = Counter(s.scalars(select(Ticket.detail)))
        timers = {
            k: o for k, o in s.execute(select(Timer.key, Timer.outcome).where(Timer.fired_at.is_not(None)))
        }
        # How late the worker fired them: fired_at is the start of the pass that fired the timer.
        late = [
            (f - d).total_seconds()
            for d, f in s.execute(select(Timer.due_at, Timer.fired_at).where(Timer.outcome == "fired"))
            if f is not None
        ]
        events = Counter(
            str((p or {}).get("timer"))
            for p in s.scalars(select(TimelineEvent.payload).where(TimelineEvent.action.in_(CLOCK_ACTIONS)))
        )
        inbox = Counter(
            s.execute(select(Notification.source, Notification.user_id, Notification.unit_id)).all()
        )
        outbox = Counter(s.scalars(select(OutboxMessage.message_id)))
        outbox_sent = int(
            s.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status == "sent"))
            or 0
        )
        tickets = int(s.scalar(select(func.count()).select_from(Ticket)) or 0)
    acked = [i for i in shared.intakes if i.number is not None]
    lost = [i.key for i in acked if by_key.get(i.key) != i.number]
    twice = [i.key for i in shared.intakes if details[i.body["detail"]] > 1]
    never = [i.key for i in shared.intakes if i.key not in by_key]
    received = rx.counts()
    return {
        "tickets": tickets,
        "intakes attempted": len(shared.intakes),
        "acknowledged lost": len(lost),
        "lost keys": lost[:10],
        "stored twice": len(twice),
        "not stored after retry": len(never),
        "timers fired": sum(1 for o in timers.values() if o == "fired"),
        "clock events": sum(events.values()),
        "timer lateness p50 s": round(pct(late, 0.5) or 0, 1),
        "timer lateness p99 s": round(pct(late, 0.99) or 0, 1),
        "timer lateness max s": round(max(late, default=0), 1),
        "clock events twice": sum(1 for n in events.values() if n > 1),
        "clock events of no fired timer": len(set(events) - set(timers)),
        "in-app notifications": sum(inbox.values()),
        "in-app notifications twice": sum(1 for n in inbox.values() if n > 1),
        "outbox rows": sum(outbox.values()),
        "outbox sent": outbox_sent,
        "robot deliveries": sum(received.values()),
        "robot deliveries twice": sum(1 for n in received.values() if n > 1),
        "robot deliveries of no outbox row": len(set(received) - set(outbox)),
    }


# ------------------------------------------------------------------------------------------------- report
def pct(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * (len(s) - 1) + 0.5))]


def route_rows(stats: Stats) -> list[dict[str, Any]]:
    rows = []
    for cls, r in sorted(stats.routes.items()):
        rows.append(
            {
                "class": cls,
                "requests": sum(r.status.values()),
                "2xx/3xx": sum(n for s, n in r.status.items() if s < 400),
                "4xx": sum(n for s, n in r.status.items() if 400 <= s < 500),
                "5xx": sum(n for s, n in r.status.items() if s >= 500),
                "refused": r.refused,
                "cut": r.cut,
                "unavailable": r.unavailable,
                "p50 ms": round(1000 * (pct(r.latencies, 0.5) or 0), 1),
                "p99 ms": round(1000 * (pct(r.latencies, 0.99) or 0), 1),
                "statuses": dict(sorted(r.status.items())),
            }
        )
    return rows


def print_report(
    rows: list[dict[str, Any]], procs: Processes, checks: dict[str, Any], seconds: float
) -> None:
    t = Table(title=f"soak: requests per route class ({seconds / 60:.1f} min)")
    cols = ["class", "requests", "2xx/3xx", "4xx", "5xx", "refused", "cut", "unavailable", "p50 ms", "p99 ms"]
    for i, c in enumerate(cols):
        t.add_column(c, justify="left" if i == 0 else "right")
    for r in rows:
        t.add_row(*(str(r[c]) for c in cols))
    total = {c: sum(r[c] for r in rows) for c in cols[1:8]}
    t.add_row("all", *(str(total[c]) for c in cols[1:8]), "", "", style="bold")
    console.print(t)
    m = Table(title="resident memory (MB)")
    for c in ["process", "start", "peak", "end"]:
        m.add_column(c, justify="left" if c == "process" else "right")
    for name in ["api 1", "api 2", "worker"]:
        xs = [s[name] for s in procs.rss if s.get(name) is not None]
        m.add_row(name, f"{xs[0]:.0f}", f"{max(xs):.0f}", f"{xs[-1]:.0f}")
    console.print(m)
    after = Table(title="after the load")
    after.add_column("check")
    after.add_column("value", justify="right")
    for k, v in checks.items():
        if not isinstance(v, list | dict):
            after.add_row(k, str(v))
    console.print(after)


def verdict(rows: list[dict[str, Any]], checks: dict[str, Any], left: dict[str, int]) -> list[str]:
    reasons = []
    five = sum(r["5xx"] for r in rows)
    if five:
        reasons.append(f"{five} 5xx")
    for k in (
        "acknowledged lost",
        "stored twice",
        "not stored after retry",
        "clock events twice",
        "clock events of no fired timer",
        "in-app notifications twice",
        "robot deliveries twice",
        "robot deliveries of no outbox row",
    ):
        if checks[k]:
            reasons.append(f"{checks[k]} {k}")
    if any(left.values()):
        reasons.append(f"backlog not drained: {left}")
    if not checks["clock events"]:
        reasons.append("no clock event fired: the soak proved nothing about escalations")
    return reasons


# ------------------------------------------------------------------------------------------------- main
def run(args: argparse.Namespace) -> int:
    reason = pg_skip_reason()
    if reason:
        console.print(f"soak: FAIL ({reason})")
        return 1
    url, name = create_pg_database()
    tmp = Path(tempfile.mkdtemp(prefix="minsheng-soak-"))
    console.print(f"database {name}, logs in {tmp}")
    stats, shared, stop = Stats(), Shared(), threading.Event()
    procs: Processes | None = None
    try:
        setup(url)
        with receiver_process(tmp / "received.txt") as rx:
            env = {
                "MINSHENG_EMBEDDED_WORKER": "false",
                "MINSHENG_TRIAGE_MODE": "deferred",
                "MINSHENG_WECOM_WEBHOOK_URL": rx.url,
                "MINSHENG_POOL_SIZE": "4",
            }
            data = tmp / "data"
            api = [start_server(url, data, port=free_port(), **env) for _ in range(2)]
            procs = Processes(api, start_worker(url, data, **env))
            t0 = time.monotonic()
            load_before = os.getloadavg()
            procs.sample(0.0)
            up = Upstreams([a.base_url for a in api], stats)
            users = [
                User(username, up, shared, stop, seed=args.seed * 1000 + 10 * n + k, slot=k)
                for n, (username, _, copies) in enumerate(ROLES)
                for k in range(copies)
            ]
            acts = [act for _, act, copies in ROLES for _ in range(copies)]
            threads = [
                threading.Thread(target=u.run, args=(a, args.think), daemon=True)
                for u, a in zip(users, acts, strict=True)
            ]
            watch_stop = threading.Event()
            watcher = threading.Thread(target=sampler, args=(procs, t0, watch_stop), daemon=True)
            watcher.start()
            for th in threads:
                th.start()
            duration = args.minutes * 60
            kill_at = duration * args.kill_at
            time.sleep(max(0.0, kill_at - (time.monotonic() - t0)))
            victim = procs.api[0]
            rss_before_kill = victim.rss_mb()
            killed_at = time.monotonic() - t0
            victim.kill()
            console.print(f"{killed_at:.0f} s: kill -9 of api 1 (pid {victim.pid}, {rss_before_kill:.0f} MB)")
            t_restart = time.monotonic()
            procs.api[0] = start_server(url, data, port=victim.port, **env)
            downtime = time.monotonic() - t_restart
            console.print(f"api 1 back after {downtime:.1f} s (pid {procs.api[0].pid})")
            time.sleep(max(0.0, duration - (time.monotonic() - t0)))
            stop.set()
            for th in threads:
                th.join(60)
            load_seconds = time.monotonic() - t0
            load_after = os.getloadavg()
            procs.sample(load_seconds)
            watch_stop.set()
            watcher.join(15)
            in_doubt = retry_in_doubt(up, shared)
            cutoff = datetime.now(UTC)
            db = open_database(url)
            try:
                drained_in, at_stop, left = drain(db, cutoff, timeout=DRAIN_TIMEOUT)
                checks = integrity(db, shared, rx)
            finally:
                db.dispose()
            procs.sample(time.monotonic() - t0)
            stopped = {n: stop_within(p, 30) for n, p in procs.named().items()}
        rows = route_rows(stats)
        checks = {
            "kill at s": round(killed_at, 1),
            "downtime s (kill → healthy)": round(downtime, 1),
            "intakes in doubt, retried": in_doubt,
            **checks,
            **{f"backlog at the end: {k}": v for k, v in at_stop.items()},
            "backlog drained in s": round(drained_in, 1),
            **{f"SIGTERM → exit s: {n}": "over 30 (killed)" if v is None else v for n, v in stopped.items()},
        }
        print_report(rows, procs, checks, load_seconds)
        console.print(f"load average of the host before/after: {load_before} / {load_after}")
        reasons = verdict(rows, checks, left)
        write_results(
            "soak",
            {
                "command": " ".join(["bench/soak.py", *sys.argv[1:]]),
                "minutes": args.minutes,
                # The host is shared: its load average (1, 5, 15 min) before and after says how much.
                "loadavg": {"before": load_before, "after": load_after},
                "routes": rows,
                "processes": {
                    "rss_mb": procs.rss,
                    "rss_before_kill_api1": rss_before_kill,
                    "sigterm_s": stopped,
                },
                "checks": checks,
                "backlog_left": left,
                "unexpected_answers": dict(stats.errors.most_common(30)),
                "verdict": reasons or "PASS",
            },
        )
        if stats.errors:
            console.print("unexpected answers (most common):")
            for text, n in stats.errors.most_common(8):
                console.print(f"  {n} × {text}", highlight=False)
        if not reasons and not args.keep_db:
            shutil.rmtree(tmp, ignore_errors=True)  # the processes' logs: kept when something failed
        console.print("soak: PASS" if not reasons else f"soak: FAIL ({'; '.join(reasons)})", highlight=False)
        return 0 if not reasons else 1
    finally:
        stop.set()
        if procs is not None:
            for p in procs.named().values():
                p.ensure_gone()
        if not args.keep_db:
            drop_pg_database(name)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--minutes", type=float, default=10.0, help="length of the load (default 10; 1 for a quick run)"
    )
    p.add_argument(
        "--kill-at", type=float, default=0.5, help="when api 1 is killed, as a share of the length"
    )
    p.add_argument(
        "--think", type=float, default=0.2, help="seconds each virtual user pauses between actions (mean)"
    )
    p.add_argument("--seed", type=int, default=14)
    p.add_argument("--keep-db", action="store_true", help="keep the database (for a look afterwards)")
    args = p.parse_args()
    try:
        code = run(args)
    except Exception as e:  # the bench itself broke (a process that would not start …): still a verdict
        console.print_exception()
        console.print(
            f"soak: FAIL ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})", highlight=False
        )
        code = 1
    raise SystemExit(code)


if __name__ == "__main__":
    main()
