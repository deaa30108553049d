"""Limits at the HTTP edge: the body size middleware, the client's address, the 429 answer, and the
platform's `Limits` for a request.

`BodyLimit` is plain ASGI: it refuses a body over the limit with 413 from its Content-Length before the
application reads a byte, and counts the bytes of a body sent without one (chunked) as they arrive, answering
413 the moment the count passes the limit (the application then sees the client gone).
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from minsheng.bootstrap import Platform
from minsheng.config import Settings
from minsheng.services.limits import Limits, RateLimited

ACCESS_LOGGER = "uvicorn.access"
_QUERY_CODE = re.compile(r"((?:^|[?&])query_code=)[^&\s]*", re.IGNORECASE)


def client_address(request: Request) -> str:
    """The client's address as the server saw it (behind a proxy, uvicorn's --proxy-headers sets it from
    X-Forwarded-For for the proxies it trusts: `minsheng serve` turns that on)."""
    return request.client.host if request.client else "unknown"


def limits_of(platform: Platform) -> Limits:
    return Limits(platform.db, platform.settings, platform.clock)


def too_many(e: RateLimited) -> JSONResponse:
    """The API's 429: the error body every API error has, and Retry-After in seconds."""
    return JSONResponse(
        status_code=429,
        content={"error": {"code": e.code, "message": e.message, "detail": {"retry_after": e.retry_after}}},
        headers={"Retry-After": str(e.retry_after)},
    )


class _RedactQueryCodes(logging.Filter):
    """Access-log lines never carry a query code (the deprecated `GET …?query_code=` still answers)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any("query_code" in str(a) for a in record.args):
            record.args = tuple(
                _QUERY_CODE.sub(r"\1[redacted]", a) if isinstance(a, str) else a for a in record.args
            )
        return True


def _redact_access_log() -> None:
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, _RedactQueryCodes) for f in logger.filters):
        logger.addFilter(_RedactQueryCodes())


class BodyLimit:
    """Refuse a request body over the limit with 413, before it is read whole.

    The limit is `max_body_bytes` (JSON, forms), or for multipart bodies (uploads) `max_attachment_bytes +
    multipart_margin_bytes`. /api paths get the API's JSON error; pages a short text. Built by the app's
    `add_middleware` (it also keeps query codes out of the access log: see `_RedactQueryCodes`).
    """

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.max_body = settings.max_body_bytes
        self.max_multipart = settings.max_attachment_bytes + settings.multipart_margin_bytes
        _redact_access_log()

    def limit_for(self, scope: Scope) -> int:
        for name, value in scope.get("headers", ()):
            if name == b"content-type" and value.lower().startswith(b"multipart/"):
                return self.max_multipart
        return self.max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        length = _content_length(scope)
        if length is not None and length > limit:
            await self._refuse(scope, send, limit)
            return
        received = 0
        answered = False

        async def counted_receive() -> Message:
            nonlocal received, answered
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit and not answered:
                    answered = True
                    await self._refuse(scope, send, limit)
                    # The application stops reading here: for it the client has gone.
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not answered:
                await send(message)

        await self.app(scope, counted_receive, guarded_send)

    async def _refuse(self, scope: Scope, send: Send, limit: int) -> None:
        message = f"the request body is larger than {limit} bytes"
        response: Response
        if str(scope.get("path", "")).startswith("/api/"):
            body: dict[str, Any] = {
                "error": {"code": "too_large", "message": message, "detail": {"limit": limit}}
            }
            response = Response(
                json.dumps(body),
                status_code=413,
                media_type="application/json",
                headers={"Connection": "close"},
            )
        else:
            response = Response(
                "请求内容过大 (" + message + ")",
                status_code=413,
                media_type="text/plain; charset=utf-8",
                headers={"Connection": "close"},
            )
        await response(scope, _no_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
