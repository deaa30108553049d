"""`OrgSnapshot`: the areas, categories, units, gazetteer and routing table triage reads, built from the database."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from minsheng.domain.states import UnitKind
from minsheng.storage import triage_tables as tables
from minsheng.storage.models import Area, Category, Unit
from minsheng.storage.triage_tables import Place, TriageSetting
from minsheng.triage.jurisdiction import AreaRecord, Jurisdiction, PlaceRecord
from minsheng.triage.routing import RoutingRule, RoutingTable

log = logging.getLogger("minsheng.triage")


@dataclass(frozen=True)
class _Node:
    code: str
    name: str
    level: str
    parent: str | None


@dataclass(frozen=True)
class _UnitInfo:
    code: str
    name: str
    kind: str
    active: bool


@dataclass
class OrgSnapshot:
    """Everything triage reads from the organisation, built once per change and swapped in whole."""

    areas: dict[str, _Node]
    categories: dict[str, _Node]
    units: dict[str, _UnitInfo]
    jurisdiction: Jurisdiction | None
    table: RoutingTable
    area_specific: set[str | None]  # categories (None: any) that have at least one area-specific rule
    fingerprint: tuple[Any, ...]
    skipped_rules: list[str] = field(default_factory=list)

    def area_chain(self, code: str) -> list[str]:
        out: list[str] = []
        cur: str | None = code
        while cur is not None and cur in self.areas and cur not in out:
            out.append(cur)
            cur = self.areas[cur].parent
        return out[::-1]

    def category_chain(self, code: str) -> list[str]:
        out: list[str] = []
        cur: str | None = code
        while cur is not None and cur in self.categories and cur not in out:
            out.append(cur)
            cur = self.categories[cur].parent
        return out[::-1]

    def area_at(self, code: str, level: str) -> str:
        """The ancestor of ``code`` at ``level`` (the area itself when it lies above that level)."""
        for c in self.area_chain(code):
            if self.areas[c].level == level:
                return c
        return code

    def area_matters(self, category_code: str | None) -> bool:
        cats: list[str | None] = [*self.category_chain(category_code), None] if category_code else [None]
        return any(c in self.area_specific for c in cats)

    def category_name(self, code: str | None) -> str | None:
        node = self.categories.get(code) if code else None
        return node.name if node else None

    def unit_name(self, code: str | None) -> str | None:
        unit = self.units.get(code) if code else None
        return unit.name if unit else None


def fingerprint(session: Session) -> tuple[Any, ...]:
    """Cheap aggregates that change whenever anything triage depends on changes."""
    return (
        session.execute(select(func.count(), func.max(Area.id)).select_from(Area)).one(),
        session.execute(select(func.count(), func.max(Category.id)).select_from(Category)).one(),
        session.execute(select(func.count(), func.max(Unit.id)).select_from(Unit)).one(),
        session.scalar(select(func.count()).select_from(Unit).where(Unit.active.is_(True))),
        session.execute(select(func.count(), func.max(Place.id)).select_from(Place)).one(),
        session.execute(
            select(func.count(), func.max(tables.RoutingRule.updated_at))
            .select_from(tables.RoutingRule)
            .where(tables.RoutingRule.deleted_at.is_(None))
        ).one(),
        session.execute(
            select(func.count(), func.max(TriageSetting.updated_at)).select_from(TriageSetting)
        ).one(),
    )


def load_org(session: Session) -> OrgSnapshot:
    """Build the gazetteer, polygon index and routing table from the database."""
    area_rows = list(
        session.execute(
            select(Area.id, Area.code, Area.name, Area.level, Area.parent_id, Area.aliases, Area.polygon)
        )
    )
    code_of = {r.id: r.code for r in area_rows}
    areas = {r.code: _Node(r.code, r.name, r.level, code_of.get(r.parent_id)) for r in area_rows}
    cat_rows = list(
        session.execute(select(Category.id, Category.code, Category.name, Category.level, Category.parent_id))
    )
    cat_code = {r.id: r.code for r in cat_rows}
    categories = {r.code: _Node(r.code, r.name, str(r.level), cat_code.get(r.parent_id)) for r in cat_rows}
    units = {
        u.code: _UnitInfo(u.code, u.name, u.kind, u.active)
        for u in session.execute(select(Unit.code, Unit.name, Unit.kind, Unit.active))
    }
    jurisdiction = _jurisdiction(session, area_rows, code_of) if area_rows else None
    rules, skipped, area_specific = _routing_rules(session, units)
    table = RoutingTable(
        rules,
        {c: n.parent for c, n in categories.items()},
        {c: n.parent for c, n in areas.items()},
    )
    return OrgSnapshot(
        areas, categories, units, jurisdiction, table, area_specific, fingerprint(session), skipped
    )


def _jurisdiction(session: Session, area_rows: list[Any], code_of: dict[int, str]) -> Jurisdiction | None:
    """The gazetteer and polygon index of the areas and named places; None when the area data is inconsistent."""
    records = [
        AreaRecord(
            code=r.code,
            name=r.name,
            level=r.level,
            parent_code=code_of.get(r.parent_id),
            aliases=tuple(str(a) for a in (r.aliases or ()) if a),
            polygon=r.polygon or None,
        )
        for r in area_rows
    ]
    places = [
        PlaceRecord(str(p.id), p.name, code_of[p.area_id], p.kind or "", tuple(p.aliases or ()))
        for p in session.scalars(select(Place))
        if p.area_id in code_of
    ]
    try:
        return Jurisdiction(records, places)
    except ValueError as e:
        log.warning("jurisdiction disabled: the area data is inconsistent: %s", e)
        return None


def _routing_rules(
    session: Session, units: dict[str, _UnitInfo]
) -> tuple[list[RoutingRule], list[str], set[str | None]]:
    """The enabled rules, the ids of those skipped (their lead unit cannot take a dispatch), and the categories
    (None: any) that have at least one area-specific rule."""
    rules: list[RoutingRule] = []
    skipped: list[str] = []
    area_specific: set[str | None] = set()
    live = select(tables.RoutingRule).where(tables.RoutingRule.deleted_at.is_(None))
    for row in session.scalars(live.order_by(tables.RoutingRule.id)):
        lead = units.get(row.lead_unit)
        if not row.enabled:
            continue
        if lead is None or not lead.active or lead.kind == UnitKind.EXTERNAL.value:
            # A unit that was deactivated after the rule was written: the rule stops applying rather than
            # sending tickets to a unit nobody reads.
            skipped.append(str(row.id))
            log.warning(
                "routing rule %s skipped: lead unit %s is unknown, inactive or external",
                row.id,
                row.lead_unit,
            )
            continue
        assists = tuple(u for u in row.assist_units or () if u in units and units[u].active)
        rules.append(
            RoutingRule(
                str(row.id),
                row.category_code,
                row.area_code,
                row.lead_unit,
                assists,
                row.priority,
                True,
                bool(row.takes_consultations),
            )
        )
        if row.area_code is not None:
            area_specific.add(row.category_code)
    return rules, skipped, area_specific
