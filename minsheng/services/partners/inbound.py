"""A partner's transfer to us (110's non-police calls, 12315's, 12333's …) becomes a ticket.

The signed post is checked first (`signing`): nothing is stored for an unknown partner, a bad signature or a bad
body. The ticket is made by the process's intake writer, the same path as every other intake (triage, number,
timeline); its channel is ``transfer_110`` for 110 and ``partner`` for the others. A `PartnerTransfer` row,
written in the intake's own transaction, ties the partner's incident id to the ticket, unique per partner: a
partner that posts the same incident again (its retry after a lost answer) gets the same ticket. The answer is
the acknowledgement with our ticket number; signed, fed back and closed are reported later (`outbound`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import select
from sqlalchemy.orm import Session

from minsheng.domain.roles import Actor, Role
from minsheng.domain.states import Channel, Urgency
from minsheng.services import schemas as s
from minsheng.services.errors import Conflict, Invalid
from minsheng.services.intake_writer import IntakeWriter
from minsheng.services.partners.signing import parse, signed_partner
from minsheng.storage.db import Database
from minsheng.storage.models import Category, Ticket
from minsheng.storage.partner_tables import Partner, PartnerTransfer

Line = Annotated[str, StringConstraints(strip_whitespace=True, max_length=300)]


class Caller(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)] | None = None
    phone: str | None = Field(default=None, max_length=32)


class InboundTransfer(BaseModel):
    """What a partner posts (unknown fields are ignored, so a partner may send more than we read)."""

    model_config = ConfigDict(extra="ignore")
    incident_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    text: str = Field(min_length=1, max_length=s.MAX_DETAIL)
    title: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None = None
    address: Line | None = None
    lat: float | None = None
    lon: float | None = None
    caller: Caller | None = None
    category: str | None = Field(default=None, max_length=32)
    urgency: Urgency | None = None


def _key(partner: Partner, incident_id: str) -> str:
    # The intake's own idempotency: two posts of one incident racing each other still make one ticket.
    return "partner:" + hashlib.sha256(f"{partner.code}\x1f{incident_id}".encode()).hexdigest()[:48]


def _existing(session: Session, partner_id: int, incident_id: str) -> str | None:
    return session.scalar(
        select(Ticket.number)
        .join(PartnerTransfer, PartnerTransfer.ticket_id == Ticket.id)
        .where(
            PartnerTransfer.partner_id == partner_id,
            PartnerTransfer.direction == "in",
            PartnerTransfer.incident_id == incident_id,
        )
    )


def _request(partner: Partner, m: InboundTransfer) -> s.IntakeRequest:
    if m.category and partner.sends and m.category not in partner.sends:
        raise Invalid(
            f"category {m.category!r} is not among those partner {partner.code} sends", field="category"
        )
    channel = Channel.TRANSFER_110 if partner.code == "110" else Channel.PARTNER
    caller = m.caller or Caller()
    data: dict[str, Any] = {
        "channel": channel,
        "detail": m.text,
        "title": m.title,
        "address": m.address,
        "lat": m.lat,
        "lon": m.lon,
        "category_code": m.category,
        "urgency": m.urgency,
        "citizen_name": caller.name,
        "citizen_phone": caller.phone,
        "external_id": m.incident_id,
        "idempotency_key": _key(partner, m.incident_id),
    }
    try:
        return s.IntakeRequest.model_validate(data)
    except ValueError as e:
        raise Invalid(f"invalid transfer: {e}") from None


def receive_transfer(
    db: Database,
    intake: IntakeWriter,
    code: str,
    headers: Mapping[str, str],
    body: bytes,
    now: datetime,
    tolerance: int,
) -> tuple[dict[str, Any], bool]:
    """The acknowledgement of a partner's transfer (our ticket number) and whether the ticket is new."""
    with db.read_sessions() as session, session.begin():
        partner = signed_partner(session, code, headers, body, now, tolerance)
        m = parse(InboundTransfer, body)
        req = _request(partner, m)
        if m.category and session.scalar(select(Category.id).where(Category.code == m.category)) is None:
            raise Invalid(f"unknown category {m.category!r}", field="category")
        number = _existing(session, partner.id, m.incident_id)
        partner_id, partner_name = partner.id, partner.name
    ack = {"incident_id": m.incident_id, "status": "accepted"}
    if number is not None:
        return {**ack, "ticket": number}, False
    actor = Actor(role=Role.INTEGRATION, name=f"{partner_name}（{code}）"[:64])

    def link(session: Session, t: Ticket) -> str:
        if _existing(session, partner_id, m.incident_id) is None:
            session.add(
                PartnerTransfer(
                    partner_id=partner_id,
                    ticket_id=t.id,
                    direction="in",
                    incident_id=m.incident_id,
                    created_at=now,
                )
            )
        return t.number

    try:
        number, _, created = intake.submit_sync(actor, req, now, render=link)
    except Conflict:
        # The same incident id posted earlier with a different text: still the same ticket.
        with db.read_sessions() as session, session.begin():
            number = _existing(session, partner_id, m.incident_id)
        if number is None:
            raise
        created = False
    return {**ack, "ticket": number}, created
