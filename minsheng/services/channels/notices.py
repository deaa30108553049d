"""Back out to the citizen on the channel they wrote from: the closing notice of a ticket taken in by e-mail
(or a leader's mailbox) is mailed to the address the answer went to, and that of a WeChat ticket is sent to the
citizen's openid as a customer-service message asking for the rating (a reply "1" … "4" rates it), both through
the outbox. (SMS tickets get the time limits' closing SMS with the rating request.) A new phone ticket is also
linked to the call record it was registered during, when the record came first (`calls.link_new_ticket`)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from minsheng.domain.states import Channel
from minsheng.notify.channels import EMAIL
from minsheng.notify.wechat_mp import WECHAT
from minsheng.services.channels.calls import link_new_ticket
from minsheng.services.notifications import enqueue
from minsheng.services.ticket_core import DomainEvent
from minsheng.storage.channel_tables import ChannelMessage

MAIL_CHANNELS = frozenset({Channel.EMAIL.value, Channel.MAILBOX.value})
CLOSING = frozenset({"review_accept", "answer_directly"})


class ChannelNotices:
    """An engine subscriber (registered in `bootstrap.build` when an SMTP sender is configured)."""

    def __init__(self, hotline_name: str, outbound: Iterable[str]) -> None:
        self.hotline_name = hotline_name
        self.outbound = frozenset(outbound)

    def __call__(self, session: Session, ev: DomainEvent, now: datetime) -> None:
        t = ev.ticket
        if ev.action == "intake":
            link_new_ticket(session, t)
            return
        if ev.action not in CLOSING:
            return
        if t.channel in MAIL_CHANNELS and EMAIL in self.outbound:
            channel = EMAIL
            text = (
                f"您反映的诉求（工单编号{t.number}）已办结。可凭工单编号和查询码在网上查询办理结果并评价；"
                f"如仍有问题，请回复本邮件，以“补充”开头说明。\n\n—— {self.hotline_name}热线"
            )
        elif t.channel == Channel.WECHAT.value and WECHAT in self.outbound:
            channel = WECHAT
            text = (
                f"您反映的诉求（工单编号{t.number}）已办结。请回复数字评价办理结果："
                "1满意 2基本满意 3基本不满意 4不满意。"
            )
        else:
            return
        address = session.scalar(
            select(ChannelMessage.reply_to)
            .where(ChannelMessage.ticket_id == t.id, ChannelMessage.outcome == "intake")
            .limit(1)
        )
        if not address:
            return
        enqueue(
            session,
            kind="channel_closed",
            channel=channel,
            title=f"工单{t.number}已办结",
            text=text,
            now=now,
            source=f"ticket:{t.id}:channel_closed:{t.reopen_count}",
            recipient=address,
            ticket_id=t.id,
        )
