"""HTTP fixtures: the real app over a migrated database (SQLite and PostgreSQL), logged-in clients per role."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from minsheng.asgi import create_app
from minsheng.config import Settings
from minsheng.domain.clock import FixedClock
from minsheng.storage.db import Database
from tests.factories import PASSWORD, small_city


@pytest.fixture
def app_client(db: Database, db_url: str, clock: FixedClock, tmp_path: Path) -> Iterator[TestClient]:
    with db.write_sessions() as session, session.begin():
        small_city(session, clock.now())
    settings = Settings(
        database_url=db_url, data_dir=tmp_path / "data", embedded_worker=False, environment="test"
    )
    app = create_app(settings, clock=clock, db=db)
    with TestClient(app) as client:
        yield client


@pytest.fixture
def login(app_client: TestClient) -> Callable[[str], TestClient]:
    """Return a client logged in as a user (own cookie jar, CSRF header set)."""
    clients: list[TestClient] = []

    def _login(username: str) -> TestClient:
        c = TestClient(app_client.app)
        r = c.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
        assert r.status_code == 200, r.text
        c.headers["X-CSRF-Token"] = r.json()["csrf_token"]
        clients.append(c)
        return c

    return _login
