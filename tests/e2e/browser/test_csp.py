"""The Content-Security-Policy of issue 14 (finding 7) in headless Chromium: the pages, their maps and charts and
the API's /docs load and work with it, and none logs a CSP violation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.browser.server import PASSWORD, Running

pytestmark = pytest.mark.browser
SHOTS = Path(__file__).resolve().parents[3] / "var" / "browser-shots"

# Playwright's init scripts run outside the page's CSP: this one records every violation the page reports.
RECORD = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__csp.push(e.violatedDirective + " " + (e.blockedURI || "inline") + " " + (e.sourceFile || ""));
});
"""


def _ticket(server: Running) -> str:
    # The first intake loads the word lists (seconds on a busy machine): a generous timeout.
    with httpx.Client(base_url=server.url, timeout=60) as c:
        r = c.post("/api/v1/auth/login", json={"username": "operator1", "password": PASSWORD})
        c.headers["X-CSRF-Token"] = r.json()["csrf_token"]
        body = {"channel": "phone", "detail": "幸福路3号路灯坏了", "lat": 39.9, "lon": 116.4}
        r = c.post("/api/v1/tickets", json=body)
        assert r.status_code == 201, r.text
        return str(r.json()["number"])


def _visit(
    browser: Any, server: Running, username: str | None, paths: list[str], shot: str | None = None
) -> None:
    context = browser.new_context(base_url=server.url, locale="zh-CN")
    context.add_init_script(RECORD)
    page = context.new_page()
    page.set_default_timeout(15_000)
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text) if m.type in ("error", "warning") else None)
    if username:
        page.goto("/login")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", PASSWORD)
        page.click("button:has-text('登录')")
        page.wait_for_load_state("networkidle")
        assert "/login" not in page.url
    for path in paths:
        console.clear()
        r = page.goto(path, wait_until="load")
        assert r is not None and r.status == 200, path
        assert "frame-ancestors 'none'" in (r.header_value("content-security-policy") or ""), path
        page.wait_for_timeout(600)  # charts, maps and htmx requests that start on load
        violations = page.evaluate("window.__csp")
        csp_console = [m for m in console if "Content Security Policy" in m or "Refused to" in m]
        assert not violations and not csp_console, (path, violations, csp_console)
        if path == "/docs":
            page.wait_for_selector(".swagger-ui .opblock", timeout=15_000)  # the spec rendered
            assert not page.evaluate("window.__csp"), path
        if shot and path == shot:
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS / "csp-ticket.png"), full_page=True)
    context.close()


def test_public_pages_and_docs_without_csp_violations(browser: Any, server: Running) -> None:
    _visit(browser, server, None, ["/", "/track", "/public", "/help", "/login", "/docs"])


def test_console_pages_without_csp_violations(browser: Any, server: Running) -> None:
    number = _ticket(server)
    _visit(
        browser, server, "operator1", ["/desk", "/tickets", f"/tickets/{number}", "/kb"], f"/tickets/{number}"
    )
    _visit(browser, server, "supervisor1", ["/board", "/screen"])
    _visit(browser, server, "admin", ["/admin", "/admin/areas", "/admin/users"])
