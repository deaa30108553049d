"""Unit of work: one transaction per use case, committed only when the block ends without an error."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session

from minsheng.storage.db import Database


@contextmanager
def writing(db: Database) -> Iterator[Session]:
    """A write transaction (BEGIN IMMEDIATE on SQLite); rolled back on any exception."""
    with db.write_sessions() as session, session.begin():
        yield session


@contextmanager
def reading(db: Database) -> Iterator[Session]:
    with db.read_sessions() as session, session.begin():
        yield session
