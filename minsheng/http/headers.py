"""Security headers on every response (a pure ASGI middleware), and the API's docs page served without a CDN.

The pages load their scripts and styles from /static only (HTMX, ECharts, app.js, app.css): no inline script,
no inline <style>, no event-handler attribute (tests/e2e/browser checks that pages log no CSP violation).
Style *attributes* are allowed (`style-src-attr`): ECharts' tooltips and Swagger UI write markup with them, and
they cannot run code. A response that sets its own Content-Security-Policy (the /docs page, which allows its one
inline script by hash) keeps it; every other header here is added where absent.
"""

from __future__ import annotations

import base64
import hashlib
import re

from fastapi.openapi.docs import get_swagger_ui_html
from starlette.datastructures import MutableHeaders
from starlette.responses import HTMLResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HSTS = "max-age=31536000; includeSubDomains"


def content_security_policy(script_hashes: tuple[str, ...] = ()) -> str:
    """The policy of the pages; `script_hashes` ('sha256-…') allow given inline scripts (the /docs page)."""
    script = " ".join(["'self'", *(f"'{h}'" for h in script_hashes)])
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src {script}",
            "style-src 'self'",
            "style-src-attr 'unsafe-inline'",
            "img-src 'self' data: blob:",
            "font-src 'self' data:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


CSP = content_security_policy()


class SecurityHeaders:
    """Adds CSP, X-Frame-Options, nosniff, Referrer-Policy (and HSTS with `hsts`) to every HTTP response."""

    def __init__(self, app: ASGIApp, *, hsts: bool = False) -> None:
        self.app = app
        self.headers = [
            ("Content-Security-Policy", CSP),
            ("X-Frame-Options", "DENY"),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "same-origin"),
            ("Cross-Origin-Opener-Policy", "same-origin"),
        ]
        if hsts:
            self.headers.append(("Strict-Transport-Security", HSTS))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers:
                    if name not in headers:
                        headers.append(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)


def docs_page(openapi_url: str, title: str) -> HTMLResponse:
    """Swagger UI from the files vendored under /static/vendor/swagger-ui (see its README), its one inline
    script (FastAPI's start-up call) allowed by hash."""
    page = get_swagger_ui_html(
        openapi_url=openapi_url,
        title=f"{title} - API",
        swagger_js_url="/static/vendor/swagger-ui/swagger-ui-bundle.js",
        swagger_css_url="/static/vendor/swagger-ui/swagger-ui.css",
        swagger_favicon_url="data:,",
    )
    body = bytes(page.body).decode()
    hashes = tuple(
        "sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()
        for s in _INLINE_SCRIPT.findall(body)
    )
    return HTMLResponse(body, headers={"Content-Security-Policy": content_security_policy(hashes)})
