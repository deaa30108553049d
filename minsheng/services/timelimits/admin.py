"""What admins edit for the time limits: policies, policy zones, the local calendar, duty rosters and message
templates. Each write is checked with the rules of `minsheng.timelimits` (or the template's placeholders) and refused
with `Invalid` (the reason) or `NotFound` (what is missing); the caller's transaction commits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from minsheng.notify.templates import TEMPLATES, TemplateError, validate_template
from minsheng.services.errors import Invalid, NotFound
from minsheng.services.timelimits.policies import policy_from_json, policy_to_json
from minsheng.storage.models import Area, Unit, User
from minsheng.storage.timelimit_tables import (
    CalendarDay,
    DutyShift,
    MessageTemplate,
    TimeLimitPolicy,
    TimeLimitZoneArea,
)
from minsheng.timelimits.calendar import CalendarEntry, CalendarError, WorkCalendar, entries_for_range
from minsheng.timelimits.escalation import EscalationError
from minsheng.timelimits.policy import PolicyError, PolicySet

# The largest calendar range one request may add.
MAX_CALENDAR_DAYS = 400
# A duty shift longer than this is a mistake (tier 1: 24 h; tier 2/3: 8 or 12 h).
MAX_SHIFT_HOURS = 48


# ------------------------------------------------------------------------------------------------ policies
@dataclass(frozen=True)
class PolicySpec:
    """A policy as an admin writes it (limits and ladders in their stored JSON form)."""

    limits: Mapping[str, Mapping[str, Any]]
    name: str = ""
    category_code: str | None = None
    urgency: str | None = None
    zone: str | None = None
    warn_at: Sequence[float] | None = None
    escalation: Mapping[str, Sequence[Mapping[str, Any]]] = field(default_factory=dict)
    active: bool = True


def check_policy(session: Session, spec: PolicySpec, replacing: int | None) -> dict[str, Any]:
    """Validate through minsheng.timelimits (limits, shares, ladders, one active policy per key); the stored form."""
    try:
        policy = policy_from_json(
            spec.category_code, spec.urgency, spec.zone, spec.limits, spec.warn_at, spec.escalation, spec.name
        )
        others = [
            policy_from_json(r.category_code, r.urgency, r.zone, r.limits, r.warn_at, r.escalation, r.name)
            for r in session.scalars(
                select(TimeLimitPolicy).where(
                    TimeLimitPolicy.active.is_(True), TimeLimitPolicy.deleted_at.is_(None)
                )
            )
            if r.id != replacing
        ]
        if spec.active:
            PolicySet([*others, policy])
    except (PolicyError, EscalationError, TypeError) as err:
        raise Invalid(f"policy refused: {err}") from None
    return policy_to_json(policy)


def policies(session: Session) -> list[TimeLimitPolicy]:
    return list(
        session.scalars(
            select(TimeLimitPolicy).where(TimeLimitPolicy.deleted_at.is_(None)).order_by(TimeLimitPolicy.id)
        )
    )


def _policy(session: Session, policy_id: int) -> TimeLimitPolicy:
    """A policy that was not deleted, or NotFound."""
    row = session.get(TimeLimitPolicy, policy_id)
    if row is None or row.deleted_at is not None:
        raise NotFound(f"policy {policy_id} not found")
    return row


def create_policy(session: Session, spec: PolicySpec, now: datetime) -> TimeLimitPolicy:
    data = check_policy(session, spec, None)
    row = TimeLimitPolicy(
        **{k: data[k] for k in ("name", "category_code", "urgency", "zone", "limits", "warn_at")}
    )
    row.escalation = data["escalation"]
    row.active = spec.active
    row.updated_at = now
    session.add(row)
    session.flush()
    return row


def update_policy(session: Session, policy_id: int, spec: PolicySpec, now: datetime) -> TimeLimitPolicy:
    row = _policy(session, policy_id)
    data = check_policy(session, spec, policy_id)
    for k in ("name", "category_code", "urgency", "zone", "limits", "warn_at", "escalation"):
        setattr(row, k, data[k])
    row.active = spec.active
    row.updated_at = now
    return row


def delete_policy(session: Session, policy_id: int, now: datetime | None = None) -> None:
    """A soft delete: the row is kept with `deleted_at` (the audit log shows it), and no reader sees it."""
    row = _policy(session, policy_id)
    row.deleted_at = now or datetime.now(UTC)
    row.active = False
    session.flush()


# --------------------------------------------------------------------------------------------------- zones
def zones(session: Session) -> list[tuple[str, str]]:
    """(zone, area code) of every area mapped to a policy zone."""
    rows = session.execute(
        select(TimeLimitZoneArea.zone, Area.code).join(Area, Area.id == TimeLimitZoneArea.area_id)
    )
    return [(z, c) for z, c in rows]


def add_zone(session: Session, zone: str, area_code: str) -> None:
    area_id = session.scalar(select(Area.id).where(Area.code == area_code))
    if area_id is None:
        raise NotFound(f"area {area_code} not found")
    session.add(TimeLimitZoneArea(zone=zone, area_id=area_id))


# ------------------------------------------------------------------------------------------------ calendar
def calendar_days(session: Session, year: int | None = None) -> list[CalendarDay]:
    q = select(CalendarDay).order_by(CalendarDay.day)
    if year:
        q = q.where(CalendarDay.day >= date(year, 1, 1), CalendarDay.day <= date(year, 12, 31))
    return list(session.scalars(q))


def add_calendar_days(
    session: Session, first: date, last: date, kind: str, name: str, now: datetime
) -> list[CalendarEntry]:
    """Add one day or a range; refused when it overlaps or contradicts entries already kept."""
    try:
        new = entries_for_range(first, last, kind, name)  # type: ignore[arg-type]
        if len(new) > MAX_CALENDAR_DAYS:
            raise CalendarError(f"a calendar range may cover at most {MAX_CALENDAR_DAYS} days")
        kept = [CalendarEntry(d.day, d.kind, d.name) for d in session.scalars(select(CalendarDay))]  # type: ignore[arg-type]
        WorkCalendar([*kept, *new])
    except CalendarError as err:
        raise Invalid(str(err)) from None
    for e in new:
        session.add(CalendarDay(day=e.date, kind=e.kind, name=e.name, created_at=now))
    return new


def delete_calendar_day(session: Session, day: date) -> None:
    if session.execute(delete(CalendarDay).where(CalendarDay.day == day)).rowcount == 0:  # type: ignore[attr-defined]
        raise NotFound(f"no calendar entry on {day}")


# ------------------------------------------------------------------------------------------------- rosters
@dataclass(frozen=True)
class ShiftSpec:
    """A duty shift as an admin writes it: a user, or a person with a phone number."""

    starts_at: datetime
    ends_at: datetime
    unit_code: str | None = None
    username: str | None = None
    person_name: str = ""
    phone: str | None = None
    email: str | None = None
    duty_role: str = "duty"
    tier: int = 3
    commander: bool = False


def unit_codes(session: Session) -> dict[int, str]:
    return {i: c for i, c in session.execute(select(Unit.id, Unit.code))}


def unit_id(session: Session, code: str) -> int:
    uid = session.scalar(select(Unit.id).where(Unit.code == code))
    if uid is None:
        raise NotFound(f"unit {code} not found")
    return int(uid)


def shifts(
    session: Session, unit: str | None, start: datetime | None, end: datetime | None, limit: int = 2000
) -> list[DutyShift]:
    """The shifts of a unit (all units when None) that overlap [start, end), in order of start."""
    q = select(DutyShift).order_by(DutyShift.starts_at).limit(limit)
    if unit:
        q = q.where(DutyShift.unit_id == unit_id(session, unit))
    if start:
        q = q.where(DutyShift.ends_at > start)
    if end:
        q = q.where(DutyShift.starts_at < end)
    return list(session.scalars(q))


def add_shift(session: Session, spec: ShiftSpec) -> DutyShift:
    if spec.ends_at <= spec.starts_at:
        raise Invalid("a duty shift must end after it starts")
    if (spec.ends_at - spec.starts_at).total_seconds() > MAX_SHIFT_HOURS * 3600:
        raise Invalid("a duty shift lasts at most 48 hours (tier 1: 24 h; tier 2/3: 8 or 12 h)")
    user = None
    if spec.username:
        user = session.scalar(select(User).where(User.username == spec.username))
        if user is None:
            raise NotFound(f"user {spec.username} not found")
    if user is None and not (spec.person_name and spec.phone):
        raise Invalid("a duty shift names a user, or a person with a phone number")
    shift = DutyShift(
        unit_id=unit_id(session, spec.unit_code) if spec.unit_code else None,
        user_id=user.id if user else None,
        person_name=spec.person_name or (user.display_name if user else ""),
        phone=spec.phone,
        email=spec.email,
        duty_role=spec.duty_role,
        tier=spec.tier,
        commander=spec.commander,
        starts_at=spec.starts_at,
        ends_at=spec.ends_at,
    )
    session.add(shift)
    session.flush()
    return shift


def delete_shift(session: Session, shift_id: int) -> None:
    if session.execute(delete(DutyShift).where(DutyShift.id == shift_id)).rowcount == 0:  # type: ignore[attr-defined]
        raise NotFound(f"duty shift {shift_id} not found")


# ----------------------------------------------------------------------------------------------- templates
@dataclass(frozen=True)
class TemplateView:
    kind: str
    title: str
    default: str
    text: str
    overridden: bool
    placeholders: list[str]
    description: str


def templates(session: Session) -> list[TemplateView]:
    """Every message template: the built-in text and the admin's, where one is kept."""
    overrides = {m.kind: m for m in session.scalars(select(MessageTemplate))}
    return [
        TemplateView(
            spec.kind,
            spec.title,
            spec.body,
            overrides[spec.kind].text if spec.kind in overrides else spec.body,
            spec.kind in overrides,
            sorted(spec.placeholders),
            spec.description,
        )
        for spec in TEMPLATES.values()
    ]


def put_template(session: Session, kind: str, text: str, now: datetime) -> None:
    """Keep the admin's text for ``kind``; refused unless it uses only the kind's placeholders."""
    spec = TEMPLATES.get(kind)
    if spec is None:
        raise NotFound(f"no template kind {kind!r}", known=sorted(TEMPLATES))
    try:
        validate_template(text, spec.placeholders, kind)
    except TemplateError as err:
        raise Invalid(str(err), placeholders=sorted(spec.placeholders)) from None
    row = session.get(MessageTemplate, kind)
    if row is None:
        session.add(MessageTemplate(kind=kind, text=text, updated_at=now))
    else:
        row.text, row.updated_at = text, now


def reset_template(session: Session, kind: str) -> None:
    """Back to the built-in text."""
    session.execute(delete(MessageTemplate).where(MessageTemplate.kind == kind))
