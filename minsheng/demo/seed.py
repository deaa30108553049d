"""Fill a database with the demo city 民声市 and a year of ticket history (`minsheng demo seed`, `make demo`).

The city comes from :func:`minsheng.demo.city.generate_city` and the history from
:func:`minsheng.demo.history.generate_history`; this module writes them, stage by stage:

- city: areas, categories, units and users (:mod:`minsheng.demo.seed_org`), and what makes the city complete
  for the live system: the named places (小区, schools, markets …) and the routing table for jurisdiction and
  auto-dispatch, and the knowledge base (:mod:`minsheng.demo.kb`);
- tickets: every historical ticket is taken in by the real :class:`~minsheng.services.tickets.TicketEngine`
  and walked through its script step by step (:mod:`minsheng.demo.replay`), all tickets' steps in one global
  time order;
- deadlines: deadlines and timers for the tickets still open (:mod:`minsheng.demo.open_deadlines`: the replay
  runs without the clock subscriber);
- model: when a model directory is given, a classifier trained on the seeded history.

Speed: one long session commits every ``batch`` tickets; the demo password is hashed once for every demo
account; and the replay skips the engine's re-locking of a ticket it already holds (nobody else writes while
seeding).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, func, select

from minsheng.demo.city import DemoCity, generate_city
from minsheng.demo.history import generate_history
from minsheng.demo.open_deadlines import plan_open_deadlines
from minsheng.demo.replay import Actors, ReplayEngine, Replayer
from minsheng.demo.seed_org import seed_city, seed_triage_and_kb
from minsheng.demo.seed_report import Login, Progress, SeedReport
from minsheng.services.auth import hash_password
from minsheng.services.errors import Invalid
from minsheng.services.measures import rebuild_facts
from minsheng.services.measures.facts import DEFERRED_KEY
from minsheng.services.tickets import TicketEngine
from minsheng.services.timelimits.config import TimeLimitConfig
from minsheng.services.triage.training import CURRENT_FILE, train_from_db
from minsheng.services.uow import reading, writing
from minsheng.storage.db import Database
from minsheng.storage.models import Area, Category, Ticket, TimelineEvent, Unit, User

__all__ = [
    "DEFAULT_BATCH",
    "DEMO_MODEL_LEVEL",
    "DEMO_PASSWORD",
    "Login",
    "Progress",
    "SeedReport",
    "database_is_empty",
    "demo_logins",
    "plan_open_deadlines",
    "reset_database",
    "seed_demo",
    "train_demo_model",
]

DEMO_PASSWORD = "minsheng2026"
DEFAULT_BATCH = 200
# The demo's routing table is written per level-2 category (level 1 only names a fallback department), so a
# level-2 model routes as well as the dispatchers did, with fewer classes to tell apart than level 3
# (measured on the 20,000-ticket city: see the seeding report).
DEMO_MODEL_LEVEL = 2
# The generated texts are learnt well from a sample: 8,000 tickets in 3 folds score within half a point of
# 15,000 in 5 folds (0.991 vs 0.995 accuracy on a held-out later fifth) in a third of the time (~20 s vs ~60 s).
DEMO_MODEL_TICKETS = 8_000
DEMO_MODEL_FOLDS = 3
# Below this a model of ~60 categories is never sure enough to dispatch anything: better none than a useless one.
DEMO_MODEL_MIN_TICKETS = 200


# ------------------------------------------------------------------------------------------------- the database
def database_is_empty(db: Database) -> bool:
    """True when no organisation or ticket has been written (a freshly migrated database)."""
    with reading(db) as session:
        for model in (Ticket, User, Unit, Area, Category):
            if session.scalar(select(model.id).limit(1)) is not None:
                return False
    return True


def demo_logins(db: Database) -> list[Login] | None:
    """The demo accounts when the database holds the demo city and the demo password still opens ``admin``
    (for the server's start-up banner); None otherwise, so a city that changed its passwords is not hinted at."""
    from minsheng.demo.city import CITY_CODE, CITY_NAME, HOTLINE_UNIT
    from minsheng.services.auth import authenticate
    from minsheng.services.errors import Unauthenticated

    with reading(db) as session:
        city = session.scalar(select(Area.name).where(Area.code == CITY_CODE))
        hotline = session.scalar(select(Unit.id).where(Unit.code == HOTLINE_UNIT))
        if city != CITY_NAME or hotline is None:
            return None
        try:
            authenticate(session, "admin", DEMO_PASSWORD)
        except Unauthenticated:
            return None
        rows = session.execute(
            select(User.username, User.role, User.display_name, Unit.code, Unit.name)
            .outerjoin(Unit, Unit.id == User.unit_id)
            .where(User.active.is_(True))
            .order_by(User.id)
        ).tuples()
        return [Login(*row) for row in rows]


def reset_database(db: Database) -> None:
    """Drop every table of the database (including Alembic's), whatever created it; migrate again after this."""
    meta = MetaData()
    meta.reflect(bind=db.engine)
    meta.drop_all(bind=db.engine)


# ---------------------------------------------------------------------------------------------------- seeding
def seed_demo(
    db: Database,
    *,
    n_tickets: int = 20_000,
    seed: int = 2026,
    now: datetime,
    progress: Progress | None = None,
    engine: TicketEngine | None = None,
    batch: int = DEFAULT_BATCH,
    days: int = 365,
    model_dir: Path | None = None,
    model_level: int = DEMO_MODEL_LEVEL,
    clock: TimeLimitConfig | None = None,
    hot_topics: bool | None = None,
) -> SeedReport:
    """Write the demo city and ``n_tickets`` tickets created over the ``days`` before ``now`` (an empty database
    is expected: see :func:`database_is_empty`), plan the open tickets' deadlines and, with ``model_dir``, train
    the triage model on the history (see :func:`train_demo_model`). ``hot_topics`` plants the demo's hot topics
    (default: in a history large enough, see :func:`~minsheng.demo.history.generate_history`)."""
    started = time.perf_counter()
    city = generate_city(seed)
    # One argon2 hash for every demo account: hashing is deliberately slow, and they share the password anyway.
    password_hash = hash_password(DEMO_PASSWORD)
    if progress:
        progress("city", 0, 1)
    with writing(db) as session:
        report = seed_city(session, city, now, password_hash)
        # A retrain from the admin pages must learn the same level as the shipped demo model.
        seed_triage_and_kb(session, city, report, now, model_level=DEMO_MODEL_LEVEL)
    report.city_seconds = time.perf_counter() - started
    report.stage_seconds["city"] = report.city_seconds
    if progress:
        progress("city", 1, 1)

    _replay_history(
        db,
        city,
        report,
        n_tickets,
        seed,
        now - timedelta(days=days),
        now,
        engine,
        batch,
        progress,
        hot_topics,
    )

    # An engine that brought its own subscribers (a test wiring the clock in) planned the deadlines already.
    if engine is None or not engine.subscribers:
        with _stage(report, "deadlines", progress):
            report.deadlines, report.timers = plan_open_deadlines(db, now, clock)
    # The replay kept no facts, and the open tickets' deadlines (which the facts count as due and on time) came
    # after it: the facts are built from the timeline once, as `minsheng measures rebuild` does.
    with _stage(report, "facts", progress), writing(db) as session:
        rebuild_facts(session)
    if model_dir is not None:
        with _stage(report, "model", progress):
            try:
                report.model_path, report.model = train_demo_model(db, model_dir, now, level=model_level)
            except Invalid as e:
                # A few dozen tickets (tests, a quick look) teach nothing; the city works without a model.
                report.model_error = e.message
    report.seconds = time.perf_counter() - started
    return report


@contextmanager
def _stage(report: SeedReport, name: str, progress: Progress | None) -> Iterator[None]:
    """A one-step stage: progress before and after, its seconds in the report."""
    started = time.perf_counter()
    if progress:
        progress(name, 0, 1)
    yield
    report.stage_seconds[name] = time.perf_counter() - started
    if progress:
        progress(name, 1, 1)


def _replay_history(
    db: Database,
    city: DemoCity,
    report: SeedReport,
    n_tickets: int,
    seed: int,
    start: datetime,
    end: datetime,
    engine: TicketEngine | None,
    batch: int,
    progress: Progress | None,
    hot_topics: bool | None = None,
) -> None:
    """The tickets stage: generate the history and walk every ticket through the engine."""
    stage = time.perf_counter()
    with reading(db) as session:
        actors = Actors(session)
    replayer = Replayer(ReplayEngine(engine), actors)
    engine_has_hooks = engine is not None and bool(engine.subscribers or engine.triage)
    scripts = generate_history(city, n_tickets, start=start, end=end, seed=seed, hot_topics=hot_topics)
    if progress:
        progress("tickets", 0, n_tickets)
    # One long session, committed every `batch` tickets: the tickets still being walked stay attached to it.
    with db.write_sessions() as session:
        # The facts are rebuilt once at the end (the "facts" stage): keeping them per step cost 60 % of this.
        session.info[DEFERRED_KEY] = True
        if not engine_has_hooks:
            # Without subscribers nothing queries rows the replay has pending: flush when the engine flushes
            # (intake, dispatch) or at commit, not before every query (a third fewer flushes).
            session.autoflush = False
        for script in scripts:
            replayer.run_until(session, script.created_at)
            replayer.intake(session, script)
            report.tickets += 1
            if report.tickets % batch == 0:
                session.commit()
                replayer.release(session)
                if progress:
                    progress("tickets", report.tickets, n_tickets)
        replayer.run_until(session, None)
        session.commit()
        report.states.update(session.scalars(select(Ticket.state)))
    if progress:
        progress("tickets", report.tickets, n_tickets)
    report.steps = replayer.steps
    report.refused = replayer.refused
    with reading(db) as session:
        report.events = session.scalar(select(func.count()).select_from(TimelineEvent)) or 0
    report.stage_seconds["tickets"] = time.perf_counter() - stage


def train_demo_model(
    db: Database, model_dir: Path, now: datetime, *, level: int = DEMO_MODEL_LEVEL
) -> tuple[Path, dict[str, Any]]:
    """Train the classifier on the seeded history into ``model_dir/versions/<version>`` and point ``CURRENT``
    at it: the layout :func:`~minsheng.services.triage.training.retrain` keeps, so a retrain from the admin
    pages adds a version next to it. Returns (version directory, training record)."""
    version = now.strftime("demo-%Y%m%d%H%M%S")
    target = Path(model_dir) / "versions" / version
    record = train_from_db(
        db,
        target,
        level,
        now=now,
        min_examples=DEMO_MODEL_MIN_TICKETS,
        limit=DEMO_MODEL_TICKETS,
        folds=DEMO_MODEL_FOLDS,
    )
    pointer = Path(model_dir) / CURRENT_FILE
    tmp = pointer.with_suffix(".tmp")
    tmp.write_text(version, encoding="utf-8")
    tmp.replace(pointer)  # a server reading CURRENT meanwhile sees the old version or the new, never half
    return target, record
