"""Seeding a small demo city with history, on SQLite and PostgreSQL: timelines, states, numbers, logins, and
what makes it complete for the live system (places, routes, knowledge base, open deadlines, a trained model)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from minsheng.config import Settings
from minsheng.demo.kb import entries
from minsheng.demo.seed import (
    DEMO_MODEL_LEVEL,
    DEMO_PASSWORD,
    SeedReport,
    database_is_empty,
    demo_logins,
    reset_database,
    seed_demo,
)
from minsheng.domain.clock import FixedClock
from minsheng.domain.numbering import numbering_day
from minsheng.domain.states import (
    ACTIVE_ASSIGNMENT_STATES,
    DONE_TICKET_STATES,
    OPEN_TICKET_STATES,
    TicketState,
)
from minsheng.services import kb
from minsheng.services.auth import authenticate
from minsheng.services.measures import compare_facts
from minsheng.services.tickets import TicketEngine
from minsheng.services.triage.runtime import TriageRuntime
from minsheng.services.triage.training import resolve_model_path
from minsheng.services.uow import reading, writing
from minsheng.storage.db import Database, open_database
from minsheng.storage.measure_tables import measure_facts
from minsheng.storage.migrate import upgrade
from minsheng.storage.models import Area, Assignment, Category, Ticket, TimelineEvent, Unit, User
from minsheng.storage.timelimit_tables import StepDeadline, Timer
from minsheng.storage.triage_tables import Place, RoutingRule
from tests.conftest import create_pg_database, drop_pg_database, pg_skip_reason

NOW = datetime(2026, 11, 21, 1, 0, tzinfo=UTC)
N_TICKETS = 300


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def seeded_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Database, SeedReport]]:
    """One seeded database per backend for the whole module: seeding is the slow part."""
    name = None
    models = tmp_path_factory.mktemp("data") / "models"
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
        yield database, seed_demo(database, n_tickets=N_TICKETS, seed=7, now=NOW, model_dir=models)
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


def test_places_routes_and_the_knowledge_base_are_stored(db: Database, seeded: SeedReport) -> None:
    city = seeded.city
    assert seeded.places == len(city.places) and seeded.routes == len(city.routing)
    assert seeded.kb_entries == len(entries()) >= 60
    with reading(db) as s:
        assert s.scalar(select(func.count()).select_from(Place)) == len(city.places)
        assert s.scalar(select(func.count()).select_from(RoutingRule)) == len(city.routing)
        # Each place lies in the grid that holds its point, for the gazetteer to resolve down to the grid.
        place = city.places[0]
        area = s.scalar(
            select(Area.code).join(Place, Place.area_id == Area.id).where(Place.name == place.name)
        )
        assert area == place.grid_code

        # The operator desk and the portal find answers by the words callers use.
        hits = kb.search(s, "我想办居住证需要什么材料")
        assert hits and hits[0].title == "居住证办理"
        assert hits[0].department == "民声市公安局" and hits[0].category_id is not None
        titles = [e.title for e in kb.search(s, "公积金提取")]
        assert "住房公积金提取" in titles
        # Internal answers are for operators only.
        assert any(not e.public for e in kb.search(s, "转警"))
        assert all(e.public for e in kb.search(s, "转警", public_only=True))


def test_open_assignments_have_deadlines_and_timers(db: Database, seeded: SeedReport) -> None:
    active = [x.value for x in ACTIVE_ASSIGNMENT_STATES]
    with reading(db) as s:
        rows = s.execute(
            select(Assignment, Ticket.state, Ticket.resolve_due_at)
            .join(Ticket, Ticket.id == Assignment.ticket_id)
            .where(Assignment.state.in_(active))
        ).all()
        assert rows, "the history leaves some tickets open"
        deadlines = {(d.assignment_id, d.step): d for d in s.scalars(select(StepDeadline))}
        timers = list(s.scalars(select(Timer)))
        closed_ids = set(s.scalars(select(Assignment.id).where(Assignment.state.not_in(active))))
    assert seeded.deadlines == len(deadlines) and seeded.timers == len(timers)
    # History that is over owes nothing: only open assignments have a clock.
    assert not {aid for aid, _step in deadlines} & closed_ids
    timed = {t.assignment_id for t in timers}
    for a, ticket_state, ticket_due in rows:
        resolve = deadlines[(a.id, "resolve")]
        assert a.resolve_due_at == resolve.due_at > a.created_at
        if a.role == "lead":
            assert ticket_due == a.resolve_due_at
            sign = deadlines[(a.id, "sign")]
            assert a.sign_due_at == sign.due_at
            # A step the unit has taken met its deadline when it was taken.
            assert sign.met_at == a.signed_at
        owes = any(d.met_at is None for (aid, _), d in deadlines.items() if aid == a.id)
        if ticket_state != TicketState.PAUSED.value and owes:
            assert a.id in timed
    # Timers to come count the inboxes down; some are due already, for the worker's first pass to fire.
    assert all(t.fired_at is None for t in timers)
    assert any(t.due_at > NOW for t in timers) and any(t.due_at <= NOW for t in timers)
    assert {t.kind for t in timers} >= {"overdue", "escalation"}


def test_the_measure_facts_equal_a_recomputation(db: Database, seeded: SeedReport) -> None:
    """The rates pages read the facts: a seeded city's equal what its timeline says (deadlines included)."""
    with reading(db) as s:
        assert compare_facts(s) == []
        assert s.scalar(select(func.count()).select_from(measure_facts)) > 0
    assert "facts" in seeded.stage_seconds


def test_the_model_is_trained_and_the_server_loads_it(db: Database, seeded: SeedReport) -> None:
    assert seeded.model is not None and seeded.model_path is not None, seeded.model_error
    assert seeded.model["level"] == DEMO_MODEL_LEVEL and seeded.model["classes"] > 10
    assert {"accuracy", "auto_threshold", "auto_coverage"} <= set(seeded.model["metrics"])
    models = seeded.model_path.parent.parent
    assert resolve_model_path(models) == seeded.model_path

    # No MINSHENG_MODEL_DIR: the server takes <data_dir>/models, where the seeder put it.
    settings = Settings(database_url="sqlite://", data_dir=models.parent)
    assert settings.model_dir == models
    runtime = TriageRuntime(db, settings, TicketEngine(), FixedClock(NOW)).start()
    assert runtime.model is not None, runtime.model_error

    # Jurisdiction and routing work on the stored places and rules: a place's name finds its grid, and the
    # category routes to the unit the demo city's table names.
    city = seeded.city
    place = next(p for p in city.places if p.kind == "小区")
    category = next(c for c in city.categories if c.level == 2)
    a = runtime.analyse(
        title="小区门口路面破损",
        detail=f"{place.name}门口的路面坑洼，晚上走路容易摔倒，请尽快修复。",
        address=f"{place.name}",
        category_code=category.code,
        at=NOW,
        auto_dispatch=True,
    )
    assert a.area_code == place.grid_code, a.jurisdiction
    route = city.route(category.code, place.grid_code)
    assert route is not None and a.route is not None
    assert a.route.lead_unit_id == route.lead_unit_code
    assert a.classification.best is not None  # the model answers; at 300 tickets it may not be sure yet


def test_the_server_banner_knows_the_demo_city(db: Database, seeded: SeedReport) -> None:
    logins = demo_logins(db)
    assert logins is not None
    assert [x.username for x in logins] == [x.username for x in seeded.logins]


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
