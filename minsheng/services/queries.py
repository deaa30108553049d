"""Read side: who may see which ticket, ticket lists with filters and keyset pages, unit inboxes, views.

Lists never count the whole table: pages are keyset pages over (created_at, id), so that a list stays fast with
millions of tickets; a total is computed only on request and capped.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, false, func, literal, or_, select, true, union_all
from sqlalchemy.orm import Session, joinedload, selectinload

from minsheng.domain import transitions as tx
from minsheng.domain.masking import (
    CONFIDENTIAL_TITLE,
    mask_address,
    mask_id_number,
    mask_name,
    mask_phone,
    pii_view,
)
from minsheng.domain.numbering import hash_query_code
from minsheng.domain.roles import Role
from minsheng.domain.states import (
    ACTIVE_ASSIGNMENT_STATES,
    AssignmentState,
    ExtensionState,
    Rating,
    TicketState,
)
from minsheng.services.auth import Principal
from minsheng.services.errors import Invalid, NotFound, PermissionDenied
from minsheng.services.records import fields
from minsheng.services.schemas import MAX_ID
from minsheng.services.ticket_steps import offered_ticket_steps, offered_unit_steps
from minsheng.storage.models import (
    Area,
    Assignment,
    Attachment,
    Category,
    Extension,
    Ticket,
    TimelineEvent,
    Unit,
)
from minsheng.storage.triage_tables import TriageJob

TOTAL_CAP = 10_000


@dataclass
class TicketFilter:
    state: list[str] | None = None
    unit: str | None = None
    area: str | None = None
    category: str | None = None
    channel: str | None = None
    kind: str | None = None
    urgency: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    text: str | None = None
    phone: str | None = None


def can_see_all(role: Role) -> bool:
    return role in (
        Role.OPERATOR,
        Role.DISPATCHER,
        Role.SUPERVISOR,
        Role.FOLLOWUP,
        Role.LEADER,
        Role.ADMIN,
        Role.INTEGRATION,
    )


_ACTIVE = sorted(st.value for st in ACTIVE_ASSIGNMENT_STATES)


def is_current(a: Assignment) -> bool:
    """An assignment the unit holds now (pending, signed, reported, asking to close): returned, cancelled and
    closed ones are history."""
    return a.state in _ACTIVE


def current_unit_ids(t: Ticket) -> frozenset[int]:
    """The units that hold the ticket now: access and unmasked personal data follow these, not the history."""
    return frozenset(a.unit_id for a in t.assignments if is_current(a))


def _held_by(unit_id: int) -> ColumnElement[bool]:
    # EXISTS probes the assignments of each ticket met along the created_at index; an IN over all of a unit's
    # assignments would be materialised and sorted first.
    return (
        select(Assignment.id)
        .where(
            Assignment.ticket_id == Ticket.id,
            Assignment.unit_id == unit_id,
            Assignment.state.in_(_ACTIVE),
        )
        .exists()
    )


def visible_to(who: Principal | None) -> ColumnElement[bool]:
    """THE visibility rule of every ticket list a person may see (lists, search, related and earlier tickets,
    repeats, the queue, the board): the centre's roles see every ticket; a handling unit sees the tickets it
    holds now (a current assignment), so a confidential (保密) ticket stays inside the units handling it; anyone
    else sees none. Lists shown to several viewers at once (the big screen) use `public_title` instead."""
    if who is not None and can_see_all(who.role):
        return true()
    if who is not None and who.role is Role.HANDLER and who.unit_id is not None:
        return _held_by(who.unit_id)
    return false()


def may_see(t: Ticket, who: Principal | None) -> bool:
    """`visible_to` for one loaded ticket."""
    if who is not None and can_see_all(who.role):
        return True
    return who is not None and who.role is Role.HANDLER and who.unit_id in current_unit_ids(t)


def past_viewer(t: Ticket, who: Principal | None) -> bool:
    """A handler whose unit handled the ticket before (returned, cancelled, closed) but holds it no more: it keeps
    a read-only view of its own part, personal data masked; not of a confidential ticket."""
    return (
        who is not None
        and who.role is Role.HANDLER
        and who.unit_id is not None
        and not t.confidential
        and who.unit_id not in current_unit_ids(t)
        and any(a.unit_id == who.unit_id for a in t.assignments)
    )


def public_title() -> ColumnElement[Any]:
    """A ticket's title as a screen every staff member may look at shows it: 保密件 for a confidential one."""
    return case((Ticket.confidential.is_(True), literal(CONFIDENTIAL_TITLE)), else_=Ticket.title)


def ticket_for(session: Session, who: Principal, number: str, *, past: bool = False) -> Ticket:
    """A ticket the principal may act on (`may_see`), or NotFound/PermissionDenied. With `past`, also a ticket
    the principal's unit handled before (`past_viewer`): read-only pages and reads only, never a step or an
    upload."""
    t = session.scalar(select(Ticket).where(Ticket.number == number))
    if t is None:
        raise NotFound(f"ticket {number} not found")
    if may_see(t, who) or (past and past_viewer(t, who)):
        return t
    raise PermissionDenied("this ticket is not assigned to your unit")


def ticket_for_citizen(session: Session, number: str, query_code: str) -> Ticket:
    t = session.scalar(select(Ticket).where(Ticket.number == number))
    # Same message for unknown number and wrong code: a number alone reveals nothing.
    if t is None or t.query_code_hash != hash_query_code(query_code):
        raise NotFound("no ticket with this number and query code")
    return t


def _subtree_ids(session: Session, model: type[Area] | type[Category], code: str) -> list[int]:
    path_col = Area.path if model is Area else Category.path
    node_path = session.scalar(select(path_col).where(model.code == code))
    if node_path is None:
        raise NotFound(f"unknown {model.__tablename__[:-1]} '{code}'")
    return list(session.scalars(select(model.id).where(path_col.startswith(node_path))))


def _unit_id(session: Session, code: str) -> int:
    uid = session.scalar(select(Unit.id).where(Unit.code == code))
    if uid is None:
        raise NotFound(f"unknown unit '{code}'")
    return uid


def encode_cursor(created_at: datetime, ticket_id: int) -> str:
    raw = json.dumps([created_at.isoformat(), ticket_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """The position a cursor from `encode_cursor` stands for; Invalid for anything else a client may send."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, tid = json.loads(raw)
        when = datetime.fromisoformat(at)
        # The columns hold aware UTC times and 64-bit ids: a forged cursor may carry neither.
        when.astimezone(UTC)
        if when.tzinfo is None or isinstance(tid, bool) or not isinstance(tid, int) or not 0 < tid <= MAX_ID:
            raise ValueError("not a position in the list")
        return when, tid
    except (ValueError, TypeError, OverflowError) as e:
        raise Invalid("bad cursor") from e


def _apply_filter(session: Session, q: Select[Any], f: TicketFilter) -> Select[Any]:
    if f.state:
        bad = [s for s in f.state if s not in TicketState.values()]
        if bad:
            raise Invalid(f"unknown state(s): {', '.join(bad)}")
        q = q.where(Ticket.state.in_(f.state))
    if f.unit:
        q = q.where(Ticket.lead_unit_id == _unit_id(session, f.unit))
    if f.area:
        q = q.where(Ticket.area_id.in_(_subtree_ids(session, Area, f.area)))
    if f.category:
        q = q.where(Ticket.category_id.in_(_subtree_ids(session, Category, f.category)))
    if f.channel:
        q = q.where(Ticket.channel == f.channel)
    if f.kind:
        q = q.where(Ticket.kind == f.kind)
    if f.urgency:
        q = q.where(Ticket.urgency == f.urgency)
    if f.created_from:
        q = q.where(Ticket.created_at >= f.created_from)
    if f.created_to:
        q = q.where(Ticket.created_at < f.created_to)
    if f.phone:
        q = q.where(Ticket.citizen_phone == f.phone)
    if f.text:
        needle = f"%{f.text.replace('%', '').replace('_', '')}%"
        q = q.where(or_(Ticket.title.like(needle), Ticket.number == f.text))
    return q


def list_tickets(
    session: Session,
    who: Principal,
    f: TicketFilter,
    *,
    limit: int = 20,
    cursor: str | None = None,
    with_total: bool = False,
) -> tuple[list[Ticket], str | None, int | None]:
    if not can_see_all(who.role) and (who.role is not Role.HANDLER or who.unit_id is None):
        raise PermissionDenied("your role may not list tickets")
    q = select(Ticket).where(visible_to(who))
    q = _apply_filter(session, q, f)
    total = None
    if with_total:
        total = session.scalar(select(func.count()).select_from(q.limit(TOTAL_CAP + 1).subquery()))
    if cursor:
        at, tid = decode_cursor(cursor)
        q = q.where(or_(Ticket.created_at < at, and_(Ticket.created_at == at, Ticket.id < tid)))
    rows = list(session.scalars(q.order_by(Ticket.created_at.desc(), Ticket.id.desc()).limit(limit + 1)))
    nxt = encode_cursor(rows[limit - 1].created_at, rows[limit - 1].id) if len(rows) > limit else None
    prefetch_names(session, rows[:limit])
    return rows[:limit], nxt, total


def inbox(session: Session, who: Principal, *, limit: int = 50, offset: int = 0) -> list[Assignment]:
    """A unit's open assignments, what is due soonest first."""
    if who.role is not Role.HANDLER or who.unit_id is None:
        raise PermissionDenied("the inbox belongs to handling units")
    due = func.coalesce(Assignment.resolve_due_at, Assignment.sign_due_at)
    q = (
        select(Assignment)
        # The page's tickets and all their assignments (the view needs them) in two more queries, not one per row.
        .options(joinedload(Assignment.ticket).selectinload(Ticket.assignments))
        .where(
            Assignment.unit_id == who.unit_id,
            Assignment.state.in_([s.value for s in ACTIVE_ASSIGNMENT_STATES]),
        )
        .order_by(due.asc().nulls_last(), Assignment.created_at)
        .limit(limit)
        .offset(offset)
    )
    rows = list(session.scalars(q).unique())
    prefetch_names(session, [a.ticket for a in rows])
    return rows


def dispatch_queue(
    session: Session, *, limit: int = 50, offset: int = 0, who: Principal | None = None
) -> list[Ticket]:
    """New and returned tickets that `who` may see (without `who`: all, the system's view), oldest first: one
    index range per state, merged (an IN would sort all)."""
    seen = true() if who is None else visible_to(who)
    per_state = [
        select(Ticket.id, Ticket.created_at)
        .where(Ticket.state == st.value, seen)
        .order_by(Ticket.created_at, Ticket.id)
        .limit(limit + offset)
        .subquery()
        for st in (TicketState.ACCEPTED, TicketState.RETURNED)
    ]
    merged = union_all(*(select(sq.c.id, sq.c.created_at) for sq in per_state)).subquery()
    ids = list(
        session.scalars(
            select(merged.c.id).order_by(merged.c.created_at, merged.c.id).limit(limit).offset(offset)
        )
    )
    by_id = {
        t.id: t
        for t in session.scalars(
            select(Ticket).options(selectinload(Ticket.assignments)).where(Ticket.id.in_(ids))
        )
    }
    rows = [by_id[i] for i in ids if i in by_id]
    prefetch_names(session, rows)
    prefetch_details(session, rows)
    return rows


# ---------------------------------------------------------------------- views


_NAMES_KEY = "minsheng_names"


def prefetch_names(session: Session, tickets: list[Ticket]) -> None:
    """Load the category, area and unit names of a page of tickets in three queries (not three per row)."""
    cache: dict[tuple[str, int], tuple[str, str]] = session.info.setdefault(_NAMES_KEY, {})
    for kind, model, attr in (
        ("c", Category, "category_id"),
        ("a", Area, "area_id"),
        ("u", Unit, "lead_unit_id"),
    ):
        ids = {getattr(t, attr) for t in tickets} - {None} - {i for (k, i) in cache if k == kind}
        if ids:
            for row in session.execute(select(model.id, model.code, model.name).where(model.id.in_(ids))):
                cache[(kind, row.id)] = (row.code, row.name)


_CHILDREN_KEY = "minsheng_children"


def prefetch_details(session: Session, tickets: list[Ticket]) -> None:
    """Load the extensions and attachments of a page of full ticket views in two queries (not two per row)."""
    cache: dict[tuple[Any, int], list[Any]] = session.info.setdefault(_CHILDREN_KEY, {})
    ids = [t.id for t in tickets]
    models: tuple[Any, ...] = (Extension, Attachment)
    for model in models:
        for tid in ids:
            cache[(model, tid)] = []
        for row in session.scalars(select(model).where(model.ticket_id.in_(ids)).order_by(model.id)):
            cache[(model, row.ticket_id)].append(row)


def _children(session: Session, model: Any, ticket_id: int) -> list[Any]:
    hit = session.info.get(_CHILDREN_KEY, {}).get((model, ticket_id))
    if hit is not None:
        return list(hit)
    return list(session.scalars(select(model).where(model.ticket_id == ticket_id).order_by(model.id)))


def _name(session: Session, kind: str, model: Any, ident: int | None) -> tuple[str | None, str | None]:
    if ident is None:
        return None, None
    cache: dict[tuple[str, int], tuple[str, str]] = session.info.setdefault(_NAMES_KEY, {})
    if (kind, ident) not in cache:
        row = session.execute(select(model.code, model.name).where(model.id == ident)).first()
        cache[(kind, ident)] = (row.code, row.name) if row else ("", "")
    return cache[(kind, ident)]


def _names(session: Session, t: Ticket) -> dict[str, Any]:
    cat = _name(session, "c", Category, t.category_id)
    area = _name(session, "a", Area, t.area_id)
    lead = _name(session, "u", Unit, t.lead_unit_id)
    return {
        "category_code": cat[0],
        "category_name": cat[1],
        "area_code": area[0],
        "area_name": area[1],
        "lead_unit_code": lead[0],
        "lead_unit_name": lead[1],
    }


def ticket_view(
    session: Session, t: Ticket, who: Principal | None, *, citizen: bool = False, detail: bool = True
) -> dict[str, Any]:
    """The ticket as a dict for the API, with personal data masked unless the viewer needs it."""
    role = who.role if who else Role.CITIZEN
    full = pii_view(
        role,
        viewer_unit_id=who.unit_id if who else None,
        assigned_unit_ids=current_unit_ids(t),
        confidential=t.confidential,
        is_submitter=citizen,
    ).full
    before = not citizen and past_viewer(t, who)
    out: dict[str, Any] = {
        "number": t.number,
        "state": t.state,
        "state_label": TicketState(t.state).label,
        "channel": t.channel,
        "kind": t.kind,
        "urgency": t.urgency,
        "title": t.title,
        "created_at": t.created_at,
        "updated_at": t.updated_at,
        "closed_at": t.closed_at,
        "resolve_due_at": t.resolve_due_at,
        "rating": t.rating,
        "reopen_count": t.reopen_count,
        "return_count": t.return_count,
        **_names(session, t),
    }
    if not detail:
        return out
    out.update(
        {
            "detail": t.detail,
            "address": t.address if full else mask_address(t.address),
            "lat": t.lat,
            "lon": t.lon,
            "citizen_name": t.citizen_name if full else mask_name(t.citizen_name),
            "citizen_phone": t.citizen_phone if full else mask_phone(t.citizen_phone),
            "citizen_id_number": t.citizen_id_number if full else mask_id_number(t.citizen_id_number),
            "confidential": t.confidential,
            "public_consent": t.public_consent,
            "external_id": t.external_id,
            "transfer_target": t.transfer_target,
            "repeat_of": session.scalar(select(Ticket.number).where(Ticket.id == t.repeat_of_id))
            if t.repeat_of_id
            else None,
            "triage": t.triage if not citizen else None,
            "assignments": [assignment_view(a, TicketState(t.state), who) for a in t.assignments],
            **_children_json(session, t),
        }
    )
    # What this viewer may do now: nothing offered answers 403 or 409 (ticket_steps.offered_*).
    pending = any(e["state"] == ExtensionState.PENDING.value for e in out["extensions"])
    out["allowed_actions"] = offered_ticket_steps(t, who.actor if who else None, pending_extension=pending)
    if citizen:
        _as_citizen_sees(session, t, out)
    if before and who is not None:
        # A unit that handled the ticket before: its own part, read-only.
        out["assignments"] = [
            a | {"allowed_actions": []} for a in out["assignments"] if a["unit_code"] in _own_codes(t, who)
        ]
        out.update(allowed_actions=[], extensions=[], attachments=[], triage=None, read_only=True)
    return out


def _as_citizen_sees(session: Session, t: Ticket, out: dict[str, Any]) -> None:
    """No triage, assignments, actions or extensions; the photos of the public timeline only (a unit's
    feedback, their own), not staff notes."""
    for k in ("triage", "assignments", "allowed_actions", "extensions"):
        out.pop(k, None)
    public = set(
        session.scalars(select(TimelineEvent.id).where(TimelineEvent.ticket_id == t.id, TimelineEvent.public))
    )
    kept = {a.id for a in _children(session, Attachment, t.id) if a.event_id in public}
    out["attachments"] = [a for a in out["attachments"] if a["id"] in kept]


def _children_json(session: Session, t: Ticket) -> dict[str, Any]:
    return {
        "extensions": [
            fields(e, "id", "hours", "reason", "state", "requested_at", "decided_at")
            for e in _children(session, Extension, t.id)
        ],
        "attachments": [
            fields(a, "id", "filename", "content_type", "size") for a in _children(session, Attachment, t.id)
        ],
    }


def _own_codes(t: Ticket, who: Principal) -> set[str]:
    return {a.unit.code for a in t.assignments if a.unit_id == who.unit_id}


def intake_view(session: Session, t: Ticket, *, full: bool) -> dict[str, Any]:
    """The answer to an intake: the ticket's summary and triage, without the queries a full view needs."""
    out = ticket_view(session, t, None, detail=False)
    out["detail"] = t.detail
    out["confidential"] = t.confidential
    out["public_consent"] = t.public_consent
    out["assignments"] = [assignment_view(a, TicketState(t.state)) for a in t.assignments]
    if full:
        out["triage"] = t.triage
    return out


def assignment_view(a: Assignment, ticket_state: TicketState, who: Principal | None = None) -> dict[str, Any]:
    """An assignment; its `allowed_actions` are the unit steps accepted now (from `who`, when given)."""
    return {
        "id": a.id,
        "unit_code": a.unit.code,
        "unit_name": a.unit.name,
        "role": a.role,
        "state": a.state,
        "state_label": AssignmentState(a.state).label,
        "created_at": a.created_at,
        "signed_at": a.signed_at,
        "contacted_at": a.contacted_at,
        "arrived_at": a.arrived_at,
        "reported_at": a.reported_at,
        "closed_at": a.closed_at,
        "returned_at": a.returned_at,
        "return_reason": a.return_reason,
        "first_receiver": a.first_receiver,
        "sign_due_at": a.sign_due_at,
        "resolve_due_at": a.resolve_due_at,
        "allowed_actions": offered_unit_steps(a.ticket, a, who.actor if who else None),
    }


PUBLIC_TIMELINE_KEYS = {
    "channel",
    "kind",
    "rating",
    "target",
    "unit_name",
    "lead_unit_name",
    "answer",
    "summary",
}


def timeline(
    session: Session, t: Ticket, *, public_only: bool = False, who: Principal | None = None
) -> list[dict[str, Any]]:
    """The ticket's timeline; a unit that handled it before (`past_viewer`) gets the events of its own part."""
    q = select(TimelineEvent).where(TimelineEvent.ticket_id == t.id).order_by(TimelineEvent.seq)
    if who is not None and past_viewer(t, who):
        own = [a.id for a in t.assignments if a.unit_id == who.unit_id]
        q = q.where(or_(TimelineEvent.assignment_id.in_(own), TimelineEvent.actor_unit_id == who.unit_id))
    out = []
    for e in session.scalars(q):
        if public_only and not e.public:
            continue
        payload = e.payload or {}
        if public_only:
            payload = {k: v for k, v in payload.items() if k in PUBLIC_TIMELINE_KEYS}
        out.append(
            {
                "seq": e.seq,
                "at": e.at,
                "action": e.action,
                "action_label": tx.ACTION_LABELS.get(e.action, e.action),
                "machine": e.machine,
                "assignment_id": e.assignment_id,
                "actor_role": e.actor_role,
                "actor_name": None if public_only else e.actor_name,
                "actor_unit_id": None if public_only else e.actor_unit_id,
                "from_state": e.from_state,
                "to_state": e.to_state,
                "payload": payload,
            }
        )
    return out


def newest_tickets(session: Session, after: int | None, limit: int) -> list[tuple[Any, ...]]:
    """(id, number, title, channel, created_at) of the tickets above id `after`, oldest first; without
    `after`, the newest `limit`, oldest first (the big screen's live feed, one for every viewer: a confidential
    ticket's title is 保密件)."""
    q = select(Ticket.id, Ticket.number, public_title(), Ticket.channel, Ticket.created_at)
    if after is not None:
        rows = session.execute(q.where(Ticket.id > after).order_by(Ticket.id).limit(limit)).all()
    else:
        rows = list(reversed(session.execute(q.order_by(Ticket.id.desc()).limit(limit)).all()))
    return [tuple(r) for r in rows]


# ---------------------------------------------------------------------- the console's and portal's lists
# Each one indexed range, oldest or newest first, bounded: the pages show a screenful, never a table.


def waiting(session: Session, who: Principal | None, state: TicketState, limit: int) -> list[Ticket]:
    """Tickets in one state, oldest first (ix_tickets_state_created): the queue's, board's and follow-up's."""
    q = (
        select(Ticket)
        .where(Ticket.state == state.value, visible_to(who))
        .order_by(Ticket.created_at, Ticket.id)
        .limit(limit)
    )
    return list(session.scalars(q))


def dissatisfied(session: Session, who: Principal | None, limit: int) -> list[Ticket]:
    """Rated tickets whose citizen was not satisfied, newest first."""
    bad = [r.value for r in Rating if r.is_dissatisfied]
    q = (
        select(Ticket)
        .where(Ticket.state == TicketState.RATED.value, Ticket.rating.in_(bad), visible_to(who))
        .order_by(Ticket.created_at.desc())
        .limit(limit)
    )
    return list(session.scalars(q))


def pending_extensions(session: Session, who: Principal | None, limit: int) -> list[tuple[Extension, Ticket]]:
    """Extension requests waiting for a decision, oldest first, with their tickets."""
    rows = session.execute(
        select(Extension, Ticket)
        .join(Ticket, Ticket.id == Extension.ticket_id)
        .where(Extension.state == ExtensionState.PENDING.value, visible_to(who))
        .order_by(Extension.requested_at)
        .limit(limit)
    ).tuples()
    return list(rows)


def recent_events(
    session: Session, who: Principal | None, since: datetime, actions: Sequence[str], limit: int
) -> list[tuple[TimelineEvent, str, str]]:
    """Timeline events of some kinds since a moment, newest first, with their ticket's number and title."""
    rows = session.execute(
        select(TimelineEvent, Ticket.number, Ticket.title)
        .join(Ticket, Ticket.id == TimelineEvent.ticket_id)
        .where(TimelineEvent.at >= since, TimelineEvent.action.in_(actions), visible_to(who))
        .order_by(TimelineEvent.at.desc())
        .limit(limit)
    ).tuples()
    return list(rows)


def earlier_from(session: Session, who: Principal | None, phone: str, limit: int) -> list[Ticket]:
    """The newest tickets from one phone number that the viewer may see (the desk shows them while a caller is
    on the line)."""
    q = (
        select(Ticket)
        .where(Ticket.citizen_phone == phone, visible_to(who), *_no_confidential_link(who))
        .order_by(Ticket.created_at.desc(), Ticket.id.desc())
        .limit(limit)
    )
    return list(session.scalars(q))


def _no_confidential_link(who: Principal | None) -> list[ColumnElement[bool]]:
    # A unit that sees a caller's phone must not learn that the same caller made a confidential report, even one
    # it handles (it gets that one without the caller's contact): linked by phone, the report would be named.
    if who is not None and can_see_all(who.role):
        return []
    return [Ticket.confidential.is_(False)]


def repeats_of(session: Session, t: Ticket, who: Principal | None, limit: int = 20) -> list[Ticket]:
    return list(
        session.scalars(
            select(Ticket)
            .where(Ticket.repeat_of_id == t.id, visible_to(who))
            .order_by(Ticket.id)
            .limit(limit)
        )
    )


def related(
    session: Session,
    t: Ticket,
    who: Principal | None,
    *,
    same_phone: bool,
    same_area: bool,
    limit: int = 5,
) -> list[Ticket]:
    """Other tickets from the same caller and/or the same area that the viewer may see (`visible_to`), newest
    first, each ticket once; by phone, a handler never gets a confidential one."""
    rows: list[Ticket] = []
    if same_phone and t.citizen_phone:
        rows += session.scalars(
            select(Ticket)
            .where(
                Ticket.citizen_phone == t.citizen_phone,
                Ticket.id != t.id,
                visible_to(who),
                *_no_confidential_link(who),
            )
            .order_by(Ticket.created_at.desc())
            .limit(limit)
        ).all()
    if same_area and t.area_id:
        rows += session.scalars(
            select(Ticket)
            .where(Ticket.area_id == t.area_id, Ticket.id != t.id, visible_to(who))
            .order_by(Ticket.created_at.desc())
            .limit(limit)
        ).all()
    seen: set[str] = set()
    out = []
    for r in rows:
        if r.number not in seen:
            seen.add(r.number)
            out.append(r)
    return out


def triage_pending(session: Session, t: Ticket) -> bool:
    """Deferred triage: the ticket is stored and its analysis is on its way."""
    return t.triage is None and session.get(TriageJob, t.id) is not None


def ticket_by_number(session: Session, number: str) -> Ticket:
    """The ticket with this number, whoever asks (the caller has just registered it)."""
    t = session.scalar(select(Ticket).where(Ticket.number == number))
    if t is None:
        raise NotFound(f"ticket {number} not found")
    return t


def own_assignment(session: Session, who: Principal, assignment_id: int) -> Assignment | None:
    """The assignment if it belongs to the principal's unit, else None."""
    a = session.get(Assignment, assignment_id)
    return a if a is not None and a.unit_id == who.unit_id else None


def attachment_for(session: Session, who: Principal, attachment_id: int) -> Attachment:
    """An attachment of a ticket the principal may see, or NotFound/PermissionDenied."""
    att = session.get(Attachment, attachment_id)
    if att is None:
        raise NotFound("attachment not found")
    number = session.scalar(select(Ticket.number).where(Ticket.id == att.ticket_id))
    assert number is not None
    ticket_for(session, who, number)
    return att


def public_board(session: Session, now: datetime, *, days: int = 30, limit: int = 30) -> list[Ticket]:
    """Tickets whose citizens agreed to show them (and not confidential), newest first."""
    # Bounded by time (ix_tickets_created): consent is not indexed, so never scan further back than `days`.
    q = (
        select(Ticket)
        .where(
            Ticket.created_at >= now - timedelta(days=days),
            Ticket.public_consent.is_(True),
            Ticket.confidential.is_(False),
        )
        .order_by(Ticket.created_at.desc())
        .limit(limit)
    )
    return list(session.scalars(q))


class Names:
    """Names of the categories, areas and units that a page of tickets mentions, loaded in one query each."""

    def __init__(self, session: Session, tickets: Iterable[Ticket]) -> None:
        ts = list(tickets)
        self.category = _names_of(session, Category, {t.category_id for t in ts if t.category_id})
        self.area = _names_of(session, Area, {t.area_id for t in ts if t.area_id})
        self.unit = _names_of(session, Unit, {t.lead_unit_id for t in ts if t.lead_unit_id})


def _names_of(
    session: Session, model: type[Category] | type[Area] | type[Unit], ids: set[int]
) -> dict[int, str]:
    if not ids:
        return {}
    return dict(session.execute(select(model.id, model.name).where(model.id.in_(ids))).tuples().all())
