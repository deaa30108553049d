"""A partner's answers to our outbound transfers: the acknowledgement, and results, onto the ticket's timeline.

Each is signed (`signing`), refers to our ticket number, and is recorded once: a receipt keyed by the message
(``ack:<ticket>``, ``result:<result_id>``) makes a repeated post answer "duplicate" and change nothing. A result
that arrives before any acknowledgement acknowledges the transfer too.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import select
from sqlalchemy.orm import Session

from minsheng.domain.roles import Actor, Role
from minsheng.services.errors import NotFound
from minsheng.services.partners.signing import parse, signed_partner
from minsheng.services.ticket_core import EngineCore, locked
from minsheng.storage.models import Ticket
from minsheng.storage.partner_tables import Partner, PartnerReceipt, PartnerTransfer

Line = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class Ack(BaseModel):
    model_config = ConfigDict(extra="ignore")
    ticket: Annotated[str, StringConstraints(pattern=r"^\d{8,20}$")]
    incident_id: Line
    note: str | None = Field(default=None, max_length=2000)


class Result(Ack):
    result_id: Line
    text: str = Field(min_length=1, max_length=5000)
    final: bool = False
    # Whether the citizen may read the text when tracking the ticket: the partner decides (a police result may
    # name people); by default only the hotline's staff see it.
    public: bool = False


def _actor(partner: Partner) -> Actor:
    return Actor(role=Role.SYSTEM, name=f"{partner.name}（{partner.code}）"[:64])


def _transfer(session: Session, partner: Partner, number: str) -> tuple[Ticket, PartnerTransfer]:
    """Our ticket ``number`` as transferred to ``partner`` (the ticket locked: one answer at a time)."""
    t = session.scalar(locked(select(Ticket).where(Ticket.number == number)))
    link = None
    if t is not None:
        link = session.scalar(
            select(PartnerTransfer).where(
                PartnerTransfer.partner_id == partner.id,
                PartnerTransfer.ticket_id == t.id,
                PartnerTransfer.direction == "out",
            )
        )
    if t is None or link is None:
        raise NotFound(f"ticket {number} was not transferred to partner {partner.code}")
    return t, link


def _first_time(session: Session, partner: Partner, link: PartnerTransfer, key: str, now: datetime) -> bool:
    """Record the receipt ``key``; False when it was received before (the caller then changes nothing)."""
    seen = session.scalar(
        select(PartnerReceipt.id).where(PartnerReceipt.partner_id == partner.id, PartnerReceipt.key == key)
    )
    if seen is not None:
        return False
    session.add(PartnerReceipt(partner_id=partner.id, key=key[:160], transfer_id=link.id, received_at=now))
    return True


def _acknowledge(
    engine: EngineCore,
    session: Session,
    partner: Partner,
    t: Ticket,
    link: PartnerTransfer,
    a: Ack,
    now: datetime,
) -> None:
    link.acked_at = now
    link.incident_id = a.incident_id
    payload = {
        "partner": partner.code,
        "partner_name": partner.name,
        "incident_id": a.incident_id,
        "note": a.note,
    }
    engine.record_note(session, t, _actor(partner), "partner_ack", now, payload, public=True)


def record_ack(
    engine: EngineCore,
    session: Session,
    code: str,
    headers: Mapping[str, str],
    body: bytes,
    now: datetime,
    tolerance: int,
) -> dict[str, Any]:
    partner = signed_partner(session, code, headers, body, now, tolerance)
    a = parse(Ack, body)
    t, link = _transfer(session, partner, a.ticket)
    if link.acked_at is not None or not _first_time(session, partner, link, f"ack:{t.number}", now):
        return {"ticket": t.number, "status": "duplicate"}
    _acknowledge(engine, session, partner, t, link, a, now)
    return {"ticket": t.number, "status": "acknowledged"}


def record_result(
    engine: EngineCore,
    session: Session,
    code: str,
    headers: Mapping[str, str],
    body: bytes,
    now: datetime,
    tolerance: int,
) -> dict[str, Any]:
    partner = signed_partner(session, code, headers, body, now, tolerance)
    r = parse(Result, body)
    t, link = _transfer(session, partner, r.ticket)
    if not _first_time(session, partner, link, f"result:{r.result_id}", now):
        return {"ticket": t.number, "status": "duplicate"}
    if link.acked_at is None:
        _acknowledge(engine, session, partner, t, link, r, now)
    link.result_at = now
    if r.final:
        link.closed_at = now
    payload = {
        "partner": partner.code,
        "partner_name": partner.name,
        "incident_id": r.incident_id,
        "result_id": r.result_id,
        "text": r.text,
        "final": r.final,
    }
    if r.public:
        payload["summary"] = r.text  # the key the citizen's timeline shows
    engine.record_note(session, t, _actor(partner), "partner_result", now, payload, public=r.public)
    return {"ticket": t.number, "status": "recorded"}
