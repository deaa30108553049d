"""Open311 GeoReport v2, the read side (issue 16; docs/INTEGRATIONS.md): discovery, which tickets are published,
GeoReport's request fields from a ticket, the list and its filters, tokens, mySociety's request updates and
the public photos. The intake side (POST) is `services.open311_intake`; keys `open311_keys`; services
`open311_catalogue`.

What is published (`Settings.open311_publish`): with "consented", the tickets taken in through Open311 and
those whose citizen agreed to publication (the portal's public board shows the same); with "all", every
ticket. Never a confidential one: it is neither listed nor fetched (404, as if it did not exist).

Personal data never leaves: no name, phone, e-mail or ID number field is mapped, and the texts that are (the
description, the public timeline's answers, a citizen's update) have phone numbers, ID numbers and e-mail
addresses replaced by *** and the citizen's name masked. Outside Open311's own tickets the address is masked
and the coordinates rounded to about 100 m.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import ColumnElement, and_, false, or_, select, true
from sqlalchemy.orm import Session

from minsheng.config import Settings
from minsheng.domain.digits import whole_number
from minsheng.domain.masking import mask_address, mask_name
from minsheng.domain.states import AssignmentState, Channel, Rating, TicketState, TransferTarget
from minsheng.domain.transitions import ACTION_LABELS
from minsheng.services.open311_keys import Open311Error
from minsheng.services.queries import PUBLIC_TIMELINE_KEYS
from minsheng.storage.models import Attachment, Category, Ticket, TimelineEvent, Unit

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
# The day this interface last changed in a way a client may care about (discovery's changeset).
CHANGESET = "2026-12-04T00:00:00+08:00"
FORMATS = ["text/xml", "application/json"]
# Times are given in the city's time (China has had no daylight saving time since 1991: a fixed offset).
LOCAL = timezone(timedelta(hours=8), "Asia/Shanghai")
MAX_DAYS = 90
MAX_PAGE_SIZE = 1000
MAX_IDS = 200
TOKEN_PREFIX = "open311:"
TOKEN_RE = re.compile(r"^[0-9a-f]{32}$")
NUMBER_RE = re.compile(r"^\d{8,20}$")
CITIZEN_UPDATE = "citizen_update"

# Closed for GeoReport: 结案 and every state after it, and the tickets that left us (transferred, merged).
CLOSED = frozenset({TicketState.CLOSED, TicketState.RATED, TicketState.TRANSFERRED, TicketState.MERGED})
# mySociety's richer statuses (servicerequestupdates), lower case as their schema has them.
EXTENDED_STATUS = {
    TicketState.ACCEPTED: "open",
    TicketState.DISPATCHED: "action_scheduled",
    TicketState.RETURNED: "open",
    TicketState.IN_PROGRESS: "in_progress",
    TicketState.PAUSED: "in_progress",
    TicketState.CLOSE_REQUESTED: "in_progress",
    TicketState.CLOSED: "closed",
    TicketState.RATED: "closed",
    TicketState.TRANSFERRED: "internal_referral",
    TicketState.MERGED: "duplicate",
}

_MOBILE = r"(?:\+?86[- ]?)?1[3-9]\d(?:[- ]?\d{4}){2}"
_LANDLINE = r"0\d{2,3}-?\d{7,8}"
_ID = r"\d{17}[\dXx]|\d{15}"
_PII = re.compile(rf"(?<![0-9A-Za-z])(?:{_MOBILE}|{_LANDLINE}|{_ID})(?![0-9A-Za-z])")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


# A unit's step (the assignment machine) as the request's status after it.
ASSIGNMENT_STATUS = {
    AssignmentState.PENDING: "action_scheduled",
    AssignmentState.SIGNED: "in_progress",
    AssignmentState.REPORTED: "in_progress",
    AssignmentState.CLOSE_REQUESTED: "in_progress",
    AssignmentState.CLOSED: "closed",
    AssignmentState.RETURNED: "open",
    AssignmentState.CANCELLED: "open",
}


def _event_status(e: TimelineEvent, t: Ticket) -> tuple[str, str]:
    """(mySociety status, our state code) after an event: the state it moved to, else the ticket's now."""
    if e.to_state and e.machine == "assignment" and e.to_state in AssignmentState.values():
        return ASSIGNMENT_STATUS[AssignmentState(e.to_state)], e.to_state
    state = e.to_state if e.to_state in TicketState.values() else t.state
    return EXTENDED_STATUS[TicketState(state)], str(state)


# ------------------------------------------------------------------------------------------------- common
def check_jurisdiction(settings: Settings, jurisdiction_id: str | None) -> None:
    """A request naming another jurisdiction than the city's gets 404 (none named: the city's)."""
    ours = settings.open311_jurisdiction_id
    if ours and jurisdiction_id and jurisdiction_id != ours:
        raise Open311Error(404, f"jurisdiction_id {jurisdiction_id[:100]} was not found")


def w3c(when: datetime | None) -> str | None:
    return when.astimezone(LOCAL).isoformat(timespec="seconds") if when is not None else None


def parse_when(value: str, name: str) -> datetime:
    """A W3C date and time; one without a zone is taken as the city's time."""
    try:
        when = datetime.fromisoformat(value.strip())
        if when.tzinfo is None:
            when = when.replace(tzinfo=LOCAL)
        when.astimezone(LOCAL)  # out of range near the year's ends
    except (ValueError, OverflowError):
        raise Open311Error(
            400, f"{name} must be a W3C date and time, e.g. 2026-12-01T00:00:00+08:00"
        ) from None
    return when


def scrub(text: str | None, citizen_name: str | None = None) -> str | None:
    """The text with phone numbers, ID numbers and e-mail addresses as *** and the citizen's name masked."""
    if not text:
        return text
    out = _EMAIL.sub("***", _PII.sub("***", text))
    if citizen_name and len(citizen_name) >= 2:
        out = out.replace(citizen_name, mask_name(citizen_name) or "")
    return out


def discovery(settings: Settings, base_url: str) -> dict[str, Any]:
    kind = "production" if settings.environment == "production" else "test"
    return {
        "changeset": CHANGESET,
        "contact": settings.open311_contact,
        "key_service": settings.open311_key_service,
        "endpoints": [
            {
                "specification": SPECIFICATION,
                "url": f"{base_url}/open311/v2",
                "changeset": CHANGESET,
                "type": kind,
                "formats": list(FORMATS),
            }
        ],
    }


# --------------------------------------------------------------------------------------------- publication
def published(settings: Settings) -> ColumnElement[bool]:
    """THE rule of what Open311 shows (module docstring), as a condition on tickets."""
    scope = (
        true()
        if settings.open311_publish == "all"
        else or_(Ticket.channel == Channel.OPEN311.value, Ticket.public_consent.is_(True))
    )
    return and_(Ticket.confidential.is_(False), scope)


def is_published(settings: Settings, t: Ticket) -> bool:
    if t.confidential:
        return False
    return settings.open311_publish == "all" or t.channel == Channel.OPEN311.value or t.public_consent


def _published_ticket(session: Session, settings: Settings, number: str) -> Ticket:
    t = session.scalar(select(Ticket).where(Ticket.number == number)) if NUMBER_RE.match(number) else None
    if t is None or not is_published(settings, t):
        raise Open311Error(404, f"service_request_id {number[:40]} was not found")
    return t


# ---------------------------------------------------------------------------------------------- the fields
def status_of(state: str) -> str:
    return "closed" if TicketState(state) in CLOSED else "open"


def _status_notes(t: Ticket, merged_into: str | None) -> str:
    state = TicketState(t.state)
    if state is TicketState.TRANSFERRED and t.transfer_target:
        return f"{state.label}（{TransferTarget(t.transfer_target).label}）"
    if state is TicketState.MERGED and merged_into:
        return f"{state.label}（见工单 {merged_into}）"
    return state.label


def event_text(action: str, payload: Mapping[str, Any], citizen_name: str | None) -> str:
    """A public timeline event as one line of Chinese: the step's name and what the citizen may read of it."""
    parts = [ACTION_LABELS.get(action, "群众补充" if action == CITIZEN_UPDATE else action)]
    shown = {k: v for k, v in payload.items() if k in PUBLIC_TIMELINE_KEYS or action == CITIZEN_UPDATE}
    unit = shown.get("lead_unit_name") or shown.get("unit_name")
    if unit:
        parts.append(str(unit))
    if shown.get("target"):
        try:
            parts.append(TransferTarget(str(shown["target"])).label)
        except ValueError:
            parts.append(str(shown["target"]))
    if shown.get("rating"):
        try:
            parts.append(Rating(str(shown["rating"])).label)
        except ValueError:
            parts.append(str(shown["rating"]))
    for k in ("answer", "summary", "text"):
        if shown.get(k):
            parts.append(scrub(str(shown[k]), citizen_name) or "")
    return "：".join([parts[0], "，".join(parts[1:])]) if len(parts) > 1 else parts[0]


@dataclass
class _Page:
    """What the views of a page of tickets need, loaded in a few queries for the whole page."""

    categories: dict[int, tuple[str, str]]
    units: dict[int, str]
    merged_into: dict[int, str]
    photos: dict[int, list[int]]
    events: dict[int, list[TimelineEvent]]


def _load_page(session: Session, tickets: Sequence[Ticket], *, events: bool) -> _Page:
    ids = [t.id for t in tickets]
    cat_ids = {t.category_id for t in tickets if t.category_id is not None}
    unit_ids = {t.lead_unit_id for t in tickets if t.lead_unit_id is not None}
    repeat_ids = {t.repeat_of_id for t in tickets if t.repeat_of_id is not None}
    cats = {
        r.id: (r.code, r.name)
        for r in session.execute(
            select(Category.id, Category.code, Category.name).where(Category.id.in_(cat_ids))
        )
    }
    units = dict(session.execute(select(Unit.id, Unit.name).where(Unit.id.in_(unit_ids))).tuples().all())
    numbers = dict(
        session.execute(select(Ticket.id, Ticket.number).where(Ticket.id.in_(repeat_ids))).tuples().all()
    )
    merged = {t.id: numbers[t.repeat_of_id] for t in tickets if t.repeat_of_id in numbers}
    photos: dict[int, list[int]] = {}
    public_events = select(TimelineEvent.id).where(TimelineEvent.ticket_id.in_(ids), TimelineEvent.public)
    q = (
        select(Attachment.ticket_id, Attachment.id)
        .where(Attachment.ticket_id.in_(ids), Attachment.event_id.in_(public_events))
        .order_by(Attachment.id)
    )
    for tid, aid in session.execute(q):
        photos.setdefault(tid, []).append(aid)
    timeline: dict[int, list[TimelineEvent]] = {}
    if events:
        q2 = (
            select(TimelineEvent)
            .where(TimelineEvent.ticket_id.in_(ids), TimelineEvent.public)
            .order_by(TimelineEvent.ticket_id, TimelineEvent.seq)
        )
        for e in session.scalars(q2):
            timeline.setdefault(e.ticket_id, []).append(e)
    return _Page(cats, units, merged, photos, timeline)


def media_url(base_url: str, attachment_id: int) -> str:
    return f"{base_url}/open311/v2/media/{attachment_id}"


def _view(t: Ticket, page: _Page, base_url: str, extensions: bool) -> dict[str, Any]:
    own = t.channel == Channel.OPEN311.value
    code, name = page.categories.get(t.category_id or 0, (None, None))
    photos = page.photos.get(t.id, [])
    lat, lon = t.lat, t.lon
    if not own and lat is not None and lon is not None:
        lat, lon = round(lat, 3), round(lon, 3)
    out: dict[str, Any] = {
        "service_request_id": t.number,
        "status": status_of(t.state),
        "status_notes": _status_notes(t, page.merged_into.get(t.id)),
        "service_name": name,
        "service_code": code,
        "description": scrub(t.detail, t.citizen_name),
        "agency_responsible": page.units.get(t.lead_unit_id or 0),
        "service_notice": None,
        "requested_datetime": w3c(t.created_at),
        "updated_datetime": w3c(t.updated_at),
        "expected_datetime": w3c(t.resolve_due_at),
        "address": scrub(t.address if own else mask_address(t.address), t.citizen_name),
        "address_id": None,
        "zipcode": None,
        "lat": lat,
        "long": lon,
        "media_url": media_url(base_url, photos[0]) if photos else None,
    }
    if extensions:
        out["extended_attributes"] = {
            "channel": t.channel,
            "state": t.state,
            "state_label": TicketState(t.state).label,
            "status_extended": EXTENDED_STATUS[TicketState(t.state)],
            "duplicate": t.state == TicketState.MERGED.value,
            "parent_service_request_id": page.merged_into.get(t.id),
            "closed_datetime": w3c(t.closed_at),
            "media_urls": [media_url(base_url, a) for a in photos],
        }
        out["notes"] = [
            {
                "datetime": w3c(e.at),
                "description": event_text(e.action, e.payload or {}, t.citizen_name),
                "type": e.action,
            }
            for e in page.events.get(t.id, [])
        ]
    return out


def views(
    session: Session, tickets: Sequence[Ticket], base_url: str, *, extensions: bool = False
) -> list[dict[str, Any]]:
    page = _load_page(session, tickets, events=extensions)
    return [_view(t, page, base_url, extensions) for t in tickets]


# ------------------------------------------------------------------------------------------------ the list
@dataclass(frozen=True)
class RequestQuery:
    ids: list[str] | None = None
    service_codes: list[str] | None = None
    start: datetime | None = None
    end: datetime | None = None
    statuses: list[str] | None = None
    page: int = 1
    page_size: int = MAX_PAGE_SIZE
    extensions: bool = False


def _csv(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _positive(value: str | None, name: str, default: int, most: int) -> int:
    if value is None or value == "":
        return default
    number = whole_number(value, 1, most)
    if number is None:
        raise Open311Error(400, f"{name} must be a whole number from 1 to {most}")
    return number


def date_range(start: str | None, end: str | None, now: datetime) -> tuple[datetime, datetime]:
    """[start, end] of at most MAX_DAYS (both included, as GeoReport has them); one end given, the other is
    MAX_DAYS away; none, the last MAX_DAYS."""
    s = parse_when(start, "start_date") if start else None
    e = parse_when(end, "end_date") if end else None
    if s is None:
        e = e or now
        s = e - timedelta(days=MAX_DAYS)
    elif e is None:
        e = s + timedelta(days=MAX_DAYS)
    if e < s:
        raise Open311Error(400, "end_date must not be before start_date")
    if e - s > timedelta(days=MAX_DAYS):
        raise Open311Error(400, f"start_date and end_date may not be more than {MAX_DAYS} days apart")
    return s, e


def parse_query(params: Mapping[str, str | None], now: datetime) -> RequestQuery:
    """GET requests' parameters checked (400 for a bad one): a service_request_id list overrides the rest."""
    page = _positive(params.get("page"), "page", 1, 1_000_000)
    size = _positive(params.get("page_size"), "page_size", MAX_PAGE_SIZE, MAX_PAGE_SIZE)
    extensions = (params.get("extensions") or "").lower() in ("true", "1", "yes")
    ids = _csv(params.get("service_request_id"))
    if ids:
        if len(ids) > MAX_IDS:
            raise Open311Error(400, f"at most {MAX_IDS} service_request_id values at once")
        return RequestQuery(ids=ids, page=page, page_size=size, extensions=extensions)
    statuses = _csv(params.get("status"))
    bad = [x for x in statuses if x not in ("open", "closed")]
    if bad:
        raise Open311Error(400, f"status must be open or closed, not {bad[0][:40]}")
    start, end = date_range(params.get("start_date"), params.get("end_date"), now)
    codes = _csv(params.get("service_code"))
    return RequestQuery(None, codes or None, start, end, statuses or None, page, size, extensions)


def _state_condition(statuses: Iterable[str]) -> ColumnElement[bool]:
    wanted = set(statuses)
    if wanted >= {"open", "closed"}:
        return true()
    closed = [s.value for s in CLOSED]
    if "closed" in wanted:
        return Ticket.state.in_(closed)
    if "open" in wanted:
        return Ticket.state.not_in(closed)
    return false()


def list_requests(
    session: Session, settings: Settings, q: RequestQuery, base_url: str
) -> list[dict[str, Any]]:
    """GET requests: the published tickets that match, newest first, one page."""
    cond = [published(settings)]
    if q.ids is not None:
        cond.append(Ticket.number.in_([i for i in q.ids if NUMBER_RE.match(i)]))
    else:
        assert q.start is not None and q.end is not None
        cond += [Ticket.created_at >= q.start, Ticket.created_at <= q.end]
        if q.service_codes:
            cat_ids = select(Category.id).where(Category.code.in_(q.service_codes))
            cond.append(Ticket.category_id.in_(cat_ids))
        if q.statuses:
            cond.append(_state_condition(q.statuses))
    stmt = (
        select(Ticket)
        .where(*cond)
        .order_by(Ticket.created_at.desc(), Ticket.id.desc())
        .limit(q.page_size)
        .offset((q.page - 1) * q.page_size)
    )
    return views(session, list(session.scalars(stmt)), base_url, extensions=q.extensions)


def one_request(
    session: Session, settings: Settings, number: str, base_url: str, *, extensions: bool
) -> list[dict[str, Any]]:
    """GET requests/{id}: one published ticket, in a list as the specification has it; 404 otherwise."""
    return views(session, [_published_ticket(session, settings, number)], base_url, extensions=extensions)


def token(session: Session, settings: Settings, value: str) -> list[dict[str, Any]]:
    """GET tokens/{token}: the service_request_id a POST's token stands for."""
    t = None
    if TOKEN_RE.match(value):
        t = session.scalar(select(Ticket).where(Ticket.idempotency_key == TOKEN_PREFIX + value))
    if t is None or not is_published(settings, t):
        raise Open311Error(404, f"token {value[:40]} was not found")
    return [{"service_request_id": t.number, "token": value}]


# ----------------------------------------------------------------------------------------- request updates
def updates(
    session: Session, settings: Settings, params: Mapping[str, str | None], now: datetime, base_url: str
) -> list[dict[str, Any]]:
    """GET servicerequestupdates (mySociety): the public timeline events of published tickets between
    start_date and end_date (default: the last MAX_DAYS), oldest first, one page."""
    start, end = date_range(params.get("start_date"), params.get("end_date"), now)
    page = _positive(params.get("page"), "page", 1, 1_000_000)
    size = _positive(params.get("page_size"), "page_size", MAX_PAGE_SIZE, MAX_PAGE_SIZE)
    stmt = (
        select(TimelineEvent, Ticket)
        .join(Ticket, Ticket.id == TimelineEvent.ticket_id)
        .where(TimelineEvent.at >= start, TimelineEvent.at <= end, TimelineEvent.public, published(settings))
        .order_by(TimelineEvent.at, TimelineEvent.id)
        .limit(size)
        .offset((page - 1) * size)
    )
    rows = session.execute(stmt).tuples().all()
    event_ids = [e.id for e, _ in rows]
    photo_of = dict(
        session.execute(select(Attachment.event_id, Attachment.id).where(Attachment.event_id.in_(event_ids)))
        .tuples()
        .all()
    )
    out = []
    for e, t in rows:
        status, code = _event_status(e, t)
        photo = photo_of.get(e.id)
        out.append(
            {
                "update_id": f"{t.number}-{e.seq}",
                "service_request_id": t.number,
                "status": status,
                "updated_datetime": w3c(e.at),
                "description": event_text(e.action, e.payload or {}, t.citizen_name),
                "media_url": media_url(base_url, photo) if photo else "",
                "external_status_code": code,
            }
        )
    return out


# -------------------------------------------------------------------------------------------------- photos
def public_photo(session: Session, settings: Settings, attachment_id: int) -> Attachment:
    """A photo of a published ticket's public timeline (the citizen's, a unit's feedback); 404 otherwise."""
    att = session.get(Attachment, attachment_id)
    if att is not None and att.event_id is not None:
        ev = session.get(TimelineEvent, att.event_id)
        t = session.get(Ticket, att.ticket_id)
        if ev is not None and ev.public and t is not None and is_published(settings, t):
            return att
    raise Open311Error(404, f"media {attachment_id} was not found")
