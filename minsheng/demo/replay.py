"""Replaying ticket scripts through the real ticket engine (the demo history, the live simulation).

Every scripted step is taken by :class:`~minsheng.services.tickets.TicketEngine` with its own time as ``now``
and acted by a demo user of the right role and unit (:class:`Actors`), so timelines, counters and states are
exactly what the live system would have produced. :class:`Replayer` takes the steps of all tickets in one
global time order, so cross-ticket events such as a repeat linking to its master land in time order on both
timelines; :class:`ReplayEngine` skips the engine's re-locking of a ticket the replay already holds.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from minsheng.demo.history import Step, TicketScript
from minsheng.domain.roles import Actor, Role
from minsheng.domain.states import ACTIVE_ASSIGNMENT_STATES, Channel, Kind, Rating, TransferTarget, Urgency
from minsheng.domain.transitions import AssignmentAction, IllegalTransition, TicketAction
from minsheng.services import schemas as s
from minsheng.services.errors import ServiceError
from minsheng.services.tickets import TicketEngine
from minsheng.storage.models import Assignment, Ticket, TimelineEvent, Unit, User

__all__ = ["Actors", "ReplayEngine", "Replayer", "StepRefused", "apply_step", "intake_request"]


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
        elif step.action == "confer":
            engine.confer(
                session, actor, n, s.Conference(participants=p.get("units", []), decision=p["decision"]), at
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
