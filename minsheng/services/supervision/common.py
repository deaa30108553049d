"""What the supervision steps share: who may take each (`RULES`), the ticket's holding unit, and notices to a
unit and its leader through the in-app inbox and the outbox."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from minsheng.domain.roles import Role
from minsheng.notify.channels import EMAIL, SMS
from minsheng.services.auth import Principal
from minsheng.services.errors import Invalid, PermissionDenied
from minsheng.services.notifications import add_inbox, enqueue
from minsheng.services.queries import current_unit_ids
from minsheng.services.timelimits.messages import recipients
from minsheng.storage.models import Ticket, Unit, User

#: Who may take each supervision step (a handler only for its own unit: checked where the step is taken).
RULES: dict[str, frozenset[Role]] = {
    "order": frozenset({Role.SUPERVISOR, Role.LEADER}),
    "answer": frozenset({Role.HANDLER}),
    "remind": frozenset({Role.SUPERVISOR, Role.LEADER}),
    "watch": frozenset({Role.LEADER}),
    "instruct": frozenset({Role.LEADER}),
    "ack": frozenset({Role.HANDLER}),
    "check": frozenset({Role.FOLLOWUP, Role.SUPERVISOR}),
    "approve": frozenset({Role.FOLLOWUP, Role.SUPERVISOR, Role.LEADER}),
    "read": frozenset({Role.SUPERVISOR, Role.LEADER, Role.FOLLOWUP, Role.ADMIN}),
}

#: 督办 levels, in rising order of pressure.
LEVELS: dict[str, str] = {"normal": "一般", "key": "重点", "listed": "挂牌"}


def allow(who: Principal, step: str) -> None:
    if who.role not in RULES[step]:
        raise PermissionDenied(f"role '{who.role.value}' may not {step}")


def may(who: Principal, step: str) -> bool:
    return who.role in RULES[step]


def clean(text: str | None, name: str, limit: int = 2000) -> str:
    """A required free text, trimmed; refused when empty or too long."""
    value = (text or "").strip()
    if not value:
        raise Invalid(f"{name} is required")
    if len(value) > limit:
        raise Invalid(f"{name} is longer than {limit} characters")
    return value


def holding_unit(session: Session, t: Ticket) -> Unit | None:
    """The unit that holds the ticket now: the lead of a current assignment, else any current one, else the
    ticket's lead unit (a closed ticket)."""
    current = current_unit_ids(t)
    lead = [a.unit_id for a in t.assignments if a.role == "lead" and a.unit_id in current]
    unit_id = (lead or sorted(current) or [t.lead_unit_id or 0])[0]
    return session.get(Unit, unit_id) if unit_id else None


def tell(
    session: Session,
    *,
    kind: str,
    title: str,
    text: str,
    now: datetime,
    source: str,
    ticket_id: int | None,
    unit: Unit | None = None,
    leader: bool = False,
    user_ids: Iterable[int] = (),
    channels: frozenset[str] = frozenset(),
) -> None:
    """Notify the unit's shared inbox, its leader (the duty roster's, else the org's) and named users; SMS and
    e-mail go through the outbox where those channels are configured and the person has an address."""
    common: dict[str, Any] = {"kind": kind, "title": title, "text": text, "now": now, "ticket_id": ticket_id}
    if unit is not None:
        add_inbox(session, unit_id=unit.id, source=source, **common)
    people = recipients(session, unit, "unit_leader", now) if unit is not None and leader else []
    done: set[int] = set()
    for person in people:
        if person.user_id is not None and person.user_id not in done:
            done.add(person.user_id)
            add_inbox(session, user_id=person.user_id, source=source, **common)
        if SMS in channels and person.phone:
            enqueue(session, channel=SMS, recipient=person.phone, source=source, **common)
        if EMAIL in channels and person.email:
            enqueue(session, channel=EMAIL, recipient=person.email, source=source, **common)
    for uid in user_ids:
        if uid not in done:
            done.add(uid)
            add_inbox(session, user_id=uid, source=source, **common)
            phone = session.scalar(select(User.phone).where(User.id == uid))
            if SMS in channels and phone:
                enqueue(session, channel=SMS, recipient=phone, source=source, **common)
