"""Alembic environment: runs migrations against the URL given by minsheng.storage.migrate."""

from __future__ import annotations

from alembic import context

from minsheng.storage import tables_extra  # noqa: F401  (registers every table on Base.metadata)
from minsheng.storage.db import create_db_engine
from minsheng.storage.models import Base

config = context.config
target_metadata = Base.metadata


def include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    # The knowledge base's full-text index is made at start-up (services/kb.ensure_fts), not by migrations:
    # SQLite's FTS5 virtual table and its shadow tables, PostgreSQL's GIN index.
    if name is None:
        return True
    return not (
        (type_ == "table" and name.startswith("kb_fts")) or (type_ == "index" and name == "ix_kb_entries_fts")
    )


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url, "sqlalchemy.url must be set by minsheng.storage.migrate"
    connectable = config.attributes.get("connection")
    if connectable is not None:
        context.configure(
            connection=connectable,
            target_metadata=target_metadata,
            render_as_batch=True,
            include_object=include_object,
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_db_engine(url, pool_size=1)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            include_object=include_object,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
