"""The one interface of the channel adapters (issue 16): an adapter checks its sender's signature and turns what
its gateway sent into `InboundMessage`s; `receive` then does the same for every channel, in the caller's
transaction:

1. claims the message's (channel, external id) in `channel_messages`: a message delivered twice is answered the
   second time with the first answer, and nothing is done again;
2. reads what the citizen meant (`intent`): a rating ("1" … "4", SMS), tracking (a ticket number), an addition
   to the caller's open ticket ("补充…"), or a new request;
3. does it through the ticket engine: a new request goes through the ordinary `intake` (numbered, triaged and
   dispatched like any other), a rating through `rate`, an addition as a public `citizen_update` note;
4. records the outcome and the answer for the citizen.

Signatures are checked before anything is read from the database (`SignatureRefused`, 403): a refused message
leaves no trace. Photos are checked and written to disk by the caller before the transaction (`save_photos`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from minsheng.domain.digits import whole_number
from minsheng.domain.roles import Actor, Role
from minsheng.domain.states import Channel, Rating, TicketState
from minsheng.services import schemas as s
from minsheng.services.attachments import Blob, record_attachment, save_blob
from minsheng.services.errors import Invalid, ServiceError
from minsheng.services.ticket_core import locked
from minsheng.services.tickets import PREPARED_KEY, TicketEngine
from minsheng.storage import dialect
from minsheng.storage.channel_tables import ChannelMessage
from minsheng.storage.models import Ticket

#: The action of a citizen's addition on the timeline (the label 群众补充 is the domain's).
CITIZEN_UPDATE = "citizen_update"
NUMBER_RE = re.compile(r"^\s*(\d{13})\s*$")
#: "补充 …", "追加：…", optionally naming the ticket: "补充 2026112100001 路灯还是不亮".
SUPPLEMENT_RE = re.compile(r"^\s*(?:补充|追加)\s*[:：]?\s*(\d{13})?\s*[:：,，]?\s*(.*)$", re.S)
RATING_DIGITS = {
    "1": Rating.SATISFIED,
    "2": Rating.BASICALLY_SATISFIED,
    "3": Rating.BASICALLY_DISSATISFIED,
    "4": Rating.DISSATISFIED,
}
OPEN_STATES = frozenset(
    {
        TicketState.ACCEPTED.value,
        TicketState.DISPATCHED.value,
        TicketState.RETURNED.value,
        TicketState.IN_PROGRESS.value,
        TicketState.PAUSED.value,
        TicketState.CLOSE_REQUESTED.value,
    }
)


class SignatureRefused(ServiceError):
    """The sender could not be verified: nothing is read or stored."""

    status = 403
    code = "bad_signature"


@dataclass(frozen=True)
class Photo:
    filename: str
    data: bytes


@dataclass(frozen=True)
class InboundMessage:
    """One message of a channel, as its adapter read it."""

    channel: Channel
    external_id: str
    sender: str  # a phone number, a WeChat openid, an e-mail address, a grid worker's user name
    text: str
    received_at: datetime
    title: str | None = None
    photos: tuple[Photo, ...] = ()
    lat: float | None = None
    lon: float | None = None
    address: str | None = None
    citizen_name: str | None = None
    citizen_phone: str | None = None
    #: Where replies go when the ticket does not keep it (an e-mail address, an openid).
    reply_to: str | None = None
    #: The area the request is in when the channel knows it (a grid worker's grid).
    area_code: str | None = None
    #: A unit the request is for from the start (a leader's mailbox): dispatched there at intake.
    unit_code: str | None = None
    #: Which intents the channel allows (a WeChat or mail message is never a rating digit).
    ratings: bool = False


@dataclass
class Outcome:
    """What a message became, and the answer for the citizen (zh-CN)."""

    outcome: str  # intake, rating, note, track, unmatched
    reply: str
    ticket_number: str | None = None
    query_code: str | None = None
    duplicate: bool = False
    ticket: Ticket | None = field(default=None, repr=False)


@dataclass(frozen=True)
class GatewayRequest:
    """What a gateway sent, as the adapter needs it: the signature may be in the headers (generic gateways) or
    in the query string (WeChat), and is computed over the body's exact bytes."""

    headers: Mapping[str, str]
    query: Mapping[str, str]
    body: bytes


class Adapter(Protocol):
    """What every push channel's adapter offers (SMS, WeChat; the mailbox is read by `email.poll`)."""

    channel: Channel

    def verify(self, request: GatewayRequest, now: datetime) -> None:
        """Raise `SignatureRefused` unless the request comes from the channel's gateway."""

    def parse(self, request: GatewayRequest, now: datetime) -> InboundMessage | None:
        """The message the gateway sent (None: nothing for intake, e.g. an event); `Invalid` (422) when it
        cannot be read."""


@dataclass(frozen=True)
class Context:
    """What a channel's use case needs of the platform (services never see the platform itself)."""

    engine: TicketEngine
    now: datetime
    hotline_name: str
    #: Outbound channels that have a sender configured: replies go only where they can be delivered.
    outbound: frozenset[str]
    attachments_dir: Path
    max_attachment_bytes: int


# ------------------------------------------------------------------------------------------ signatures
def hmac_signature(secret: str, timestamp: str, body: bytes) -> str:
    """The generic gateways' signature: hex HMAC-SHA256 of ``timestamp + "." + raw body``."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify_hmac(
    secret: str | None, headers: Mapping[str, str], body: bytes, now: datetime, max_age: int
) -> None:
    """Check ``X-Minsheng-Timestamp`` (epoch seconds, within ``max_age`` of now) and ``X-Minsheng-Signature``."""
    if not secret:
        raise SignatureRefused("this channel has no shared secret configured: inbound messages are refused")
    stamp = headers.get("x-minsheng-timestamp", "")
    given = headers.get("x-minsheng-signature", "")
    seconds = whole_number(stamp, 0, 10**12 - 1)
    if seconds is None or not given:
        raise SignatureRefused("X-Minsheng-Timestamp and X-Minsheng-Signature are required")
    if abs(now.timestamp() - seconds) > max_age:
        raise SignatureRefused("the signature's timestamp is too old or in the future")
    if not hmac.compare_digest(hmac_signature(secret, stamp, body), given.lower()):
        raise SignatureRefused("the signature does not match")


def sender_hash(channel: Channel, sender: str) -> str:
    return hashlib.sha256(f"{channel.value}:{sender.strip().lower()}".encode()).hexdigest()


# ------------------------------------------------------------------------------------------ intents
@dataclass(frozen=True)
class Intent:
    kind: str  # rating, track, supplement, intake
    rating: Rating | None = None
    number: str | None = None
    text: str = ""


def intent(message: InboundMessage) -> Intent:
    """What the citizen meant, from the text alone (no database)."""
    text = message.text.strip()
    if message.ratings and text in RATING_DIGITS:
        return Intent("rating", rating=RATING_DIGITS[text])
    m = NUMBER_RE.match(text)
    if m:
        return Intent("track", number=m.group(1))
    m = SUPPLEMENT_RE.match(text)
    if m and m.group(2).strip():
        return Intent("supplement", number=m.group(1), text=m.group(2).strip())
    return Intent("intake", text=text)


def intake_request(message: InboundMessage) -> s.IntakeRequest:
    """The intake request of a new message; `Invalid` (422) when a field cannot be taken."""
    try:
        return s.IntakeRequest(
            channel=message.channel,
            title=message.title,
            detail=message.text,
            address=message.address,
            lat=message.lat,
            lon=message.lon,
            area_code=message.area_code,
            citizen_name=message.citizen_name,
            citizen_phone=message.citizen_phone,
            external_id=message.external_id[:100],
        )
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "message"
        raise Invalid(f"the message cannot be taken in: {where}: {first.get('msg')}", field=where) from None


def prepare(
    engine: TicketEngine, message: InboundMessage, now: datetime
) -> tuple[s.IntakeRequest, Any] | None:
    """For a new request: the intake request and its triage analysis, made before the transaction (no
    database work: on SQLite every writer waits for the one holding the lock)."""
    if intent(message).kind != "intake":
        return None
    req = intake_request(message)
    return req, engine.prepare_triage(req, now)


def save_photos(root: Path, photos: Sequence[Photo], max_bytes: int) -> list[Blob]:
    """Check, clean and store a message's photos before the transaction; a file that is not a usable image is
    left out (a mail's signature logo, a PDF) rather than refusing the citizen's message."""
    out: list[Blob] = []
    for p in photos[:10]:
        try:
            out.append(save_blob(root, p.filename or "photo.jpg", p.data, max_bytes))
        except ServiceError:
            continue
    return out


# ------------------------------------------------------------------------------------------ receiving
def actor_of(message: InboundMessage) -> Actor:
    return Actor(role=Role.INTEGRATION, name=f"{message.channel.label}渠道"[:64])


def receive(
    session: Session,
    engine: TicketEngine,
    message: InboundMessage,
    now: datetime,
    *,
    prepared: tuple[s.IntakeRequest, Any] | None = None,
    photos: Sequence[Blob] = (),
    actor: Actor | None = None,
) -> Outcome:
    """Take one message in, in the caller's transaction (see the module docstring). ``actor``: who takes it
    in when a person does (a grid worker); else the channel itself (an integration)."""
    claimed = session.scalar(
        dialect.insert(session)(ChannelMessage)
        .values(
            channel=message.channel.value,
            external_id=message.external_id,
            sender_hash=sender_hash(message.channel, message.sender),
            reply_to=message.reply_to,
            received_at=now,
            outcome="pending",
        )
        .on_conflict_do_nothing(index_elements=["channel", "external_id"])
        .returning(ChannelMessage.id)
    )
    if claimed is None:
        return _replayed(session, message)
    what = intent(message)
    if what.kind == "rating":
        out = _rate(session, engine, message, what, now)
    elif what.kind == "track":
        out = _track(session, message, what)
    elif what.kind == "supplement":
        out = _supplement(session, engine, message, what, now, photos)
    else:
        out = _intake(session, engine, message, now, prepared, photos, actor)
    row = session.get(ChannelMessage, claimed)
    assert row is not None
    row.outcome = out.outcome
    row.ticket_id = out.ticket.id if out.ticket is not None else None
    # The query code is stored only as a hash on the ticket: a replay is answered without it.
    row.reply = out.reply.replace(f"，查询码{out.query_code}", "") if out.query_code else out.reply
    return out


def _replayed(session: Session, message: InboundMessage) -> Outcome:
    row = session.scalar(
        select(ChannelMessage).where(
            ChannelMessage.channel == message.channel.value, ChannelMessage.external_id == message.external_id
        )
    )
    assert row is not None
    t = session.get(Ticket, row.ticket_id) if row.ticket_id else None
    return Outcome(row.outcome, row.reply or "", t.number if t else None, None, True, t)


def _intake(
    session: Session,
    engine: TicketEngine,
    message: InboundMessage,
    now: datetime,
    prepared: tuple[s.IntakeRequest, Any] | None,
    photos: Sequence[Blob],
    actor: Actor | None,
) -> Outcome:
    if prepared is not None:
        req, analysis = prepared
        if analysis is not None:
            session.info[PREPARED_KEY] = (req, analysis)
    else:
        req = intake_request(message)
    actor = actor or actor_of(message)
    ticket, code, _ = engine.intake(session, actor, req, now)
    session.info.pop(PREPARED_KEY, None)
    for blob in photos:
        record_attachment(session, engine, ticket, actor, blob, now, public=True)
    if message.unit_code and ticket.state == TicketState.ACCEPTED.value:
        # A mailbox whose unit no longer takes tickets must not lose the letter: it then waits for a dispatcher.
        try:
            with session.begin_nested():
                engine.dispatch(
                    session,
                    Actor.system("领导信箱"),
                    ticket.number,
                    s.Dispatch(lead_unit=message.unit_code, note="领导信箱来信，按信箱转办"),
                    now,
                )
        except ServiceError:
            pass
    assert code is not None
    reply = f"您的诉求已受理，工单编号{ticket.number}，查询码{code}。发送工单编号可查询办理进度。"
    return Outcome("intake", reply, ticket.number, code, False, ticket)


def _rate(
    session: Session, engine: TicketEngine, message: InboundMessage, what: Intent, now: datetime
) -> Outcome:
    """A rating digit: for the sender's ticket that was last asked for a rating (closed, not yet rated by the
    citizen). The rating SMS went to the ticket's phone, so the phone finds an SMS sender's tickets; on other
    channels, the tickets the sender opened there."""
    candidates = session.scalars(
        _sender_tickets(session, message, (TicketState.CLOSED.value, TicketState.RATED.value))
        .order_by(Ticket.closed_at.desc(), Ticket.id.desc())
        .limit(5)
    )
    for t in candidates:
        try:
            engine.rate(session, Actor.citizen(), t.number, s.Rate(rating=what.rating), now)
        except ServiceError:
            continue  # already rated by the citizen: the next one back may still wait
        assert what.rating is not None
        reply = f"感谢您对工单{t.number}的评价（{what.rating.label}）。"
        return Outcome("rating", reply, t.number, None, False, t)
    return Outcome("unmatched", "未找到待评价的工单。如需反映新问题，请直接发送问题描述。")


def _track(session: Session, message: InboundMessage, what: Intent) -> Outcome:
    """Tracking by number: only for a ticket this sender opened on this channel (a number alone reveals
    nothing to anyone else)."""
    t = session.scalar(select(Ticket).where(Ticket.number == what.number))
    mine = (
        t is not None
        and session.scalar(
            select(ChannelMessage.id)
            .where(
                ChannelMessage.ticket_id == t.id,
                ChannelMessage.sender_hash == sender_hash(message.channel, message.sender),
                ChannelMessage.outcome == "intake",
            )
            .limit(1)
        )
        is not None
    )
    if t is None or not mine:
        return Outcome("unmatched", "未找到您提交的该编号工单。请核对编号，或在网上凭编号和查询码查询。")
    return Outcome(
        "track", f"工单{t.number}当前状态：{TicketState(t.state).label}。", t.number, None, False, t
    )


def _supplement(
    session: Session,
    engine: TicketEngine,
    message: InboundMessage,
    what: Intent,
    now: datetime,
    photos: Sequence[Blob],
) -> Outcome:
    """ "补充…": added to the caller's open ticket (the one named, else the newest), as a public note."""
    mine = _sender_tickets(session, message)
    if what.number:
        mine = mine.where(Ticket.number == what.number)
    t = session.scalar(locked(mine.order_by(Ticket.created_at.desc(), Ticket.id.desc()).limit(1)))
    if t is None:
        return Outcome(
            "unmatched", "未找到您正在办理的工单。如需反映新问题，请直接发送问题描述（不以“补充”开头）。"
        )
    payload = {"text": what.text[:5000], "channel": message.channel.value}
    engine.record_note(session, t, actor_of(message), CITIZEN_UPDATE, now, payload, public=True)
    for blob in photos:
        record_attachment(session, engine, t, actor_of(message), blob, now, public=True)
    t.updated_at = now
    return Outcome("note", f"您的补充内容已加入工单{t.number}。", t.number, None, False, t)


def _sender_tickets(session: Session, message: InboundMessage, states: Iterable[str] = OPEN_STATES) -> Any:
    """The sender's tickets in ``states``: by phone for SMS, else those the sender opened on this channel."""
    q = select(Ticket).where(Ticket.state.in_(list(states)))
    if message.channel is Channel.SMS:
        return q.where(Ticket.citizen_phone == message.sender)
    opened = select(ChannelMessage.ticket_id).where(
        ChannelMessage.sender_hash == sender_hash(message.channel, message.sender),
        ChannelMessage.outcome == "intake",
    )
    return q.where(Ticket.id.in_(opened))
