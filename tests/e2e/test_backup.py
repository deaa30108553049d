"""`minsheng db backup` while a live server takes tickets, and `minsheng db restore` of it (both stores).

The round trip: every ticket acknowledged before the backup started is in the restored copy, the copy is one
moment of the database (each ticket with its intake event, each deferred ticket with its triage job or its
triage), and it passes `minsheng db check`. Restore refuses a database holding data unless --force; a copy of
one store does not go into the other; a missing pg_dump is named.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from minsheng.storage.db import open_database
from minsheng.storage.models import Ticket, TimelineEvent
from minsheng.storage.triage_tables import TriageJob
from tests.conftest import create_pg_database, drop_pg_database
from tests.e2e.live.flood import IntakeFlood
from tests.e2e.live.server import live_server, seed_small_city


def minsheng(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real CLI in a child process (as an operator runs it beside the servers)."""
    return subprocess.run(
        [sys.executable, "-m", "minsheng.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        check=False,
    )


@pytest.fixture
def other_db(db_url: str, tmp_path: Path) -> Iterator[str]:
    """An empty database of the same store, to restore into."""
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'restored.db'}"
        return
    url, name = create_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(name)


def _snapshot(url: str) -> dict[str, object]:
    db = open_database(url)
    try:
        with db.read_sessions() as s:
            return {
                "numbers": set(s.scalars(select(Ticket.number))),
                "intake events": s.scalar(
                    select(func.count()).select_from(TimelineEvent).where(TimelineEvent.action == "intake")
                ),
                "jobs": s.scalar(select(func.count()).select_from(TriageJob)),
                "triaged": s.scalar(
                    select(func.count()).select_from(Ticket).where(Ticket.triage.is_not(None))
                ),
            }
    finally:
        db.dispose()


def test_backup_while_serving_and_restore(
    db_url: str, other_db: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    seed_small_city(db_url)
    file = tmp_path / ("minsheng.db.bak" if db_url.startswith("sqlite") else "minsheng.dump")
    with live_server(db_url, tmp_path / "server", MINSHENG_TRIAGE_MODE="deferred") as server:
        flood = IntakeFlood([server.login("operator1") for _ in range(4)], tag="backup").start()
        try:
            deadline = time.monotonic() + 30
            while flood.acknowledged < 60 and time.monotonic() < deadline:
                time.sleep(0.05)
            before = {a.number for a in flood.acked()}
            t0 = time.monotonic()
            done = minsheng("db", "backup", str(file), "--database-url", db_url)
            took = time.monotonic() - t0
            during = flood.acknowledged - len(before)
            time.sleep(0.5)
        finally:
            flood.stop()
    assert done.returncode == 0, done.stderr
    assert not flood.failures, flood.failures[:3]
    assert len(before) >= 60 and during > 0, "the backup did not run while tickets were taken"

    done = minsheng("db", "restore", str(file), "--database-url", other_db)
    assert done.returncode == 0, done.stderr

    restored, original = _snapshot(other_db), _snapshot(db_url)
    numbers = restored["numbers"]
    assert isinstance(numbers, set)
    assert before <= numbers, f"{len(before - numbers)} tickets acknowledged before the backup are missing"
    assert numbers <= original["numbers"]  # type: ignore[operator]
    # One moment: each ticket with its intake event, each with its triage job or its triage (not neither).
    assert restored["intake events"] == len(numbers)
    assert restored["jobs"] + restored["triaged"] == len(numbers)  # type: ignore[operator]
    print(
        f"\nbackup on {db_url.split(':')[0]}: {took:.2f} s while serving; {len(before)} acknowledged before, "
        f"{during} during; the copy holds {len(numbers)} of {len(original['numbers'])} "  # type: ignore[arg-type]
    )

    # Restore refuses a database that holds data, unless --force; then it holds the copy, not its own.
    refused = minsheng("db", "restore", str(file), "--database-url", db_url)
    assert refused.returncode == 2 and "holds data" in refused.stderr, refused.stderr
    forced = minsheng("db", "restore", str(file), "--database-url", db_url, "--force")
    assert forced.returncode == 0, forced.stderr
    assert _snapshot(db_url)["numbers"] == numbers

    for url in (other_db, db_url):
        check = minsheng("db", "check", "--database-url", url)
        assert check.returncode == 0, check.stderr + check.stdout


def test_refusals_name_the_problem(tmp_path: Path) -> None:
    sqlite_url = f"sqlite:///{tmp_path / 'a.db'}"
    assert minsheng("db", "upgrade", "--database-url", sqlite_url).returncode == 0
    copy = tmp_path / "a.bak"
    assert minsheng("db", "backup", str(copy), "--database-url", sqlite_url).returncode == 0

    again = minsheng("db", "backup", str(copy), "--database-url", sqlite_url)
    assert again.returncode == 2 and "--force" in again.stderr
    assert minsheng("db", "backup", str(copy), "--database-url", sqlite_url, "--force").returncode == 0

    junk = tmp_path / "junk"
    junk.write_text("not a backup")
    bad = minsheng("db", "restore", str(junk), "--database-url", sqlite_url)
    assert bad.returncode == 2 and "neither" in bad.stderr

    cross = minsheng("db", "restore", str(copy), "--database-url", "postgresql://postgres@127.0.0.1:5432/x")
    assert cross.returncode == 2 and "SQLite" in cross.stderr

    missing = minsheng(
        "db",
        "backup",
        str(tmp_path / "x.dump"),
        "--database-url",
        "postgresql://postgres@127.0.0.1:5432/x",
        env={"PATH": str(tmp_path)},
    )
    assert missing.returncode == 1 and "pg_dump not found" in missing.stderr, missing.stderr
    assert "postgresql-client" in missing.stderr
