"""What the statistics pages read besides the measures themselves (`services.measures`): the scope's place in
the area tree (breadcrumbs, the children to drill into, their map), the units to pick from, and the lists of
tickets behind a figure, a unit's overdue and returned tickets, and the public replies of closed tickets.

Lists never show what a viewer may not see (`queries.visible_to`; a handling unit also sees the tickets it handled
before, without confidential ones, as `queries.past_viewer` allows), and a confidential ticket's title is
always 保密件 here: these lists are exported and printed. Personal data in free text (phone and ID numbers, the
citizen's name and address) is masked wherever a list leaves the centre (`mask_text`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from minsheng.domain.masking import CONFIDENTIAL_TITLE, mask_address, mask_name
from minsheng.domain.roles import Role
from minsheng.domain.states import (
    ACTIVE_ASSIGNMENT_STATES,
    AreaLevel,
    AssignmentState,
    Channel,
    Rating,
    TicketState,
    UnitKind,
)
from minsheng.measures.catalogue import BY_CODE
from minsheng.measures.periods import Period
from minsheng.services import queries
from minsheng.services.auth import Principal
from minsheng.services.errors import Invalid, NotFound
from minsheng.services.exports import Cell, Column, ExportTable, Format
from minsheng.services.measures import MeasureRow, MeasureTable, RankRow, Scope, measure_table, ranking
from minsheng.storage.models import Area, Assignment, Category, Ticket, TimelineEvent, Unit

LIST_LIMIT = 50
# The events whose text is the reply a citizen got: the lead unit's request to close, a desk answer.
REPLY_ACTIONS = ("request_close", "answer_directly")
REPLY_KEYS = ("summary", "answer")
_MOBILE = re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)")
_LANDLINE = re.compile(r"(?<!\d)(0\d{2,3})[-－ ]?\d{7,8}(?!\d)")
_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])(\d{4})\d{10}(\d{3}[\dXx])(?![0-9A-Za-z])")
_ACTIVE = sorted(s.value for s in ACTIVE_ASSIGNMENT_STATES)
_DRILL_LEVELS = [AreaLevel.CITY, AreaLevel.DISTRICT, AreaLevel.STREET, AreaLevel.COMMUNITY]


# ------------------------------------------------------------------------------------------------- masking
def mask_text(text: str | None, *, name: str | None = None, address: str | None = None) -> str:
    """Free text as it may be shown outside the centre: mobile, landline and ID numbers masked, and the
    citizen's own name and address where they appear in it."""
    if not text:
        return ""
    out = _ID_NUMBER.sub(lambda m: m[1] + "*" * 10 + m[2], text)
    out = _MOBILE.sub(lambda m: m[1] + "****" + m[2], out)
    out = _LANDLINE.sub(lambda m: m[1] + "-********", out)
    if name and len(name) >= 2:
        out = out.replace(name, mask_name(name) or "")
    if address and len(address) >= 4:
        out = out.replace(address, mask_address(address) or "")
    return out


def shown_title(t: Ticket) -> str:
    return CONFIDENTIAL_TITLE if t.confidential else t.title


# --------------------------------------------------------------------------------------------------- scope
@dataclass
class ScopeView:
    """Where the page stands: the area (or the whole city), or one unit; and where one can go from there."""

    area_code: str | None
    unit_code: str | None
    name: str
    level: str | None
    crumbs: list[tuple[str | None, str]] = field(default_factory=list)
    children: list[dict[str, Any]] = field(default_factory=list)
    child_level: str | None = None


def city_name(session: Session) -> str:
    top = session.scalar(select(Area.name).where(Area.parent_id.is_(None)).order_by(Area.code).limit(1))
    return top or "全市"


def scope_view(session: Session, area_code: str | None, unit_code: str | None) -> ScopeView:
    """The scope of the page; NotFound for an unknown area or unit code."""
    if unit_code:
        unit = session.scalar(select(Unit).where(Unit.code == unit_code))
        if unit is None:
            raise NotFound(f"unknown unit '{unit_code}'")
        crumbs: list[tuple[str | None, str]] = [(None, city_name(session)), (unit.code, unit.name)]
        return ScopeView(None, unit.code, unit.name, None, crumbs)
    city = city_name(session)
    if not area_code:
        top = list(session.scalars(select(Area).where(Area.parent_id.is_(None)).order_by(Area.code)))
        if len(top) == 1:  # one city: its districts are the first drill level
            return _area_scope(session, top[0], city, root=True)
        return ScopeView(None, None, city, None, [(None, city)], [_area_item(a) for a in top], None)
    area = session.scalar(select(Area).where(Area.code == area_code))
    if area is None:
        raise NotFound(f"unknown area '{area_code}'")
    return _area_scope(session, area, city, root=area.parent_id is None)


def _area_item(a: Area) -> dict[str, Any]:
    return {"code": a.code, "name": a.name, "level": a.level}


def _area_scope(session: Session, area: Area, city: str, *, root: bool) -> ScopeView:
    codes = [c for c in area.path.strip("/").split("/") if c]
    names = dict(session.execute(select(Area.code, Area.name).where(Area.code.in_(codes))).tuples().all())
    crumbs: list[tuple[str | None, str]] = [(None, city)]
    crumbs += (
        [(c, names.get(c, c)) for c in codes[1:]] if root or len(codes) > 1 else [(area.code, area.name)]
    )
    drillable = area.level in {lv.value for lv in _DRILL_LEVELS[:-1]}
    children = (
        list(session.scalars(select(Area).where(Area.parent_id == area.id).order_by(Area.code).limit(500)))
        if drillable
        else []
    )
    return ScopeView(
        None if root else area.code,
        None,
        city if root else area.name,
        area.level,
        crumbs,
        [_area_item(a) for a in children],
        children[0].level if children else None,
    )


def key_label(session: Session, key: str | None) -> str:
    """What a table row's key ("area:C01", "unit:CGJ", "day:2026-11-03" …) names, in Chinese."""
    if not key:
        return ""
    kind, _, code = key.partition(":")
    models: dict[str, type[Area] | type[Unit] | type[Category]] = {
        "area": Area,
        "unit": Unit,
        "category": Category,
    }
    model = models.get(kind)
    if model is not None:
        return session.scalar(select(model.name).where(model.code == code)) or code or "未分类"
    if kind == "channel":
        return _CHANNEL_LABELS.get(code, code)
    try:
        return Period.parse(code).label
    except ValueError:
        return key


def unit_choices(session: Session) -> list[dict[str, Any]]:
    """Units that handle tickets (not the centre, not external ones), by kind then code."""
    rows = session.scalars(
        select(Unit)
        .where(
            Unit.active.is_(True),
            Unit.kind.not_in([UnitKind.EXTERNAL.value, UnitKind.CENTRE.value]),
        )
        .order_by(Unit.kind, Unit.code)
    )
    return [{"code": u.code, "name": u.name, "kind": u.kind} for u in rows]


def unit_of(session: Session, unit_id: int) -> Unit:
    unit = session.get(Unit, unit_id)
    if unit is None:
        raise NotFound("unit not found")
    return unit


def children_map(session: Session, scope: ScopeView, limit: int = 3000) -> dict[str, Any] | None:
    """The children of the scope that have shapes, as GeoJSON for ECharts (names are the join key)."""
    if not scope.children:
        return None
    codes = [c["code"] for c in scope.children]
    feats = [
        {"type": "Feature", "properties": {"name": name, "code": code}, "geometry": poly}
        for code, name, poly in session.execute(
            select(Area.code, Area.name, Area.polygon)
            .where(Area.code.in_(codes), Area.polygon.is_not(None))
            .limit(limit)
        ).tuples()
        if poly
    ]
    return {"type": "FeatureCollection", "features": feats} if feats else None


# ------------------------------------------------------------------------------------------- ticket lists
def unit_may_list(unit_id: int) -> ColumnElement[bool]:
    """What a handling unit may list: the tickets it holds now (visible_to), and those it handled before that
    are not confidential (past_viewer)."""
    # An alias: a query that joins the assignments itself (a unit's returns) must not correlate these away.
    a = aliased(Assignment)
    had = exists().where(a.ticket_id == Ticket.id, a.unit_id == unit_id)
    held = exists().where(a.ticket_id == Ticket.id, a.unit_id == unit_id, a.state.in_(_ACTIVE))
    return or_(held, and_(had, Ticket.confidential.is_(False)))


def listable_by(who: Principal) -> ColumnElement[bool]:
    if queries.can_see_all(who.role):
        return queries.visible_to(who)
    if who.role is Role.HANDLER and who.unit_id is not None:
        return unit_may_list(who.unit_id)
    return queries.visible_to(None)


@dataclass
class TicketPage:
    rows: list[dict[str, Any]]
    total: int
    offset: int
    limit: int

    @property
    def has_next(self) -> bool:
        return self.offset + self.limit < self.total


TICKET_COLUMNS: list[tuple[str, Column]] = [
    ("number", Column("工单编号")),
    ("title", Column("标题")),
    ("state_label", Column("状态")),
    ("channel_label", Column("渠道")),
    ("category", Column("分类")),
    ("area", Column("属地")),
    ("lead_unit", Column("主办单位")),
    ("created_at", Column("受理时间", "datetime")),
    ("resolve_due_at", Column("办理时限", "datetime")),
    ("closed_at", Column("办结时间", "datetime")),
    ("rating_label", Column("评价")),
]
_STATE_LABELS = {s.value: s.label for s in TicketState}
_CHANNEL_LABELS = {c.value: c.label for c in Channel}
_RATING_LABELS = {r.value: r.label for r in Rating}


def ticket_rows(tickets: list[Ticket], names: queries.Names) -> list[dict[str, Any]]:
    """Rows for a list and its export: no personal data, 保密件 for a confidential title."""
    return [
        {
            "number": t.number,
            "title": shown_title(t),
            "state": t.state,
            "channel": t.channel,
            "category": names.category.get(t.category_id or 0),
            "area": names.area.get(t.area_id or 0),
            "lead_unit": names.unit.get(t.lead_unit_id or 0),
            "created_at": t.created_at,
            "closed_at": t.closed_at,
            "resolve_due_at": t.resolve_due_at,
            "rating": t.rating,
            "confidential": t.confidential,
            "state_label": _STATE_LABELS.get(t.state, t.state),
            "channel_label": _CHANNEL_LABELS.get(t.channel, t.channel),
            "rating_label": _RATING_LABELS.get(t.rating or "", ""),
        }
        for t in tickets
    ]


def tickets_by_ids(
    session: Session, who: Principal | None, ids: Select[Any], *, limit: int = LIST_LIMIT, offset: int = 0
) -> TicketPage:
    """A page of the tickets whose ids `ids` selects, as far as the viewer may list them, newest first.
    `who` None is the centre's own report (every ticket; titles of confidential ones hidden as everywhere)."""
    base = select(Ticket).where(Ticket.id.in_(ids.scalar_subquery()))
    if who is not None:
        base = base.where(listable_by(who))
    total = session.scalar(select(func.count()).select_from(base.limit(queries.TOTAL_CAP).subquery())) or 0
    tickets = list(
        session.scalars(base.order_by(Ticket.created_at.desc(), Ticket.id.desc()).offset(offset).limit(limit))
    )
    return TicketPage(ticket_rows(tickets, queries.Names(session, tickets)), total, offset, limit)


def returned_by_unit(
    session: Session, unit_id: int, start: datetime, end: datetime, *, limit: int = LIST_LIMIT
) -> list[dict[str, Any]]:
    """The unit's returns in [start, end): ticket, when, why; a confidential ticket only while the unit still
    holds it (`unit_may_list`)."""
    rows = session.execute(
        select(Ticket, Assignment.returned_at, Assignment.return_reason)
        .join(Assignment, Assignment.ticket_id == Ticket.id)
        .where(
            Assignment.unit_id == unit_id,
            Assignment.returned_at >= start,
            Assignment.returned_at < end,
            unit_may_list(unit_id),
        )
        .order_by(Assignment.returned_at.desc())
        .limit(limit)
    ).all()
    tickets = [r[0] for r in rows]
    names = queries.Names(session, tickets)
    out = []
    for row, (t, at, reason) in zip(ticket_rows(tickets, names), rows, strict=True):
        row |= {"returned_at": at, "return_reason": "" if t.confidential else mask_text(reason)}
        out.append(row)
    return out


def overdue_of_unit(
    session: Session, unit_id: int, now: datetime, *, limit: int = LIST_LIMIT
) -> list[dict[str, Any]]:
    """The unit's open assignments past their deadline now (to sign or to resolve), most late first."""
    # Not signed yet: the signing deadline counts (the resolve deadline may lie far ahead); signed: resolving.
    pending = Assignment.state == AssignmentState.PENDING.value
    due = case((pending, Assignment.sign_due_at), else_=Assignment.resolve_due_at)
    rows = session.execute(
        select(Ticket, Assignment.state, due)
        .join(Assignment, Assignment.ticket_id == Ticket.id)
        .where(
            Assignment.unit_id == unit_id,
            Assignment.state.in_(_ACTIVE),
            or_(and_(pending, Assignment.sign_due_at < now), Assignment.resolve_due_at < now),
        )
        .order_by(due)
        .limit(limit)
    ).all()
    tickets = [r[0] for r in rows]
    names = queries.Names(session, tickets)
    out = []
    for row, (_t, astate, d) in zip(ticket_rows(tickets, names), rows, strict=True):
        row |= {"assignment_state": astate, "due_at": d}
        out.append(row)
    return out


# ----------------------------------------------------------------------------------------- public replies
def replies(session: Session, ticket_ids: list[int]) -> dict[int, str]:
    """The reply each ticket's citizen got (the last public request to close or desk answer)."""
    if not ticket_ids:
        return {}
    out: dict[int, str] = {}
    q = (
        select(TimelineEvent.ticket_id, TimelineEvent.payload)
        .where(
            TimelineEvent.ticket_id.in_(ticket_ids),
            TimelineEvent.action.in_(REPLY_ACTIONS),
            TimelineEvent.public.is_(True),
        )
        .order_by(TimelineEvent.ticket_id, TimelineEvent.seq)
    )
    for tid, payload in session.execute(q).tuples():
        text = next((str(payload[k]) for k in REPLY_KEYS if (payload or {}).get(k)), None)
        if text:
            out[tid] = text  # later events overwrite earlier ones: the last reply wins
    return out


def public_cases(
    session: Session,
    start: datetime,
    end: datetime,
    *,
    limit: int = 20,
    ratings: tuple[str, ...] | None = None,
    consent_only: bool = True,
) -> list[dict[str, Any]]:
    """Closed tickets of [start, end) with their reply, for the public page and the report's typical cases:
    never a confidential ticket; with `consent_only`, only those whose citizens agreed to publication; the
    request and the reply with personal data masked."""
    conds = [
        Ticket.closed_at >= start,
        Ticket.closed_at < end,
        Ticket.confidential.is_(False),
        Ticket.state.in_([TicketState.CLOSED.value, TicketState.RATED.value]),
    ]
    if consent_only:
        conds.append(Ticket.public_consent.is_(True))
    if ratings is not None:
        conds.append(Ticket.rating.in_(ratings))
    # Twice the limit: a ticket without a reply text (closed by a merge, say) is left out below.
    tickets = list(
        session.scalars(select(Ticket).where(*conds).order_by(Ticket.closed_at.desc()).limit(limit * 2))
    )
    texts = replies(session, [t.id for t in tickets])
    names = queries.Names(session, tickets)
    out = []
    for t in tickets:
        reply = texts.get(t.id)
        if not reply:
            continue
        out.append(
            {
                "number": t.number,
                "title": mask_text(t.title, name=t.citizen_name, address=t.address),
                "detail": mask_text(t.detail, name=t.citizen_name, address=t.address),
                "reply": mask_text(reply, name=t.citizen_name, address=t.address),
                "category": names.category.get(t.category_id or 0),
                "area": names.area.get(t.area_id or 0),
                "lead_unit": names.unit.get(t.lead_unit_id or 0),
                "created_at": t.created_at,
                "closed_at": t.closed_at,
                "rating": t.rating,
                "rating_label": Rating(t.rating).label if t.rating in Rating.values() else None,
            }
        )
        if len(out) >= limit:
            break
    return out


# ------------------------------------------------------------------------------------------ the stats page
# The figures a page shows first (cards) and the columns of its tables, in the order of the six rates.
CARD_MEASURES = (
    "volume",
    "sign_rate",
    "completion_rate",
    "satisfaction_rate",
    "reopen_rate",
    "complaint_rate",
    "overdue_count",
    "avg_close_hours",
)
TABLE_MEASURES = (
    "volume",
    "sign_rate",
    "diversion_rate",
    "feedback_rate",
    "completion_rate",
    "reopen_rate",
    "complaint_rate",
    "satisfaction_rate",
    "first_time_completion_rate",
    "return_rate",
    "overdue_count",
    "avg_close_hours",
)
RANK_LEVELS: dict[str, str] = {
    "department": "市直部门",
    "district_office": "区（县）",
    "street_office": "街道（乡镇）",
    "unit": "全部单位",
    "district": "区划：区（县）",
    "street": "区划：街道",
}
SCORE = "score"
GROUPINGS: dict[str, str] = {
    "area": "下级区划",
    "unit": "下级单位",
    "category": "诉求分类",
    "channel": "受理渠道",
}


def measure_fmt(code: str) -> Format:
    kind = BY_CODE[code].kind
    return "pct" if kind == "rate" else "hours" if kind == "hours" else "int"


def trend_grain(period: Period) -> str:
    """Days for a month or less, weeks up to half a year, months beyond."""
    if period.days <= 62:
        return "day"
    if period.days <= 190:
        return "week"
    return "month"


@dataclass
class StatsView:
    period: Period
    scope: ScopeView
    by: str
    measure: str
    level: str
    table: MeasureTable
    trend: MeasureTable
    ranking: list[RankRow]
    geo: dict[str, Any] | None


def check_choice(value: str, allowed: dict[str, str] | tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise Invalid(f"unknown {what} {value!r}", field=what)
    return value


def stats_view(
    session: Session,
    period: Period,
    scope: ScopeView,
    settings: Any,
    *,
    by: str | None = None,
    measure: str = SCORE,
    level: str = "department",
) -> StatsView:
    """Everything the 统计分析 page draws for one period and scope (all figures from `services.measures`);
    `measure` orders the ranking and colours the map (`SCORE`: the composite score)."""
    check_choice(measure, (SCORE, *BY_CODE), "measure")
    check_choice(level, RANK_LEVELS, "level")
    if by is None:
        by = "area" if scope.children else "unit" if scope.unit_code else "category"
    check_choice(by, GROUPINGS, "by")
    s = Scope(scope.area_code, scope.unit_code)
    table = measure_table(session, period, s, by, settings)
    trend = measure_table(session, period, s, trend_grain(period), settings)
    ranked = ranking(
        session, period, level, settings, measure=None if measure == "score" else measure, scope=s
    )
    geo = children_map(session, scope) if by == "area" else None
    return StatsView(period, scope, by, measure, level, table, trend, ranked, geo)


def table_export(view: MeasureTable, title: str, measures: tuple[str, ...] = TABLE_MEASURES) -> ExportTable:
    """A measure table as the page shows it: each measure with its previous period and last year."""
    cols = [Column("名称")]
    for code in measures:
        m = BY_CODE[code]
        fmt = measure_fmt(code)
        cols += [
            Column(m.label_zh, fmt),
            Column(f"{m.label_zh}（上期）", fmt),
            Column(f"{m.label_zh}（去年同期）", fmt),
        ]
    cols += [Column("综合得分", "decimal"), Column("样本不足")]
    rows = []
    for r in [*view.rows, view.total]:
        row: list[Any] = [r.name if r is not view.total else f"合计（{r.name}）"]
        for code in measures:
            row += [r.values.get(code), r.previous.get(code), r.last_year.get(code)]
        row += [r.score, "是" if r.few else ""]  # the composite is 0-100
        rows.append(row)
    return ExportTable(title, cols, rows, notes=[f"统计期：{view.period.label}"])


def ranking_export(rows: list[RankRow], title: str, measure: str | None) -> ExportTable:
    fmt: Format = "decimal" if measure is None else measure_fmt(measure)
    label = "综合得分" if measure is None else BY_CODE[measure].label_zh
    return ExportTable(
        title,
        [
            Column("排名", "int"),
            Column("名称"),
            Column(label, fmt),
            Column("上期", fmt),
            Column("基数", "int"),
        ],
        [
            [
                r.rank,
                r.name + ("（样本不足）" if r.few else ""),
                r.value,
                r.previous_value,
                r.base,
            ]
            for r in rows
        ],
    )


def ticket_export(rows: list[dict[str, Any]], title: str) -> ExportTable:
    return ExportTable(
        title, [c for _, c in TICKET_COLUMNS], [[r.get(k) for k, _ in TICKET_COLUMNS] for r in rows]
    )


# ------------------------------------------------------------------------------------------- 本单位 page
@dataclass
class UnitView:
    unit_code: str
    unit_name: str
    kind_label: str
    unit_row: MeasureRow
    city_row: MeasureRow
    rank: int | None
    ranked: int
    few: bool
    overdue: list[dict[str, Any]]
    returned: list[dict[str, Any]]


def unit_view(session: Session, period: Period, unit_code: str, now: datetime, settings: Any) -> UnitView:
    """A unit's measures against the city's, its rank among units of its kind, its overdue tickets now and
    its returns of the period (lists limited to what the unit handled: see `returned_by_unit`)."""
    unit = session.scalar(select(Unit).where(Unit.code == unit_code))
    if unit is None:
        raise NotFound(f"unknown unit '{unit_code}'")
    mine = measure_table(session, period, Scope(unit_code=unit.code), None, settings).total
    city = measure_table(session, period, Scope(), None, settings).total
    kind = UnitKind(unit.kind) if unit.kind in UnitKind.values() else None
    rank, ranked, few = None, 0, mine.few
    if kind is not None and kind not in (UnitKind.CENTRE, UnitKind.EXTERNAL):
        rows = ranking(session, period, kind.value, settings)
        ranked = sum(1 for r in rows if r.rank is not None)
        own = next((r for r in rows if r.code == unit.code), None)
        if own is not None:
            rank, few = own.rank, own.few
    start, end = period.utc_bounds()
    return UnitView(
        unit.code,
        unit.name,
        kind.label if kind else unit.kind,
        mine,
        city,
        rank,
        ranked,
        few,
        overdue_of_unit(session, unit.id, now),
        returned_by_unit(session, unit.id, start, end),
    )


def unit_export(view: UnitView) -> list[ExportTable]:
    cols = [Column("指标"), Column("本单位"), Column("上期"), Column("去年同期"), Column("全市")]
    rows = []
    for code in TABLE_MEASURES:
        fmt = measure_fmt(code)
        rows.append(
            [
                BY_CODE[code].label_zh,
                Cell(view.unit_row.values.get(code), fmt),
                Cell(view.unit_row.previous.get(code), fmt),
                Cell(view.unit_row.last_year.get(code), fmt),
                Cell(view.city_row.values.get(code), fmt),
            ]
        )
    rank = f"第 {view.rank} 名 / {view.ranked}" if view.rank else "样本不足，未参与排名" if view.few else "—"
    overdue = ticket_export(view.overdue, "超期工单")
    returned = ExportTable(
        "退回工单",
        [*(c for _, c in TICKET_COLUMNS), Column("退回时间", "datetime"), Column("退回原因")],
        [
            [*(r.get(k) for k, _ in TICKET_COLUMNS), r["returned_at"], r["return_reason"]]
            for r in view.returned
        ],
    )
    return [
        ExportTable(f"{view.unit_name}指标", cols, rows, notes=[f"{view.kind_label}排名：{rank}"]),
        overdue,
        returned,
    ]


# ------------------------------------------------------------------------------------ public rankings (成都)
@dataclass
class PublicBoard:
    rankings: list[tuple[str, list[RankRow]]]
    cases: list[dict[str, Any]]


def public_board(session: Session, period: Period, settings: Any, levels: tuple[str, ...]) -> PublicBoard:
    """The month's ranking of units of each kind (composite score) and the replies citizens agreed to show."""
    out = []
    for level in levels:
        rows = [r for r in ranking(session, period, level, settings) if r.value is not None or r.base]
        if rows:
            out.append((UnitKind(level).label, rows))
    start, end = period.utc_bounds()
    return PublicBoard(out, public_cases(session, start, end, limit=20, consent_only=True))
