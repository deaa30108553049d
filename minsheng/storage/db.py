"""Engines and sessions for SQLite (WAL, the embedded default) and PostgreSQL (production).

SQLite transactions that write start with BEGIN IMMEDIATE, so that two writers queue for the database lock
instead of one failing half-way when it upgrades a read lock; PostgreSQL write paths lock rows with
SELECT … FOR UPDATE. Either way a concurrent second step sees the first one's result and gets a clean conflict.
"""

from __future__ import annotations

import threading

# The loop of this thread or None, without raising (asyncio.get_running_loop raises when there is none).
from asyncio import _get_running_loop as asyncio_running_loop
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 30_000


def normalise_url(url: str) -> str:
    """Accept postgres:// and postgresql:// and pick the psycopg 3 driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def create_db_engine(url: str, *, pool_size: int = 10, echo: bool = False) -> Engine:
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            echo=echo,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            pool_size=pool_size,
            max_overflow=pool_size * 2,
        )
        _install_sqlite_hooks(engine)
        return engine
    return create_engine(url, echo=echo, pool_size=pool_size, max_overflow=pool_size * 2, pool_pre_ping=True)


def _install_sqlite_hooks(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take over transaction control from pysqlite so that we can choose BEGIN IMMEDIATE.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA cache_size=-65536")
        cur.close()

    # Writers of this process queue on a lock instead of in SQLite's busy handler, whose sleeps (up to
    # 100 ms each) would dominate latency when dozens of request threads write at once. Other processes
    # still meet in the busy handler.
    write_lock = threading.Lock()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        if mode == "IMMEDIATE":
            write_lock.acquire()
            conn.info["minsheng_write_lock"] = True
        try:
            conn.exec_driver_sql(f"BEGIN {mode}")
        except Exception:
            _release(conn)
            raise

    def _release(conn: Any) -> None:
        if conn.info.pop("minsheng_write_lock", False):
            write_lock.release()

    event.listen(engine, "commit", lambda conn: _release(conn))
    event.listen(engine, "rollback", lambda conn: _release(conn))


class BlockingOnEventLoop(RuntimeError):
    """Database work was started on a thread that runs an asyncio event loop.

    A blocking query there stalls every request of the process, and one that waits for a lock held by a
    worker thread (which may need the loop to finish) deadlocks it. Such work belongs in a worker thread.
    """


def _refuse_event_loop(_dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
    if asyncio_running_loop() is not None:
        raise BlockingOnEventLoop(
            "a database connection was requested on the event loop thread: run blocking work in a worker "
            "thread (a plain `def` handler, or anyio.to_thread.run_sync)"
        )


@dataclass
class Database:
    """One database: an engine and session factories for reading and for writing."""

    engine: Engine
    read_sessions: sessionmaker[Session]
    write_sessions: sessionmaker[Session]

    def forbid_event_loop(self) -> None:
        """From now on, taking a connection on a thread that runs an event loop raises BlockingOnEventLoop.

        The web app turns this on once started (start-up itself may run on the loop's thread)."""
        if not event.contains(self.engine, "checkout", _refuse_event_loop):
            event.listen(self.engine, "checkout", _refuse_event_loop)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def dispose(self) -> None:
        self.engine.dispose()


def open_database(url: str, *, pool_size: int = 10, echo: bool = False) -> Database:
    engine = create_db_engine(url, pool_size=pool_size, echo=echo)
    write_engine = engine.execution_options(sqlite_begin="IMMEDIATE")
    return Database(
        engine=engine,
        read_sessions=sessionmaker(engine, expire_on_commit=False),
        write_sessions=sessionmaker(write_engine, expire_on_commit=False),
    )
