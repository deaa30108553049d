"""Issue 14, findings 3-5: abuse refused without a person watching, on both stores.

Login lockout and per-address throttling with a record of failed logins; rate limits on the public
endpoints; long query codes that travel outside the URL; no urgency chosen by an anonymous caller; a body size
limit; and limits that two apps on one database share.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from minsheng.asgi import create_app
from minsheng.config import Settings
from minsheng.domain.clock import FixedClock
from minsheng.domain.numbering import QUERY_CODE_ALPHABET
from minsheng.storage.db import Database, open_database
from tests.factories import PASSWORD, small_city

AppFactory = Callable[..., TestClient]
CITIZEN = {"channel": "web", "detail": "小区门口井盖缺失很危险", "citizen_phone": "13912345678"}


@pytest.fixture
def seeded(db: Database, clock: FixedClock) -> Database:
    with db.write_sessions() as session, session.begin():
        small_city(session, clock.now())
    return db


@pytest.fixture
def make_app(seeded: Database, db_url: str, clock: FixedClock, tmp_path: Path) -> Iterator[AppFactory]:
    """An app over the test database with the given limits (its own Database when `own_db`)."""
    stack: list[tuple[TestClient, Database | None]] = []

    def _make(*, own_db: bool = False, **limits: Any) -> TestClient:
        settings = Settings(
            database_url=db_url,
            data_dir=tmp_path / "data",
            embedded_worker=False,
            environment="test",
            **limits,
        )
        database = open_database(db_url) if own_db else seeded
        client = TestClient(create_app(settings, clock=clock, db=database))
        client.__enter__()
        stack.append((client, database if own_db else None))
        return client

    yield _make
    for client, database in reversed(stack):
        client.__exit__(None, None, None)
        if database is not None:
            database.dispose()


def _login(c: TestClient, username: str, password: str) -> Any:
    return c.post("/api/v1/auth/login", json={"username": username, "password": password})


def _retry_after(r: Any) -> int:
    assert r.status_code == 429, r.text
    return int(r.headers["Retry-After"])


# ---------------------------------------------------------------------------------------------- finding 3
def test_login_locks_a_username_after_failures_and_records_them(
    make_app: AppFactory, clock: FixedClock
) -> None:
    c = make_app(login_max_failures=5, login_failure_window_seconds=900, login_lockout_seconds=600)
    for _ in range(5):
        assert _login(c, "operator1", "wrong-password").status_code == 401
    # Locked: even the right password is refused, with Retry-After, and so is the login page.
    wait = _retry_after(_login(c, "operator1", PASSWORD))
    assert 1 <= wait <= 600
    token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login").text)
    assert token
    page = c.post(
        "/login", data={"csrf_token": token.group(1), "username": "operator1", "password": PASSWORD}
    )
    assert page.status_code == 429 and int(page.headers["Retry-After"]) <= 600
    # Other users are not locked.
    assert _login(c, "dispatcher1", PASSWORD).status_code == 200
    # An unknown name locks like a known one (a 429 says nothing about whether the name exists).
    for _ in range(5):
        assert _login(c, "nobody-here", "x").status_code == 401
    _retry_after(_login(c, "nobody-here", "x"))

    clock.advance(timedelta(seconds=601))
    admin = make_app()
    r = _login(admin, "admin", PASSWORD)
    assert r.status_code == 200
    admin.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    assert _login(c, "operator1", PASSWORD).status_code == 200

    rows = admin.get("/api/v1/auth/failures", params={"username": "operator1"}).json()["failures"]
    reasons = [row["reason"] for row in rows]
    assert reasons.count("wrong_password") == 5 and reasons.count("locked") == 2, reasons
    assert all(row["address"] == "testclient" and row["at"] for row in rows)
    everyone = admin.get("/api/v1/auth/failures").json()["failures"]
    assert {"unknown_user", "wrong_password", "locked"} <= {row["reason"] for row in everyone}
    op = TestClient(admin.app)
    assert _login(op, "operator1", PASSWORD).status_code == 200
    assert op.get("/api/v1/auth/failures").status_code == 403
    assert TestClient(admin.app).get("/api/v1/auth/failures").status_code == 401


def test_login_throttled_per_address(make_app: AppFactory) -> None:
    c = make_app(login_max_failures=100, login_address_max_failures=3)
    for name in ("operator1", "dispatcher1", "h_cgj"):
        assert _login(c, name, "wrong-password").status_code == 401
    _retry_after(_login(c, "admin", PASSWORD))


def test_right_password_forgives_earlier_failures(make_app: AppFactory) -> None:
    c = make_app(login_max_failures=3)
    for _ in range(2):
        assert _login(c, "operator1", "wrong-password").status_code == 401
        assert _login(c, "operator1", PASSWORD).status_code == 200
    assert _login(c, "operator1", "wrong-password").status_code == 401
    assert _login(c, "operator1", PASSWORD).status_code == 200


# ---------------------------------------------------------------------------------------------- finding 4
def _submit(c: TestClient, **extra: Any) -> Any:
    return c.post("/api/v1/public/tickets", json={**CITIZEN, **extra})


def test_public_submit_is_rate_limited_per_address(make_app: AppFactory, clock: FixedClock) -> None:
    c = make_app(public_submit_limit="2/minute")
    assert _submit(c).status_code == 201
    assert _submit(c).status_code == 201
    r = _submit(c)
    assert 1 <= _retry_after(r) <= 60 and r.json()["error"]["code"] == "rate_limited"
    clock.advance(timedelta(seconds=61))
    assert _submit(c).status_code == 201


def test_public_track_and_rate_are_rate_limited_per_address(make_app: AppFactory) -> None:
    c = make_app(public_track_limit="3/minute")
    number = _submit(c).json()["number"]
    for _ in range(3):
        r = c.get(f"/api/v1/public/tickets/{number}", params={"query_code": "WRONG12345"})
        assert r.status_code == 404
    _retry_after(c.get(f"/api/v1/public/tickets/{number}", params={"query_code": "WRONG12345"}))
    _retry_after(c.post(f"/api/v1/public/tickets/{number}/track", json={"query_code": "WRONG12345"}))
    _retry_after(
        c.post(f"/api/v1/public/tickets/{number}/rate", json={"query_code": "X" * 10, "rating": "satisfied"})
    )


def test_query_codes_are_long_and_travel_outside_the_url(make_app: AppFactory) -> None:
    c = make_app()
    r = _submit(c)
    assert r.status_code == 201, r.text
    number, code = r.json()["number"], r.json()["query_code"]
    assert len(code) >= 10 and set(code) <= set(QUERY_CODE_ALPHABET)
    by_body = c.post(f"/api/v1/public/tickets/{number}/track", json={"query_code": code})
    assert by_body.status_code == 200 and by_body.json()["number"] == number
    assert c.get(f"/api/v1/public/tickets/{number}", headers={"X-Query-Code": code}).status_code == 200
    assert (
        c.post(f"/api/v1/public/tickets/{number}/track", json={"query_code": "WRONG12345"}).status_code == 404
    )
    assert c.get(f"/api/v1/public/tickets/{number}").status_code == 422
    # The old way still answers, marked deprecated in the OpenAPI document.
    assert c.get(f"/api/v1/public/tickets/{number}", params={"query_code": code}).status_code == 200
    params = c.get("/openapi.json").json()["paths"]["/api/v1/public/tickets/{number}"]["get"]["parameters"]
    assert {p["name"]: p.get("deprecated", False) for p in params}["query_code"] is True


def test_six_character_codes_given_before_keep_working(make_app: AppFactory, seeded: Database) -> None:
    from sqlalchemy import update

    from minsheng.domain.numbering import hash_query_code
    from minsheng.storage.models import Ticket

    c = make_app()
    number = _submit(c).json()["number"]
    with seeded.write_sessions() as session, session.begin():
        session.execute(
            update(Ticket).where(Ticket.number == number).values(query_code_hash=hash_query_code("ABC234"))
        )
    assert c.post(f"/api/v1/public/tickets/{number}/track", json={"query_code": "abc234"}).status_code == 200


@pytest.mark.parametrize("urgency", ["emergency", "urgent"])
def test_a_citizen_may_not_choose_the_urgency(make_app: AppFactory, urgency: str) -> None:
    c = make_app()
    r = _submit(c, urgency=urgency)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["detail"]["field"] == "urgency"
    assert _submit(c, urgency="normal").status_code == 201


# ---------------------------------------------------------------------------------------------- finding 5
def test_a_body_over_the_limit_gets_413_before_it_is_read(make_app: AppFactory) -> None:
    c = make_app(max_body_bytes=64 * 1024)
    big = b'{"channel": "web", "detail": "' + b"x" * (200 * 1024) + b'"}'
    r = c.post("/api/v1/public/tickets", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while it streams
        yield b'{"channel": "web", "detail": "'
        for _ in range(100):
            yield b"x" * 4096
        yield b'"}'

    r = c.post("/api/v1/public/tickets", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"
    page = c.post(
        "/login",
        content=b"username=" + b"a" * (100 * 1024),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert page.status_code == 413 and page.headers["content-type"].startswith("text/plain")
    # Under the limit nothing changes, and an upload may be as large as an attachment plus a margin.
    assert _submit(c).status_code == 201
    upload = c.post(
        "/api/v1/public/tickets",
        files={"file": ("p.png", b"\x89PNG" + b"0" * (200 * 1024), "image/png")},
    )
    assert upload.status_code != 413


# ------------------------------------------------------------------------------------- shared limits
def test_two_apps_on_one_database_share_the_limits(make_app: AppFactory) -> None:
    a = make_app(own_db=True, public_track_limit="3/minute", login_max_failures=3)
    b = make_app(own_db=True, public_track_limit="3/minute", login_max_failures=3)
    number = _submit(a).json()["number"]
    assert (
        a.post(f"/api/v1/public/tickets/{number}/track", json={"query_code": "WRONG12345"}).status_code == 404
    )
    assert (
        b.post(f"/api/v1/public/tickets/{number}/track", json={"query_code": "WRONG12345"}).status_code == 404
    )
    assert (
        a.post(f"/api/v1/public/tickets/{number}/track", json={"query_code": "WRONG12345"}).status_code == 404
    )
    _retry_after(b.post(f"/api/v1/public/tickets/{number}/track", json={"query_code": "WRONG12345"}))
    # Failures on one process lock the username on the other.
    assert _login(a, "operator1", "wrong-password").status_code == 401
    assert _login(b, "operator1", "wrong-password").status_code == 401
    assert _login(a, "operator1", "wrong-password").status_code == 401
    _retry_after(_login(b, "operator1", PASSWORD))


def test_query_codes_never_reach_the_access_log() -> None:
    import logging

    from minsheng.http.limits import ACCESS_LOGGER, BodyLimit

    BodyLimit(lambda *_: None, Settings())  # type: ignore[arg-type]
    record = logging.LogRecord(
        ACCESS_LOGGER,
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("1.2.3.4:5", "GET", "/api/v1/public/tickets/2026112100001?query_code=ABCDEF2345&x=1", "1.1", 200),
        None,
    )
    for f in logging.getLogger(ACCESS_LOGGER).filters:
        assert not isinstance(f, logging.Filter) or f.filter(record)
    assert "ABCDEF2345" not in record.getMessage() and re.search(
        r"query_code=\[redacted\]&x=1", record.getMessage()
    )
