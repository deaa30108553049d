"""Shared fixtures: a migrated database on SQLite and on PostgreSQL, an injected clock, org fixtures."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from minsheng.domain.clock import FixedClock
from minsheng.storage.db import Database, open_database
from minsheng.storage.migrate import upgrade

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PG_ADMIN_URL = os.environ.get(
    "MINSHENG_TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def _pg_available() -> str | None:
    try:
        eng = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with eng.connect() as c:
            c.execute(text("select 1"))
        eng.dispose()
        return None
    except Exception as e:  # any failure to connect means: skip with the reason
        return f"PostgreSQL not reachable at {PG_ADMIN_URL}: {type(e).__name__}: {str(e).splitlines()[0]}"


_PG_SKIP_REASON: str | bool | None = False


def pg_skip_reason() -> str | None:
    global _PG_SKIP_REASON
    if _PG_SKIP_REASON is False:
        _PG_SKIP_REASON = _pg_available()
    return _PG_SKIP_REASON  # type: ignore[return-value]


def create_pg_database() -> tuple[str, str]:
    """Create a throw-away PostgreSQL database; returns (url, name)."""
    name = f"minsheng_test_{uuid.uuid4().hex[:12]}"
    eng = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    eng.dispose()
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}", name


def drop_pg_database(name: str) -> None:
    eng = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    eng.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database URL with no tables yet, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'minsheng.db'}"
        return
    reason = pg_skip_reason()
    if reason:
        pytest.skip(reason)
    url, name = create_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(name)


@pytest.fixture
def db_url(empty_db_url: str) -> str:
    """A freshly migrated empty database URL, once on SQLite and once on PostgreSQL."""
    upgrade(empty_db_url)
    return empty_db_url


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = open_database(db_url)
    yield database
    database.dispose()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 11, 21, 1, 0, tzinfo=UTC))


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data absent at {SHARED_DATA}")
    return SHARED_DATA
