"""Fill a database with the demo city 民声市 and a year of ticket history (`minsheng demo seed`, `make demo`).

The city comes from :func:`minsheng.demo.city.generate_city` and the history from
:func:`minsheng.demo.history.generate_history`; this module only writes them. Every historical ticket is taken in
by the real :class:`~minsheng.services.tickets.TicketEngine` and walked through its script step by step, each
step with its own time as ``now`` and acted by a demo user of the right role and unit, so the timelines, counters
and states are exactly what the live system would have produced.

Steps of all tickets are taken in one global time order (see :class:`Replayer`), so cross-ticket events such
as a repeat linking to its master land in time order on both timelines.

Speed: one long session commits every ``batch`` tickets; the demo password is hashed once for every demo
account; and :class:`ReplayEngine` skips the engine's re-locking of a ticket the replay already holds (nobody
else writes while seeding).

Around the history, the seeder makes the city complete for the live system: the named places (小区, schools,
markets …) and the routing table for jurisdiction and auto-dispatch, the knowledge base (:mod:`minsheng.demo.kb`),
deadlines and timers for the tickets still open (:func:`plan_open_deadlines`: the replay runs without the clock
subscriber) and, when a model directory is given, a classifier trained on the seeded history.
"""

from __future__ import annotations

import heapq
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, func, insert, select, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from minsheng.clock.calendar import WorkCalendar
from minsheng.clock.escalation import plan_timers
from minsheng.clock.policy import Deadline, TimeLimitPolicy, compute_deadlines, extend
from minsheng.clock.policy import shift_for_pause as shift_deadline
from minsheng.clock.rules import ASSIST_STEPS, DONE_BY, ENDS_ASSIGNMENT, REOPEN_STEPS
from minsheng.demo.city import DemoCity, generate_city
from minsheng.demo.history import Step, TicketScript, generate_history
from minsheng.demo.kb import kb_entries
from minsheng.domain.roles import Actor, Role
from minsheng.domain.states import ACTIVE_ASSIGNMENT_STATES, Channel, Kind, Rating, TransferTarget, Urgency
from minsheng.domain.transitions import AssignmentAction, IllegalTransition, TicketAction
from minsheng.services import kb, org, triage_service
from minsheng.services import schemas as s
from minsheng.services.auth import hash_password
from minsheng.services.errors import Invalid, ServiceError
from minsheng.services.notifications import NotifySettings
from minsheng.services.tickets import TicketEngine
from minsheng.services.timelimits.config import ClockConfig
from minsheng.services.timelimits.policies import ladder_to_json
from minsheng.services.timelimits.subscriber import Clockwork
from minsheng.services.uow import reading, writing
from minsheng.storage.clock_tables import ClockZoneArea, StepDeadline, Timer
from minsheng.storage.db import Database
from minsheng.storage.models import Area, Assignment, Category, Ticket, TimelineEvent, Unit, User

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

Progress = Callable[[str, int, int], None]
"""progress(stage, done, total): called as the seeder advances (stages: city, tickets, deadlines, model)."""


@dataclass(frozen=True)
class Login:
    username: str
    role: str
    display_name: str
    unit_code: str | None
    unit_name: str | None


@dataclass
class SeedReport:
    city: DemoCity
    areas: int = 0
    categories: int = 0
    units: int = 0
    users: int = 0
    tickets: int = 0
    steps: int = 0
    events: int = 0
    seconds: float = 0.0
    city_seconds: float = 0.0
    # Steps the engine refused, by action: the ticket stays where the step before left it.
    refused: Counter[str] = field(default_factory=Counter)
    states: Counter[str] = field(default_factory=Counter)
    logins: list[Login] = field(default_factory=list)
    places: int = 0
    routes: int = 0
    kb_entries: int = 0
    deadlines: int = 0  # deadlines planned for open assignments
    timers: int = 0
    # The training record of the demo model (train_from_db's), None when no model directory was given.
    model: dict[str, Any] | None = None
    model_path: Path | None = None
    model_error: str | None = None  # why no model was trained (a history too small to learn from)
    # Seconds per stage (city, tickets, deadlines, model), for the summary and for measuring.
    stage_seconds: dict[str, float] = field(default_factory=dict)


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


# ------------------------------------------------------------------------------------------------ organisation
def seed_city(session: Session, city: DemoCity, now: datetime, password_hash: str) -> SeedReport:
    """Areas (with polygons), categories, units and users of the demo city."""
    report = SeedReport(city=city)
    # ~1,250 areas: one multi-row insert per level instead of a query and a flush per area (the generator's
    # codes are unique and its levels valid; paths are built here the way org.add_area builds them).
    paths: dict[str, str] = {}
    ids: dict[str, int] = {}
    for level in ("city", "district", "street", "community", "grid"):
        rows = []
        for a in (x for x in city.areas if x.level == level):
            paths[a.code] = (paths[a.parent_code] if a.parent_code else "/") + a.code + "/"
            lat = lon = None
            if a.code in city.grid_bounds:
                x0, y0, x1, y1 = city.grid_bounds[a.code]
                lat, lon = round((y0 + y1) / 2, 6), round((x0 + x1) / 2, 6)
            rows.append(
                {
                    "code": a.code,
                    "name": a.name,
                    "level": a.level,
                    "parent_id": ids[a.parent_code] if a.parent_code else None,
                    "path": paths[a.code],
                    "aliases": list(a.aliases),
                    "polygon": a.polygon,
                    "lat": lat,
                    "lon": lon,
                }
            )
        if rows:
            session.execute(insert(Area), rows)
            codes = [r["code"] for r in rows]
            ids.update(session.execute(select(Area.code, Area.id).where(Area.code.in_(codes))).tuples().all())
        report.areas += len(rows)
    for c in sorted(city.categories, key=lambda c: (c.level, c.code)):
        org.add_category(session, c.code, c.name, c.parent_code)
        report.categories += 1
    placed: set[str] = set()
    pending = list(city.units)
    while pending:  # units refer to parents that may be listed after them
        ready = [u for u in pending if u.parent_code is None or u.parent_code in placed]
        if not ready:
            raise ValueError(f"demo units with unknown parents: {[u.code for u in pending]}")
        for u in ready:
            org.add_unit(
                session,
                u.code,
                u.name,
                u.kind,
                u.parent_code,
                u.area_code,
                u.duty_tier,
                u.phone,
                u.leader_name,
            )
            placed.add(u.code)
            report.units += 1
        pending = [u for u in pending if u.code not in placed]
    for user in city.users:
        org.add_user(
            session,
            user.username,
            user.display_name,
            user.role,
            None,
            now,
            unit_code=user.unit_code,
            phone=user.phone,
            password_hash=password_hash,
        )
        report.users += 1
        unit = city.unit_by_code.get(user.unit_code) if user.unit_code else None
        report.logins.append(
            Login(user.username, user.role, user.display_name, user.unit_code, unit.name if unit else None)
        )
    return report


def seed_triage_and_kb(session: Session, city: DemoCity, report: SeedReport, now: datetime) -> None:
    """Named places and routing rules (jurisdiction and auto-dispatch), and the knowledge base."""
    # Places lie in a community but are stored on the grid that holds their point: the gazetteer then
    # resolves "锦绣花园小区" down to the grid, as point-in-polygon would.
    report.places = triage_service.store_places(session, ((p, p.grid_code) for p in city.places))
    report.routes = triage_service.store_routes(session, city.routing, now, by="demo")
    # A retrain from the admin pages must learn the same level as the shipped model.
    triage_service.write_setting(session, "model_level", DEMO_MODEL_LEVEL, "demo", now)
    for item in kb_entries(city):
        data = kb.KbIn(
            kind=item.kind,
            title=item.title,
            body=item.body,
            category_code=item.category_code,
            department=item.department,
            keywords=item.keywords,
            public=item.public,
        )
        kb.create(session, data, now)
        report.kb_entries += 1


# ----------------------------------------------------------------------------------------------- the actors
class Actors:
    """Demo users by role and unit, as engine actors; people of the same desk take turns."""

    def __init__(self, session: Session) -> None:
        self._by_role: dict[str, list[Actor]] = {}
        self._by_unit: dict[tuple[str, str], list[Actor]] = {}
        self._unit_ids: dict[str, int] = dict(session.execute(select(Unit.code, Unit.id)).tuples().all())
        rows = session.execute(
            select(User.id, User.role, User.display_name, Unit.code)
            .outerjoin(Unit, Unit.id == User.unit_id)
            .where(User.active.is_(True))
            .order_by(User.id)
        ).tuples()
        for user_id, role, name, unit_code in rows:
            actor = Actor(
                role=Role(role), user_id=user_id, unit_id=self._unit_ids.get(unit_code or ""), name=name
            )
            self._by_role.setdefault(role, []).append(actor)
            if unit_code:
                self._by_unit.setdefault((role, unit_code), []).append(actor)
        self._turn = 0

    def unit_id(self, code: str) -> int | None:
        return self._unit_ids.get(code)

    def get(self, role: str, unit_code: str | None = None) -> Actor:
        self._turn += 1
        if unit_code is not None:
            people = self._by_unit.get((role, unit_code))
            if people:
                return people[self._turn % len(people)]
            # A unit without an account of that role still acts (e.g. a unit added after the demo users).
            return Actor(role=Role(role), unit_id=self.unit_id(unit_code), name=unit_code)
        people = self._by_role.get(role)
        if people:
            return people[self._turn % len(people)]
        return Actor(role=Role(role), name=role)

    def intake(self, script: TicketScript) -> Actor:
        """Who takes a request in: operators for calls and texts, the citizen on self-service channels."""
        if script.channel in ("phone", "sms", "transfer_110", "mailbox", "email"):
            return self.get("operator")
        if script.channel == "grid":
            grid_teams = [u for (role, u) in self._by_unit if role == "handler" and u.startswith("gt")]
            district = script.area_code[:6]
            mine = [u for u in grid_teams if u[2:8] == district] or grid_teams
            return self.get("handler", mine[0]) if mine else self.get("operator")
        if script.channel == "open311":
            return Actor(role=Role.INTEGRATION, name="open311")
        return Actor.citizen()


# ------------------------------------------------------------------------------------------------ the replay
class ReplayEngine(TicketEngine):
    """The engine, for a session that is the database's only writer (seeding, simulation batches).

    The engine's lock helpers select the ticket FOR UPDATE and reload its assignments, because another
    transaction may have changed them while the lock was awaited. A replay holds the ticket it is walking and
    nobody else writes, so that object is current: reusing it saves three or four statements per step (more
    than half of the seeding time). Every rule, state check and timeline event is still the engine's own.
    """

    def __init__(self, base: TicketEngine | None = None) -> None:
        super().__init__()
        if base is not None:
            self.subscribers = base.subscribers
            self.triage = base.triage
        self.current: Ticket | None = None

    def _lock(self, session: Session, number: str) -> Ticket:
        if self.current is not None and self.current.number == number:
            return self.current
        return super()._lock(session, number)

    def _lock_assignment_ticket(self, session: Session, assignment_id: int) -> Ticket:
        t = self.current
        if t is not None and any(a.id == assignment_id for a in t.assignments):
            return t
        return super()._lock_assignment_ticket(session, assignment_id)


class StepRefused(Exception):
    """The engine refused a scripted step (or the script names something that does not exist)."""

    def __init__(self, action: str, message: str) -> None:
        super().__init__(f"{action}: {message}")
        self.action = action


def intake_request(script: TicketScript) -> s.IntakeRequest:
    text, citizen = script.text, script.citizen
    return s.IntakeRequest(
        channel=Channel(script.channel),
        kind=Kind(script.kind),
        urgency=Urgency(script.urgency),
        category_code=script.category_code,
        title=text.title,
        detail=text.detail,
        address=text.address,
        lat=text.lat,
        lon=text.lon,
        area_code=script.area_code,
        citizen_name=citizen.name,
        citizen_phone=citizen.phone,
        citizen_id_number=citizen.id_number,
        confidential=script.confidential,
        public_consent=script.public_consent,
    )


def _assignment_id(ticket: Ticket, unit_code: str | None) -> int:
    """The unit's newest assignment on the ticket (after a redispatch the old ones are cancelled)."""
    mine = [a for a in ticket.assignments if a.unit.code == unit_code]
    active = [a for a in mine if a.state in ACTIVE_ASSIGNMENT_STATES]
    pick = (active or mine)[-1:] if mine else []
    if not pick:
        raise StepRefused("assignment", f"unit {unit_code} has no assignment on ticket {ticket.number}")
    return pick[0].id


_UNIT_STEPS: dict[str, tuple[AssignmentAction, Callable[[dict[str, Any]], Any]]] = {
    "sign": (AssignmentAction.SIGN, lambda p: s.WithNote(note=p.get("note"))),
    "return": (AssignmentAction.RETURN, lambda p: s.WithReason(reason=p["reason"])),
    "contact": (AssignmentAction.CONTACT, lambda p: s.Contact(method=p.get("method", "phone"))),
    "arrive": (AssignmentAction.ARRIVE, lambda p: s.WithNote(note=p.get("note"))),
    "feedback": (AssignmentAction.FEEDBACK, lambda p: s.Feedback(text=p["text"])),
    "request_close": (
        AssignmentAction.REQUEST_CLOSE,
        lambda p: s.RequestClose(summary=p.get("text") or "申请结案"),
    ),
}


def apply_step(
    engine: TicketEngine,
    session: Session,
    ticket: Ticket,
    step: Step,
    actors: Actors,
    numbers: list[str | None],
    now: datetime | None = None,
) -> None:
    """Take one scripted step through the engine, as a user of the step's role and unit, at the step's time."""
    at = now or step.at
    p = step.params
    actor = actors.get(step.actor_role, step.unit_code)
    n = ticket.number
    try:
        if step.action in _UNIT_STEPS:
            action, params = _UNIT_STEPS[step.action]
            engine.assignment_step(
                session, actor, _assignment_id(ticket, step.unit_code), action, params(p), at
            )
        elif step.action == "dispatch":
            engine.dispatch(
                session, actor, n, s.Dispatch(lead_unit=p["lead_unit"], assist_units=p["assist_units"]), at
            )
        elif step.action == "redispatch":
            req = s.Redispatch(lead_unit=p["lead_unit"], assist_units=p["assist_units"], reason=p["reason"])
            engine.dispatch(session, actor, n, req, at)
        elif step.action == "answer_directly":
            engine.answer_directly(session, actor, n, s.AnswerDirectly(answer=p["text"]), at)
        elif step.action == "transfer":
            engine.transfer(session, actor, n, s.Transfer(target=TransferTarget(p["target"])), at)
        elif step.action == "review_accept":
            engine.review(session, actor, n, True, p.get("note"), at)
        elif step.action == "review_reject":
            engine.review(session, actor, n, False, p["reason"], at)
        elif step.action == "request_extension":
            session.flush()  # the engine looks for a pending request among stored rows
            engine.request_extension(
                session, actor, n, s.RequestExtension(hours=p["hours"], reason=p["reason"]), at
            )
        elif step.action == "decide_extension":
            session.flush()
            engine.decide_extension(session, actor, n, s.DecideExtension(approve=p["approve"]), at)
        elif step.action == "pause":
            engine.pause(session, actor, n, s.WithReason(reason=p["reason"]), at)
        elif step.action == "resume":
            engine.resume(session, actor, n, s.WithNote(note=p.get("note")), at)
        elif step.action == "follow_up":
            if p.get("reached", True) is False:
                engine.follow_up_unreached(session, actor, n, s.WithNote(note="电话未接通"), at)
            else:
                engine.follow_up(session, actor, n, s.FollowUp(rating=Rating(p["rating"])), at)
        elif step.action == "reopen":
            engine.reopen(session, actor, n, s.WithReason(reason=p["reason"]), at)
        elif step.action == "consult":
            engine.consult(
                session, actor, n, s.Consult(participants=p.get("units", []), decision=p["decision"]), at
            )
        elif step.action == "mark_repeat":
            index = p["of_index"]
            other = numbers[index] if 0 <= index < len(numbers) else None
            if other is None:
                raise StepRefused(step.action, f"the earlier ticket #{index} was not created")
            engine.link(session, actor, n, s.LinkTicket(ticket=other), at, TicketAction.MARK_REPEAT)
        else:
            raise StepRefused(step.action, "unknown action")
    except (ServiceError, IllegalTransition) as e:
        raise StepRefused(step.action, str(e)) from e


# Steps whose engine call may be refused after it changed rows (e.g. a review closes every assignment): they
# run in a savepoint. The others check everything before they write, so a refusal leaves nothing behind and a
# savepoint (two more statements per step) is not needed.
_MULTI_ROW_ACTIONS = frozenset({"review_accept", "review_reject", "reopen", "redispatch", "mark_repeat"})


class Replayer:
    """Walks many ticket scripts through the engine in one global time order.

    Steps of different tickets interleave as they did in the city (a repeat report links to its master while
    the master is still being handled), so every timeline is in time order. When the engine refuses a step,
    that step leaves nothing behind and the ticket stays where it was: its remaining steps are dropped and
    counted in ``refused``.
    """

    def __init__(self, engine: ReplayEngine, actors: Actors, *, live: bool = False) -> None:
        self.engine = engine
        self.actors = actors
        # Live: other people act on the same tickets (simulation next to the API), so each step reloads and
        # locks its ticket like any request instead of trusting the object held from an earlier transaction.
        self.live = live
        self.numbers: list[str | None] = []  # script index → ticket number (None: intake refused)
        self.refused: Counter[str] = Counter()
        self.steps = 0
        self._heap: list[tuple[datetime, int, int, Step]] = []  # (at, tie-breaker, script index, step)
        self._tickets: dict[int, Ticket] = {}  # tickets with steps still to come (not live)
        self._active: dict[int, str] = {}  # their numbers
        self._left: dict[int, int] = {}
        self._order = 0

    @property
    def pending(self) -> int:
        return len(self._heap)

    def next_at(self) -> datetime | None:
        return self._heap[0][0] if self._heap else None

    def intake(self, session: Session, script: TicketScript, now: datetime | None = None) -> Ticket:
        ticket, _code, _created = self.engine.intake(
            session, self.actors.intake(script), intake_request(script), now or script.created_at
        )
        if "assignments" not in sa_inspect(ticket).dict:
            # A new ticket has no assignments: say so, or the first dispatch's append lazy-loads the collection
            # after autoflushing the new assignment and then holds it twice.
            set_committed_value(ticket, "assignments", [])
        index = len(self.numbers)
        self.numbers.append(ticket.number)
        if script.steps:
            self._active[index] = ticket.number
            if not self.live:
                self._tickets[index] = ticket
            self._left[index] = len(script.steps)
            for step in script.steps:
                self._order += 1
                heapq.heappush(self._heap, (step.at, self._order, index, step))
        return ticket

    def run_until(self, session: Session, until: datetime | None, now: datetime | None = None) -> int:
        """Take every step due before ``until`` (all of them when None); returns how many were taken."""
        taken = 0
        while self._heap and (until is None or self._heap[0][0] < until):
            taken += self.take_next(session, now)
        return taken

    def take_next(self, session: Session, now: datetime | None = None) -> int:
        """Take the earliest pending step (at ``now`` when given, else at its own time); 1 if it was taken."""
        _at, _order, index, step = heapq.heappop(self._heap)
        number = self._active.get(index)
        if number is None:  # the ticket stopped at a refused step
            return 0
        ticket = (
            session.scalar(select(Ticket).where(Ticket.number == number))
            if self.live
            else self._tickets.get(index)
        )
        if ticket is None:
            self._finish(index)
            return 0
        self.engine.current = None if self.live else ticket
        try:
            if step.action in _MULTI_ROW_ACTIONS:
                with session.begin_nested():
                    apply_step(self.engine, session, ticket, step, self.actors, self.numbers, now)
            else:
                apply_step(self.engine, session, ticket, step, self.actors, self.numbers, now)
        except StepRefused as e:
            self.refused[e.action] += 1
            self._finish(index)
            return 0
        finally:
            self.engine.current = None
        self.steps += 1
        self._left[index] -= 1
        if self._left[index] == 0:
            self._finish(index)
        return 1

    def _finish(self, index: int) -> None:
        self._tickets.pop(index, None)
        self._active.pop(index, None)
        self._left.pop(index, None)

    def release(self, session: Session) -> None:
        """After a commit: let the session forget timeline events and finished tickets (memory stays flat)."""
        active = {id(t) for t in self._tickets.values()}
        active |= {id(a) for t in self._tickets.values() for a in t.assignments}
        for obj in list(session.identity_map.values()):
            if isinstance(obj, TimelineEvent) or (
                isinstance(obj, Ticket | Assignment) and id(obj) not in active
            ):
                session.expunge(obj)


# -------------------------------------------------------------------------------------------- the deadlines
@dataclass
class _StepClock:
    """One step of one assignment as the clock subscriber would hold it: the deadline, met or not."""

    deadline: Deadline
    planned_at: datetime  # when its timers were last planned (the subscriber's "now")
    generation: int = 0
    met_at: datetime | None = None


@dataclass
class _OpenAssignment:
    id: int
    ticket_id: int
    role: str
    created_at: datetime
    steps: dict[str, _StepClock] = field(default_factory=dict)


def _chunks(items: Sequence[int], size: int = 900) -> Iterator[Sequence[int]]:
    # 900: under SQLite's smallest limit of bound parameters per statement on old builds (999).
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _zones(session: Session, clockwork: Clockwork, area_ids: Iterable[int | None]) -> dict[int, str | None]:
    """Policy zone of each area (none at all in the demo, unless an admin has mapped areas to zones)."""
    if session.scalar(select(ClockZoneArea.area_id).limit(1)) is None:
        return {}
    probe = Ticket()
    out: dict[int, str | None] = {}
    for area_id in {a for a in area_ids if a is not None}:
        probe.area_id = area_id
        out[area_id] = clockwork.zone_of(session, probe)
    return out


def plan_open_deadlines(db: Database, now: datetime, config: ClockConfig | None = None) -> tuple[int, int]:
    """Deadlines and timers for every open assignment, as the clock subscriber would have planned them.

    The replay runs without the clock subscriber (it would cost a policy lookup, deadline rows and timers for
    each of the ~40,000 historical assignments, nearly all of them long closed). This pass gives the open ones
    what the subscriber would have left them: deadlines counted from the dispatch on the city's calendar with
    the policy of each ticket, met by the unit steps taken since, restarted by a reopen, shifted by a pause,
    moved by an approved extension; unfired timers for what is still owed; and the due times mirrored on the
    assignment and the ticket, so that inboxes count down and the worker raises warnings and overdue marks.
    Returns (deadlines, timers) written.
    """
    with writing(db) as session:
        clockwork = Clockwork(
            TicketEngine(), config or ClockConfig.from_preset(NotifySettings().clock_preset)
        )
        policies = clockwork.policy_set(session)
        calendar = clockwork.calendar(session)
        active = [x.value for x in ACTIVE_ASSIGNMENT_STATES]
        rows = session.execute(
            select(
                Assignment.id,
                Assignment.ticket_id,
                Assignment.role,
                Assignment.created_at,
                Ticket.state,
                Ticket.urgency,
                Ticket.area_id,
                Category.code,
            )
            .join(Ticket, Ticket.id == Assignment.ticket_id)
            .outerjoin(Category, Category.id == Ticket.category_id)
            .where(Assignment.state.in_(active))
            .order_by(Assignment.id)
        ).all()
        zones = _zones(session, clockwork, (r.area_id for r in rows))
        by_ticket: dict[int, list[_OpenAssignment]] = {}
        ticket_info: dict[int, tuple[str, TimeLimitPolicy]] = {}  # ticket id → (state, policy)
        for r in rows:
            policy = policies.policy_for(r.code, r.urgency, zones.get(r.area_id) if r.area_id else None)
            ticket_info[r.ticket_id] = (r.state, policy)
            a = _OpenAssignment(r.id, r.ticket_id, r.role, r.created_at)
            wanted = [x for x in policy.limits if r.role != "assist" or x in ASSIST_STEPS]
            for step, d in compute_deadlines(policy, r.created_at, calendar, steps=wanted).items():
                a.steps[step] = _StepClock(d, r.created_at)
            by_ticket.setdefault(r.ticket_id, []).append(a)

        # Walk each open ticket's timeline after the dispatch, as the subscriber saw it event by event.
        ticket_ids = sorted(by_ticket)
        for chunk in _chunks(ticket_ids):
            events = session.execute(
                select(
                    TimelineEvent.ticket_id,
                    TimelineEvent.at,
                    TimelineEvent.machine,
                    TimelineEvent.action,
                    TimelineEvent.assignment_id,
                    TimelineEvent.payload,
                )
                .where(TimelineEvent.ticket_id.in_(chunk))
                .order_by(TimelineEvent.ticket_id, TimelineEvent.seq)
            ).all()
            for ev in events:
                for a in by_ticket[ev.ticket_id]:
                    if ev.at >= a.created_at:
                        _apply_clock_event(a, ev, ticket_info[ev.ticket_id][1], calendar)

        deadline_rows: list[dict[str, Any]] = []
        timer_rows: list[dict[str, Any]] = []
        assignment_dues: list[dict[str, Any]] = []
        ticket_dues: list[dict[str, Any]] = []
        for tid, assignments in by_ticket.items():
            state, policy = ticket_info[tid]
            for a in assignments:
                dues: dict[str, Any] = {"id": a.id}
                for step, sc in a.steps.items():
                    d = sc.deadline
                    deadline_rows.append(
                        {
                            "ticket_id": tid,
                            "assignment_id": a.id,
                            "step": step,
                            "started_at": d.started_at,
                            "due_at": d.due_at,
                            "unit": d.unit,
                            "warn_shares": list(d.warn_shares),
                            "warn_at": [x.isoformat() for x in d.warn_at],
                            "ladder": ladder_to_json(policy.escalation.get(step)),
                            "policy_name": policy.name[:200],
                            "calendar_fallback": d.calendar_fallback,
                            "generation": sc.generation,
                            "met_at": sc.met_at,
                        }
                    )
                    if step in ("sign", "resolve"):
                        dues[f"{step}_due_at"] = d.due_at
                    if sc.met_at is not None or state == "paused":
                        continue  # met: its timers were dropped; paused: the clock stands still
                    specs = plan_timers(
                        f"{a.id}.{sc.generation}",
                        [d],
                        policy.escalation.get(step),
                        not_before=sc.planned_at,
                    )
                    for spec in specs:
                        # A warning of a deadline already passed would only arrive after its overdue mark.
                        if spec.kind == "warning" and d.due_at <= now:
                            continue
                        timer_rows.append(
                            {
                                "key": spec.key,
                                "ticket_id": tid,
                                "assignment_id": a.id,
                                "kind": spec.kind,
                                "step": spec.step,
                                "due_at": spec.due_at,
                                "payload": dict(spec.payload),
                                "created_at": sc.planned_at,
                            }
                        )
                if len(dues) > 1:
                    dues.setdefault("sign_due_at", None)
                    dues.setdefault("resolve_due_at", None)
                    assignment_dues.append(dues)
                    if a.role == "lead" and dues["resolve_due_at"] is not None:
                        ticket_dues.append({"id": tid, "resolve_due_at": dues["resolve_due_at"]})
        for i in range(0, len(deadline_rows), 2000):
            session.execute(insert(StepDeadline), deadline_rows[i : i + 2000])
        for i in range(0, len(timer_rows), 2000):
            session.execute(insert(Timer), timer_rows[i : i + 2000])
        if assignment_dues:
            session.execute(update(Assignment), assignment_dues)
        if ticket_dues:
            session.execute(update(Ticket), ticket_dues)
    return len(deadline_rows), len(timer_rows)


def _apply_clock_event(a: _OpenAssignment, ev: Any, policy: TimeLimitPolicy, calendar: WorkCalendar) -> None:
    """One timeline event, as :meth:`Clockwork.__call__` handles it, for one assignment's deadlines."""
    at = ev.at
    unmet = [sc for sc in a.steps.values() if sc.met_at is None]
    if ev.machine == "assignment" and ev.assignment_id == a.id:
        if ev.action in DONE_BY:
            # An assisting unit's first report is the end of its part: everything it owed is met.
            steps = DONE_BY[ev.action] if a.role != "assist" else set(a.steps)
            for step in steps:
                sc = a.steps.get(step)
                if sc is not None and sc.met_at is None:
                    sc.met_at = at
        elif ev.action in ENDS_ASSIGNMENT:
            for sc in unmet:
                sc.met_at = at
        elif ev.action == "reopen":
            wanted = [x for x in REOPEN_STEPS if x in policy.limits]
            for step, d in compute_deadlines(policy, at, calendar, steps=wanted).items():
                old = a.steps.get(step)
                a.steps[step] = _StepClock(d, at, old.generation + 1 if old else 0)
    elif ev.machine == "ticket" and ev.action == "resume":
        paused_from = (ev.payload or {}).get("paused_from")
        if paused_from:
            start = datetime.fromisoformat(paused_from)
            for sc in unmet:
                sc.deadline = shift_deadline(sc.deadline, start, at, calendar=calendar)
                sc.planned_at = at
    elif ev.machine == "ticket" and ev.action == "decide_extension" and (ev.payload or {}).get("approved"):
        hours = float((ev.payload or {}).get("hours") or 0)
        sc = a.steps.get("resolve")
        if hours > 0 and sc is not None and sc.met_at is None:
            sc.deadline = extend(sc.deadline, timedelta(hours=hours), calendar)
            sc.generation += 1
            sc.planned_at = at


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
    clock: ClockConfig | None = None,
) -> SeedReport:
    """Write the demo city and ``n_tickets`` tickets created over the ``days`` before ``now`` (an empty database
    is expected: see :func:`database_is_empty`), plan the open tickets' deadlines and, with ``model_dir``, train
    the triage model on the history (see :func:`train_demo_model`)."""
    started = time.perf_counter()
    city = generate_city(seed)
    # One argon2 hash for every demo account: hashing is deliberately slow, and they share the password anyway.
    password_hash = hash_password(DEMO_PASSWORD)
    if progress:
        progress("city", 0, 1)
    with writing(db) as session:
        report = seed_city(session, city, now, password_hash)
        seed_triage_and_kb(session, city, report, now)
    report.city_seconds = time.perf_counter() - started
    report.stage_seconds["city"] = report.city_seconds
    if progress:
        progress("city", 1, 1)

    stage = time.perf_counter()
    with reading(db) as session:
        actors = Actors(session)
    replayer = Replayer(ReplayEngine(engine), actors)
    engine_has_hooks = engine is not None and bool(engine.subscribers or engine.triage)
    scripts = generate_history(city, n_tickets, start=now - timedelta(days=days), end=now, seed=seed)
    if progress:
        progress("tickets", 0, n_tickets)
    # One long session, committed every `batch` tickets: the tickets still being walked stay attached to it.
    with db.write_sessions() as session:
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

    # An engine that brought its own subscribers (a test wiring the clock in) planned the deadlines already.
    if engine is None or not engine.subscribers:
        stage = time.perf_counter()
        if progress:
            progress("deadlines", 0, 1)
        report.deadlines, report.timers = plan_open_deadlines(db, now, clock)
        report.stage_seconds["deadlines"] = time.perf_counter() - stage
        if progress:
            progress("deadlines", 1, 1)

    if model_dir is not None:
        stage = time.perf_counter()
        if progress:
            progress("model", 0, 1)
        try:
            report.model_path, report.model = train_demo_model(db, model_dir, now, level=model_level)
        except Invalid as e:
            # A few dozen tickets (tests, a quick look) teach nothing; the city works without a model.
            report.model_error = e.message
        report.stage_seconds["model"] = time.perf_counter() - stage
        if progress:
            progress("model", 1, 1)
    report.seconds = time.perf_counter() - started
    return report


def train_demo_model(
    db: Database, model_dir: Path, now: datetime, *, level: int = DEMO_MODEL_LEVEL
) -> tuple[Path, dict[str, Any]]:
    """Train the classifier on the seeded history into ``model_dir/versions/<version>`` and point ``CURRENT``
    at it: the layout :func:`~minsheng.services.triage_service.retrain` keeps, so a retrain from the admin
    pages adds a version next to it. Returns (version directory, training record)."""
    version = now.strftime("demo-%Y%m%d%H%M%S")
    target = Path(model_dir) / "versions" / version
    record = triage_service.train_from_db(
        db,
        target,
        level,
        now=now,
        min_examples=DEMO_MODEL_MIN_TICKETS,
        limit=DEMO_MODEL_TICKETS,
        folds=DEMO_MODEL_FOLDS,
    )
    pointer = Path(model_dir) / triage_service.CURRENT_FILE
    tmp = pointer.with_suffix(".tmp")
    tmp.write_text(version, encoding="utf-8")
    tmp.replace(pointer)  # a server reading CURRENT meanwhile sees the old version or the new, never half
    return target, record
