"""Signed JSON messages to and from partner systems (110, 119, 12315 …): the signature and the outbox sender.

Both directions sign the same way with the partner's shared secret (docs/INTEGRATIONS.md, "Partners"):

    X-Partner-Timestamp: <unix seconds>
    X-Partner-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + raw body bytes)>

The timestamp is inside the signed text, so a captured message cannot be replayed later than ``tolerance``
seconds; the body is signed as the bytes sent, so nothing needs to be re-serialised to check it.

`PartnerSender` posts an outbox row's text (the JSON body, made by the service layer) to the partner's endpoint;
which endpoint and secret is asked of ``resolve`` at send time, so a changed URL or a disabled partner applies to
messages already waiting. 2xx is delivered, 408/429/5xx and connection errors are retried, other 4xx are final.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

import httpx

from minsheng.domain.digits import whole_number
from minsheng.notify.channels import DeliveryResult, Message, classify_http_status

PARTNER = "partner"
TIMESTAMP_HEADER = "X-Partner-Timestamp"
SIGNATURE_HEADER = "X-Partner-Signature"
MESSAGE_ID_HEADER = "X-Message-Id"
#: How far a message's timestamp may be from our clock (seconds), either way.
TOLERANCE_SECONDS = 300


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The value of X-Partner-Signature for ``body`` sent at ``timestamp`` (unix seconds, as text)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def signed_headers(secret: str, body: bytes, now: datetime) -> dict[str, str]:
    """The headers that sign ``body`` at ``now``."""
    ts = str(int(now.timestamp()))
    return {TIMESTAMP_HEADER: ts, SIGNATURE_HEADER: signature(secret, ts, body)}


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    now: datetime,
    tolerance: int = TOLERANCE_SECONDS,
) -> str | None:
    """None when the headers sign ``body`` with ``secret`` within ``tolerance`` of ``now``; else why not."""
    ts = headers.get(TIMESTAMP_HEADER) or headers.get(TIMESTAMP_HEADER.lower())
    sig = headers.get(SIGNATURE_HEADER) or headers.get(SIGNATURE_HEADER.lower())
    if not ts or not sig:
        return "missing signature headers"
    stamp = whole_number(ts, 0, 10**12 - 1)
    if stamp is None:
        return "bad timestamp"
    if abs(stamp - now.timestamp()) > tolerance:
        return "timestamp outside the allowed window"
    # As bytes: compare_digest refuses str with non-ASCII characters, and a forged header may have some.
    if not hmac.compare_digest(signature(secret, ts, body).encode(), sig.encode(errors="replace")):
        return "signature does not match"
    return None


@dataclass(frozen=True)
class PartnerEndpoint:
    url: str
    secret: str


Resolve = Callable[[str], PartnerEndpoint | None]


class PartnerSender:
    """Outbox channel ``partner``: ``message.to`` is the partner's code, ``message.text`` the JSON body."""

    channel = PARTNER

    def __init__(
        self, resolve: Resolve, *, timeout: float = 10.0, client: httpx.Client | None = None
    ) -> None:
        self.resolve = resolve
        self.timeout = timeout
        self._client = client

    def send(self, message: Message, now: datetime) -> DeliveryResult:
        endpoint = self.resolve(message.to)
        if endpoint is None:
            return DeliveryResult(False, True, f"partner {message.to!r} is unknown or disabled")
        body = message.text.encode()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            MESSAGE_ID_HEADER: message.message_id,
            **signed_headers(endpoint.secret, body, now),
        }
        try:
            if self._client is not None:
                response = self._client.post(endpoint.url, content=body, headers=headers)
            else:
                with httpx.Client(timeout=self.timeout) as client:
                    response = client.post(endpoint.url, content=body, headers=headers)
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as err:
            return DeliveryResult(False, True, f"bad URL {endpoint.url!r}: {err}")
        except httpx.TimeoutException as err:
            return DeliveryResult(False, False, f"timeout: {type(err).__name__} {err}".strip())
        except httpx.HTTPError as err:
            return DeliveryResult(False, False, f"connection failed: {type(err).__name__} {err}".strip())
        return classify_http_status(response.status_code, response.text)
