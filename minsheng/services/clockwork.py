"""The clock at work: deadlines and timers kept in step with every ticket event, and timers fired by the worker.

`Clockwork` is an engine subscriber (it runs inside the transaction of each step):

- ``assignment_created``: resolve the policy of (category, urgency, zone), compute the deadlines on the working
  calendar (statutory + local entries), store them (`StepDeadline`, mirrored into ``Assignment.sign_due_at`` /
  ``resolve_due_at`` and ``Ticket.resolve_due_at``) and plan the timers (warnings, overdue, ladder steps);
- a unit step done (sign, contact, arrive, feedback) meets its deadline and drops its unfired timers;
  request_close, close, cancel and return drop all of the assignment's;
- pause drops the unfired timers; resume shifts the deadlines by the pause and plans them again;
- an approved extension extends the resolve deadline; a reopen (回流) sets fresh feedback/resolve deadlines;
- the citizen gets an SMS on intake (number + query code) and on closing (with the rating request).

`Clockwork.fire_batch` is the worker's half: each due timer becomes one timeline event (warning, overdue, press,
escalation) and notifications to whoever is on duty, and is marked fired in the same transaction.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from jinja2 import Template
from jinja2 import TemplateError as JinjaError
from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from minsheng.clock import presets
from minsheng.clock.calendar import DEFAULT_ZONE, CalendarEntry, WorkCalendar, WorkingHours
from minsheng.clock.escalation import (
    EscalationLadder,
    EscalationStep,
    RepeatedFailureLadder,
    TimerSpec,
    plan_timers,
    timer_fired,
)
from minsheng.clock.policy import Deadline, PolicySet, TimeLimit, TimeLimitPolicy, compute_deadlines, extend
from minsheng.clock.policy import shift_for_pause as shift_deadline
from minsheng.domain.roles import Actor, Role
from minsheng.domain.states import ACTIVE_ASSIGNMENT_STATES, AssignmentState, Urgency
from minsheng.notify import templates
from minsheng.notify.channels import DINGTALK, EMAIL, SMS, WECOM
from minsheng.notify.templates import TEMPLATES, RenderedMessage, TemplateError, validate_template
from minsheng.services.notifications import NotifySettings, add_inbox, enqueue
from minsheng.services.tickets import DomainEvent, TicketEngine
from minsheng.storage.clock_tables import (
    CalendarDay,
    ClockPolicy,
    ClockZoneArea,
    DutyShift,
    MessageTemplate,
    StepDeadline,
    Timer,
    UnitFailure,
)
from minsheng.storage.models import Area, Assignment, Category, Ticket, Unit, User

if TYPE_CHECKING:
    from fastapi import FastAPI

    from minsheng.api.deps import AppState

log = logging.getLogger("minsheng.clock")

STEP_LABELS = {
    "sign": "签收",
    "contact": "联系群众",
    "arrive": "到场",
    "instruct": "处置意见",
    "feedback": "反馈",
    "resolve": "办结",
}
TARGET_LABELS = {
    "unit": "承办单位",
    "unit_leader": "单位领导",
    "district_leader": "区县领导",
    "city_leader": "市领导",
    "deputy_mayor": "分管副市长",
    "mayor": "市长",
    "duty_commander": "当日轮值指挥长",
}
# Which deadlines a unit step meets. 嘉兴's "instructions within 3 min" are given with the unit's first report.
DONE_BY: Mapping[str, frozenset[str]] = {
    "sign": frozenset({"sign"}),
    "contact": frozenset({"contact"}),
    "arrive": frozenset({"arrive"}),
    "feedback": frozenset({"feedback", "instruct"}),
}
# Steps after which the assignment owes nothing more (until a reopen).
ENDS_ASSIGNMENT = frozenset({"request_close", "close", "cancel", "return"})
# An assisting unit signs, then reports back; that report is the end of its part.
ASSIST_STEPS = frozenset({"sign", "feedback", "resolve"})
# A reopen (回流) sends the work back: the unit owes a new report and a new result, not a new signature.
REOPEN_STEPS = ("feedback", "resolve")
CLOCK_ACTOR = Actor(role=Role.SYSTEM, name="时限监控")


# Placeholders a context may leave out (they render empty), as in `minsheng.notify.templates.render`.
_OPTIONAL = frozenset({"rating_url", "level_name"})


@functools.lru_cache(maxsize=256)
def _compiled(kind: str, body: str) -> tuple[Template, Template]:
    """Validated, compiled title and body: `render` compiles on every call (~8 ms), too slow for 10,000 timers."""
    spec = TEMPLATES.get(kind)
    if spec is None:
        raise TemplateError(f"no template kind {kind!r}")
    validate_template(body, spec.placeholders, kind)
    try:
        return templates._ENV.from_string(spec.title), templates._ENV.from_string(body)
    except JinjaError as err:
        raise TemplateError(f"template {kind!r} does not parse: {err}") from err


def _urgency_label(urgency: str) -> str:
    try:
        return Urgency(urgency).label
    except ValueError:
        return urgency


def _insert(session: Session) -> Any:
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


# ---------------------------------------------------------------------------------------- policies as JSON
def ladder_from_json(steps: Sequence[Mapping[str, Any]]) -> EscalationLadder:
    """``[{after_minutes, action, target, name}]`` → a ladder (EscalationError on bad steps)."""
    return EscalationLadder(
        tuple(
            EscalationStep(
                timedelta(minutes=float(s.get("after_minutes", 0))),
                s.get("action", "notify"),
                str(s.get("target", "")),
                str(s.get("name", "")),
            )
            for s in steps
        )
    )


def ladder_to_json(ladder: EscalationLadder | None) -> list[dict[str, Any]]:
    if ladder is None:
        return []
    return [
        {
            "after_minutes": s.after.total_seconds() / 60,
            "action": s.action,
            "target": s.target,
            "name": s.name,
        }
        for s in ladder.steps
    ]


def policy_from_json(
    category_code: str | None,
    urgency: str | None,
    zone: str | None,
    limits: Mapping[str, Mapping[str, Any]],
    warn_at: Sequence[float] | None = None,
    escalation: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    name: str = "",
) -> TimeLimitPolicy:
    """Build (and so validate) a policy from its stored form; raises PolicyError / EscalationError."""
    return TimeLimitPolicy(
        category_code,
        urgency,
        {step: TimeLimit(step, spec.get("amount"), spec.get("unit")) for step, spec in limits.items()},  # type: ignore[arg-type]
        tuple(warn_at) if warn_at is not None else None,
        {step: ladder_from_json(steps) for step, steps in (escalation or {}).items()},
        zone,
        name,
    )


def policy_from_row(row: ClockPolicy) -> TimeLimitPolicy:
    return policy_from_json(
        row.category_code, row.urgency, row.zone, row.limits, row.warn_at, row.escalation, row.name
    )


def policy_to_json(p: TimeLimitPolicy) -> dict[str, Any]:
    return {
        "name": p.name,
        "category_code": p.category_code,
        "urgency": p.urgency,
        "zone": p.zone,
        "limits": {s: {"amount": lim.amount, "unit": lim.unit} for s, lim in p.limits.items()},
        "warn_at": list(p.warn_at) if p.warn_at is not None else None,
        "escalation": {s: ladder_to_json(lad) for s, lad in p.escalation.items()},
    }


# ------------------------------------------------------------------------------------------ configuration
@dataclass
class ClockConfig:
    """What the clockwork needs besides the database: fallback policies, 黔西's ladder, channels, texts."""

    fallback: PolicySet = field(default_factory=lambda: presets.demo_city().policies)
    repeated_failures: RepeatedFailureLadder | None = None
    repeated_failure_steps: frozenset[str] = frozenset({"sign"})
    hotline_name: str = "12345"
    rating_url: str = ""
    channels: frozenset[str] = frozenset()
    zone: str = DEFAULT_ZONE
    hours: WorkingHours | None = None

    @classmethod
    def from_preset(cls, name: str, **kw: Any) -> ClockConfig:
        preset = presets.PRESETS[name]()
        return cls(fallback=preset.policies, repeated_failures=preset.repeated_failures, **kw)

    @classmethod
    def from_settings(cls, ns: NotifySettings, channels: Iterable[str]) -> ClockConfig:
        return cls.from_preset(
            ns.clock_preset,
            hotline_name=ns.hotline_name,
            rating_url=ns.rating_url,
            channels=frozenset(channels),
        )


@dataclass(frozen=True)
class Recipient:
    user_id: int | None
    name: str
    phone: str | None = None
    email: str | None = None


@dataclass
class FireStats:
    fired: int = 0
    skipped: int = 0
    errors: int = 0
    busy: int = 0
    events: int = 0

    def add(self, other: FireStats) -> None:
        self.fired += other.fired
        self.skipped += other.skipped
        self.errors += other.errors
        self.busy += other.busy
        self.events += other.events


@dataclass
class _Pass:
    """Lookups shared by the timers of one batch (recipients, names, template overrides)."""

    now: datetime
    overrides: dict[str, str]
    recipients: dict[tuple[int, str], list[Recipient]] = field(default_factory=dict)
    categories: dict[int, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def _deadline_of(row: StepDeadline) -> Deadline:
    return Deadline(
        row.step,
        row.due_at,
        tuple(datetime.fromisoformat(x) for x in row.warn_at),
        row.started_at,
        row.unit,  # type: ignore[arg-type]
        tuple(row.warn_shares),
        row.calendar_fallback,
    )


def _store_deadline(row: StepDeadline, d: Deadline) -> None:
    row.due_at = d.due_at
    row.started_at = d.started_at
    row.unit = d.unit
    row.warn_at = [x.isoformat() for x in d.warn_at]
    row.warn_shares = list(d.warn_shares)
    row.calendar_fallback = d.calendar_fallback


class Clockwork:
    """Engine subscriber and timer firer; one per application (holds small caches, no sessions)."""

    def __init__(self, engine: TicketEngine, config: ClockConfig | None = None) -> None:
        self.engine = engine
        self.config = config or ClockConfig()
        self._policy_cache: tuple[Any, PolicySet] | None = None
        self._calendar_cache: tuple[Any, WorkCalendar] | None = None

    # ------------------------------------------------------------------------------------- lookups
    def policy_set(self, session: Session) -> PolicySet:
        """The city's policies (the preset when admins have entered none) over the category tree."""
        version = (
            session.execute(select(func.count(), func.max(ClockPolicy.updated_at))).one(),
            session.execute(select(func.count(), func.max(Category.id))).one(),
        )
        if self._policy_cache is not None and self._policy_cache[0] == version:
            return self._policy_cache[1]
        parent = {c.id: c for c in session.scalars(select(Category))}
        parents = {
            c.code: (parent[c.parent_id].code if c.parent_id in parent else None) for c in parent.values()
        }
        rows = list(session.scalars(select(ClockPolicy).where(ClockPolicy.active.is_(True))))
        policies = (
            [policy_from_row(r) for r in rows] if rows else list(self.config.fallback.policies.values())
        )
        result = PolicySet(policies, parents)
        self._policy_cache = (version, result)
        return result

    def calendar(self, session: Session) -> WorkCalendar:
        version = session.execute(
            select(func.count(), func.max(CalendarDay.created_at), func.max(CalendarDay.id))
        ).one()
        if self._calendar_cache is not None and self._calendar_cache[0] == version:
            return self._calendar_cache[1]
        entries = [CalendarEntry(d.day, d.kind, d.name) for d in session.scalars(select(CalendarDay))]  # type: ignore[arg-type]
        cal = WorkCalendar(entries, hours=self.config.hours, zone=self.config.zone)
        self._calendar_cache = (version, cal)
        return cal

    def zone_of(self, session: Session, t: Ticket) -> str | None:
        """The policy zone of the ticket's area: the one of the nearest listed ancestor area."""
        if t.area_id is None:
            return None
        path = session.scalar(select(Area.path).where(Area.id == t.area_id))
        codes = [c for c in (path or "").split("/") if c]
        if not codes:
            return None
        rows = session.execute(
            select(Area.path, ClockZoneArea.zone)
            .join(ClockZoneArea, ClockZoneArea.area_id == Area.id)
            .where(Area.code.in_(codes))
        ).all()
        return max(rows, key=lambda r: len(r[0]))[1] if rows else None

    def policy_for(self, session: Session, t: Ticket) -> TimeLimitPolicy:
        code = (
            session.scalar(select(Category.code).where(Category.id == t.category_id))
            if t.category_id
            else None
        )
        return self.policy_set(session).policy_for(code, t.urgency, self.zone_of(session, t))

    # ---------------------------------------------------------------------------------- subscriber
    def __call__(self, session: Session, ev: DomainEvent, now: datetime) -> None:
        a, t, action = ev.assignment, ev.ticket, ev.action
        if action == "intake":
            self._citizen_sms(
                session, t, "ticket_accepted_sms", {"query_code": ev.payload.get("query_code")}, now
            )
        elif action == "assignment_created" and a is not None:
            self.start(session, t, a, now)
        elif a is not None and action in DONE_BY:
            lead = a.role != "assist"
            self.meet(session, a, DONE_BY[action] if lead else None, now)
        elif a is not None and action in ENDS_ASSIGNMENT:
            self.meet(session, a, None, now)
        elif a is not None and action == "reopen":
            self.restart(session, t, a, now)
        elif action == "pause":
            self._drop_unfired(session, [x.id for x in t.assignments])
        elif action == "resume":
            paused_from = ev.payload.get("paused_from")
            if paused_from:
                self.shift_for_pause(session, t, datetime.fromisoformat(paused_from), now)
        elif action == "decide_extension" and ev.payload.get("approved"):
            self.extend_resolve(session, t, timedelta(hours=float(ev.payload.get("hours") or 0)), now)
        elif action in ("review_accept", "answer_directly"):
            ctx = {"rating_url": self.config.rating_url}
            self._citizen_sms(session, t, "ticket_closed_sms", ctx, now, suffix=str(t.reopen_count))

    def start(self, session: Session, t: Ticket, a: Assignment, now: datetime) -> dict[str, Deadline]:
        """Deadlines and timers of a new assignment."""
        policy = self.policy_for(session, t)
        steps = [s for s in policy.limits if a.role != "assist" or s in ASSIST_STEPS]
        deadlines = compute_deadlines(policy, now, self.calendar(session), steps=steps)
        rows = []
        for step, d in deadlines.items():
            row = StepDeadline(
                ticket_id=t.id,
                assignment_id=a.id,
                step=step,
                ladder=ladder_to_json(policy.escalation.get(step)),
                policy_name=policy.name[:200],
                generation=0,
            )
            _store_deadline(row, d)
            session.add(row)
            rows.append(row)
        session.flush()
        self._mirror(t, a, deadlines)
        for row in rows:
            self._replan(session, t, row, now)
        if "sign" in deadlines:
            self._notify_new_assignment(session, t, a, deadlines["sign"].due_at, now)
        return deadlines

    def meet(self, session: Session, a: Assignment, steps: Iterable[str] | None, now: datetime) -> None:
        """Steps done (None: everything the assignment owed): their deadlines are met, their timers dropped."""
        q = update(StepDeadline).where(StepDeadline.assignment_id == a.id, StepDeadline.met_at.is_(None))
        d = delete(Timer).where(Timer.assignment_id == a.id, Timer.fired_at.is_(None))
        if steps is not None:
            wanted = list(steps)
            q = q.where(StepDeadline.step.in_(wanted))
            d = d.where(Timer.step.in_(wanted))
        session.execute(q.values(met_at=now))
        session.execute(d)

    def restart(self, session: Session, t: Ticket, a: Assignment, now: datetime) -> None:
        """A reopen: fresh feedback/resolve deadlines counted from now, with timers that fire anew."""
        policy = self.policy_for(session, t)
        steps = [s for s in REOPEN_STEPS if s in policy.limits]
        deadlines = compute_deadlines(policy, now, self.calendar(session), steps=steps)
        existing = {r.step: r for r in self._rows(session, [a.id])}
        for step, dl in deadlines.items():
            row = existing.get(step)
            if row is None:
                row = StepDeadline(ticket_id=t.id, assignment_id=a.id, step=step, generation=0)
                session.add(row)
            else:
                row.generation += 1
            row.ladder = ladder_to_json(policy.escalation.get(step))
            row.policy_name = policy.name[:200]
            row.met_at = None
            _store_deadline(row, dl)
            session.flush()
            self._replan(session, t, row, now)
        self._mirror(t, a, deadlines)

    def shift_for_pause(self, session: Session, t: Ticket, paused_from: datetime, now: datetime) -> None:
        cal = self.calendar(session)
        for a in self._active(t):
            moved: dict[str, Deadline] = {}
            for row in self._rows(session, [a.id]):
                if row.met_at is not None:
                    continue
                shifted = shift_deadline(_deadline_of(row), paused_from, now, calendar=cal)
                _store_deadline(row, shifted)
                moved[row.step] = shifted
                self._replan(session, t, row, now)
            self._mirror(t, a, moved)

    def extend_resolve(self, session: Session, t: Ticket, delta: timedelta, now: datetime) -> None:
        """An approved extension: the resolve deadlines move by ``delta`` and their timers fire anew.

        The engine itself adds the same wall-clock ``delta`` to the rows' ``resolve_due_at`` columns.
        """
        if delta <= timedelta(0):
            return
        cal = self.calendar(session)
        ids = [a.id for a in self._active(t)]
        for row in self._rows(session, ids):
            if row.step != "resolve" or row.met_at is not None:
                continue
            _store_deadline(row, extend(_deadline_of(row), delta, cal))
            row.generation += 1
            self._replan(session, t, row, now)

    # --------------------------------------------------------------------------------------- helpers
    @staticmethod
    def _active(t: Ticket) -> list[Assignment]:
        return [a for a in t.assignments if AssignmentState(a.state) in ACTIVE_ASSIGNMENT_STATES]

    @staticmethod
    def _rows(session: Session, assignment_ids: Sequence[int]) -> list[StepDeadline]:
        if not assignment_ids:
            return []
        q = (
            select(StepDeadline)
            .where(StepDeadline.assignment_id.in_(assignment_ids))
            .order_by(StepDeadline.id)
        )
        return list(session.scalars(q))

    @staticmethod
    def _mirror(t: Ticket, a: Assignment, deadlines: Mapping[str, Deadline]) -> None:
        if "sign" in deadlines:
            a.sign_due_at = deadlines["sign"].due_at
        if "resolve" in deadlines:
            a.resolve_due_at = deadlines["resolve"].due_at
            if a.role == "lead":
                t.resolve_due_at = a.resolve_due_at

    @staticmethod
    def _drop_unfired(session: Session, assignment_ids: Sequence[int]) -> None:
        if assignment_ids:
            session.execute(
                delete(Timer).where(Timer.assignment_id.in_(assignment_ids), Timer.fired_at.is_(None))
            )

    def _replan(self, session: Session, t: Ticket, row: StepDeadline, now: datetime) -> None:
        """Replace the unfired timers of one deadline; keys already fired stay fired (ON CONFLICT DO NOTHING)."""
        session.execute(
            delete(Timer).where(
                Timer.assignment_id == row.assignment_id, Timer.step == row.step, Timer.fired_at.is_(None)
            )
        )
        if t.state == "paused":
            return  # a paused ticket's clock stands still; resume plans again
        subject = f"{row.assignment_id}.{row.generation}"
        specs = plan_timers(subject, [_deadline_of(row)], ladder_from_json(row.ladder), not_before=now)
        if not specs:
            return
        values = [
            {
                "key": spec.key,
                "ticket_id": row.ticket_id,
                "assignment_id": row.assignment_id,
                "kind": spec.kind,
                "step": spec.step,
                "due_at": spec.due_at,
                "payload": dict(spec.payload),
                "created_at": now,
            }
            for spec in specs
        ]
        session.execute(_insert(session)(Timer).values(values).on_conflict_do_nothing(index_elements=["key"]))

    # -------------------------------------------------------------------------------------- messages
    def _overrides(self, session: Session) -> dict[str, str]:
        return {m.kind: m.text for m in session.scalars(select(MessageTemplate))}

    def _render(
        self, kind: str, context: Mapping[str, Any], overrides: Mapping[str, str], errors: list[str]
    ) -> RenderedMessage:
        """The admin's template, or the built-in one when the admin's cannot be used (the error is kept)."""
        spec = TEMPLATES.get(kind)
        bodies = [overrides[kind]] if kind in overrides else []
        for body in [*bodies, spec.body if spec else ""]:
            try:
                title, text = _compiled(kind, body)
                values = {n: "" for n in _OPTIONAL if spec and n in spec.placeholders and n not in context}
                values.update(context)
                return RenderedMessage(kind, title.render(values).strip(), text.render(values).strip())
            except (TemplateError, JinjaError) as err:
                errors.append(f"template {kind!r}: {err}")
                log.error("template %s: %s", kind, err)
        return RenderedMessage(kind, kind, "; ".join(f"{k}={v}" for k, v in context.items()))

    def _citizen_sms(
        self,
        session: Session,
        t: Ticket,
        kind: str,
        extra: Mapping[str, Any],
        now: datetime,
        suffix: str = "",
    ) -> None:
        if SMS not in self.config.channels or not t.citizen_phone:
            return
        ctx = {"hotline_name": self.config.hotline_name, "ticket_number": t.number, **extra}
        msg = self._render(kind, ctx, self._overrides(session), [])
        enqueue(
            session,
            kind=kind,
            channel=SMS,
            title=msg.title,
            text=msg.text,
            now=now,
            source=f"ticket:{t.id}:{kind}:{suffix}",
            recipient=t.citizen_phone,
            ticket_id=t.id,
        )

    def _category_name(self, session: Session, t: Ticket, cache: dict[int, str] | None = None) -> str:
        if t.category_id is None:
            return "未分类"
        if cache is not None and t.category_id in cache:
            return cache[t.category_id]
        name = session.scalar(select(Category.name).where(Category.id == t.category_id)) or "未分类"
        if cache is not None:
            cache[t.category_id] = name
        return name

    def _notify_new_assignment(
        self, session: Session, t: Ticket, a: Assignment, sign_due: datetime, now: datetime
    ) -> None:
        ctx = {
            "ticket_number": t.number,
            "unit_name": a.unit.name,
            "category_name": self._category_name(session, t),
            "urgency_label": _urgency_label(t.urgency),
            "sign_due_at": sign_due,
            "summary": t.title,
        }
        p = _Pass(now, self._overrides(session))
        self._notify(session, p, t, a.unit, "unit", "assignment_new", ctx, f"assignment:{a.id}:new")

    def recipients(self, session: Session, unit: Unit, target: str, now: datetime) -> list[Recipient]:
        """Who gets a message for ``target`` about ``unit`` at ``now``: the duty roster first, then the org."""
        on_duty = (DutyShift.starts_at <= now) & (DutyShift.ends_at > now)

        def from_shifts(rows: Iterable[DutyShift]) -> list[Recipient]:
            out = []
            for r in rows:
                user = session.get(User, r.user_id) if r.user_id else None
                out.append(
                    Recipient(
                        r.user_id,
                        r.person_name or (user.display_name if user else ""),
                        r.phone or (user.phone if user else None),
                        r.email,
                    )
                )
            return out

        def users(q: Any) -> list[Recipient]:
            return [
                Recipient(u.id, u.display_name, u.phone)
                for u in session.scalars(q.where(User.active.is_(True)))
            ]

        if target == "duty_commander":
            q = select(DutyShift).where(on_duty, DutyShift.commander.is_(True)).order_by(DutyShift.starts_at)
            return from_shifts(session.scalars(q))
        if target == "unit":
            q = select(DutyShift).where(on_duty, DutyShift.unit_id == unit.id, DutyShift.duty_role == "duty")
            found = from_shifts(session.scalars(q))
            return found or users(
                select(User).where(User.unit_id == unit.id, User.role == Role.HANDLER.value)
            )
        chain = [unit]
        while chain[-1].parent_id is not None and len(chain) < 10:
            parent = session.get(Unit, chain[-1].parent_id)
            if parent is None:
                break
            chain.append(parent)
        ids = [u.id for u in chain]
        rows = list(
            session.scalars(
                select(DutyShift).where(
                    on_duty,
                    DutyShift.duty_role == target,
                    (DutyShift.unit_id.in_(ids)) | DutyShift.unit_id.is_(None),
                )
            )
        )
        if rows:
            # The nearest unit's leader on duty; a city-wide one (no unit) last.
            best = min(ids.index(r.unit_id) if r.unit_id in ids else len(ids) for r in rows)
            near = [r for r in rows if (ids.index(r.unit_id) if r.unit_id in ids else len(ids)) == best]
            return from_shifts(near)
        leaders = select(User).where(User.role == Role.LEADER.value)
        if target == "unit_leader":
            found = users(leaders.where(User.unit_id == unit.id))
            if found:
                return found
        if target in ("unit_leader", "district_leader"):
            for u in chain[1:] if target == "unit_leader" else chain:
                if u.kind == "district_office":
                    found = users(leaders.where(User.unit_id == u.id))
                    if found:
                        return found
        return users(leaders.where(User.unit_id.is_(None)))

    def _notify(
        self,
        session: Session,
        p: _Pass,
        t: Ticket,
        unit: Unit,
        target: str,
        kind: str,
        context: Mapping[str, Any],
        source: str,
    ) -> None:
        key = (unit.id, target)
        if key not in p.recipients:
            p.recipients[key] = self.recipients(session, unit, target, p.now)
        people = p.recipients[key]
        msg = self._render(kind, context, p.overrides, p.errors)
        common: dict[str, Any] = {
            "kind": kind,
            "title": msg.title,
            "text": msg.text,
            "now": p.now,
            "ticket_id": t.id,
        }
        if not people:
            # Nobody could be named: the unit's shared inbox still shows it.
            add_inbox(session, unit_id=unit.id, source=source, **common)
        for person in people:
            if person.user_id is not None:
                add_inbox(session, user_id=person.user_id, source=source, **common)
            if SMS in self.config.channels and person.phone:
                enqueue(session, channel=SMS, recipient=person.phone, source=source, **common)
            if EMAIL in self.config.channels and person.email:
                enqueue(session, channel=EMAIL, recipient=person.email, source=source, **common)
        mention = [x.phone for x in people if x.phone]
        for robot in (WECOM, DINGTALK):
            if robot in self.config.channels:
                enqueue(session, channel=robot, mention=mention, source=source, **common)

    # ------------------------------------------------------------------------------------------ firing
    @staticmethod
    def _mark(tm: Timer, now: datetime, worker_id: str, outcome: str, errors: list[str]) -> None:
        tm.fired_at = now
        tm.locked_by = worker_id
        tm.outcome = outcome
        tm.error = "; ".join(errors)[:2000] or None

    def fire_batch(
        self,
        session: Session,
        timers: Sequence[Timer],
        now: datetime,
        worker_id: str,
        *,
        careful: bool = True,
    ) -> FireStats:
        """Fire claimed timers: each becomes its event and messages, and is marked fired, or left when its
        ticket is locked by someone else (a step in progress or another worker) for the next pass."""
        stats = FireStats()
        if not timers:
            return stats
        ticket_ids = sorted({tm.ticket_id for tm in timers})
        lock_q = select(Ticket.id).where(Ticket.id.in_(ticket_ids))
        if session.get_bind().dialect.name == "postgresql":
            # Never wait for a ticket lock while holding timer locks: an engine step holding the ticket may be
            # about to delete these very timers (that would be a deadlock).
            lock_q = lock_q.with_for_update(skip_locked=True)
        got = set(session.scalars(lock_q))
        tickets = {t.id: t for t in session.scalars(select(Ticket).where(Ticket.id.in_(got)))} if got else {}
        assignment_ids = [tm.assignment_id for tm in timers if tm.assignment_id is not None]
        rows = {(r.assignment_id, r.step): r for r in self._rows(session, sorted(set(assignment_ids)))}
        p = _Pass(now, self._overrides(session))
        for tm in timers:
            t = tickets.get(tm.ticket_id)
            if t is None:
                stats.busy += 1
                continue
            p.errors = []
            row = rows.get((tm.assignment_id or 0, tm.step))
            if not careful:
                # The fast path: one flush for the whole batch. Any error rolls the batch back and the caller
                # runs it again with careful=True, where each timer has its own savepoint.
                outcome = self._fire_one(session, p, tm, t, row)
                self._mark(tm, now, worker_id, outcome, p.errors)
                stats.fired += outcome == "fired"
                stats.skipped += outcome != "fired"
                continue
            try:
                with session.begin_nested():
                    outcome = self._fire_one(session, p, tm, t, row)
                    self._mark(tm, now, worker_id, outcome, p.errors)
                if outcome == "fired":
                    stats.fired += 1
                else:
                    stats.skipped += 1
            except Exception as err:  # a broken row must not stop the others
                log.exception("timer %s could not fire", tm.key)
                with session.begin_nested():
                    session.execute(
                        update(Timer)
                        .where(Timer.id == tm.id)
                        .values(
                            fired_at=now,
                            locked_by=worker_id,
                            outcome="error",
                            error=f"{type(err).__name__}: {err}"[:2000],
                        )
                    )
                stats.errors += 1
        return stats

    def _fire_one(self, session: Session, p: _Pass, tm: Timer, t: Ticket, row: StepDeadline | None) -> str:
        a = next((x for x in t.assignments if x.id == tm.assignment_id), None)
        if a is None or AssignmentState(a.state) not in ACTIVE_ASSIGNMENT_STATES or t.state == "paused":
            return "skipped"
        subject = str(tm.payload.get("subject_id", ""))
        if row is None or row.met_at is not None or subject != f"{row.assignment_id}.{row.generation}":
            return "skipped"  # the step was done or re-planned after this timer was claimed
        fired = timer_fired(TimerSpec(tm.kind, tm.step, tm.due_at, tm.payload))  # type: ignore[arg-type]
        action = "press" if fired.kind == "escalation" and fired.action == "press" else fired.kind
        due = fired.deadline_at or row.due_at
        payload: dict[str, Any] = {
            "step": fired.step,
            "step_label": STEP_LABELS.get(fired.step, fired.step),
            "kind": fired.kind,
            "target": fired.target,
            "target_label": TARGET_LABELS.get(fired.target, fired.target),
            "index": fired.index,
            "name": fired.name or None,
            "due_at": due.isoformat(),
            "timer": tm.key,
            "unit": a.unit.code,
        }
        if fired.kind == "warning":
            payload["share"] = tm.payload.get("share")
        self.engine.record_note(session, t, CLOCK_ACTOR, action, p.now, payload, assignment=a)
        ctx: dict[str, Any] = {
            "ticket_number": t.number,
            "unit_name": a.unit.name,
            "step_label": payload["step_label"],
            "due_at": due,
            "category_name": self._category_name(session, t, p.categories),
            "summary": t.title,
        }
        if fired.kind == "warning":
            self._notify(session, p, t, a.unit, "unit", "warning", {**ctx, "remaining": due - p.now}, tm.key)
        elif fired.kind == "overdue":
            self._notify(session, p, t, a.unit, "unit", "overdue", {**ctx, "overdue_by": p.now - due}, tm.key)
            if self.config.repeated_failures is not None and fired.step in self.config.repeated_failure_steps:
                self._repeated_failure(session, p, tm, t, a, ctx)
        else:
            esc = {
                **ctx,
                "overdue_by": p.now - due,
                "target_label": payload["target_label"],
                "level_name": fired.name,
            }
            self._notify(session, p, t, a.unit, fired.target, "escalation", esc, tm.key)
        return "fired"

    def _repeated_failure(
        self, session: Session, p: _Pass, tm: Timer, t: Ticket, a: Assignment, ctx: Mapping[str, Any]
    ) -> None:
        """黔西: the unit's n-th failure within the period goes up the n-th rung (head, deputy mayor, mayor)."""
        ladder = self.config.repeated_failures
        assert ladder is not None
        at = tm.due_at
        previous = list(
            session.scalars(
                select(UnitFailure.at).where(
                    UnitFailure.unit_id == a.unit_id, UnitFailure.at > at - ladder.period
                )
            )
        )
        number = ladder.failure_number(previous, at)
        target = ladder.target_for_failure(previous, at)
        session.add(
            UnitFailure(
                unit_id=a.unit_id,
                ticket_id=t.id,
                assignment_id=a.id,
                step=tm.step,
                number=number,
                target=target,
                timer_key=tm.key,
                at=at,
            )
        )
        payload = {
            "step": tm.step,
            "step_label": STEP_LABELS.get(tm.step, tm.step),
            "kind": "repeated_failure",
            "repeated_failure": number,
            "period_days": ladder.period.total_seconds() / 86400,
            "target": target,
            "target_label": TARGET_LABELS.get(target, target),
            "timer": tm.key,
            "unit": a.unit.code,
        }
        self.engine.record_note(session, t, CLOCK_ACTOR, "escalation", p.now, payload, assignment=a)
        esc = {
            **ctx,
            "overdue_by": p.now - tm.due_at,
            "target_label": payload["target_label"],
            "level_name": f"该单位{int(ladder.period.total_seconds() // 86400)}天内第{number}次超时",
        }
        self._notify(session, p, t, a.unit, target, "escalation", esc, f"{tm.key}:repeated")


def on_duty(session: Session, unit_id: int | None, at: datetime) -> list[DutyShift]:
    """The shifts of a unit (None: city-wide) covering ``at``."""
    q = select(DutyShift).where(DutyShift.starts_at <= at, DutyShift.ends_at > at)
    q = q.where(DutyShift.unit_id.is_(None) if unit_id is None else DutyShift.unit_id == unit_id)
    return list(session.scalars(q.order_by(DutyShift.starts_at)))


def commander_of_the_day(session: Session, at: datetime) -> list[DutyShift]:
    q = select(DutyShift).where(
        DutyShift.starts_at <= at, DutyShift.ends_at > at, DutyShift.commander.is_(True)
    )
    return list(session.scalars(q.order_by(DutyShift.starts_at)))


# ---------------------------------------------------------------------------------------------- wiring
def install(app: FastAPI, state: AppState) -> None:
    """Subscribe the clockwork to the engine, mount the clock API and start the embedded worker if asked."""
    from minsheng.api.routers import clock as clock_router
    from minsheng.worker.run import EmbeddedWorker

    ns = NotifySettings()
    senders = ns.senders()
    clockwork = Clockwork(state.engine, ClockConfig.from_settings(ns, senders))
    state.engine.subscribers.append(clockwork)
    app.state.clockwork = clockwork
    app.include_router(clock_router.router)
    app.include_router(clock_router.inbox_router)
    if state.settings.embedded_worker:
        worker = EmbeddedWorker(
            state.db,
            state.clock,
            clockwork,
            senders,
            retry=ns.retry_policy(),
            interval=state.settings.worker_interval_seconds,
        )
        worker.start()
        app.state.on_shutdown.append(worker.stop)
