"""One migrated database per store for the whole package (a migration costs seconds): each test makes its own
tickets in the shared small city, and the one clock only moves forward."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from minsheng.domain.clock import FixedClock
from minsheng.storage.db import open_database
from minsheng.storage.migrate import upgrade
from tests.conftest import create_pg_database, drop_pg_database, pg_skip_reason
from tests.integration.supervision.helpers import City


@pytest.fixture(scope="package", params=["sqlite", "postgresql"])
def city(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[City]:
    name = None
    if request.param == "sqlite":
        url = f"sqlite:///{Path(tmp_path_factory.mktemp('supervision')) / 'minsheng.db'}"
    else:
        reason = pg_skip_reason()
        if reason:
            pytest.skip(reason)
        url, name = create_pg_database()
    upgrade(url)
    db = open_database(url)
    try:
        yield City(db, FixedClock(datetime(2026, 11, 21, 1, 0, tzinfo=UTC)))
    finally:
        db.dispose()
        if name:
            drop_pg_database(name)
