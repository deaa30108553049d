"""What the admin page shows of the linkage: the partners, and the recent transfers with their delivery state."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from minsheng.services.partners.registry import list_partners, partner_json
from minsheng.storage.models import Ticket
from minsheng.storage.partner_tables import Partner, PartnerTransfer
from minsheng.storage.timelimit_tables import OutboxMessage


def _state(link: PartnerTransfer, outbox: tuple[str, int, str | None] | None) -> str:
    if link.direction == "in":
        return "closed" if link.closed_at else "open"
    if link.closed_at:
        return "closed"
    if link.result_at:
        return "result"
    if link.acked_at:
        return "acked"
    if outbox is not None and outbox[0] == "dead":
        return "undelivered"
    if link.escalated_at:
        return "escalated"
    if link.warned_at:
        return "warned"
    return "sent" if outbox is not None and outbox[0] == "sent" else "sending"


def recent_transfers(session: Session, limit: int = 50) -> list[dict[str, Any]]:
    """The newest transfers both ways, with the outbox's attempts and last error for outbound ones."""
    q = (
        select(PartnerTransfer, Partner.code, Ticket.number)
        .join(Partner, Partner.id == PartnerTransfer.partner_id)
        .join(Ticket, Ticket.id == PartnerTransfer.ticket_id)
        .order_by(PartnerTransfer.id.desc())
        .limit(limit)
    )
    rows = session.execute(q).all()
    ids = [r[0].message_id for r in rows if r[0].message_id]
    outbox = {
        m: (status, attempts, err)
        for m, status, attempts, err in session.execute(
            select(
                OutboxMessage.message_id,
                OutboxMessage.status,
                OutboxMessage.attempts,
                OutboxMessage.last_error,
            ).where(OutboxMessage.message_id.in_(ids))
        )
    }
    out = []
    for link, code, number in rows:
        ob = outbox.get(link.message_id or "")
        out.append(
            {
                "partner": code,
                "ticket": number,
                "direction": link.direction,
                "incident_id": link.incident_id,
                "created_at": link.created_at,
                "acked_at": link.acked_at,
                "state": _state(link, ob),
                "attempts": ob[1] if ob else None,
                "last_error": (ob[2] or "")[:200] if ob else "",
            }
        )
    return out


def overview(session: Session) -> dict[str, Any]:
    return {
        "partners": [partner_json(p) for p in list_partners(session)],
        "transfers": recent_transfers(session),
    }
