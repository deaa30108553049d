"""Notifications (issue 4): message templates, in-app, SMS gateway, WeCom, DingTalk and SMTP, with retries.

`templates` renders the Chinese texts, `channels` formats and sends them, `delivery` decides retries for the
outbox worker. Nothing here touches the database or reads the system clock.
"""

from minsheng.notify.channels import (
    DeliveryResult,
    DingTalkRobotSender,
    InAppSender,
    Message,
    Sender,
    SmsGatewaySender,
    SmtpSender,
    SmtpSettings,
    WeComRobotSender,
)
from minsheng.notify.delivery import (
    OutboxState,
    RetryPolicy,
    after_attempt,
    deliver,
    make_message_id,
    next_attempt_at,
)
from minsheng.notify.templates import TEMPLATES, RenderedMessage, TemplateError, render, validate_template

__all__ = [
    "TEMPLATES",
    "DeliveryResult",
    "DingTalkRobotSender",
    "InAppSender",
    "Message",
    "OutboxState",
    "RenderedMessage",
    "RetryPolicy",
    "Sender",
    "SmsGatewaySender",
    "SmtpSender",
    "SmtpSettings",
    "TemplateError",
    "WeComRobotSender",
    "after_attempt",
    "deliver",
    "make_message_id",
    "next_attempt_at",
    "render",
    "validate_template",
]
