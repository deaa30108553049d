"""The clock's API: time-limit policies, local calendar, duty rosters, message templates, timers and deadlines
(admins write, supervisors read), and every user's in-app notification inbox."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import Field, model_validator
from sqlalchemy import delete, select

from minsheng.api.deps import CurrentUser, ReadSession, SmallIdPath, StateDep, WriteSession, require_roles
from minsheng.clock.calendar import CalendarEntry, CalendarError, WorkCalendar, entries_for_range
from minsheng.clock.escalation import EscalationError
from minsheng.clock.policy import PolicyError, PolicySet
from minsheng.domain.roles import Role
from minsheng.notify.templates import TEMPLATES, TemplateError, validate_template
from minsheng.services import notifications
from minsheng.services.clockwork import commander_of_the_day, on_duty, policy_from_json, policy_to_json
from minsheng.services.errors import Invalid, NotFound
from minsheng.services.queries import ticket_for
from minsheng.services.schemas import CODE_RE, Checked, Id, Instant
from minsheng.storage.clock_tables import (
    CalendarDay,
    ClockPolicy,
    ClockZoneArea,
    DutyShift,
    MessageTemplate,
    StepDeadline,
    Timer,
)
from minsheng.storage.models import Area, Unit, User

router = APIRouter(prefix="/api/v1/clock", tags=["clock"])
inbox_router = APIRouter(prefix="/api/v1/notifications", tags=["notifications"])
AdminOnly = require_roles(Role.ADMIN)
Watchers = require_roles(Role.ADMIN, Role.SUPERVISOR, Role.LEADER)


# ------------------------------------------------------------------------------------------------ policies
# No time limit or escalation step is longer than a year: beyond that the deadline arithmetic leaves the
# calendar (a limit of 1e300 minutes made every dispatch fail) and no hotline promises such a time.
YEAR_MINUTES = 366 * 24 * 60
MAX_AMOUNT = {
    "minutes": YEAR_MINUTES,
    "hours": 366 * 24,
    "natural_days": 366,
    "working_hours": 366 * 24,
    "working_days": 366,
}


class LimitIn(Checked):
    amount: float
    unit: str

    @model_validator(mode="after")
    def _at_most_a_year(self) -> LimitIn:
        top = MAX_AMOUNT.get(self.unit)
        if top is not None and self.amount > top:
            raise ValueError(f"a time limit is at most a year ({top} {self.unit})")
        return self


class LadderStepIn(Checked):
    after_minutes: float = Field(default=0, ge=0, le=YEAR_MINUTES)
    action: str = Field(default="notify", max_length=16)
    target: str = Field(max_length=32)
    name: str = Field(default="", max_length=100)


# A step's name is stored with each deadline and timer (24 characters), and each one plans timers of its own.
StepName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_]{1,24}$")]


class PolicyIn(Checked):
    name: str = Field(default="", max_length=100)
    category_code: str | None = Field(default=None, pattern=CODE_RE)
    urgency: str | None = Field(default=None, max_length=16)
    zone: str | None = Field(default=None, max_length=32)
    limits: dict[StepName, LimitIn] = Field(min_length=1, max_length=20)
    warn_at: list[float] | None = Field(default=None, max_length=10)
    escalation: dict[StepName, Annotated[list[LadderStepIn], Field(max_length=20)]] = Field(
        default_factory=dict, max_length=20
    )
    active: bool = True


def _policy_json(row: ClockPolicy) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "category_code": row.category_code,
        "urgency": row.urgency,
        "zone": row.zone,
        "limits": row.limits,
        "warn_at": row.warn_at,
        "escalation": row.escalation,
        "active": row.active,
        "updated_at": row.updated_at,
    }


def _check_policy(session: Any, body: PolicyIn, replacing: int | None) -> dict[str, Any]:
    """Validate through minsheng.clock (limits, shares, ladders, one policy per key); 422 with the reason."""
    limits = {k: v.model_dump() for k, v in body.limits.items()}
    escalation = {k: [s.model_dump() for s in v] for k, v in body.escalation.items()}
    try:
        policy = policy_from_json(
            body.category_code, body.urgency, body.zone, limits, body.warn_at, escalation, body.name
        )
        others = [
            policy_from_json(r.category_code, r.urgency, r.zone, r.limits, r.warn_at, r.escalation, r.name)
            for r in session.scalars(select(ClockPolicy).where(ClockPolicy.active.is_(True)))
            if r.id != replacing
        ]
        if body.active:
            PolicySet([*others, policy])
    except (PolicyError, EscalationError, TypeError) as err:
        raise Invalid(f"policy refused: {err}") from None
    return policy_to_json(policy)


@router.get("/policies", dependencies=[Watchers])
def list_policies(session: ReadSession) -> list[dict[str, Any]]:
    return [_policy_json(r) for r in session.scalars(select(ClockPolicy).order_by(ClockPolicy.id))]


@router.post("/policies", status_code=201, dependencies=[AdminOnly])
def create_policy(body: PolicyIn, session: WriteSession, state: StateDep) -> dict[str, Any]:
    data = _check_policy(session, body, None)
    row = ClockPolicy(
        **{k: data[k] for k in ("name", "category_code", "urgency", "zone", "limits", "warn_at")}
    )
    row.escalation = data["escalation"]
    row.active = body.active
    row.updated_at = state.clock.now()
    session.add(row)
    session.flush()
    return _policy_json(row)


@router.put("/policies/{policy_id}", dependencies=[AdminOnly])
def update_policy(
    policy_id: SmallIdPath, body: PolicyIn, session: WriteSession, state: StateDep
) -> dict[str, Any]:
    row = session.get(ClockPolicy, policy_id)
    if row is None:
        raise NotFound(f"policy {policy_id} not found")
    data = _check_policy(session, body, policy_id)
    for k in ("name", "category_code", "urgency", "zone", "limits", "warn_at", "escalation"):
        setattr(row, k, data[k])
    row.active = body.active
    row.updated_at = state.clock.now()
    return _policy_json(row)


@router.delete("/policies/{policy_id}", status_code=204, dependencies=[AdminOnly])
def delete_policy(policy_id: SmallIdPath, session: WriteSession) -> None:
    if session.execute(delete(ClockPolicy).where(ClockPolicy.id == policy_id)).rowcount == 0:  # type: ignore[attr-defined]
        raise NotFound(f"policy {policy_id} not found")


class ZoneIn(Checked):
    zone: str = Field(min_length=1, max_length=32)
    area_code: str = Field(pattern=CODE_RE)


@router.get("/zones", dependencies=[Watchers])
def list_zones(session: ReadSession) -> list[dict[str, Any]]:
    rows = session.execute(select(ClockZoneArea.zone, Area.code).join(Area, Area.id == ClockZoneArea.area_id))
    return [{"zone": z, "area_code": c} for z, c in rows]


@router.post("/zones", status_code=201, dependencies=[AdminOnly])
def add_zone(body: ZoneIn, session: WriteSession) -> dict[str, Any]:
    area_id = session.scalar(select(Area.id).where(Area.code == body.area_code))
    if area_id is None:
        raise NotFound(f"area {body.area_code} not found")
    session.add(ClockZoneArea(zone=body.zone, area_id=area_id))
    return {"zone": body.zone, "area_code": body.area_code}


# ------------------------------------------------------------------------------------------------ calendar
class CalendarIn(Checked):
    first: date
    last: date | None = None
    kind: Literal["holiday", "workday"]
    name: str = Field(default="", max_length=100)


@router.get("/calendar", dependencies=[Watchers])
def list_calendar(
    session: ReadSession, year: Annotated[int | None, Query(ge=1, le=9999)] = None
) -> list[dict[str, Any]]:
    q = select(CalendarDay).order_by(CalendarDay.day)
    if year:
        q = q.where(CalendarDay.day >= date(year, 1, 1), CalendarDay.day <= date(year, 12, 31))
    return [{"id": d.id, "date": d.day, "kind": d.kind, "name": d.name} for d in session.scalars(q)]


@router.post("/calendar", status_code=201, dependencies=[AdminOnly])
def add_calendar(body: CalendarIn, session: WriteSession, state: StateDep) -> dict[str, Any]:
    """Add one day or a range; refused (422) when it overlaps or contradicts entries already kept."""
    try:
        new = entries_for_range(body.first, body.last or body.first, body.kind, body.name)
        if len(new) > 400:
            raise CalendarError("a calendar range may cover at most 400 days")
        kept = [CalendarEntry(d.day, d.kind, d.name) for d in session.scalars(select(CalendarDay))]  # type: ignore[arg-type]
        WorkCalendar([*kept, *new])
    except CalendarError as err:
        raise Invalid(str(err)) from None
    now = state.clock.now()
    for e in new:
        session.add(CalendarDay(day=e.date, kind=e.kind, name=e.name, created_at=now))
    return {"added": len(new), "first": body.first, "last": body.last or body.first, "kind": body.kind}


@router.delete("/calendar/{day}", status_code=204, dependencies=[AdminOnly])
def delete_calendar(day: date, session: WriteSession) -> None:
    if session.execute(delete(CalendarDay).where(CalendarDay.day == day)).rowcount == 0:  # type: ignore[attr-defined]
        raise NotFound(f"no calendar entry on {day}")


# ------------------------------------------------------------------------------------------------- rosters
class ShiftIn(Checked):
    unit_code: str | None = Field(default=None, pattern=CODE_RE)
    username: str | None = None
    person_name: str = Field(default="", max_length=64)
    phone: str | None = Field(default=None, max_length=32)
    email: str | None = Field(default=None, max_length=200)
    duty_role: str = Field(default="duty", min_length=1, max_length=32)
    tier: int = Field(default=3, ge=1, le=3)
    commander: bool = False
    starts_at: Instant
    ends_at: Instant


def _shift_json(s: DutyShift, units: dict[int, str] | None = None) -> dict[str, Any]:
    return {
        "id": s.id,
        "unit_id": s.unit_id,
        "unit_code": (units or {}).get(s.unit_id or 0),
        "user_id": s.user_id,
        "person_name": s.person_name,
        "phone": s.phone,
        "duty_role": s.duty_role,
        "tier": s.tier,
        "commander": s.commander,
        "starts_at": s.starts_at,
        "ends_at": s.ends_at,
    }


def _unit_codes(session: Any) -> dict[int, str]:
    return {i: c for i, c in session.execute(select(Unit.id, Unit.code))}


@router.get("/rosters", dependencies=[Watchers])
def list_shifts(
    session: ReadSession,
    unit: Annotated[str | None, Query(pattern=CODE_RE)] = None,
    start: Instant | None = None,
    end: Instant | None = None,
) -> list[dict[str, Any]]:
    q = select(DutyShift).order_by(DutyShift.starts_at).limit(2000)
    if unit:
        q = q.where(DutyShift.unit_id == _unit_id(session, unit))
    if start:
        q = q.where(DutyShift.ends_at > start)
    if end:
        q = q.where(DutyShift.starts_at < end)
    units = _unit_codes(session)
    return [_shift_json(s, units) for s in session.scalars(q)]


def _unit_id(session: Any, code: str) -> int:
    uid = session.scalar(select(Unit.id).where(Unit.code == code))
    if uid is None:
        raise NotFound(f"unit {code} not found")
    return int(uid)


@router.post("/rosters", status_code=201, dependencies=[AdminOnly])
def add_shift(body: ShiftIn, session: WriteSession) -> dict[str, Any]:
    if body.ends_at <= body.starts_at:
        raise Invalid("a duty shift must end after it starts")
    if (body.ends_at - body.starts_at).total_seconds() > 48 * 3600:
        raise Invalid("a duty shift lasts at most 48 hours (tier 1: 24 h; tier 2/3: 8 or 12 h)")
    user = None
    if body.username:
        user = session.scalar(select(User).where(User.username == body.username))
        if user is None:
            raise NotFound(f"user {body.username} not found")
    if user is None and not (body.person_name and body.phone):
        raise Invalid("a duty shift names a user, or a person with a phone number")
    shift = DutyShift(
        unit_id=_unit_id(session, body.unit_code) if body.unit_code else None,
        user_id=user.id if user else None,
        person_name=body.person_name or (user.display_name if user else ""),
        phone=body.phone,
        email=body.email,
        duty_role=body.duty_role,
        tier=body.tier,
        commander=body.commander,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
    )
    session.add(shift)
    session.flush()
    return _shift_json(shift, _unit_codes(session))


@router.delete("/rosters/{shift_id}", status_code=204, dependencies=[AdminOnly])
def delete_shift(shift_id: SmallIdPath, session: WriteSession) -> None:
    if session.execute(delete(DutyShift).where(DutyShift.id == shift_id)).rowcount == 0:  # type: ignore[attr-defined]
        raise NotFound(f"duty shift {shift_id} not found")


@router.get("/on-duty", dependencies=[Watchers])
def who_is_on_duty(
    session: ReadSession,
    state: StateDep,
    unit: Annotated[str | None, Query(pattern=CODE_RE)] = None,
    at: Instant | None = None,
) -> dict[str, Any]:
    """Who is on duty for a unit (or city-wide) now or at ``at``, and the commander of the day."""
    when = at or state.clock.now()
    units = _unit_codes(session)
    shifts = on_duty(session, _unit_id(session, unit) if unit else None, when)
    return {
        "at": when,
        "unit": unit,
        "on_duty": [_shift_json(s, units) for s in shifts],
        "commander": [_shift_json(s, units) for s in commander_of_the_day(session, when)],
    }


# ----------------------------------------------------------------------------------------------- templates
class TemplateIn(Checked):
    text: str = Field(min_length=1, max_length=2000)


@router.get("/templates", dependencies=[Watchers])
def list_templates(session: ReadSession) -> list[dict[str, Any]]:
    overrides = {m.kind: m for m in session.scalars(select(MessageTemplate))}
    return [
        {
            "kind": spec.kind,
            "title": spec.title,
            "default": spec.body,
            "text": overrides[spec.kind].text if spec.kind in overrides else spec.body,
            "overridden": spec.kind in overrides,
            "placeholders": sorted(spec.placeholders),
            "description": spec.description,
        }
        for spec in TEMPLATES.values()
    ]


@router.put("/templates/{kind}", dependencies=[AdminOnly])
def put_template(kind: str, body: TemplateIn, session: WriteSession, state: StateDep) -> dict[str, Any]:
    spec = TEMPLATES.get(kind)
    if spec is None:
        raise NotFound(f"no template kind {kind!r}", known=sorted(TEMPLATES))
    try:
        validate_template(body.text, spec.placeholders, kind)
    except TemplateError as err:
        raise Invalid(str(err), placeholders=sorted(spec.placeholders)) from None
    row = session.get(MessageTemplate, kind)
    if row is None:
        session.add(MessageTemplate(kind=kind, text=body.text, updated_at=state.clock.now()))
    else:
        row.text, row.updated_at = body.text, state.clock.now()
    return {"kind": kind, "text": body.text, "overridden": True}


@router.delete("/templates/{kind}", status_code=204, dependencies=[AdminOnly])
def reset_template(kind: str, session: WriteSession) -> None:
    session.execute(delete(MessageTemplate).where(MessageTemplate.kind == kind))


# ----------------------------------------------------------------------------------- timers and deadlines
@router.get("/timers", dependencies=[Watchers])
def list_timers(
    session: ReadSession,
    ticket: str | None = None,
    pending: bool = True,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[dict[str, Any]]:
    q = select(Timer).order_by(Timer.due_at, Timer.id).limit(limit)
    if pending:
        q = q.where(Timer.fired_at.is_(None))
    if ticket:
        from minsheng.storage.models import Ticket

        tid = session.scalar(select(Ticket.id).where(Ticket.number == ticket))
        if tid is None:
            raise NotFound(f"ticket {ticket} not found")
        q = q.where(Timer.ticket_id == tid)
    return [
        {
            "key": t.key,
            "kind": t.kind,
            "step": t.step,
            "due_at": t.due_at,
            "target": t.payload.get("target"),
            "fired_at": t.fired_at,
            "outcome": t.outcome,
            "error": t.error,
            "assignment_id": t.assignment_id,
        }
        for t in session.scalars(q)
    ]


@router.get("/tickets/{number}/deadlines")
def ticket_deadlines(number: str, session: ReadSession, user: CurrentUser) -> list[dict[str, Any]]:
    """Every step deadline of a ticket (sign, contact, arrive, feedback, resolve …) per assignment."""
    t = ticket_for(session, user, number)
    rows = session.scalars(
        select(StepDeadline).where(StepDeadline.ticket_id == t.id).order_by(StepDeadline.id)
    )
    return [
        {
            "assignment_id": r.assignment_id,
            "step": r.step,
            "started_at": r.started_at,
            "due_at": r.due_at,
            "unit": r.unit,
            "warn_at": r.warn_at,
            "met_at": r.met_at,
            "policy": r.policy_name,
            "calendar_fallback": r.calendar_fallback,
        }
        for r in rows
    ]


# ------------------------------------------------------------------------------------------------ the inbox
class ReadIn(Checked):
    ids: list[Id] | None = Field(default=None, max_length=1000)


@inbox_router.get("")
def my_notifications(
    session: ReadSession,
    user: CurrentUser,
    unread: bool = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[dict[str, Any]]:
    rows = notifications.inbox(session, user.user_id, user.unit_id, unread_only=unread, limit=limit)
    return [notifications.notification_json(n) for n in rows]


@inbox_router.post("/read")
def mark_read(body: ReadIn, session: WriteSession, user: CurrentUser, state: StateDep) -> dict[str, int]:
    changed = notifications.mark_read(session, user.user_id, user.unit_id, body.ids, state.clock.now())
    return {"marked": changed}
