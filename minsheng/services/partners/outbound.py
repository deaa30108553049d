"""What we send to partners, through the outbox (channel ``partner``, retried with backoff by the worker).

`PartnerReporter` is a subscriber of the ticket engine (`EngineCore.subscribers`): inside the transaction of
each step it

- sends an outbound transfer: a ticket transferred to 110/119 … (or to "other", to the partner that takes its
  category) is posted to that partner, and a `PartnerTransfer` row waits for the acknowledgement, with the times
  at which a missing one warns and escalates (`deadlines`);
- reports back to the partner that sent a ticket: signed by the lead unit, its feedback, closed (and reopened).

Nothing here talks to the network: the outbox row is committed with the step, and the worker delivers it.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from minsheng.domain.states import Channel
from minsheng.notify.delivery import make_message_id
from minsheng.notify.partner import PARTNER
from minsheng.services.notifications import enqueue
from minsheng.services.partners.registry import partner_for_transfer
from minsheng.services.ticket_core import DomainEvent
from minsheng.storage.models import Category, Ticket
from minsheng.storage.partner_tables import Partner, PartnerTransfer

#: Channels whose tickets may have come from a partner (only these are looked up on each step).
PARTNER_CHANNELS = frozenset({Channel.TRANSFER_110.value, Channel.PARTNER.value})
#: Steps reported back to the partner that sent the ticket, and the event name the partner sees.
REPORTED = {
    "lead_signed": "signed",
    "feedback": "feedback",
    "request_close": "feedback",
    "review_accept": "closed",
    "answer_directly": "closed",
    "reopen": "reopened",
}
UNIT_REPORTED = frozenset({"feedback", "request_close"})
TEXT_FIELDS = ("text", "summary", "answer", "note")


def _body(message_type: str, **fields: Any) -> str:
    return json.dumps(
        {"type": message_type, **fields}, ensure_ascii=False, separators=(",", ":"), default=str
    )


def _post(
    session: Session, partner: Partner, t: Ticket, source: str, title: str, body: str, now: datetime
) -> str:
    return enqueue(
        session,
        kind="partner",
        channel=PARTNER,
        title=title,
        text=body,
        now=now,
        source=source,
        recipient=partner.code,
        ticket_id=t.id,
    )


def transfer_body(
    session: Session, t: Ticket, partner: Partner, target: str, note: str | None, now: datetime
) -> str:
    """The outbound transfer as the partner receives it (the caller's contact is included: the partner acts)."""
    category = (
        session.scalar(select(Category.code).where(Category.id == t.category_id)) if t.category_id else None
    )
    return _body(
        "transfer",
        ticket=t.number,
        target=target,
        title=t.title,
        detail=t.detail,
        address=t.address,
        lat=t.lat,
        lon=t.lon,
        category=category,
        kind=t.kind,
        urgency=t.urgency,
        caller={"name": t.citizen_name, "phone": t.citizen_phone},
        note=note,
        created_at=t.created_at.isoformat(),
        transferred_at=now.isoformat(),
        acks=f"/api/v1/partners/{partner.code}/acks",
        results=f"/api/v1/partners/{partner.code}/results",
    )


def send_transfer(
    session: Session, t: Ticket, target: str, note: str | None, now: datetime
) -> PartnerTransfer | None:
    """Queue the ticket for the partner of ``target`` and wait for its acknowledgement (None: no partner)."""
    partner = partner_for_transfer(session, target, t.category_id)
    if partner is None:
        return None
    body = transfer_body(session, t, partner, target, note, now)
    message_id = _post(session, partner, t, f"partner-transfer:{t.id}:{t.event_count}", "transfer", body, now)
    link = session.scalar(
        select(PartnerTransfer).where(
            PartnerTransfer.partner_id == partner.id,
            PartnerTransfer.direction == "out",
            PartnerTransfer.ticket_id == t.id,
        )
    )
    if link is None:
        link = PartnerTransfer(partner_id=partner.id, ticket_id=t.id, direction="out", created_at=now)
        session.add(link)
    link.message_id = message_id
    link.acked_at = link.warned_at = link.escalated_at = None
    link.warn_at = now + timedelta(minutes=partner.ack_warn_minutes)
    link.escalate_at = now + timedelta(minutes=partner.ack_escalate_minutes)
    return link


def report_back(session: Session, ev: DomainEvent, now: datetime) -> str | None:
    """Tell the partner that sent the ticket about one of its steps; the outbox message id, or None."""
    t = ev.ticket
    event = REPORTED.get(ev.action)
    if event is None or t.channel not in PARTNER_CHANNELS:
        return None
    # Of a unit's own steps only its feedback (and the lead's summary) is news; signing, closing and reopening
    # are reported once, as the ticket's step (a reopen is published for the ticket and for the assignment).
    if ev.assignment is not None and ev.action not in UNIT_REPORTED:
        return None
    row = session.execute(
        select(PartnerTransfer, Partner)
        .join(Partner, Partner.id == PartnerTransfer.partner_id)
        .where(PartnerTransfer.ticket_id == t.id, PartnerTransfer.direction == "in")
    ).first()
    if row is None:
        return None
    link, partner = row
    text = next((ev.payload[k] for k in TEXT_FIELDS if ev.payload.get(k)), None)
    body = _body(
        "status",
        event=event,
        ticket=t.number,
        incident_id=link.incident_id,
        state=t.state,
        unit=ev.payload.get("unit_name"),
        text=text,
        at=now.isoformat(),
    )
    if event == "closed":
        link.closed_at = now
    source = f"partner-status:{t.id}:{ev.event.seq}"
    return _post(session, partner, t, source, event, body, now)


class PartnerReporter:
    """The engine subscriber (see the module docstring)."""

    def __call__(self, session: Session, ev: DomainEvent, now: datetime) -> None:
        if ev.action == "transfer":
            send_transfer(session, ev.ticket, str(ev.payload.get("target", "")), ev.payload.get("note"), now)
            return
        report_back(session, ev, now)


def message_id_for(source: str, code: str) -> str:
    """The outbox message id of a partner message (as `enqueue` derives it)."""
    return make_message_id(source, PARTNER, code)
