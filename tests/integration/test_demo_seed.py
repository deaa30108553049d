"""Seeding a small demo city with history, on SQLite and PostgreSQL: timelines, states, numbers, logins."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from minsheng.demo.seed import DEMO_PASSWORD, SeedReport, database_is_empty, reset_database, seed_demo
from minsheng.domain.numbering import numbering_day
from minsheng.domain.states import DONE_TICKET_STATES, OPEN_TICKET_STATES, TicketState
from minsheng.services.auth import authenticate
from minsheng.services.uow import reading, writing
from minsheng.storage.db import Database, open_database
from minsheng.storage.migrate import upgrade
from minsheng.storage.models import Area, Category, Ticket, TimelineEvent, Unit, User
from tests.conftest import create_pg_database, drop_pg_database, pg_skip_reason

NOW = datetime(2026, 11, 21, 1, 0, tzinfo=UTC)
N_TICKETS = 300


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def seeded_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Database, SeedReport]]:
    """One seeded database per backend for the whole module: seeding is the slow part."""
    name = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('seed') / 'minsheng.db'}"
    else:
        reason = pg_skip_reason()
        if reason:
            pytest.skip(reason)
        url, name = create_pg_database()
    try:
        upgrade(url)
        database = open_database(url)
        yield database, seed_demo(database, n_tickets=N_TICKETS, seed=7, now=NOW)
        database.dispose()
    finally:
        if name:
            drop_pg_database(name)


@pytest.fixture
def db(seeded_db: tuple[Database, SeedReport]) -> Database:
    return seeded_db[0]


@pytest.fixture
def seeded(seeded_db: tuple[Database, SeedReport]) -> SeedReport:
    return seeded_db[1]


def test_the_city_is_written(db: Database, seeded: SeedReport) -> None:
    city = seeded.city
    with reading(db) as s:
        assert s.scalar(select(func.count()).select_from(Area)) == len(city.areas)
        assert s.scalar(select(func.count()).select_from(Category)) == len(city.categories)
        assert s.scalar(select(func.count()).select_from(Unit)) == len(city.units)
        assert s.scalar(select(func.count()).select_from(User)) == len(city.users)
        grid = city.areas_at("grid")[0]
        row = s.scalar(select(Area).where(Area.code == grid.code))
        assert row is not None and row.polygon == grid.polygon
        # Paths nest: the grid's path runs through every ancestor's code.
        assert row.path == "/" + "/".join(a.code for a in reversed(city.ancestors(grid.code))) + "/"
    assert not database_is_empty(db)


def test_demo_users_log_in_with_the_demo_password(db: Database, seeded: SeedReport) -> None:
    roles = {login.role for login in seeded.logins}
    assert {"operator", "dispatcher", "handler", "supervisor", "followup", "leader", "admin"} <= roles
    with writing(db) as s:
        for login in seeded.logins[:3]:
            assert authenticate(s, login.username, DEMO_PASSWORD).username == login.username
        # The password was hashed once for everybody.
        assert len(set(s.scalars(select(User.password_hash)))) == 1


def test_every_ticket_walked_the_loop(db: Database, seeded: SeedReport) -> None:
    assert seeded.tickets == N_TICKETS
    with reading(db) as s:
        tickets = list(s.execute(select(Ticket.id, Ticket.number, Ticket.state, Ticket.created_at)).tuples())
        first_events = dict(
            s.execute(select(TimelineEvent.ticket_id, TimelineEvent.action).where(TimelineEvent.seq == 1))
            .tuples()
            .all()
        )
        event_times = s.execute(
            select(TimelineEvent.ticket_id, TimelineEvent.seq, TimelineEvent.at).order_by(
                TimelineEvent.ticket_id, TimelineEvent.seq
            )
        ).tuples()
        last_at: dict[int, datetime] = {}
        n_events = 0
        for ticket_id, _seq, at in event_times:
            n_events += 1
            # Each step ran with its own time as "now": a timeline never goes back in time, nor past now.
            assert at >= last_at.get(ticket_id, at) and at <= NOW
            last_at[ticket_id] = at
    assert len(tickets) == N_TICKETS
    assert n_events == seeded.events
    assert all(first_events[t[0]] == "intake" for t in tickets)

    numbers = [t[1] for t in tickets]
    assert len(set(numbers)) == len(numbers)
    # Numbers carry the city-calendar day of creation.
    assert all(n[:8] == f"{numbering_day(created):%Y%m%d}" for _id, n, _state, created in tickets)
    assert min(t[3] for t in tickets) >= NOW - timedelta(days=365)

    states = Counter(TicketState(t[2]) for t in tickets)
    assert states.keys() & OPEN_TICKET_STATES, states
    assert states.keys() & DONE_TICKET_STATES, states
    assert sum(seeded.states.values()) == N_TICKETS
    assert states == Counter(TicketState(k) for k, v in seeded.states.items() for _ in range(v))


def test_actors_have_the_right_role_and_unit(db: Database, seeded: SeedReport) -> None:
    with reading(db) as s:
        rows = s.execute(
            select(
                TimelineEvent.action,
                TimelineEvent.actor_role,
                TimelineEvent.actor_unit_id,
                TimelineEvent.payload,
            ).where(TimelineEvent.action.in_(["sign", "feedback", "dispatch", "follow_up"]))
        ).tuples()
        unit_ids = dict(s.execute(select(Unit.code, Unit.id)).tuples().all())
        seen: Counter[str] = Counter()
        for action, role, unit_id, payload in rows:
            seen[action] += 1
            if action in ("sign", "feedback"):
                assert role == "handler" and unit_id == unit_ids[payload["unit"]]
            elif action == "dispatch":
                assert role in ("dispatcher", "system")
            else:
                assert role == "followup"
    assert all(seen[a] for a in ("sign", "feedback", "dispatch", "follow_up")), seen
    assert not seeded.refused, seeded.refused


def test_reset_empties_a_seeded_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'reset.db'}"
    upgrade(url)
    database = open_database(url)
    try:
        seed_demo(database, n_tickets=5, seed=1, now=NOW)
        assert not database_is_empty(database)
        reset_database(database)
        upgrade(url)
        assert database_is_empty(database)
    finally:
        database.dispose()
