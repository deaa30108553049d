"""Schema migrations, on SQLite and PostgreSQL: the models and the migrations agree, and data survives a step."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from minsheng.storage.db import normalise_url
from minsheng.storage.migrate import alembic_config, check, upgrade

AT = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


def test_models_match_the_migrations(empty_db_url: str) -> None:
    upgrade(empty_db_url)
    check(empty_db_url)  # raises when autogenerate would write a new migration


def test_cluster_members_move_to_their_own_table_and_back(empty_db_url: str) -> None:
    from alembic import command

    upgrade(empty_db_url, "0002")
    engine = sa.create_engine(normalise_url(empty_db_url))
    warnings = sa.table(
        "cluster_warnings",
        *(sa.column(c) for c in ("key", "area_code", "state")),
        *(sa.column(c, sa.JSON()) for c in ("summary", "member_numbers")),
        *(sa.column(c, sa.DateTime(timezone=True)) for c in ("first_at", "last_at", "created_at")),
    )
    common = {"summary": [], "state": "open", "first_at": AT, "last_at": AT, "created_at": AT}
    with engine.begin() as c:
        c.execute(
            warnings.insert(),
            [
                {"key": "S1/a", "area_code": "S1", "member_numbers": ["M3", "M1", "M2", "M1"], **common},
                {"key": "S2/b", "area_code": "S2", "member_numbers": [], **common},
            ],
        )
    upgrade(empty_db_url, "0003")
    with engine.connect() as c:
        counts = dict(c.execute(sa.text("select key, member_count from cluster_warnings")).all())
        members = c.execute(
            sa.text(
                "select w.key, m.ticket_number from cluster_warning_members m"
                " join cluster_warnings w on w.id = m.cluster_id order by 1, 2"
            )
        ).all()
        keys = c.execute(
            sa.text(
                "select k.key, w.key from cluster_warning_keys k join cluster_warnings w on w.id = k.cluster_id"
            )
        ).all()
    assert counts == {"S1/a": 3, "S2/b": 0}
    assert [tuple(r) for r in members] == [("S1/a", "M1"), ("S1/a", "M2"), ("S1/a", "M3")]
    assert [tuple(r) for r in keys] == [("S1/a", "S1/a"), ("S2/b", "S2/b")]

    command.downgrade(alembic_config(empty_db_url), "0002")
    with engine.connect() as c:
        back = dict(c.execute(sa.select(warnings.c.key, warnings.c.member_numbers)).all())
    engine.dispose()
    assert back == {"S1/a": ["M1", "M2", "M3"], "S2/b": []}


def test_consult_events_become_confer_and_back(empty_db_url: str) -> None:
    from alembic import command

    from minsheng.storage.db import open_database
    from minsheng.storage.models import TimelineEvent

    # Rows are written with the tables of revision 0003 (plain inserts): today's models and engine know tables
    # and columns that later revisions add.
    upgrade(empty_db_url, "0003")
    db = open_database(empty_db_url)
    naive = AT.replace(tzinfo=None) if db.is_sqlite else AT
    tickets = sa.table(
        "tickets",
        *(sa.column(c) for c in ("id", "number", "query_code_hash", "channel", "kind", "urgency", "title")),
        *(sa.column(c) for c in ("detail", "confidential", "public_consent", "state", "reopen_count")),
        *(sa.column(c) for c in ("return_count", "event_count", "created_at", "updated_at")),
    )
    events = sa.table(
        "timeline_events",
        *(sa.column(c) for c in ("ticket_id", "seq", "at", "machine", "action", "actor_name", "actor_role")),
        sa.column("payload", sa.JSON()),
        sa.column("public"),
    )
    with db.write_sessions() as session, session.begin():
        session.execute(
            tickets.insert().values(
                id=1,
                number="2026112100001",
                query_code_hash="x" * 64,
                channel="web",
                kind="complaint",
                urgency="normal",
                title="路灯坏了",
                detail="幸福路3号路灯坏了，晚上很黑",
                confidential=False,
                public_consent=False,
                state="accepted",
                reopen_count=0,
                return_count=0,
                event_count=0,
                created_at=naive,
                updated_at=naive,
            )
        )
        common = {"ticket_id": 1, "at": naive, "machine": "ticket", "actor_name": "", "public": True}
        session.execute(
            events.insert(),
            [
                {**common, "seq": 90, "action": "consult", "actor_role": "supervisor", "payload": {"d": 1}},
                {**common, "seq": 91, "action": "pause", "actor_role": "supervisor", "payload": {"d": 1}},
            ],
        )

    def actions() -> list[str]:
        with db.read_sessions() as session:
            return list(
                session.scalars(
                    sa.select(TimelineEvent.action).where(TimelineEvent.seq >= 90).order_by(TimelineEvent.seq)
                )
            )

    upgrade(empty_db_url, "0004")
    assert actions() == ["confer", "pause"]
    command.downgrade(alembic_config(empty_db_url), "0003")
    assert actions() == ["consult", "pause"]
    db.dispose()
