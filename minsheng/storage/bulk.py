"""Many new rows into one table at once: PostgreSQL's COPY, SQLite's executemany, without per-row statements.

For writers of hundreds of thousands of rows (the history import). SQLAlchemy's executemany builds a parameter
dictionary per row and psycopg then sends each row as its own protocol message; profiles of a 10,000-row import
put about a third of the time there. Here each value goes through its column type's bind processor (the same
conversion SQLAlchemy applies: aware UTC datetimes, JSON text) and the rows travel as one COPY stream
(PostgreSQL) or one DB-API executemany of a plain positional INSERT (SQLite). Columns a row leaves out get the
column's Python-side default, as a Core INSERT would give them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Table, insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import DeclarativeBase, Session

_CHUNK = 5000
#: Up to this many rows an upsert on PostgreSQL is an executemany: the temporary table costs three more trips.
_FEW = 500


def _table(target: Table | type[DeclarativeBase]) -> Table:
    return target if isinstance(target, Table) else target.__table__  # type: ignore[return-value]


def _defaults(table: Table, given: Sequence[str]) -> dict[str, Any]:
    """Python-side defaults of the columns not given (scalars, or callables taking no context)."""
    out: dict[str, Any] = {}
    for col in table.columns:
        if col.name in given or col.default is None:
            continue
        default: Any = col.default
        if getattr(default, "is_scalar", False):
            out[col.name] = default.arg
        elif getattr(default, "is_callable", False):
            out[col.name] = default.arg(None)
    return out


def _processors(table: Table, columns: Sequence[str], conn: Connection) -> list[Callable[[Any], Any] | None]:
    """Each column's bind processor: the conversion SQLAlchemy applies before values reach the driver."""
    return [table.c[c].type.dialect_impl(conn.dialect).bind_processor(conn.dialect) for c in columns]


def _copies(conn: Connection) -> bool:
    """PostgreSQL through psycopg 3 (what `storage.db` selects), whose cursors have COPY."""
    return conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg"


def _copy(conn: Connection, target: str, names: str, rows: Iterable[Sequence[Any]]) -> None:
    """COPY ``rows`` into ``target`` through psycopg, in the connection's transaction."""
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    with cursor, cursor.copy(f"COPY {target} ({names}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def insert_rows(session: Session, target: Table | type[DeclarativeBase], rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys) in the session's transaction; no RETURNING, no upsert."""
    if not rows:
        return
    table = _table(target)
    conn = session.connection()
    prep = conn.dialect.identifier_preparer
    given = list(rows[0])
    extra = _defaults(table, given)
    columns = given + list(extra)
    procs = _processors(table, columns, conn)

    def values(row: dict[str, Any]) -> tuple[Any, ...]:
        raw = [row[c] for c in given] + [extra[c] for c in extra]
        return tuple(v if p is None else p(v) for p, v in zip(procs, raw, strict=True))

    names = ", ".join(prep.quote(c) for c in columns)
    qtable = prep.format_table(table)
    if _copies(conn):
        _copy(conn, qtable, names, map(values, rows))
    elif conn.dialect.name == "sqlite":
        sql = f"INSERT INTO {qtable} ({names}) VALUES ({', '.join('?' * len(columns))})"
        for i in range(0, len(rows), _CHUNK):
            conn.exec_driver_sql(sql, [values(r) for r in rows[i : i + _CHUNK]])
    else:  # any other store: SQLAlchemy's own executemany
        for i in range(0, len(rows), _CHUNK):
            conn.execute(insert(table), rows[i : i + _CHUNK])


def add_counts(
    session: Session,
    table: Table,
    keys: Sequence[str],
    counters: Sequence[str],
    rows: list[dict[str, Any]],
    *,
    changed: Sequence[str] | None = None,
) -> None:
    """Add ``rows``' counters to ``table``'s rows of the same keys (new keys inserted), in the order given.

    ``changed``: the only counters any row changes (the others are zero), so the only ones updated: fewer
    assignments on busy rows. Rows in key order: writers that add in key order cannot deadlock each other.
    PostgreSQL: a few rows (a step's facts) as one pipelined executemany of a prepared upsert; many (an
    import's batch) by COPY into a temporary table and one ``INSERT … SELECT … ON CONFLICT DO UPDATE``.
    SQLite: one executemany of the upsert.
    """
    if not rows:
        return
    conn = session.connection()
    prep = conn.dialect.identifier_preparer
    qtable = prep.format_table(table)
    cols = [*keys, *counters]
    updated = counters if changed is None else changed
    if conn.dialect.name != "sqlite" and not _copies(conn):  # PostgreSQL through another driver
        ins = pg_insert(table)
        core = ins.on_conflict_do_update(
            index_elements=list(keys), set_={c: table.c[c] + ins.excluded[c] for c in updated}
        )
        for i in range(0, len(rows), _CHUNK):
            conn.execute(core, [{c: r[c] for c in cols} for r in rows[i : i + _CHUNK]])
        return
    names = ", ".join(prep.quote(c) for c in cols)
    sets = ", ".join(
        f"{prep.quote(c)} = {qtable}.{prep.quote(c)} + excluded.{prep.quote(c)}" for c in updated
    )
    upsert = f"ON CONFLICT ({', '.join(prep.quote(c) for c in keys)}) DO UPDATE SET {sets}"
    procs = _processors(table, cols, conn)
    params = [tuple(r[c] if p is None else p(r[c]) for c, p in zip(cols, procs, strict=True)) for r in rows]
    if conn.dialect.name == "sqlite" or len(params) <= _FEW:
        mark = "?" if conn.dialect.name == "sqlite" else "%s"
        stmt = f"INSERT INTO {qtable} ({names}) VALUES ({', '.join([mark] * len(cols))}) {upsert}"
        for i in range(0, len(params), _CHUNK):
            conn.exec_driver_sql(stmt, params[i : i + _CHUNK])
        return
    temp = prep.quote(f"bulk_{table.name}")
    # Session-local; emptied at each commit, and here in case one transaction adds twice.
    conn.exec_driver_sql(
        f"CREATE TEMP TABLE IF NOT EXISTS {temp} ON COMMIT DELETE ROWS "
        f"AS SELECT {names}, 0::bigint AS _order FROM {qtable} WITH NO DATA"
    )
    conn.exec_driver_sql(f"TRUNCATE {temp}")
    _copy(conn, temp, f"{names}, _order", ((*row, i) for i, row in enumerate(params)))
    conn.exec_driver_sql(
        f"INSERT INTO {qtable} ({names}) SELECT {names} FROM {temp} ORDER BY _order {upsert}"
    )
