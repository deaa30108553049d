"""Tables of the linkage with 110 and peer hotlines (issue 16, section 3): the partner registry, the transfers
exchanged with each partner, and the receipts that make a partner's repeated message count once.

The shared secret signs every message both ways (HMAC-SHA256, `notify.partner`), so it is stored as it is (a
hash could not sign); it is shown once, when the partner is added, and only its last characters afterwards.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from minsheng.storage.models import Base, BigId


class Partner(Base):
    """A peer system (110, 119, 12315 …): where we post, the secret both sides sign with, what it takes and
    sends. Disabling keeps the row (its transfers stay readable)."""

    __tablename__ = "partners"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    endpoint_url: Mapped[str] = mapped_column(String(500))
    secret: Mapped[str] = mapped_column(String(128))
    # The last characters of the secret, so that an administrator can tell which one is configured.
    secret_hint: Mapped[str] = mapped_column(String(8))
    # Our category codes whose tickets go to this partner when transferred to "other" (a 110 takes "110").
    takes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # The category codes a transfer from this partner may carry (empty: any; none given: triage decides).
    sends: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # Minutes after sending without the partner's acknowledgement: a warning, then an escalation.
    ack_warn_minutes: Mapped[int] = mapped_column(default=15)
    ack_escalate_minutes: Mapped[int] = mapped_column(default=30)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class PartnerTransfer(Base):
    """One ticket exchanged with a partner.

    direction "in": the partner sent it (``incident_id`` is the partner's own id, unique per partner: a repeated
    post finds the same ticket). direction "out": we transferred it (``incident_id`` arrives with the partner's
    acknowledgement); ``warn_at``/``escalate_at`` are when the missing acknowledgement warns and escalates.
    """

    __tablename__ = "partner_transfers"
    __table_args__ = (
        UniqueConstraint("partner_id", "direction", "incident_id", name="uq_partner_transfers_incident"),
        UniqueConstraint("partner_id", "direction", "ticket_id", name="uq_partner_transfers_ticket"),
        Index("ix_partner_transfers_ticket", "ticket_id"),
        Index("ix_partner_transfers_waiting", "direction", "acked_at", "warn_at"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"))
    ticket_id: Mapped[int] = mapped_column(BigId, ForeignKey("tickets.id"))
    direction: Mapped[str] = mapped_column(String(4))
    incident_id: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime]
    # The outbox message that carried an outbound transfer (its delivery state is the outbox row's).
    message_id: Mapped[str | None] = mapped_column(String(64))
    acked_at: Mapped[datetime | None]
    warn_at: Mapped[datetime | None]
    escalate_at: Mapped[datetime | None]
    warned_at: Mapped[datetime | None]
    escalated_at: Mapped[datetime | None]
    result_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]


class PartnerReceipt(Base):
    """A message received from a partner, by its key (``ack:<ticket>``, ``result:<result_id>``): the second
    arrival of the same message finds its receipt and changes nothing."""

    __tablename__ = "partner_receipts"
    __table_args__ = (UniqueConstraint("partner_id", "key", name="uq_partner_receipts_key"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"))
    key: Mapped[str] = mapped_column(String(160))
    transfer_id: Mapped[int] = mapped_column(BigId, ForeignKey("partner_transfers.id"))
    received_at: Mapped[datetime]


__all__ = ["Partner", "PartnerReceipt", "PartnerTransfer"]
