"""Time-limit policies as stored JSON, and the policies, calendar and zones as the time limits read them.

`policy_from_json` builds (and so validates) a policy from its stored form, `policy_to_json` gives that form.
`PolicyBook` reads the city's active policies (the preset's when admins have entered none) over the category
tree, the working calendar, and the zone of a ticket's area, each cached until its table changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from minsheng.services.timelimits.config import TimeLimitConfig
from minsheng.storage import timelimit_tables as tables
from minsheng.storage.models import Area, Category, Ticket
from minsheng.storage.timelimit_tables import CalendarDay, TimeLimitZoneArea
from minsheng.timelimits.calendar import CalendarEntry, WorkCalendar
from minsheng.timelimits.escalation import EscalationLadder, EscalationStep
from minsheng.timelimits.policy import PolicySet, TimeLimit, TimeLimitPolicy


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


def policy_from_row(row: tables.TimeLimitPolicy) -> TimeLimitPolicy:
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


# ------------------------------------------------------------------------------------------------ reading
class PolicyBook:
    """The policies, calendar and zones of the city; one per application (small caches, no sessions)."""

    def __init__(self, config: TimeLimitConfig) -> None:
        self.config = config
        self._policy_cache: tuple[Any, PolicySet] | None = None
        self._calendar_cache: tuple[Any, WorkCalendar] | None = None

    def policy_set(self, session: Session) -> PolicySet:
        """The city's policies (the preset when admins have entered none) over the category tree."""
        version = (
            # Rows added (max id), deleted or edited (max deleted_at / updated_at) all change the key, so a preset
            # applied in the instant of an earlier edit is still seen.
            session.execute(
                select(
                    func.count(),
                    func.max(tables.TimeLimitPolicy.id),
                    func.max(tables.TimeLimitPolicy.updated_at),
                    func.max(tables.TimeLimitPolicy.deleted_at),
                )
            ).one(),
            session.execute(select(func.count(), func.max(Category.id))).one(),
        )
        if self._policy_cache is not None and self._policy_cache[0] == version:
            return self._policy_cache[1]
        parent = {c.id: c for c in session.scalars(select(Category))}
        parents = {
            c.code: (parent[c.parent_id].code if c.parent_id in parent else None) for c in parent.values()
        }
        rows = list(
            session.scalars(
                select(tables.TimeLimitPolicy).where(
                    tables.TimeLimitPolicy.active.is_(True), tables.TimeLimitPolicy.deleted_at.is_(None)
                )
            )
        )
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
            select(Area.path, TimeLimitZoneArea.zone)
            .join(TimeLimitZoneArea, TimeLimitZoneArea.area_id == Area.id)
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
