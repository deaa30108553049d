"""Open311 GeoReport v2, the write side (issue 16): POST requests becomes a ticket through the platform's
ordinary intake (the intake writer, channel `open311`, so it is triaged and dispatched like any other), and
mySociety's POST servicerequestupdates adds a citizen's update to a ticket's timeline.

Idempotency: a submission's token is a hash of the integration's key id and the submission (every field but
api_key and jurisdiction_id), or of the key id and the client's `Idempotency-Key` header when it sends one.
The ticket's idempotency key is `open311:<token>`, so the same submission twice makes one ticket (the second
answer names the first), and `tokens/{token}` finds it. A client that sends its own key with a different
submission gets 400.

Personal data: first_name/last_name become the ticket's citizen name and phone its phone (both masked
wherever the platform masks them, never shown by Open311); email, device_id and account_id are not stored
(account_id is echoed back, as the specification has it).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select

from minsheng.config import Settings
from minsheng.domain.clock import Clock
from minsheng.domain.roles import Actor, Role
from minsheng.domain.states import Channel
from minsheng.services import schemas as s
from minsheng.services.errors import Conflict, NotFound, ServiceError
from minsheng.services.intake_writer import IntakeWriter
from minsheng.services.open311 import (
    CITIZEN_UPDATE,
    NUMBER_RE,
    TOKEN_PREFIX,
    check_jurisdiction,
    is_published,
    parse_when,
)
from minsheng.services.open311_catalogue import MAX_TEXT, checked_attributes, service
from minsheng.services.open311_keys import Integration, Open311Error, authorise
from minsheng.services.ticket_core import locked
from minsheng.services.tickets import TicketEngine
from minsheng.storage.db import Database
from minsheng.storage.models import Ticket, TimelineEvent

Form = Mapping[str, list[str]]
_ATTRIBUTE = re.compile(r"^attribute\[([^\]]{1,50})\](\[\])?$")
_NOT_HASHED = {"api_key", "jurisdiction_id"}
_CJK = re.compile(r"[\u3400-\u9fff]")
_URL = re.compile(r"^https?://[^\s]{1,490}$")


def first(form: Form, name: str) -> str | None:
    values = form.get(name)
    return values[0].strip() if values else None


def _attributes(form: Form) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, values in form.items():
        m = _ATTRIBUTE.match(key)
        if m:
            out.setdefault(m.group(1), []).extend(values)
    return out


def _token(who: Integration, form: Form, explicit: str | None) -> str:
    if explicit:
        basis: Any = [who.key_id, "key", explicit]
    else:
        basis = [who.key_id, sorted((k, v) for k, v in form.items() if k not in _NOT_HASHED)]
    return hashlib.sha256(json.dumps(basis, ensure_ascii=False).encode()).hexdigest()[:32]


def _coordinates(form: Form) -> tuple[float | None, float | None]:
    lat, lon = first(form, "lat"), first(form, "long")
    if not lat and not lon:
        return None, None
    try:
        la, lo = float(lat or ""), float(lon or "")
    except ValueError:
        raise Open311Error(400, "lat and long must both be given, as decimal degrees") from None
    if not (math.isfinite(la) and math.isfinite(lo) and -90 <= la <= 90 and -180 <= lo <= 180):
        raise Open311Error(400, "lat must be within -90..90 and long within -180..180")
    return la, lo


def _name(form: Form) -> str | None:
    given, family = first(form, "first_name") or "", first(form, "last_name") or ""
    # A Chinese name is written family name first, without a space; others as given, family.
    name = family + given if _CJK.search(given + family) else f"{given} {family}".strip()
    return name[:64] or None


def _detail(description: str, attrs: list[tuple[str, str]], media: str | None, service_name: str) -> str:
    parts = [description] if description else []
    if attrs:
        parts.append("【附加信息】\n" + "\n".join(f"{k}：{v}" for k, v in attrs))
    if media:
        parts.append(f"【图片链接】{media}")
    return "\n\n".join(parts) or f"（Open311 报告：{service_name}）"


def _first_error(e: ValidationError) -> str:
    err = e.errors()[0]
    field = ".".join(str(x) for x in err.get("loc", ())) or "request"
    names = {
        "lon": "long",
        "address": "address_string",
        "citizen_phone": "phone",
        "citizen_name": "first_name",
    }
    return f"{names.get(field, field)}: {str(err.get('msg', '')).removeprefix('Value error, ')}"


def build_request(
    db: Database, who: Integration, form: Form, explicit_key: str | None
) -> tuple[s.IntakeRequest, str]:
    """The intake request a POST stands for, and its token; Open311Error 400/404 for what is wrong with it."""
    code = first(form, "service_code")
    if not code:
        raise Open311Error(400, "service_code was not provided")
    with db.read_sessions() as session, session.begin():
        svc = service(session, code)
    attrs = checked_attributes(svc, _attributes(form))
    lat, lon = _coordinates(form)
    address = first(form, "address_string") or first(form, "address_id")
    if lat is None and not address:
        raise Open311Error(400, "a location is required: lat and long, address_string or address_id")
    description = first(form, "description") or ""
    if len(description) > MAX_TEXT:
        raise Open311Error(400, f"description is longer than {MAX_TEXT} characters")
    media = first(form, "media_url")
    if media and not _URL.match(media):
        raise Open311Error(400, "media_url must be an http or https URL of at most 500 characters")
    token = _token(who, form, explicit_key)
    try:
        req = s.IntakeRequest(
            channel=Channel.OPEN311,
            category_code=svc.code,
            title=(first(form, "title") or None),
            detail=_detail(description, attrs, media, svc.name),
            address=address[:300] if address else None,
            lat=lat,
            lon=lon,
            citizen_name=_name(form),
            citizen_phone=first(form, "phone") or None,
            external_id=token,
            idempotency_key=TOKEN_PREFIX + token,
        )
    except ValidationError as e:
        raise Open311Error(400, _first_error(e)) from None
    return req, token


def submit(
    db: Database,
    intake: IntakeWriter,
    settings: Settings,
    clock: Clock,
    form: Form,
    *,
    explicit_key: str | None = None,
) -> tuple[list[dict[str, Any]], bool]:
    """POST requests: ([{service_request_id, token, service_notice, account_id}], created). Blocks the calling
    thread (never the event loop) until the ticket is committed."""
    check_jurisdiction(settings, first(form, "jurisdiction_id"))
    who = authorise(db, settings, clock, first(form, "api_key"))
    req, token = build_request(db, who, form, explicit_key)
    actor = Actor(role=Role.INTEGRATION, name=f"Open311 {who.name}"[:64])
    try:
        number, _code, created = intake.submit_sync(actor, req, clock.now())
    except Conflict:
        raise Open311Error(400, "this Idempotency-Key was already used for a different request") from None
    except NotFound as e:
        raise Open311Error(404, e.message) from None
    except ServiceError as e:
        raise Open311Error(400, e.message) from None
    notice = f"已受理，工单号 {number}" if created else f"此前已受理，工单号 {number}"
    answer = {
        "service_request_id": number,
        "token": token,
        "service_notice": notice,
        "account_id": first(form, "account_id"),
    }
    return [answer], created


# ---------------------------------------------------------------------------------------- request updates
def post_update(
    db: Database, engine: TicketEngine, settings: Settings, clock: Clock, form: Form
) -> list[dict[str, Any]]:
    """POST servicerequestupdates (mySociety): the citizen's update as a public note on the timeline of a
    ticket taken in through Open311. Idempotent on the client's update_id (or update_id_ext). The update's
    `status` (OPEN, CLOSED …) is kept in the note: a citizen's word changes no state; staff act on it."""
    check_jurisdiction(settings, first(form, "jurisdiction_id"))
    who = authorise(db, settings, clock, first(form, "api_key"))
    number = first(form, "service_request_id") or ""
    client_id = first(form, "update_id") or first(form, "update_id_ext")
    description = first(form, "description") or ""
    if not number:
        raise Open311Error(400, "service_request_id was not provided")
    if not client_id or len(client_id) > 100:
        raise Open311Error(400, "update_id was not provided (at most 100 characters)")
    if not description or len(description) > MAX_TEXT:
        raise Open311Error(400, f"description is required (at most {MAX_TEXT} characters)")
    try:
        s.clean_text(description)
    except ValueError:
        raise Open311Error(400, "description holds a control character") from None
    if "\x00" in description:
        raise Open311Error(400, "description holds a NUL character")
    when = first(form, "updated_datetime")
    status = (first(form, "status") or "").upper()[:40] or None
    media = first(form, "media_url")
    if media and not re.match(r"^https?://\S{1,490}$", media):
        raise Open311Error(400, "media_url must be an http or https URL of at most 500 characters")
    payload = {
        "text": description,
        "status": status,
        "client_update_id": client_id,
        "integration": who.name,
        "key_id": who.key_id,
        "client_datetime": parse_when(when, "updated_datetime").isoformat() if when else None,
        "media_url": media,
    }
    now = clock.now()
    with db.write_sessions() as session, session.begin():
        t = (
            session.scalar(locked(select(Ticket).where(Ticket.number == number)))
            if NUMBER_RE.match(number)
            else None
        )
        if t is None or not is_published(settings, t) or t.channel != Channel.OPEN311.value:
            raise Open311Error(404, f"service_request_id {number[:40]} was not found")
        earlier = session.scalars(
            select(TimelineEvent).where(
                TimelineEvent.ticket_id == t.id, TimelineEvent.action == CITIZEN_UPDATE
            )
        )
        mine = (client_id, who.key_id)
        same = next(
            (
                e
                for e in earlier
                if ((e.payload or {}).get("client_update_id"), (e.payload or {}).get("key_id")) == mine
            ),
            None,
        )
        if same is None:
            actor = Actor(role=Role.INTEGRATION, name=f"Open311 {who.name}"[:64])
            same = engine.record_note(session, t, actor, CITIZEN_UPDATE, now, payload, public=True)
            t.updated_at = now
            session.flush()
        return [{"update_id": f"{t.number}-{same.seq}"}]
