"""The admin side of routing: the routing table (CRUD, CSV/XLSX import), named places, and corrections
suggested from the return history."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from minsheng.services import org
from minsheng.services import schemas as s
from minsheng.services.errors import Invalid, NotFound
from minsheng.services.records import fields
from minsheng.services.triage.sql import chunks
from minsheng.storage.models import Area, Category, Ticket, TimelineEvent
from minsheng.storage.triage_tables import Place, RoutingRule
from minsheng.triage.routing import DispatchRecord, ReturnRecord, RouteCorrection, suggest_corrections


class RuleIn(s.Strict):
    """One routing rule as an admin writes it (codes; None means "any")."""

    category_code: str | None = s.Field(default=None, pattern=s.CODE_RE)
    area_code: str | None = s.Field(default=None, pattern=s.CODE_RE)
    lead_unit: s.UnitCode
    assist_units: list[s.UnitCode] = s.Field(default_factory=list, max_length=20)
    priority: int = s.Field(default=0, ge=-1000, le=1000)
    enabled: bool = True
    takes_consultations: bool = False
    note: str | None = s.Field(default=None, max_length=500)


def _check_rule(session: Session, body: RuleIn) -> None:
    if (
        body.category_code
        and session.scalar(select(Category.id).where(Category.code == body.category_code)) is None
    ):
        raise NotFound(f"unknown category '{body.category_code}'", field="category_code")
    if body.area_code and session.scalar(select(Area.id).where(Area.code == body.area_code)) is None:
        raise NotFound(f"unknown area '{body.area_code}'", field="area_code")
    if body.lead_unit in body.assist_units:
        raise Invalid("the lead unit cannot also assist", field="assist_units")
    if len(set(body.assist_units)) != len(body.assist_units):
        raise Invalid("assist units must be distinct", field="assist_units")
    org.dispatchable_units(session, body.lead_unit, body.assist_units)


def rule_json(row: RoutingRule) -> dict[str, Any]:
    return fields(
        row,
        *("id", "category_code", "area_code", "lead_unit", "priority", "enabled", "takes_consultations"),
        *("note", "updated_by"),
        assist_units=list(row.assist_units or []),
        updated_at=row.updated_at.isoformat(),
    )


def list_rules(
    session: Session,
    *,
    category: str | None = None,
    area: str | None = None,
    unit: str | None = None,
    limit: int = 1000,
    offset: int = 0,
) -> list[RoutingRule]:
    q = select(RoutingRule).where(RoutingRule.deleted_at.is_(None)).order_by(RoutingRule.id)
    if category:
        q = q.where(RoutingRule.category_code == category)
    if area:
        q = q.where(RoutingRule.area_code == area)
    if unit:
        q = q.where(RoutingRule.lead_unit == unit)
    return list(session.scalars(q.limit(limit).offset(offset)))


def get_rule(session: Session, rule_id: int) -> RoutingRule:
    row = session.get(RoutingRule, rule_id)
    if row is None or row.deleted_at is not None:
        raise NotFound(f"routing rule {rule_id} not found")
    return row


def create_rule(session: Session, body: RuleIn, by: str, now: datetime) -> RoutingRule:
    _check_rule(session, body)
    row = RoutingRule(**body.model_dump(), updated_by=by, updated_at=now)
    session.add(row)
    session.flush()
    return row


def update_rule(session: Session, rule_id: int, body: RuleIn, by: str, now: datetime) -> RoutingRule:
    row = get_rule(session, rule_id)
    _check_rule(session, body)
    for k, v in body.model_dump().items():
        setattr(row, k, v)
    row.updated_by, row.updated_at = by, now
    session.flush()
    return row


def delete_rule(session: Session, rule_id: int, now: datetime | None = None) -> None:
    """A soft delete: the row is kept with `deleted_at` (the audit log shows it), and no reader sees it."""
    get_rule(session, rule_id).deleted_at = now or datetime.now(UTC)
    session.flush()


_SPLIT = re.compile(r"[;,，；、|\s]+")
_TRUE = {"1", "true", "yes", "y", "是", "启用", "on"}
_FALSE = {"0", "false", "no", "n", "否", "停用", "off"}
# Column names as admins write them, English or Chinese.
_RULE_COLUMNS = {
    "category_code": ("category_code", "category", "分类", "分类编码"),
    "area_code": ("area_code", "area", "区划", "区划编码", "属地"),
    "lead_unit": ("lead_unit", "lead", "主办单位", "主办"),
    "assist_units": ("assist_units", "assists", "协办单位", "协办"),
    "priority": ("priority", "优先级"),
    "enabled": ("enabled", "启用"),
    "note": ("note", "备注"),
}


def import_routing(
    session: Session, path: Path, now: datetime, *, replace: bool = False, by: str = "import"
) -> Any:
    """Import routing rules from CSV or XLSX (columns: category_code, area_code, lead_unit, assist_units,
    priority, enabled, note; Chinese headers 分类/区划/主办单位/协办单位/优先级/启用/备注 also work).

    A row matching an existing rule on (category, area, lead unit) updates it, others are added; with
    ``replace`` the table is emptied first. Bad rows are reported by row number and the others imported
    (the caller commits once). Returns an ``ImportReport`` (kind "routing").
    """
    from minsheng.services.importing import ImportFileError, ImportReport, read_table

    header, rows = read_table(path)
    col = _rule_columns(header)
    if col["lead_unit"] is None:
        raise ImportFileError(
            f"{Path(path).name}: missing required column lead_unit (主办单位); found: {', '.join(header)}"
        )
    report = ImportReport(kind="routing")
    if replace:
        # Replacing the table removes its rows (the audit log keeps each one's values); a single delete is soft.
        for old in session.scalars(select(RoutingRule)):
            session.delete(old)
        session.flush()
    for number, row in rows:
        try:
            body = _rule_of_row(row, col)
            with session.begin_nested():
                _check_rule(session, body)
                report.count(_upsert_rule(session, body, by, now))
        except ValueError as e:  # pydantic's ValidationError and int() both are ValueErrors
            report.errors.append((number, _first_line(e)))
        except (NotFound, Invalid) as e:
            report.errors.append((number, e.message))
    session.flush()
    return report


def _rule_columns(header: list[str]) -> dict[str, str | None]:
    """The header name that holds each rule field (None: absent)."""
    col = {
        key: next((c for c in names if c.lower() in header or c in header), None)
        for key, names in _RULE_COLUMNS.items()
    }
    return {k: (v.lower() if v and v.lower() in header else v) for k, v in col.items()}


def _rule_of_row(row: dict[str, str], col: dict[str, str | None]) -> RuleIn:
    """One row of the table as a rule; raises ValueError or Invalid for a bad cell."""

    def cell(key: str) -> str:
        name = col.get(key)
        return row.get(name, "").strip() if name else ""

    prio_text = cell("priority")
    enabled_text = cell("enabled").lower()
    if enabled_text and enabled_text not in _TRUE | _FALSE:
        raise Invalid(f"enabled '{enabled_text}' is not yes/no")
    return RuleIn(
        category_code=cell("category_code") or None,
        area_code=cell("area_code") or None,
        lead_unit=cell("lead_unit"),
        assist_units=[u for u in _SPLIT.split(cell("assist_units")) if u],
        priority=int(prio_text) if prio_text else 0,
        enabled=enabled_text not in _FALSE,
        note=cell("note") or None,
    )


def _upsert_rule(session: Session, body: RuleIn, by: str, now: datetime) -> str:
    """Add the rule, or update the one with the same category, area and lead unit: created | updated | skipped."""
    existing = session.scalar(
        select(RoutingRule).where(
            _eq(RoutingRule.category_code, body.category_code),
            _eq(RoutingRule.area_code, body.area_code),
            RoutingRule.lead_unit == body.lead_unit,
            RoutingRule.deleted_at.is_(None),
        )
    )
    if existing is None:
        session.add(RoutingRule(**body.model_dump(), updated_by=by, updated_at=now))
        return "created"
    same = all(getattr(existing, k) == v for k, v in body.model_dump().items())
    if not same:
        for k, v in body.model_dump().items():
            setattr(existing, k, v)
        existing.updated_by, existing.updated_at = by, now
    return "skipped" if same else "updated"


def _first_line(e: Exception) -> str:
    errors = getattr(e, "errors", None)
    if callable(errors):
        first = errors()[0]
        loc = ".".join(str(x) for x in first.get("loc", ()))
        return f"{loc}: {first.get('msg')}" if loc else str(first.get("msg"))
    return str(e).splitlines()[0]


def _eq(column: Any, value: Any) -> Any:
    return column.is_(None) if value is None else column == value


# Read-only members, so that frozen dataclasses (the demo city's specs) match.
class RouteLike(Protocol):
    @property
    def category_code(self) -> str: ...
    @property
    def area_code(self) -> str | None: ...
    @property
    def lead_unit_code(self) -> str: ...
    @property
    def assist_unit_codes(self) -> tuple[str, ...]: ...


class PlaceLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def aliases(self) -> tuple[str, ...]: ...
    @property
    def lat(self) -> float: ...
    @property
    def lon(self) -> float: ...


def store_routes(session: Session, routes: Iterable[RouteLike], now: datetime, by: str = "demo") -> int:
    """Write routing rules in bulk (e.g. the demo city's :class:`~minsheng.demo.city.RouteSpec` list)."""
    n = 0
    for r in routes:
        session.add(
            RoutingRule(
                category_code=r.category_code,
                area_code=r.area_code,
                lead_unit=r.lead_unit_code,
                assist_units=list(r.assist_unit_codes),
                priority=0,
                enabled=True,
                updated_by=by,
                updated_at=now,
            )
        )
        n += 1
    session.flush()
    return n


def store_places(session: Session, places: Iterable[tuple[PlaceLike, str]]) -> int:
    """Write named places in bulk: (place, area code) pairs; the demo seeder passes ``(p, p.grid_code)``."""
    area_id = {code: aid for code, aid in session.execute(select(Area.code, Area.id))}
    n = 0
    for p, code in places:
        if code not in area_id:
            raise NotFound(f"place {p.name}: unknown area '{code}'")
        session.add(
            Place(
                name=p.name, area_id=area_id[code], kind=p.kind, aliases=list(p.aliases), lat=p.lat, lon=p.lon
            )
        )
        n += 1
    session.flush()
    return n


class PlaceIn(s.Strict):
    name: str = s.Field(min_length=2, max_length=100)
    area_code: str = s.Field(pattern=s.CODE_RE)
    kind: str = s.Field(default="", max_length=16)
    aliases: list[str] = s.Field(default_factory=list, max_length=20)
    lat: float | None = s.Field(default=None, ge=-90, le=90)
    lon: float | None = s.Field(default=None, ge=-180, le=180)


def create_place(session: Session, body: PlaceIn) -> Place:
    area_id = session.scalar(select(Area.id).where(Area.code == body.area_code))
    if area_id is None:
        raise NotFound(f"unknown area '{body.area_code}'", field="area_code")
    if (body.lat is None) != (body.lon is None):
        raise Invalid("lat and lon must be given together")
    place = Place(
        name=body.name,
        area_id=area_id,
        kind=body.kind,
        aliases=[a for a in body.aliases if a.strip()],
        lat=body.lat,
        lon=body.lon,
    )
    session.add(place)
    session.flush()
    return place


def routing_corrections(
    session: Session, *, since: datetime | None = None, **thresholds: Any
) -> list[dict[str, Any]]:
    """Routes that units keep returning, with the unit that usually signs in the end (from the timelines)."""
    q = (
        select(TimelineEvent.ticket_id, TimelineEvent.action, TimelineEvent.payload, TimelineEvent.at)
        .where(TimelineEvent.action.in_(("dispatch", "redispatch", "return", "sign")))
        .order_by(TimelineEvent.ticket_id, TimelineEvent.seq)
    )
    if since is not None:
        q = q.where(TimelineEvent.at >= since)
    events = list(session.execute(q))
    info = _category_and_area(session, sorted({e.ticket_id for e in events}))
    dispatches, returns = _dispatch_history(events, info)
    return [_correction_json(c) for c in suggest_corrections(returns, dispatches, **thresholds)]


def _category_and_area(session: Session, ticket_ids: list[int]) -> dict[int, tuple[str | None, str | None]]:
    """Each ticket's category and area codes."""
    info: dict[int, tuple[str | None, str | None]] = {}
    for chunk in chunks(ticket_ids, 900):
        rows = session.execute(
            select(Ticket.id, Category.code, Area.code)
            .outerjoin(Category, Category.id == Ticket.category_id)
            .outerjoin(Area, Area.id == Ticket.area_id)
            .where(Ticket.id.in_(chunk))
        )
        info.update({tid: (cat, area) for tid, cat, area in rows})
    return info


def _dispatch_history(
    events: list[Any], info: dict[int, tuple[str | None, str | None]]
) -> tuple[list[DispatchRecord], list[ReturnRecord]]:
    """The dispatches (each unit, with the rule of an automatic one) and the returns, each with the unit that
    signed as lead in the end."""
    dispatches: list[DispatchRecord] = []
    returned: list[tuple[str, str, str]] = []
    final: dict[str, str] = {}
    for e in events:
        tid = str(e.ticket_id)
        payload = e.payload or {}
        cat, area = info.get(e.ticket_id, (None, None))
        if e.action in ("dispatch", "redispatch"):
            rule = None
            expl = payload.get("explanation") if payload.get("auto") else None
            if isinstance(expl, dict):
                rule = (expl.get("route") or {}).get("rule_id")
            for unit in [payload.get("lead_unit"), *payload.get("assist_units", [])]:
                if unit:
                    dispatches.append(
                        DispatchRecord(
                            tid, unit, cat, area, rule if unit == payload.get("lead_unit") else None
                        )
                    )
        elif e.action == "return" and payload.get("unit"):
            returned.append((tid, payload["unit"], str(payload.get("reason") or "")))
        elif e.action == "sign" and payload.get("unit") and payload.get("assignment_role", "lead") == "lead":
            final[tid] = payload["unit"]
    returns = [ReturnRecord(tid, unit, final.get(tid), reason) for tid, unit, reason in returned]
    return dispatches, returns


def _correction_json(c: RouteCorrection) -> dict[str, Any]:
    return fields(c, "rule_id", "category_code", "area_code", "dispatches", "returns") | {
        "unit": c.unit_id,
        "return_rate": round(c.return_rate, 4),
        "suggested_unit": c.suggested_unit_id,
        "suggested_share": round(c.suggested_share, 4),
        "final_units": [list(x) for x in c.final_units],
        "top_reasons": [list(x) for x in c.top_reasons],
        "explanation": c.explanation,
    }
