"""The `limits` storage over our database: atomic counts under concurrent hits, windows that end, and
migration 0005 up and down, on both stores."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import sqlalchemy as sa
from limits import RateLimitItemPerMinute
from limits.strategies import FixedWindowRateLimiter

from minsheng.domain.clock import FixedClock
from minsheng.services.limits import DatabaseStorage
from minsheng.storage.db import Database, normalise_url, open_database
from minsheng.storage.migrate import alembic_config, upgrade


def test_concurrent_hits_each_get_their_own_count(db: Database, db_url: str, clock: FixedClock) -> None:
    # Two Database objects stand for two processes; 8 threads hit one key 25 times each.
    other = open_database(db_url)
    try:
        storages = [DatabaseStorage(db, clock), DatabaseStorage(other, clock)]

        def hits(i: int) -> list[int]:
            return [storages[i % 2].incr("k", 60) for _ in range(25)]

        with ThreadPoolExecutor(8) as pool:
            counts = [c for part in pool.map(hits, range(8)) for c in part]
    finally:
        other.dispose()
    assert sorted(counts) == list(range(1, 201))
    assert storages[0].get("k") == 200


def test_a_window_ends_and_starts_again(db: Database, clock: FixedClock) -> None:
    storage = DatabaseStorage(db, clock)
    limiter = FixedWindowRateLimiter(storage)
    item = RateLimitItemPerMinute(2)
    assert limiter.hit(item, "a") and limiter.hit(item, "a") and not limiter.hit(item, "a")
    assert limiter.hit(item, "b")  # another key, its own window
    reset = limiter.get_window_stats(item, "a").reset_time
    assert reset == clock.now().timestamp() + 60
    clock.advance(timedelta(seconds=61))
    assert limiter.hit(item, "a") and storage.get(item.key_for("a")) == 1
    storage.clear(item.key_for("a"))
    assert storage.get(item.key_for("a")) == 0 and storage.check()
    assert storage.reset() == 1  # "b" (a was cleared)
    assert storage.incr("x" * 500, 60) == 1 and storage.get("x" * 500) == 1  # a long key fits its column


def test_migration_0005_up_and_down(empty_db_url: str) -> None:
    from alembic import command

    upgrade(empty_db_url, "0005")
    engine = sa.create_engine(normalise_url(empty_db_url))
    try:
        assert {"rate_limit_counters", "login_failures"} <= set(sa.inspect(engine).get_table_names())
        command.downgrade(alembic_config(empty_db_url), "0004")
        assert not {"rate_limit_counters", "login_failures"} & set(sa.inspect(engine).get_table_names())
        upgrade(empty_db_url, "0005")
        assert "rate_limit_counters" in set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
