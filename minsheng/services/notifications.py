"""Notifications: writing the in-app inbox and the outbox inside a use case's transaction, delivering the
outbox afterwards with retries (minsheng.notify), and reading a user's inbox.

Delivery never holds a database transaction open while it talks to a gateway: due rows are first *claimed*
(their ``next_attempt_at`` pushed one lease ahead, so a second worker passes them by), then sent, then their
new state is written. A worker that dies mid-send leaves rows that come due again when the lease ends; one
that is told to stop (or has spent its pass's time) hands back the rows it claimed and has not sent yet.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from minsheng.config import Settings
from minsheng.notify.channels import (
    DINGTALK,
    EMAIL,
    SMS,
    WECOM,
    DeliveryResult,
    DingTalkRobotSender,
    Message,
    Sender,
    SmsGatewaySender,
    SmtpSender,
    SmtpSettings,
    WeComRobotSender,
)
from minsheng.notify.delivery import OutboxState, RetryPolicy, after_attempt, make_message_id
from minsheng.notify.wechat_mp import WECHAT, WeChatServiceSender
from minsheng.services.errors import NotFound
from minsheng.services.records import fields
from minsheng.storage import dialect
from minsheng.storage.db import Database
from minsheng.storage.timelimit_tables import Notification, OutboxMessage

log = logging.getLogger("minsheng.notifications")

# How long a claimed row stays out of other workers' way while it is being sent.
CLAIM_LEASE = timedelta(minutes=5)


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=settings.retry_max_attempts, base_delay=timedelta(seconds=settings.retry_base_seconds)
    )


def build_senders(settings: Settings) -> dict[str, Sender]:
    """The configured channels; a channel without settings has no sender (and gets no outbox rows)."""
    out: dict[str, Sender] = {}
    t = settings.send_timeout_seconds
    if settings.sms_gateway_url:
        out[SMS] = SmsGatewaySender(
            settings.sms_gateway_url, token=settings.sms_gateway_token, sign=settings.sms_sign, timeout=t
        )
    if settings.wecom_webhook_url:
        out[WECOM] = WeComRobotSender(settings.wecom_webhook_url, timeout=t)
    if settings.dingtalk_webhook_url:
        out[DINGTALK] = DingTalkRobotSender(
            settings.dingtalk_webhook_url, secret=settings.dingtalk_secret, timeout=t
        )
    if settings.smtp_host:
        out[EMAIL] = SmtpSender(
            SmtpSettings(
                host=settings.smtp_host,
                port=settings.smtp_port,
                sender=settings.smtp_from,
                username=settings.smtp_user,
                password=settings.smtp_password,
                starttls=settings.smtp_starttls,
                use_ssl=settings.smtp_ssl,
                timeout=t,
            )
        )
    if settings.wechat_app_id and settings.wechat_app_secret:  # the official account's 客服消息
        out[WECHAT] = WeChatServiceSender(
            settings.wechat_app_id, settings.wechat_app_secret, api_base=settings.wechat_api_base, timeout=t
        )
    return out


# ----------------------------------------------------------------------------------------------- writing
def add_inbox(
    session: Session,
    *,
    kind: str,
    title: str,
    text: str,
    now: datetime,
    source: str,
    user_id: int | None = None,
    unit_id: int | None = None,
    ticket_id: int | None = None,
) -> None:
    session.add(
        Notification(
            user_id=user_id,
            unit_id=unit_id if user_id is None else None,
            ticket_id=ticket_id,
            kind=kind,
            title=title,
            text=text,
            source=source[:220],
            created_at=now,
        )
    )


def enqueue(
    session: Session,
    *,
    kind: str,
    channel: str,
    title: str,
    text: str,
    now: datetime,
    source: str,
    recipient: str = "",
    mention: Iterable[str] = (),
    ticket_id: int | None = None,
) -> str:
    """Add one outbox row; the same source, channel and recipient give the same message id (stored once)."""
    message_id = make_message_id(source, channel, recipient)
    stmt = (
        dialect.insert(session)(OutboxMessage)
        .values(
            message_id=message_id,
            kind=kind,
            channel=channel,
            recipient=recipient,
            mention=list(mention),
            title=title,
            text=text,
            ticket_id=ticket_id,
            status="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["message_id"])
    )
    session.execute(stmt)
    return message_id


# ---------------------------------------------------------------------------------------------- delivery
@dataclass
class DeliveryStats:
    claimed: int = 0
    attempted: int = 0
    sent: int = 0
    retrying: int = 0
    dead: int = 0
    released: int = 0  # claimed, then handed back unsent because the caller asked to stop
    errors: list[str] = field(default_factory=list)


def deliver_due(
    db: Database,
    now: datetime,
    senders: Mapping[str, Sender],
    *,
    retry: RetryPolicy | None = None,
    worker_id: str = "worker",
    limit: int = 200,
    halt: Callable[[], bool] | None = None,
) -> DeliveryStats:
    """Send the outbox rows due at ``now`` (up to ``limit``) once each, and record each attempt's outcome.

    ``halt`` is asked before each message: once it says so (the worker was told to stop, or the pass has spent
    its time), the rows claimed but not yet sent are handed back at once, due as they were, instead of waiting
    for their lease to end."""
    retry = retry or RetryPolicy()
    stats = DeliveryStats()
    with db.write_sessions() as session, session.begin():
        q = (
            select(OutboxMessage)
            .where(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now)
            .order_by(OutboxMessage.next_attempt_at)
            .limit(limit)
        )
        if not db.is_sqlite:
            q = q.with_for_update(skip_locked=True)
        rows = list(session.scalars(q))
        claimed = [
            (
                row.id,
                row.next_attempt_at,
                OutboxState(row.message_id, "pending", row.attempts, None, row.last_error or ""),
                row.channel,
                Message(row.message_id, row.text, row.title, row.recipient, tuple(row.mention or ())),
            )
            for row in rows
        ]
        for row in rows:
            row.next_attempt_at = now + CLAIM_LEASE
            row.locked_by = worker_id
    stats.claimed = len(claimed)
    for i, (row_id, _, state, channel, message) in enumerate(claimed):
        if halt is not None and halt():
            stats.released = _release(db, claimed[i:], worker_id)
            break
        stats.attempted += 1
        new = after_attempt(state, _send(senders, channel, message, now), now, retry)
        if new.status == "sent":
            stats.sent += 1
        elif new.status == "dead":
            stats.dead += 1
            stats.errors.append(f"{message.message_id} ({channel}): {new.last_error}")
            log.warning("outbox %s (%s) gave up: %s", message.message_id, channel, new.last_error)
        else:
            stats.retrying += 1
            log.info("outbox %s (%s) will retry: %s", message.message_id, channel, new.last_error)
        with db.write_sessions() as session, session.begin():
            session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == row_id)
                .values(
                    status=new.status,
                    attempts=new.attempts,
                    next_attempt_at=new.next_attempt_at or now,
                    last_error=new.last_error or None,
                    sent_at=new.sent_at,
                    locked_by=None,
                )
            )
    return stats


def _send(senders: Mapping[str, Sender], channel: str, message: Message, now: datetime) -> DeliveryResult:
    sender = senders.get(channel)
    if sender is None:
        return DeliveryResult(False, True, f"no sender configured for channel {channel!r}")
    try:
        return sender.send(message, now)
    except Exception as err:  # a sender must never stop the worker
        return DeliveryResult(False, False, f"unexpected error: {type(err).__name__} {err}")


def _release(db: Database, rows: Sequence[tuple[int, datetime, Any, Any, Any]], worker_id: str) -> int:
    """Hand claimed rows back unsent: due again when they were due before the claim, and unleased."""
    with db.write_sessions() as session, session.begin():
        for row_id, due, *_ in rows:
            session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id == row_id,
                    OutboxMessage.locked_by == worker_id,
                    OutboxMessage.status == "pending",
                )
                .values(next_attempt_at=due, locked_by=None)
            )
    return len(rows)


# ----------------------------------------------------------------------------------------------- reading
def inbox(
    session: Session, user_id: int, unit_id: int | None, *, unread_only: bool = False, limit: int = 50
) -> list[Notification]:
    """A user's inbox: what was sent to them, and what was sent to their unit as a whole."""
    mine = Notification.user_id == user_id
    if unit_id is not None:
        mine = or_(mine, (Notification.unit_id == unit_id) & Notification.user_id.is_(None))
    q = select(Notification).where(mine).order_by(Notification.created_at.desc(), Notification.id.desc())
    if unread_only:
        q = q.where(Notification.read_at.is_(None))
    return list(session.scalars(q.limit(limit)))


def mark_read(
    session: Session, user_id: int, unit_id: int | None, ids: Iterable[int] | None, now: datetime
) -> int:
    """Mark some (or, with ``ids=None``, all) of a user's notifications read; returns how many changed."""
    mine = Notification.user_id == user_id
    if unit_id is not None:
        mine = or_(mine, (Notification.unit_id == unit_id) & Notification.user_id.is_(None))
    q = update(Notification).where(mine, Notification.read_at.is_(None)).values(read_at=now)
    if ids is not None:
        wanted = list(ids)
        owned = set(session.scalars(select(Notification.id).where(mine, Notification.id.in_(wanted))))
        missing = [i for i in wanted if i not in owned]
        if missing:
            raise NotFound(f"notification(s) not found: {missing}")
        q = q.where(Notification.id.in_(wanted))
    return int(session.execute(q).rowcount or 0)  # type: ignore[attr-defined]


def notification_json(n: Notification) -> dict[str, Any]:
    return fields(
        n, "id", "kind", "title", "text", "ticket_id", "created_at", "read_at", to_unit=n.user_id is None
    )
