"""Notification channels: message formats and senders for in-app, SMS gateway, WeCom, DingTalk and SMTP.

Every sender has ``send(message, now) -> DeliveryResult`` and never raises for delivery problems: a failure
is reported as *retryable* (timeouts, connection errors, 5xx, 429, a robot's rate limit) or *permanent*
(4xx, a rejected address, a robot that says the webhook or its signature is wrong), so the outbox can decide
what to do (see `delivery`). ``now`` is passed in because DingTalk's signature needs a timestamp.

Each message carries ``message_id`` (stable across retries): the SMS gateway gets it as the
``message_id`` field and the ``Idempotency-Key`` header, webhooks as an ``X-Message-Id`` header, email
as ``Message-ID``. A receiver that deduplicates on it gets the message once even when an
acknowledgement was lost. The public robots of WeCom and DingTalk ignore the header; for them delivery
is at-least-once after an ambiguous timeout.

The ``*_payload`` functions build the exact JSON each service documents, so they can be tested without I/O.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any, Protocol

import httpx

IN_APP = "inapp"
SMS = "sms"
WECOM = "wecom"
DINGTALK = "dingtalk"
EMAIL = "email"
CHANNELS: tuple[str, ...] = (IN_APP, SMS, WECOM, DINGTALK, EMAIL)

# Robot errcodes that will not get better by retrying (wrong webhook, token, signature, keyword or IP list).
DINGTALK_PERMANENT_ERRCODES = frozenset({300001, 310000})
WECOM_PERMANENT_ERRCODES = frozenset({93000})


@dataclass(frozen=True)
class Message:
    """One message to one destination.

    ``to`` is a phone number (SMS), an email address (email) or a user id (in-app); robots post to their
    configured group and use ``mention_mobiles`` to @ people.
    """

    message_id: str
    text: str
    title: str = ""
    to: str = ""
    mention_mobiles: tuple[str, ...] = ()
    markdown: bool = True


@dataclass(frozen=True)
class DeliveryResult:
    ok: bool
    permanent: bool = False
    detail: str = ""

    @property
    def retryable(self) -> bool:
        return not self.ok and not self.permanent


DELIVERED = DeliveryResult(True, False, "delivered")


class Sender(Protocol):
    channel: str

    def send(self, message: Message, now: datetime) -> DeliveryResult: ...


def classify_http_status(status: int, body: str = "") -> DeliveryResult:
    """2xx ok; 408, 429 and 5xx retryable; any other status (4xx, unfollowed 3xx) permanent."""
    snippet = body[:200]
    if 200 <= status < 300:
        return DeliveryResult(True, False, f"HTTP {status}")
    if status in (408, 429) or status >= 500:
        return DeliveryResult(False, False, f"HTTP {status} {snippet}".strip())
    return DeliveryResult(False, True, f"HTTP {status} {snippet}".strip())


def _robot_result(response: httpx.Response, permanent_codes: frozenset[int]) -> DeliveryResult:
    """Robots answer HTTP 200 with ``{"errcode": …, "errmsg": …}``; only errcode 0 means delivered."""
    result = classify_http_status(response.status_code, response.text)
    if not result.ok:
        return result
    try:
        data = response.json()
    except ValueError:
        return DeliveryResult(False, False, f"robot answered without JSON: {response.text[:200]!r}")
    code = data.get("errcode") if isinstance(data, dict) else None
    if code == 0:
        return DeliveryResult(True, False, "errcode 0")
    message = data.get("errmsg", "") if isinstance(data, dict) else ""
    permanent = isinstance(code, int) and code in permanent_codes
    return DeliveryResult(False, permanent, f"errcode {code} {message}".strip())


class _HttpSender:
    channel = ""

    def __init__(self, timeout: float = 10.0, client: httpx.Client | None = None) -> None:
        self.timeout = timeout
        self._client = client

    def _post(
        self,
        url: str,
        payload: Mapping[str, Any],
        headers: Mapping[str, str],
        params: Mapping[str, str] | None = None,
    ) -> httpx.Response | DeliveryResult:
        """The response, or a failed `DeliveryResult` when nothing usable came back."""
        try:
            # httpx's ``params=`` would replace the webhook's own query (access_token, key): merge instead.
            target = httpx.URL(url).copy_merge_params(params) if params else httpx.URL(url)
            if self._client is not None:
                return self._client.post(target, json=payload, headers=dict(headers))
            with httpx.Client(timeout=self.timeout) as client:
                return client.post(target, json=payload, headers=dict(headers))
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as err:
            return DeliveryResult(False, True, f"bad URL {url!r}: {err}")
        except httpx.TimeoutException as err:
            return DeliveryResult(False, False, f"timeout: {type(err).__name__} {err}".strip())
        except httpx.HTTPError as err:
            return DeliveryResult(False, False, f"connection failed: {type(err).__name__} {err}".strip())
        except Exception as err:  # a sender must never stop the worker
            return DeliveryResult(False, False, f"unexpected error: {type(err).__name__} {err}".strip())


class InAppSender:
    """The in-app inbox: the service layer already wrote the inbox row, so there is nothing to deliver."""

    channel = IN_APP

    def send(self, message: Message, now: datetime) -> DeliveryResult:
        return DeliveryResult(True, False, "in-app: stored in the inbox, no delivery")


def sms_payload(message: Message, sign: str | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {"phone": message.to, "text": message.text, "message_id": message.message_id}
    if sign:
        payload["sign"] = sign
    return payload


class SmsGatewaySender(_HttpSender):
    """POSTs ``{phone, text, sign?, message_id}`` as JSON to a configurable gateway URL.

    The token, if any, goes in ``Authorization: Bearer …`` (or ``token_header`` with the raw token).
    """

    channel = SMS

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        sign: str | None = None,
        token_header: str = "Authorization",
        timeout: float = 10.0,
        client: httpx.Client | None = None,
    ) -> None:
        super().__init__(timeout, client)
        self.url, self.token, self.sign, self.token_header = url, token, sign, token_header

    def send(self, message: Message, now: datetime) -> DeliveryResult:
        if not message.to:
            return DeliveryResult(False, True, "SMS message without a phone number")
        headers = {"Idempotency-Key": message.message_id, "X-Message-Id": message.message_id}
        if self.token:
            bearer = self.token_header.lower() == "authorization"
            headers[self.token_header] = f"Bearer {self.token}" if bearer else self.token
        response = self._post(self.url, sms_payload(message, self.sign), headers)
        if isinstance(response, DeliveryResult):
            return response
        return classify_http_status(response.status_code, response.text)


def wecom_payload(message: Message) -> dict[str, Any]:
    """WeCom group robot JSON; its markdown type cannot @ by mobile number, so mentions use text."""
    if message.markdown and not message.mention_mobiles:
        content = f"**{message.title}**\n{message.text}" if message.title else message.text
        return {"msgtype": "markdown", "markdown": {"content": content}}
    text = f"{message.title}\n{message.text}" if message.title else message.text
    return {
        "msgtype": "text",
        "text": {"content": text, "mentioned_mobile_list": list(message.mention_mobiles)},
    }


class WeComRobotSender(_HttpSender):
    """企业微信群机器人: POST to ``https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…``."""

    channel = WECOM

    def __init__(
        self,
        webhook_url: str,
        *,
        timeout: float = 10.0,
        client: httpx.Client | None = None,
        permanent_errcodes: frozenset[int] = WECOM_PERMANENT_ERRCODES,
    ) -> None:
        super().__init__(timeout, client)
        self.webhook_url, self.permanent_errcodes = webhook_url, permanent_errcodes

    def send(self, message: Message, now: datetime) -> DeliveryResult:
        response = self._post(self.webhook_url, wecom_payload(message), {"X-Message-Id": message.message_id})
        if isinstance(response, DeliveryResult):
            return response
        return _robot_result(response, self.permanent_errcodes)


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk 加签: base64(HMAC-SHA256(key=secret, msg=f"{timestamp}\\n{secret}")), not URL-encoded."""
    string_to_sign = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode(), string_to_sign, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def dingtalk_params(secret: str | None, now: datetime) -> dict[str, str]:
    """The ``timestamp`` and ``sign`` query parameters (none without a secret); httpx URL-encodes them."""
    if not secret:
        return {}
    timestamp_ms = int(now.timestamp() * 1000)
    return {"timestamp": str(timestamp_ms), "sign": dingtalk_sign(secret, timestamp_ms)}


def dingtalk_payload(message: Message) -> dict[str, Any]:
    """DingTalk custom robot JSON; an @ only shows when the mobile number also appears in the text."""
    mentions = "".join(f" @{mobile}" for mobile in message.mention_mobiles)
    at = {"atMobiles": list(message.mention_mobiles), "isAtAll": False}
    if message.markdown:
        title = message.title or message.text[:20]
        body = f"#### {message.title}\n\n{message.text}" if message.title else message.text
        return {"msgtype": "markdown", "markdown": {"title": title, "text": body + mentions}, "at": at}
    text = f"{message.title}\n{message.text}" if message.title else message.text
    return {"msgtype": "text", "text": {"content": text + mentions}, "at": at}


class DingTalkRobotSender(_HttpSender):
    """钉钉自定义机器人: POST to ``https://oapi.dingtalk.com/robot/send?access_token=…`` (+ signature)."""

    channel = DINGTALK

    def __init__(
        self,
        webhook_url: str,
        *,
        secret: str | None = None,
        timeout: float = 10.0,
        client: httpx.Client | None = None,
        permanent_errcodes: frozenset[int] = DINGTALK_PERMANENT_ERRCODES,
    ) -> None:
        super().__init__(timeout, client)
        self.webhook_url, self.secret, self.permanent_errcodes = webhook_url, secret, permanent_errcodes

    def send(self, message: Message, now: datetime) -> DeliveryResult:
        response = self._post(
            self.webhook_url,
            dingtalk_payload(message),
            {"X-Message-Id": message.message_id},
            params=dingtalk_params(self.secret, now) or None,
        )
        if isinstance(response, DeliveryResult):
            return response
        return _robot_result(response, self.permanent_errcodes)


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 25
    sender: str = "minsheng@localhost"
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    use_ssl: bool = False
    timeout: float = 10.0
    message_id_domain: str = "minsheng.local"
    ssl_context: ssl.SSLContext | None = field(default=None, compare=False)


def email_message(message: Message, settings: SmtpSettings, now: datetime) -> EmailMessage:
    email = EmailMessage()
    email["From"] = settings.sender
    email["To"] = message.to
    email["Subject"] = message.title or message.text[:30]
    email["Date"] = format_datetime(now)
    email["Message-ID"] = f"<{message.message_id}@{settings.message_id_domain}>"
    email.set_content(message.text, charset="utf-8")
    return email


class SmtpSender:
    """Email over SMTP with smtplib: optional implicit TLS, STARTTLS and login."""

    channel = EMAIL

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings

    def send(self, message: Message, now: datetime) -> DeliveryResult:
        if not message.to:
            return DeliveryResult(False, True, "email message without an address")
        s = self.settings
        try:
            smtp: smtplib.SMTP
            if s.use_ssl:
                smtp = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=s.ssl_context)
            else:
                smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
            with smtp:
                if s.starttls and not s.use_ssl:
                    smtp.starttls(context=s.ssl_context)
                if s.username:
                    smtp.login(s.username, s.password or "")
                refused = smtp.send_message(email_message(message, s, now))
        except smtplib.SMTPNotSupportedError as err:
            return DeliveryResult(False, True, f"server does not support what the settings ask: {err}")
        except smtplib.SMTPRecipientsRefused as err:
            codes = [code for code, _ in err.recipients.values()]
            return DeliveryResult(False, all(c >= 500 for c in codes), f"recipient refused: {err.recipients}")
        except smtplib.SMTPResponseException as err:
            # 5xx (including 535 bad credentials) will not change on retry; 4xx is "try again later".
            detail = (
                err.smtp_error.decode(errors="replace")
                if isinstance(err.smtp_error, bytes)
                else err.smtp_error
            )
            return DeliveryResult(False, err.smtp_code >= 500, f"SMTP {err.smtp_code} {detail}")
        except TimeoutError as err:
            return DeliveryResult(False, False, f"timeout: {err}")
        except (OSError, smtplib.SMTPException) as err:
            return DeliveryResult(False, False, f"connection failed: {type(err).__name__} {err}".strip())
        except Exception as err:  # a sender must never stop the worker
            return DeliveryResult(False, False, f"unexpected error: {type(err).__name__} {err}".strip())
        if refused:
            return DeliveryResult(False, True, f"recipients refused: {refused}")
        return DELIVERED
