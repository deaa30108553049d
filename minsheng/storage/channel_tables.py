"""Tables of the channel adapters (issue 16): every inbound channel message seen (the idempotency record), the
hotline's call records, and the leaders' mailboxes (领导信箱) with the unit each routes to."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from minsheng.storage.models import Base, BigId


class ChannelMessage(Base):
    """One inbound message of a channel, stored once per (channel, external_id): the gateway's own message id.

    `outcome` says what it became (intake, rating, note, track, unmatched); `ticket_id` the ticket it opened or
    touched; `reply` the answer the citizen was given, so a gateway that delivers the message again gets the
    same answer and nothing is done twice. `sender_hash` (SHA-256 of channel and sender) lets a WeChat user
    track the tickets they opened without storing the sender twice; `reply_to` is the address replies go to
    (an e-mail address, a WeChat openid; empty for SMS, whose ticket keeps the phone)."""

    __tablename__ = "channel_messages"
    __table_args__ = (
        UniqueConstraint("channel", "external_id", name="uq_channel_messages_channel_external"),
        Index("ix_channel_messages_ticket", "ticket_id"),
        Index("ix_channel_messages_sender", "sender_hash", "received_at"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(128))
    sender_hash: Mapped[str] = mapped_column(String(64))
    reply_to: Mapped[str | None] = mapped_column(String(200))
    received_at: Mapped[datetime]
    outcome: Mapped[str] = mapped_column(String(16))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    reply: Mapped[str | None] = mapped_column(Text)


class CallRecord(Base):
    """A call of the hotline's telephony system: who called, when, how long, which agent took it, where the
    recording is; linked to the ticket the agent registered during the call (matched by the caller's number
    and the time of the call, or named by the telephony system)."""

    __tablename__ = "call_records"
    __table_args__ = (Index("ix_call_records_started", "started_at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(String(100), unique=True)
    caller: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime]
    duration_seconds: Mapped[int] = mapped_column(Integer)
    agent: Mapped[str] = mapped_column(String(64))
    recording_ref: Mapped[str | None] = mapped_column(String(500))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    created_at: Mapped[datetime]


class LeaderMailbox(Base):
    """A leader's mailbox (领导信箱): mail to `address` becomes a ticket dispatched to `unit_id`."""

    __tablename__ = "leader_mailboxes"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    address: Mapped[str] = mapped_column(String(200), unique=True)
    leader_name: Mapped[str] = mapped_column(String(64))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    created_at: Mapped[datetime]


__all__ = ["CallRecord", "ChannelMessage", "LeaderMailbox"]
