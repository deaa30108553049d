"""The clock's API: time-limit policies, local calendar, duty rosters, message templates, timers and deadlines
(admins write, supervisors read), and every user's in-app notification inbox."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import Field, model_validator

from minsheng.api.deps import CurrentUser, SmallIdPath, StateDep, require_roles
from minsheng.domain.roles import Role
from minsheng.http.uow import ReadSession, UnitOfWorkRoute, WriteSession
from minsheng.services import notifications
from minsheng.services.queries import ticket_for
from minsheng.services.records import fields
from minsheng.services.schemas import CODE_RE, Checked, Id, Instant
from minsheng.services.timelimits import admin, views

if TYPE_CHECKING:
    from minsheng.storage.timelimit_tables import DutyShift, TimeLimitPolicy

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/api/v1/clock", tags=["clock"])
inbox_router = APIRouter(route_class=UnitOfWorkRoute, prefix="/api/v1/notifications", tags=["notifications"])
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


def _policy_json(row: TimeLimitPolicy) -> dict[str, Any]:
    return fields(
        row,
        "id",
        "name",
        "category_code",
        "urgency",
        "zone",
        "limits",
        "warn_at",
        "escalation",
        "active",
        "updated_at",
    )


def _policy_spec(body: PolicyIn) -> admin.PolicySpec:
    return admin.PolicySpec(**body.model_dump())


@router.get("/policies", dependencies=[Watchers])
def list_policies(session: ReadSession) -> list[dict[str, Any]]:
    return [_policy_json(r) for r in admin.policies(session)]


@router.post("/policies", status_code=201, dependencies=[AdminOnly])
def create_policy(body: PolicyIn, session: WriteSession, state: StateDep) -> dict[str, Any]:
    return _policy_json(admin.create_policy(session, _policy_spec(body), state.clock.now()))


@router.put("/policies/{policy_id}", dependencies=[AdminOnly])
def update_policy(
    policy_id: SmallIdPath, body: PolicyIn, session: WriteSession, state: StateDep
) -> dict[str, Any]:
    return _policy_json(admin.update_policy(session, policy_id, _policy_spec(body), state.clock.now()))


@router.delete("/policies/{policy_id}", status_code=204, dependencies=[AdminOnly])
def delete_policy(policy_id: SmallIdPath, session: WriteSession, state: StateDep) -> None:
    admin.delete_policy(session, policy_id, state.clock.now())


class ZoneIn(Checked):
    zone: str = Field(min_length=1, max_length=32)
    area_code: str = Field(pattern=CODE_RE)


@router.get("/zones", dependencies=[Watchers])
def list_zones(session: ReadSession) -> list[dict[str, Any]]:
    return [{"zone": z, "area_code": c} for z, c in admin.zones(session)]


@router.post("/zones", status_code=201, dependencies=[AdminOnly])
def add_zone(body: ZoneIn, session: WriteSession) -> dict[str, Any]:
    admin.add_zone(session, body.zone, body.area_code)
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
    return [
        {"id": d.id, "date": d.day, "kind": d.kind, "name": d.name}
        for d in admin.calendar_days(session, year)
    ]


@router.post("/calendar", status_code=201, dependencies=[AdminOnly])
def add_calendar(body: CalendarIn, session: WriteSession, state: StateDep) -> dict[str, Any]:
    """Add one day or a range; refused (422) when it overlaps or contradicts entries already kept."""
    last = body.last or body.first
    new = admin.add_calendar_days(session, body.first, last, body.kind, body.name, state.clock.now())
    return {"added": len(new), "first": body.first, "last": last, "kind": body.kind}


@router.delete("/calendar/{day}", status_code=204, dependencies=[AdminOnly])
def delete_calendar(day: date, session: WriteSession) -> None:
    admin.delete_calendar_day(session, day)


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


@router.get("/rosters", dependencies=[Watchers])
def list_shifts(
    session: ReadSession,
    unit: Annotated[str | None, Query(pattern=CODE_RE)] = None,
    start: Instant | None = None,
    end: Instant | None = None,
) -> list[dict[str, Any]]:
    shifts = admin.shifts(session, unit, start, end)
    units = admin.unit_codes(session)
    return [_shift_json(s, units) for s in shifts]


@router.post("/rosters", status_code=201, dependencies=[AdminOnly])
def add_shift(body: ShiftIn, session: WriteSession) -> dict[str, Any]:
    shift = admin.add_shift(session, admin.ShiftSpec(**body.model_dump()))
    return _shift_json(shift, admin.unit_codes(session))


@router.delete("/rosters/{shift_id}", status_code=204, dependencies=[AdminOnly])
def delete_shift(shift_id: SmallIdPath, session: WriteSession) -> None:
    admin.delete_shift(session, shift_id)


@router.get("/on-duty", dependencies=[Watchers])
def who_is_on_duty(
    session: ReadSession,
    state: StateDep,
    unit: Annotated[str | None, Query(pattern=CODE_RE)] = None,
    at: Instant | None = None,
) -> dict[str, Any]:
    """Who is on duty for a unit (or city-wide) now or at ``at``, and the commander of the day."""
    when = at or state.clock.now()
    duty = views.duty_at(session, unit, when)
    return {
        "at": when,
        "unit": unit,
        "on_duty": [_shift_json(s, duty.unit_codes) for s in duty.on_duty],
        "commander": [_shift_json(s, duty.unit_codes) for s in duty.commander],
    }


# ----------------------------------------------------------------------------------------------- templates
class TemplateIn(Checked):
    text: str = Field(min_length=1, max_length=2000)


@router.get("/templates", dependencies=[Watchers])
def list_templates(session: ReadSession) -> list[dict[str, Any]]:
    return [asdict(t) for t in admin.templates(session)]


@router.put("/templates/{kind}", dependencies=[AdminOnly])
def put_template(kind: str, body: TemplateIn, session: WriteSession, state: StateDep) -> dict[str, Any]:
    admin.put_template(session, kind, body.text, state.clock.now())
    return {"kind": kind, "text": body.text, "overridden": True}


@router.delete("/templates/{kind}", status_code=204, dependencies=[AdminOnly])
def reset_template(kind: str, session: WriteSession) -> None:
    admin.reset_template(session, kind)


# ----------------------------------------------------------------------------------- timers and deadlines
@router.get("/timers", dependencies=[Watchers])
def list_timers(
    session: ReadSession,
    ticket: str | None = None,
    pending: bool = True,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[dict[str, Any]]:
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
        for t in views.timers(session, ticket, pending, limit)
    ]


@router.get("/tickets/{number}/deadlines")
def ticket_deadlines(number: str, session: ReadSession, user: CurrentUser) -> list[dict[str, Any]]:
    """Every step deadline of a ticket (sign, contact, arrive, feedback, resolve …) per assignment."""
    t = ticket_for(session, user, number)
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
        for r in views.ticket_deadlines(session, t.id)
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
