"""Issue 14, findings 7 and 8 over HTTP: security headers on every response, /docs without a CDN, the session
cookie Secure in production, and photos served as what they are (nosniff, a Content-Disposition, the sniffed
type), refused when they are not clean images or when the ticket is closed or rated."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient
from PIL import Image

from minsheng.asgi import create_app
from minsheng.config import Settings
from minsheng.domain.clock import FixedClock
from minsheng.storage.db import Database
from tests.e2e.test_loop_http import _intake
from tests.factories import PASSWORD, small_city

PAGES = ["/", "/login", "/track", "/public", "/help", "/healthz", "/api/v1/tickets", "/docs", "/openapi.json"]


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 6), (10, 120, 200)).save(out, "PNG")
    return out.getvalue()


# A GIF that is also a page: a browser sniffing it as HTML would run the script.
POLYGLOT = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00"
    b"!\xfe\x20<html><script>alert(document.cookie)</script>\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)


def _csp(r: object) -> dict[str, str]:
    header = r.headers["content-security-policy"]  # type: ignore[attr-defined]
    return {d.split(" ", 1)[0]: d.split(" ", 1)[1] if " " in d else "" for d in header.split("; ")}


def test_every_response_carries_the_security_headers(app_client: TestClient) -> None:
    for path in [*PAGES, "/static/app.css", "/no/such/page"]:
        r = app_client.get(path)
        assert r.status_code < 500, path
        assert r.headers["x-frame-options"] == "DENY", path
        assert r.headers["x-content-type-options"] == "nosniff", path
        assert r.headers["referrer-policy"] in ("same-origin", "no-referrer", "strict-origin"), path
        csp = _csp(r)
        assert csp["frame-ancestors"] == "'none'", path
        assert csp["default-src"] == "'self'" and csp["object-src"] == "'none'", path
        # no inline script anywhere (the one of /docs by its hash), no CDN
        assert "'unsafe-inline'" not in csp["script-src"] and "'unsafe-eval'" not in csp["script-src"], path
        assert "http" not in r.headers["content-security-policy"], path
        assert "strict-transport-security" not in r.headers, path  # not in development/test


def test_pages_have_no_inline_script_or_handler(app_client: TestClient) -> None:
    for path in ("/", "/login", "/track", "/public", "/help"):
        html = app_client.get(path).text
        for tag in re.findall(r"<script\b[^>]*>", html):
            assert "src=" in tag or 'type="application/json"' in tag, (path, tag)
        assert not re.search(r"\son[a-z]+=", html), path
        assert "javascript:" not in html and "<style" not in html and " style=" not in html, path


def test_docs_are_served_without_a_cdn(app_client: TestClient) -> None:
    r = app_client.get("/docs")
    assert r.status_code == 200
    assert "cdn" not in r.text.lower() and "https://" not in r.text
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in r.text
    assert "'sha256-" in _csp(r)["script-src"]
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert app_client.get(f"/static/vendor/swagger-ui/{asset}").status_code == 200
    assert app_client.get("/redoc").status_code == 404


def test_production_sends_hsts_and_secure_cookies(
    db: Database, db_url: str, clock: FixedClock, tmp_path: Path
) -> None:
    with db.write_sessions() as session, session.begin():
        small_city(session, clock.now())
    settings = Settings(
        database_url=db_url,
        data_dir=tmp_path / "data",
        embedded_worker=False,
        environment="production",
        secret_key="a-real-secret-for-this-test",
    )
    assert settings.cookie_secure
    assert not Settings(environment="development").cookie_secure
    assert not Settings(environment="production", secret_key="s", cookie_secure=False).cookie_secure
    with TestClient(create_app(settings, clock=clock, db=db), base_url="https://testserver") as c:
        r = c.post("/api/v1/auth/login", json={"username": "operator1", "password": PASSWORD})
        assert r.status_code == 200, r.text
        assert "max-age=" in r.headers["strict-transport-security"]
        cookie = r.headers["set-cookie"]
        assert "secure" in cookie.lower() and "httponly" in cookie.lower()


def test_attachments_are_served_safely(login: Callable[[str], TestClient]) -> None:
    op = login("operator1")
    number = _intake(op)["number"]
    url = f"/api/v1/tickets/{number}/attachments"
    r = op.post(url, files={"file": ('现场 "1".png', png(), "text/html")})
    assert r.status_code == 201, r.text
    got = op.get(f"/api/v1/attachments/{r.json()['id']}")
    assert got.status_code == 200
    assert got.headers["content-type"] == "image/png"
    assert got.headers["x-content-type-options"] == "nosniff"
    disposition = got.headers["content-disposition"]
    assert disposition.startswith("inline;") and "filename" in disposition and '"1"' not in disposition
    assert "sandbox" in got.headers["content-security-policy"]
    Image.open(io.BytesIO(got.content)).verify()


def test_polyglot_and_undecodable_uploads_are_refused(login: Callable[[str], TestClient]) -> None:
    op = login("operator1")
    number = _intake(op)["number"]
    url = f"/api/v1/tickets/{number}/attachments"
    r = op.post(url, files={"file": ("cat.gif", POLYGLOT, "image/gif")})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["detail"]["field"] == "file"
    fake = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    r = op.post(url, files={"file": ("fake.png", fake, "image/png")})
    assert r.status_code == 422 and "PNG" in r.json()["error"]["message"], r.text
    assert op.get(f"/api/v1/tickets/{number}").json()["attachments"] == []


def test_no_photo_after_the_ticket_is_closed_or_rated(
    app_client: TestClient, login: Callable[[str], TestClient]
) -> None:
    op = login("operator1")
    number = _intake(op)["number"]
    url = f"/api/v1/tickets/{number}/attachments"
    assert op.post(url, files={"file": ("before.png", png(), "image/png")}).status_code == 201
    r = op.post(f"/api/v1/tickets/{number}/answer_directly", json={"answer": "已告知办理渠道"})
    assert r.json()["state"] == "closed", r.text
    r = op.post(url, files={"file": ("after.png", png(), "image/png")})
    assert r.status_code == 409 and "closed" in r.json()["error"]["message"], r.text
    fu = login("followup1")
    r = fu.post(f"/api/v1/tickets/{number}/follow_up", json={"rating": "satisfied"})
    assert r.status_code == 200 and r.json()["state"] == "rated", r.text
    assert op.post(url, files={"file": ("late.png", png(), "image/png")}).status_code == 409
    assert len(op.get(f"/api/v1/tickets/{number}").json()["attachments"]) == 1
