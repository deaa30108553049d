"""The server under concurrent load over real HTTP (uvicorn on loopback, `minsheng serve`), on both stores.

Each test fails on a server that blocks its event loop or holds a lock across an await: with the write lock
taken in one thread and released in another, 16 logins at once or an upload beside another write hung the
whole process, /healthz included, and SIGTERM could not stop it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from minsheng.storage.db import open_database
from minsheng.storage.models import Ticket
from tests.e2e.live.load import HealthWatch, assert_all_answered, run_all, summary
from tests.e2e.live.server import LiveServer, live_server, seed_small_city
from tests.factories import PASSWORD, png

PNG = png()
UPLOAD_ROUND = {"upload": 201, "wrong login": 401, "foreign upload": 403}
USERS = ["operator1", "dispatcher1", "supervisor1", "followup1", "leader1", "admin", "h_zjj", "h_cgj"]


@pytest.fixture
def live(db_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    seed_small_city(db_url)
    with live_server(db_url, tmp_path / "server") as server:
        yield server


def _intake(c: httpx.Client, i: int) -> httpx.Response:
    body = {
        "channel": "phone",
        "detail": f"幸福路{i}号路灯坏了，晚上很黑，第{i}次反映",
        "citizen_phone": "13800138000",
        "category_code": "010101",
        "area_code": "C0101",
    }
    return c.post("/api/v1/tickets", json=body)


def _dispatched_ticket(live: LiveServer, op: httpx.Client, disp: httpx.Client, i: int) -> str:
    r = _intake(op, i)
    assert r.status_code == 201, r.text
    number = str(r.json()["number"])
    r = disp.post(f"/api/v1/tickets/{number}/dispatch", json={"lead_unit": "CGJ"})
    assert r.status_code == 200, r.text
    return number


def _wrong_login(live: LiveServer) -> httpx.Response:
    return httpx.post(
        live.base_url + "/api/v1/auth/login", json={"username": "nobody", "password": "wrong"}, timeout=30
    )


def _login(live: LiveServer, username: str) -> httpx.Response:
    return httpx.post(
        live.base_url + "/api/v1/auth/login", json={"username": username, "password": PASSWORD}, timeout=30
    )


def test_upload_beside_another_write_20_rounds(live: LiveServer) -> None:
    op, disp, cgj = live.login("operator1"), live.login("dispatcher1"), live.login("h_cgj")
    number = _dispatched_ticket(live, op, disp, 1)
    with HealthWatch(live.base_url) as health:
        for round_ in range(20):
            outcomes = run_all(
                [
                    (
                        "upload",
                        lambda r=round_: cgj.post(
                            f"/api/v1/tickets/{number}/attachments",
                            files={"file": ("p.png", PNG + bytes([r]), "image/png")},
                        ),
                    ),
                    ("wrong login", lambda: _wrong_login(live)),
                    # A handler of another unit: refused, and refusing must not take the write lock first.
                    (
                        "foreign upload",
                        lambda: live.login("h_zjj").post(
                            f"/api/v1/tickets/{number}/attachments",
                            files={"file": ("x.png", PNG, "image/png")},
                        ),
                    ),
                ]
            )
            assert_all_answered(outcomes, ok=lambda o: o.status == UPLOAD_ROUND[o.name])
    health.check()


def test_32_simultaneous_logins(live: LiveServer) -> None:
    with HealthWatch(live.base_url) as health:
        outcomes = run_all([(u, lambda u=u: _login(live, u)) for u in (USERS * 4)[:32]])
    assert_all_answered(outcomes, ok=lambda o: o.status == 200)
    health.check()
    print("32 logins:", summary(outcomes))


def test_mixed_concurrent_writes_of_every_kind(live: LiveServer) -> None:
    op, disp, cgj, admin = (live.login(u) for u in ("operator1", "dispatcher1", "h_cgj", "admin"))
    numbers = [_dispatched_ticket(live, op, disp, i) for i in range(4)]
    fresh = []
    for i in range(4):
        r = _intake(op, 100 + i)
        assert r.status_code == 201, r.text
        fresh.append(str(r.json()["number"]))
    inbox = {t["number"]: t["assignment"]["id"] for t in cgj.get("/api/v1/inbox").json()}
    calls = (
        [(f"login {u}", lambda u=u: _login(live, u)) for u in USERS]
        + [("wrong login", lambda: _wrong_login(live)) for _ in range(4)]
        + [("intake", lambda i=i: _intake(op, 200 + i)) for i in range(6)]
        + [
            ("dispatch", lambda n=n: disp.post(f"/api/v1/tickets/{n}/dispatch", json={"lead_unit": "ZJJ"}))
            for n in fresh
        ]
        + [("sign", lambda n=n: cgj.post(f"/api/v1/assignments/{inbox[n]}/sign", json={})) for n in numbers]
        + [
            (
                "upload",
                lambda n=n: cgj.post(
                    f"/api/v1/tickets/{n}/attachments", files={"file": ("p.png", PNG, "image/png")}
                ),
            )
            for n in numbers
        ]
        + [
            (
                "admin unit",
                lambda i=i: admin.post(
                    "/api/v1/units", json={"code": f"U{i}", "name": f"测试单位{i}", "kind": "department"}
                ),
            )
            for i in range(3)
        ]
        + [
            (
                "admin area",
                lambda i=i: admin.post(
                    "/api/v1/areas",
                    json={
                        "code": f"C01{i:02d}",
                        "name": f"测试街道{i}",
                        "level": "street",
                        "parent_code": "C01",
                    },
                ),
            )
            for i in range(2, 4)
        ]
        + [
            (
                "public",
                lambda i=i: httpx.post(
                    live.base_url + "/api/v1/public/tickets",
                    timeout=30,
                    json={
                        "channel": "web",
                        "detail": f"和平街道{i}号噪声扰民，夜里施工",
                        "citizen_phone": "13900139000",
                    },
                ),
            )
            for i in range(3)
        ]
    )
    expected = {
        "wrong login": 401,
        "intake": 201,
        "dispatch": 200,
        "sign": 200,
        "upload": 201,
        "admin unit": 201,
        "admin area": 201,
        "public": 201,
    }
    with HealthWatch(live.base_url) as health:
        outcomes = run_all(calls)
    assert_all_answered(outcomes, ok=lambda o: o.status == expected.get(o.name, 200))
    health.check()


def _stream(
    live: LiveServer, client: httpx.Client, opened: threading.Semaphore, stop: threading.Event
) -> None:
    try:
        with client.stream("GET", "/screen/events", timeout=httpx.Timeout(30, read=60)) as r:
            assert r.status_code == 200
            opened.release()
            for _ in r.iter_lines():
                if stop.is_set():
                    return
    except httpx.HTTPError:
        return  # the server closed it (shutdown)


def _open_streams(live: LiveServer, n: int, stop: threading.Event) -> list[threading.Thread]:
    sup = live.login("supervisor1")
    opened = threading.Semaphore(0)
    threads = [
        threading.Thread(target=_stream, args=(live, sup, opened, stop), daemon=True) for _ in range(n)
    ]
    for t in threads:
        t.start()
    for _ in range(n):
        assert opened.acquire(timeout=20), "a stream did not open"
    return threads


def test_eight_open_streams_leave_the_server_responsive(live: LiveServer) -> None:
    stop = threading.Event()
    _open_streams(live, 8, stop)
    try:
        with HealthWatch(live.base_url, every=0.05) as health:
            logins = [run_all([("login", lambda: _login(live, "operator1"))])[0] for _ in range(5)]
            time.sleep(2.5)  # at least one poll round of every stream
        health.check(budget=0.5)
        assert_all_answered(logins, ok=lambda o: o.status == 200)
        worst = max(o.seconds for o in logins)
        assert worst < 1.5, f"login took {worst:.2f} s with 8 streams open"
    finally:
        stop.set()


def test_sigterm_ends_the_server_within_10_s_under_load(live: LiveServer, db_url: str) -> None:
    op = live.login("operator1")
    stop = threading.Event()
    _open_streams(live, 4, stop)
    acknowledged: list[str] = []
    failures: list[str] = []
    errors: list[str] = []

    def load() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            try:
                r = _intake(op, 1000 + i)
            except httpx.HTTPError as e:
                errors.append(repr(e))
                return  # refused or cut off by the shutdown: not acknowledged
            if r.status_code == 201:
                acknowledged.append(str(r.json()["number"]))
            else:
                failures.append(f"{r.status_code} {r.text[:300]}")

    loaders = [threading.Thread(target=load, daemon=True) for _ in range(4)]
    for t in loaders:
        t.start()
    deadline = time.monotonic() + 20  # the first intake loads the word lists
    while len(acknowledged) < 8 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert acknowledged, f"the load made no ticket before SIGTERM: {errors[:3]} {failures[:3]}"
    took = live.terminate(timeout=10)
    stop.set()
    for t in loaders:
        t.join(timeout=10)
    assert took < 10
    assert not failures, failures[:3]
    database = open_database(db_url)
    try:
        with database.read_sessions() as s:
            stored = set(s.scalars(select(Ticket.number).where(Ticket.number.in_(acknowledged))))
            assert s.scalar(select(func.count()).select_from(Ticket)) >= len(acknowledged)
    finally:
        database.dispose()
    assert stored == set(acknowledged), f"{len(set(acknowledged) - stored)} acknowledged tickets lost"
