"""The SMS channel: a generic HTTP gateway posts each received SMS (upstream, 上行短信) to us, signed with a
shared secret; answers go back through the outbox's SMS sender (`notify.channels.SmsGatewaySender`).

Inbound (POST /api/v1/channels/sms/inbound), JSON::

    {"message_id": "gw-20261121-000123", "from": "13800138000", "text": "幸福路12号路灯不亮", "name": "张先生"}

with headers ``X-Minsheng-Timestamp`` (epoch seconds) and ``X-Minsheng-Signature`` (hex HMAC-SHA256 of
``timestamp + "." + raw body`` with `Settings.channel_sms_secret`).

What the text does: "1" … "4" rate the caller's ticket last asked for a rating (the closing SMS asks "回复数字
评价"); a ticket number alone asks its state; "补充 …" adds to the caller's open ticket; anything else opens a
ticket. The acceptance SMS (number and query code) and the closing SMS with the rating request are the time
limits' citizen messages (`timelimits.messages`); the other answers are sent from here.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.orm import Session

from minsheng.domain.states import Channel
from minsheng.notify.channels import SMS
from minsheng.services.channels.base import (
    Context,
    GatewayRequest,
    InboundMessage,
    Outcome,
    prepare,
    receive,
    verify_hmac,
)
from minsheng.services.errors import Invalid
from minsheng.services.notifications import enqueue
from minsheng.services.schemas import PHONE_RE


class SmsInbound(BaseModel):
    """One upstream SMS as the gateway posts it."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, populate_by_name=True)

    message_id: str = Field(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")
    sender: str = Field(alias="from", min_length=3, max_length=32)
    text: str = Field(min_length=1, max_length=2000)
    name: str | None = Field(default=None, max_length=64)


class SmsAdapter:
    channel = Channel.SMS

    def __init__(self, secret: str | None, max_age: int) -> None:
        self.secret, self.max_age = secret, max_age

    def verify(self, request: GatewayRequest, now: datetime) -> None:
        verify_hmac(self.secret, request.headers, request.body, now, self.max_age)

    def parse(self, request: GatewayRequest, now: datetime) -> InboundMessage:
        try:
            data = SmsInbound.model_validate(json.loads(request.body))
        except (ValueError, ValidationError) as e:
            raise Invalid(f"not an SMS the gateway format describes: {str(e)[:300]}", field="body") from None
        phone = data.sender.replace(" ", "").replace("-", "")
        if phone.startswith("+86"):
            phone = phone[3:]
        if not PHONE_RE.match(phone):
            raise Invalid("from must be a phone number", field="from")
        return InboundMessage(
            channel=Channel.SMS,
            external_id=data.message_id,
            sender=phone,
            text=data.text,
            received_at=now,
            citizen_name=data.name or None,
            citizen_phone=phone,
            ratings=True,
        )


def inbound(session: Session, ctx: Context, adapter: SmsAdapter, request: GatewayRequest) -> dict[str, Any]:
    """The gateway's POST: verified and read before the transaction's first query, then taken in."""
    adapter.verify(request, ctx.now)
    message = adapter.parse(request, ctx.now)
    out = receive(session, ctx.engine, message, ctx.now, prepared=prepare(ctx.engine, message, ctx.now))
    if not out.duplicate:
        answer(session, ctx, message, out)
    return {
        "message_id": message.external_id,
        "outcome": out.outcome,
        "ticket": out.ticket_number,
        "duplicate": out.duplicate,
    }


def answer(session: Session, ctx: Context, message: InboundMessage, out: Outcome) -> None:
    """The answer SMS, through the outbox. A new ticket's acceptance SMS (with the query code) is the time
    limits' `ticket_accepted_sms`, sent for every intake with a phone: not sent twice."""
    if out.outcome == "intake" or SMS not in ctx.outbound:
        return
    enqueue(
        session,
        kind="channel_reply",
        channel=SMS,
        title="短信回复",
        text=f"【{ctx.hotline_name}】{out.reply}",
        now=ctx.now,
        source=f"channel:sms:{message.external_id}",
        recipient=message.sender,
        ticket_id=out.ticket.id if out.ticket is not None else None,
    )
