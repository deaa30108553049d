"""Where SQLite and PostgreSQL differ, in one place: upserts, row locks, advisory locks.

Services ask these questions of their session instead of comparing dialect names themselves. SQLite has one
writer at a time (BEGIN IMMEDIATE under the process's write lock, see `storage.db`), so it needs no row locks;
PostgreSQL lets several processes write at once, so claims lock rows (`SKIP LOCKED` where a busy row may be
passed by, a plain `FOR UPDATE` where it must be waited for).
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

Q = TypeVar("Q", bound=Select[Any])


def name(session: Session) -> str:
    return session.get_bind().dialect.name


def is_sqlite(session: Session) -> bool:
    return name(session) == "sqlite"


def is_postgresql(session: Session) -> bool:
    return name(session) == "postgresql"


def insert(session: Session) -> Any:
    """The dialect's INSERT construct, which has ON CONFLICT (`on_conflict_do_nothing` / `_do_update`)."""
    return pg_insert if is_postgresql(session) else sqlite_insert


def lock_rows(session: Session, query: Q, *, skip_locked: bool = False) -> Q:
    """`FOR UPDATE` (optionally `SKIP LOCKED`) where rows can be locked; SQLite's writer lock covers it."""
    if is_sqlite(session):
        return query
    return query.with_for_update(skip_locked=skip_locked)  # type: ignore[return-value]


def advisory_lock(session: Session, key: str) -> None:
    """A transaction-scoped lock on a name (PostgreSQL); SQLite has one writer at a time anyway."""
    if is_postgresql(session):
        session.execute(select(func.pg_advisory_xact_lock(func.hashtext(key))))
