"""Who the time limits tell and what: recipients from the duty roster or the organisation, message templates
(the admin's, or the built-in ones), and the channels they go out on (in-app inbox, SMS, e-mail, robots)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from jinja2 import Template
from jinja2 import TemplateError as JinjaError
from sqlalchemy import select
from sqlalchemy.orm import Session

from minsheng.domain.roles import Role
from minsheng.domain.states import Urgency
from minsheng.notify import templates
from minsheng.notify.channels import DINGTALK, EMAIL, SMS, WECOM
from minsheng.notify.templates import TEMPLATES, RenderedMessage, TemplateError, validate_template
from minsheng.services.notifications import add_inbox, enqueue
from minsheng.services.timelimits.config import TimeLimitConfig
from minsheng.storage.models import Assignment, Category, Ticket, Unit, User
from minsheng.storage.timelimit_tables import DutyShift, MessageTemplate

log = logging.getLogger("minsheng.timelimits")

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


def urgency_label(urgency: str) -> str:
    try:
        return Urgency(urgency).label
    except ValueError:
        return urgency


@dataclass(frozen=True)
class Recipient:
    user_id: int | None
    name: str
    phone: str | None = None
    email: str | None = None


@dataclass
class Pass:
    """Lookups shared by the messages of one batch (recipients, names, template overrides)."""

    now: datetime
    overrides: dict[str, str]
    recipients: dict[tuple[int, str], list[Recipient]] = field(default_factory=dict)
    categories: dict[int, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def recipients(session: Session, unit: Unit, target: str, now: datetime) -> list[Recipient]:
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
            Recipient(u.id, u.display_name, u.phone) for u in session.scalars(q.where(User.active.is_(True)))
        ]

    if target == "duty_commander":
        q = select(DutyShift).where(on_duty, DutyShift.commander.is_(True)).order_by(DutyShift.starts_at)
        return from_shifts(session.scalars(q))
    if target == "unit":
        q = select(DutyShift).where(on_duty, DutyShift.unit_id == unit.id, DutyShift.duty_role == "duty")
        found = from_shifts(session.scalars(q))
        return found or users(select(User).where(User.unit_id == unit.id, User.role == Role.HANDLER.value))
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


class Messenger:
    """Renders and sends the time limits' messages on the configured channels."""

    def __init__(self, config: TimeLimitConfig) -> None:
        self.config = config

    @staticmethod
    def overrides(session: Session) -> dict[str, str]:
        return {m.kind: m.text for m in session.scalars(select(MessageTemplate))}

    @staticmethod
    def render(
        kind: str, context: Mapping[str, Any], overrides: Mapping[str, str], errors: list[str]
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

    def citizen_sms(
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
        msg = self.render(kind, ctx, self.overrides(session), [])
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

    @staticmethod
    def category_name(session: Session, t: Ticket, cache: dict[int, str] | None = None) -> str:
        if t.category_id is None:
            return "未分类"
        if cache is not None and t.category_id in cache:
            return cache[t.category_id]
        name = session.scalar(select(Category.name).where(Category.id == t.category_id)) or "未分类"
        if cache is not None:
            cache[t.category_id] = name
        return name

    def notify_new_assignment(
        self, session: Session, t: Ticket, a: Assignment, sign_due: datetime, now: datetime
    ) -> None:
        ctx = {
            "ticket_number": t.number,
            "unit_name": a.unit.name,
            "category_name": self.category_name(session, t),
            "urgency_label": urgency_label(t.urgency),
            "sign_due_at": sign_due,
            "summary": t.title,
        }
        p = Pass(now, self.overrides(session))
        self.notify(session, p, t, a.unit, "unit", "assignment_new", ctx, f"assignment:{a.id}:new")

    def notify(
        self,
        session: Session,
        p: Pass,
        t: Ticket,
        unit: Unit,
        target: str,
        kind: str,
        context: Mapping[str, Any],
        source: str,
    ) -> None:
        key = (unit.id, target)
        if key not in p.recipients:
            p.recipients[key] = recipients(session, unit, target, p.now)
        people = p.recipients[key]
        msg = self.render(kind, context, p.overrides, p.errors)
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
