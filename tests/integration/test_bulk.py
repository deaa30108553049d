"""`storage.bulk` on SQLite and PostgreSQL: rows written by COPY / executemany read back as the ORM wrote them
(aware UTC times, JSON payloads, Python-side defaults), and counters added twice in one transaction and again in
the next add up."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select

from minsheng.measures.timeline import COUNTERS
from minsheng.services.uow import reading, writing
from minsheng.storage import bulk
from minsheng.storage.bulk import add_counts, insert_rows
from minsheng.storage.db import Database
from minsheng.storage.measure_tables import KEY_COLUMNS, measure_facts
from minsheng.storage.models import Ticket, TimelineEvent

AT = datetime(2026, 3, 1, 9, 30, tzinfo=timezone(timedelta(hours=8)))


def _ticket(i: int) -> dict[str, Any]:
    return {
        "id": i, "number": f"T{i:011d}", "query_code_hash": "-", "channel": "phone", "kind": "complaint",
        "urgency": "normal", "title": f"标题 {i}", "detail": "内容\t含制表符\n和换行\\反斜杠", "address": None,
        "lat": None, "lon": None, "state": "closed", "created_at": AT, "updated_at": AT, "closed_at": None,
        "reopen_count": 0, "return_count": 0, "event_count": 0, "confidential": False, "public_consent": True,
    }  # fmt: skip


def test_rows_read_back_as_the_orm_wrote_them(db: Database) -> None:
    with writing(db) as session:
        insert_rows(session, Ticket, [_ticket(1), _ticket(2)])
        insert_rows(
            session,
            TimelineEvent,
            [
                # machine, actor_name and public are left out: the columns' defaults apply.
                {"id": 10, "ticket_id": 1, "seq": 1, "at": AT, "action": "submit", "actor_role": "citizen",
                 "payload": {"text": "你好", "n": [1, 2]}},
                {"id": 11, "ticket_id": 2, "seq": 1, "at": AT + timedelta(days=1), "action": "submit",
                 "actor_role": "citizen", "payload": {}},
            ],
        )  # fmt: skip
    with reading(db) as session:
        t = session.get(Ticket, 1)
        events = session.scalars(select(TimelineEvent).order_by(TimelineEvent.id)).all()
        assert t is not None
        assert t.detail == "内容\t含制表符\n和换行\\反斜杠" and t.public_consent is True and t.address is None
        assert t.created_at == AT and t.created_at.tzinfo is not None
        assert [e.payload for e in events] == [{"text": "你好", "n": [1, 2]}, {}]
        assert [(e.machine, e.actor_name, e.public) for e in events] == [("ticket", "", True)] * 2
        assert events[1].at == datetime(2026, 3, 2, 1, 30, tzinfo=UTC)


def _fact(day: date, unit: int, **counts: int) -> dict[str, Any]:
    key = dict(zip(KEY_COLUMNS, (0, day, unit, 0, 0, "phone", "complaint"), strict=True))
    return {**key, **{c: counts.get(c, 0) for c in COUNTERS}}


def test_counts_add_up_within_and_across_transactions(db: Database) -> None:
    d = date(2026, 3, 1)
    first, second = COUNTERS[0], COUNTERS[1]
    with writing(db) as session:
        add_counts(session, measure_facts, KEY_COLUMNS, COUNTERS, [_fact(d, 1, **{first: 2}), _fact(d, 2)])
        add_counts(session, measure_facts, KEY_COLUMNS, COUNTERS, [_fact(d, 1, **{first: 3, second: 1})])
    with writing(db) as session:
        add_counts(session, measure_facts, KEY_COLUMNS, COUNTERS, [_fact(d, 1, **{second: 4}), _fact(d, 3)])
    with reading(db) as session:
        rows = session.execute(
            select(measure_facts.c.unit_id, measure_facts.c[first], measure_facts.c[second]).order_by(
                measure_facts.c.unit_id
            )
        ).all()
    assert [tuple(r) for r in rows] == [(1, 5, 5), (2, 0, 0), (3, 0, 0)]


def test_a_failed_transaction_adds_nothing(db: Database) -> None:
    d = date(2026, 3, 1)
    first = COUNTERS[0]
    try:
        with writing(db) as session:
            add_counts(session, measure_facts, KEY_COLUMNS, COUNTERS, [_fact(d, 1, **{first: 7})])
            raise RuntimeError("rolled back")
    except RuntimeError:
        pass
    with writing(db) as session:
        add_counts(session, measure_facts, KEY_COLUMNS, COUNTERS, [_fact(d, 1, **{first: 1})])
    with reading(db) as session:
        assert session.scalar(select(measure_facts.c[first])) == 1


def test_without_copy_the_same_rows_and_sums(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL through a driver without COPY takes SQLAlchemy's own statements, with the same result."""
    monkeypatch.setattr(bulk, "_copies", lambda _conn: False)
    test_rows_read_back_as_the_orm_wrote_them(db)
    test_counts_add_up_within_and_across_transactions(db)


def test_many_rows_go_through_the_temporary_table_with_the_same_sums(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL more than a few rows are COPY'd to a temporary table first (here: every batch)."""
    monkeypatch.setattr(bulk, "_FEW", 0)
    test_counts_add_up_within_and_across_transactions(db)


def test_only_the_changed_counters_are_updated(db: Database) -> None:
    d = date(2026, 3, 1)
    first, second = COUNTERS[0], COUNTERS[1]
    with writing(db) as session:
        add_counts(session, measure_facts, KEY_COLUMNS, COUNTERS, [_fact(d, 1, **{first: 2, second: 3})])
        # A row that claims to change only `first` leaves `second` as it was, whatever it carries.
        add_counts(
            session,
            measure_facts,
            KEY_COLUMNS,
            COUNTERS,
            [_fact(d, 1, **{first: 1, second: 9})],
            changed=[first],
        )
    with reading(db) as session:
        row = session.execute(select(measure_facts.c[first], measure_facts.c[second])).one()
    assert tuple(row) == (3, 3)
