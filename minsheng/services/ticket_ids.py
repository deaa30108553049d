"""Ticket ids and numbers, taken up front so that a batch of intakes leaves in one flush.

PostgreSQL: the table's id sequence and a number sequence per day, both in one round trip. SQLite: counted on
from ``max(id)`` and an upserted per-day counter row, under the database's write lock. Timeline events get their
ids the same way on SQLite (`sqlite_event_id`): SQLite gives the ORM no way to match a multi-row INSERT's
returned ids to its rows and would insert them one statement each.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import cast

from sqlalchemy import Engine, Table, bindparam, func, select, text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from minsheng.domain.numbering import format_ticket_number, numbering_day
from minsheng.storage import dialect
from minsheng.storage.models import Ticket, TicketCounter

_ID_POOL_KEY = "minsheng_ticket_id_pool"
#: session.info key: how many intakes the transaction is about to make (set by the intake writer).
RESERVE_KEY = "minsheng_intake_reserve"
_COUNTER_TABLE = cast(Table, TicketCounter.__table__)
_COUNTER_UPSERT = (
    sqlite_insert(_COUNTER_TABLE)
    .values(day=bindparam("day"), last=bindparam("n"))
    .on_conflict_do_update(index_elements=["day"], set_={"last": _COUNTER_TABLE.c.last + bindparam("n")})
    .returning(_COUNTER_TABLE.c.last)
)


class TicketIds:
    """Hands out new tickets' (id, number); one per engine (it remembers the sequences it has seen)."""

    def __init__(self) -> None:
        self._known_sequences: set[str] = set()
        self._id_sequence: str | None = None

    def take(self, session: Session, now: datetime) -> tuple[int, str]:
        """The new ticket's id and number.

        The intake writer tells how many tickets its transaction will take (`RESERVE_KEY`): they are reserved
        in one statement, and the following intakes of the transaction take theirs from the reserve.
        """
        day = numbering_day(now)
        key = f"{day:%Y%m%d}"
        tx_now = session.get_transaction()
        pool = session.info.get(_ID_POOL_KEY)
        if pool is not None and pool[0] is tx_now and pool[1] == key and pool[2]:
            return pool[2].pop()  # type: ignore[no-any-return]
        n = max(1, int(session.info.pop(RESERVE_KEY, 1)))
        conn = session.connection()
        if dialect.is_postgresql(session):
            # A sequence per day: nextval takes no row lock and survives crashes without reuse, so
            # concurrent intakes do not queue on one counter row until they commit. Rolled-back intakes
            # leave gaps; numbers stay unique. The id comes from the table's own sequence, in the same trip.
            name = f"ticket_number_{key}"
            if name not in self._known_sequences:
                ensure_day_sequence(conn.engine, name)
                self._known_sequences.add(name)
            if self._id_sequence is None:
                self._id_sequence = str(
                    conn.execute(text("SELECT pg_get_serial_sequence('tickets', 'id')")).scalar_one()
                )
            rows = conn.execute(
                text(f"SELECT nextval('{self._id_sequence}'), nextval('{name}') FROM generate_series(1, :n)"),
                {"n": n},
            ).all()
            pairs = sorted((int(ident), int(seq)) for ident, seq in rows)
        else:
            # Core statements on the session's connection: the ORM's bulk path would cost more than they do.
            ident = sqlite_take_ids(session, "tickets", n)
            last = int(conn.execute(_COUNTER_UPSERT, {"day": key, "n": n}).scalar_one())
            pairs = [(ident + k, last - n + 1 + k) for k in range(n)]
        out = [(ident, format_ticket_number(day, seq)) for ident, seq in pairs]
        session.info[_ID_POOL_KEY] = (tx_now, key, out[:0:-1])
        return out[0]


def ensure_day_sequence(engine: Engine, name: str) -> None:
    """Create the day's number sequence on PostgreSQL if missing (idempotent, race-safe).

    It starts after the highest number already stored for that day, so tickets written by importers or
    seeders without the sequence are never numbered twice.
    """
    day = name.rsplit("_", 1)[1]
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if conn.execute(text("SELECT to_regclass(:n)"), {"n": name}).scalar() is not None:
            return
        highest = conn.execute(
            select(func.max(Ticket.number)).where(Ticket.number >= day, Ticket.number < day + "~")
        ).scalar()
        start = int(highest[8:]) + 1 if highest else 1
        # A concurrent intake may create it between the check and the create.
        with contextlib.suppress(IntegrityError):
            conn.execute(text(f"CREATE SEQUENCE IF NOT EXISTS {name} START WITH {start}"))


def sqlite_event_id(session: Session) -> int | None:
    """On SQLite, the new timeline event's id, counted on within the transaction; elsewhere None (the sequence).

    Why: SQLite offers the ORM no way to match the ids of a multi-row INSERT … RETURNING to its rows, so events
    without an id are inserted one statement each. `EngineCore._record` is the only place events are made.
    """
    if not dialect.is_sqlite(session):
        return None
    return sqlite_take_ids(session, "timeline_events", 1)


def sqlite_take_ids(session: Session, table: str, n: int) -> int:
    """The first of ``n`` new ids of ``table`` (SQLite), counted on from ``max(id)`` once per transaction.

    SQLite writers hold the database lock for the whole transaction (BEGIN IMMEDIATE), so the highest id cannot
    move under us: later rows of the same transaction count on from the first look-up.
    """
    tx = session.get_transaction()
    key = f"minsheng_next_id_{table}"
    cached = session.info.get(key)
    if cached is not None and cached[0] is tx:
        ident = int(cached[1])
    else:
        ident = int(
            session.connection().execute(text(f"SELECT coalesce(max(id), 0) + 1 FROM {table}")).scalar_one()
        )
    session.info[key] = (tx, ident + n)
    return ident
