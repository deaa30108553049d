"""Inputs that once made the server answer 500 (found by tests/e2e/test_fuzz.py): each now gets a clear 4xx.

Every test runs on SQLite and on PostgreSQL: several of these failed on one database only (SQLite cannot bind
an integer beyond 64 bits, PostgreSQL cannot store NUL or text longer than its column).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

from fastapi.testclient import TestClient

from tests.e2e.test_loop_http import _assignment, _intake

HUGE = "99999999999999999999"  # beyond 64 bits
INT32 = str(2**31)  # beyond the 32-bit ids of the organisation, clock, KB and triage tables


def _json(c: TestClient, method: str, url: str, body: object) -> object:
    """Send JSON the way Python's json module writes it: NaN and Infinity included."""
    content = json.dumps(body, allow_nan=True)
    return c.request(method, url, content=content, headers={"content-type": "application/json"})


def _error(r: object) -> dict:
    err = r.json()["error"]  # type: ignore[attr-defined]
    assert err["message"], err
    return err  # type: ignore[no-any-return]


def _dispatched(login: Callable[[str], TestClient]) -> tuple[str, int]:
    op, disp, zjj = login("operator1"), login("dispatcher1"), login("h_zjj")
    number = _intake(op)["number"]
    assert disp.post(f"/api/v1/tickets/{number}/dispatch", json={"lead_unit": "ZJJ"}).status_code == 200
    return number, _assignment(zjj, number, "ZJJ")


def test_page_forms_with_a_non_ascii_csrf_token(
    app_client: TestClient, login: Callable[[str], TestClient]
) -> None:
    """secrets.compare_digest refused the str: a forged token with 中文 in it was a 500 on every form."""
    op = login("operator1")
    r = op.post("/desk", data={"detail": "路灯坏了"}, headers={"X-CSRF-Token": "令牌令牌".encode()})
    assert r.status_code == 403 and "CSRF" in r.text
    r = op.post(
        "/desk", data={"detail": "路灯坏了", "csrf_token": "ｆｏｒｇｅｄ"}, headers={"X-CSRF-Token": ""}
    )
    assert r.status_code == 403 and "CSRF" in r.text
    app_client.get("/track")
    r = app_client.post("/track", data={"number": "20261121", "csrf_token": "伪造"})
    assert r.status_code == 403 and "CSRF" in r.text


NUMBERS_TOO_BIG = [
    ("operator1", "GET", f"/api/v1/attachments/{HUGE}"),
    ("h_zjj", "POST", f"/api/v1/assignments/{HUGE}/sign"),
    ("admin", "PUT", f"/api/v1/clock/policies/{HUGE}"),
    ("admin", "PUT", f"/api/v1/clock/policies/{INT32}"),
    ("admin", "DELETE", f"/api/v1/clock/policies/{INT32}"),
    ("admin", "DELETE", f"/api/v1/clock/rosters/{INT32}"),
    ("admin", "GET", f"/api/v1/triage/rules/{HUGE}"),
    ("admin", "GET", f"/api/v1/triage/rules/{INT32}"),
    ("admin", "PUT", f"/api/v1/triage/rules/{INT32}"),
    ("admin", "DELETE", f"/api/v1/triage/rules/{INT32}"),
    ("supervisor1", "POST", f"/api/v1/triage/clusters/{INT32}/acknowledge"),
    ("admin", "GET", "/api/v1/triage/rules?offset=100000000000000000000"),
    ("admin", "GET", "/api/v1/triage/places?offset=100000000000000000000"),
    ("admin", "GET", f"/api/v1/clock/calendar?year={HUGE}"),
    ("admin", "GET", "/api/v1/clock/calendar?year=10000"),
    ("admin", "GET", "/api/v1/clock/calendar?year=0"),
]


def test_numbers_beyond_what_a_column_holds(login: Callable[[str], TestClient]) -> None:
    """SQLite raised OverflowError binding them, PostgreSQL "bigint out of range", date() a ValueError."""
    policy = {"limits": {"sign": {"amount": 1, "unit": "minutes"}}}
    for role, method, url in NUMBERS_TOO_BIG:
        body = (policy if "policies" in url else {"lead_unit": "ZJJ"}) if method == "PUT" else {}
        r = login(role).request(method, url, json=body if method in ("POST", "PUT") else None)
        assert r.status_code == 422, (url, r.text)
        err = _error(r)
        assert err["code"] == "invalid", url
        assert "less than or equal" in err["message"] or "greater than" in err["message"], url


def test_ids_in_bodies_beyond_64_bits(login: Callable[[str], TestClient]) -> None:
    number, aid = _dispatched(login)
    sup, zjj = login("supervisor1"), login("h_zjj")
    for ext in (2**31, 10**20):
        r = sup.post(
            f"/api/v1/tickets/{number}/decide_extension", json={"extension_id": ext, "approve": True}
        )
        assert r.status_code == 422 and _error(r)["detail"][0]["field"] == "extension_id"
    r = zjj.post(f"/api/v1/assignments/{aid}/feedback", json={"text": "已修复", "attachment_ids": [10**20]})
    assert r.status_code == 422 and _error(r)["detail"][0]["field"] == "attachment_ids.0"
    r = zjj.post("/api/v1/notifications/read", json={"ids": [10**20]})
    assert r.status_code == 422 and _error(r)["detail"][0]["field"] == "ids.0"


def test_page_ids_beyond_64_bits_and_unicode_digits(login: Callable[[str], TestClient]) -> None:
    """int("²") raised on the KB page ("²".isdigit() is true); huge ids overflowed in the database."""
    admin, zjj = login("admin"), login("h_zjj")
    for entry_id in (HUGE, INT32):
        r = admin.post(f"/kb/{entry_id}/delete")
        assert r.status_code == 422 and "entry_id 数值太大" in r.text
    r = zjj.post(f"/assignments/{HUGE}/act/sign")
    assert r.status_code == 422 and "assignment_id 数值太大" in r.text and "File " not in r.text
    for edit in ("²", HUGE, INT32):
        r = admin.get("/kb", params={"edit": edit})
        assert r.status_code == 200 and "新增条目" in r.text  # not an id: the page shows the empty form
    for entry_id in ("²", HUGE, INT32, "٣"):
        r = admin.post("/kb", data={"id": entry_id, "title": "路灯报修", "body": "请拨打城管热线"})
        assert r.status_code == 422 and "条目编号无效" in r.text
    assert "路灯报修" not in admin.get("/kb").text  # nothing was written


def test_forged_list_cursors(login: Callable[[str], TestClient]) -> None:
    """The cursor is client-held: an infinite or huge id or a naive or unstorable time was a 500."""
    op = login("operator1")
    _intake(op)
    for cursor in (
        ["2026-01-01T00:00:00+00:00", float("inf")],
        ["2026-01-01T00:00:00+00:00", 10**20],
        ["2026-01-01T00:00:00", 5],
        ["0001-01-01T00:00:00+14:00", 5],
    ):
        raw = base64.urlsafe_b64encode(json.dumps(cursor, allow_nan=True).encode()).decode()
        r = op.get("/api/v1/tickets", params={"cursor": raw})
        assert r.status_code == 422 and _error(r)["message"] == "bad cursor", cursor
        r = op.get("/tickets", params={"cursor": raw})
        assert r.status_code == 422 and "bad cursor" in r.text, cursor


def test_times_that_leave_the_calendar_in_utc(login: Callable[[str], TestClient]) -> None:
    """Stored as UTC: these overflowed (OverflowError) when the column converted them."""
    for role, url, param in [
        ("operator1", "/api/v1/tickets", "created_from"),
        ("operator1", "/api/v1/tickets", "created_to"),
        ("admin", "/api/v1/clock/rosters", "start"),
        ("admin", "/api/v1/clock/rosters", "end"),
        ("admin", "/api/v1/clock/on-duty", "at"),
    ]:
        for when in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"):
            r = login(role).get(url, params={param: when})
            assert r.status_code == 422, (url, param, when, r.text)
            assert _error(r)["detail"][0]["field"] == param and "out of range" in _error(r)["message"]


def test_duty_shift_times_that_leave_the_calendar(login: Callable[[str], TestClient]) -> None:
    admin = login("admin")
    body = {
        "username": "h_zjj",
        "starts_at": "0001-01-01T00:00:00+14:00",
        "ends_at": "0001-01-01T12:00:00+14:00",
    }
    r = admin.post("/api/v1/clock/rosters", json=body)
    assert r.status_code == 422 and "out of range" in _error(r)["message"]
    assert admin.get("/api/v1/clock/rosters").json() == []


def test_login_redirect_for_a_path_with_any_character(app_client: TestClient) -> None:
    """HX-Redirect is a latin-1 header: an HTMX request to /tickets/中文 was a UnicodeEncodeError."""
    r = app_client.get(
        "/admin/%E4%B8%AD%E6%96%87?x=1&y=2", headers={"HX-Request": "true"}, follow_redirects=False
    )
    assert r.status_code == 204
    assert r.headers["HX-Redirect"] == "/login?next=/admin/%E4%B8%AD%E6%96%87%3Fx%3D1%26y%3D2"
    r = app_client.get("/admin/%E4%B8%AD%E6%96%87?x=1&y=2", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == r.headers["location"].encode("ascii").decode()
    # The login page hands the whole path, query included, back to the form.
    assert 'value="/admin/中文?x=1&amp;y=2"' in app_client.get(r.headers["location"]).text


def test_time_limit_policies_that_no_clock_can_keep(login: Callable[[str], TestClient]) -> None:
    """A 1e300-minute limit was stored and then every dispatch failed (OverflowError in the deadline); a
    1e300-minute or NaN escalation failed at once; a step name longer than 24 characters failed every dispatch
    on PostgreSQL (it is stored with each deadline)."""
    admin = login("admin")
    bad = [
        ({"sign": {"amount": 1e300, "unit": "minutes"}}, {}, "at most a year"),
        (
            {"sign": {"amount": 20, "unit": "minutes"}},
            {"sign": [{"after_minutes": 1e300, "target": "unit"}]},
            "less",
        ),
        (
            {"sign": {"amount": 20, "unit": "minutes"}},
            {"sign": [{"after_minutes": float("nan"), "target": "x"}]},
            "",
        ),
        ({"s" * 25: {"amount": 20, "unit": "minutes"}}, {}, "pattern"),
        ({"sign": {"amount": 20, "unit": "minutes"}}, {"s" * 25: [{"target": "unit"}]}, "pattern"),
    ]
    for limits, escalation, words in bad:
        r = _json(admin, "POST", "/api/v1/clock/policies", {"limits": limits, "escalation": escalation})
        assert r.status_code == 422, (limits, escalation, r.text)  # type: ignore[attr-defined]
        assert words in _error(r)["message"]
    assert admin.get("/api/v1/clock/policies").json() == []
    number, _ = _dispatched(login)  # dispatching still works
    assert login("operator1").get(f"/api/v1/tickets/{number}").json()["state"] == "dispatched"


def test_triage_settings_that_are_not_plain_numbers(login: Callable[[str], TestClient]) -> None:
    """Stored, then the runtime failed to reload after the commit (a 500 with the bad value kept)."""
    admin = login("admin")
    for value in (float("nan"), float("inf"), 10**400, 10**30):
        r = _json(admin, "PUT", "/api/v1/triage/settings/repeat_window_days", {"value": value})
        assert r.status_code == 422 and _error(r)["detail"][0]["field"] == "value", value  # type: ignore[attr-defined]
    assert admin.get("/api/v1/triage/settings").json()["overrides"] == {}


def test_triage_settings_with_windows_no_calendar_holds(login: Callable[[str], TestClient]) -> None:
    admin = login("admin")
    for key, value in [
        ("repeat_window_days", 1e300),
        ("cluster_window_days", 1e6),
        ("recent_sync_margin_seconds", 1e300),
        ("cluster_min_count", 10**6),
    ]:
        r = admin.put(f"/api/v1/triage/settings/{key}", json={"value": value})
        assert r.status_code == 422, (key, r.text)
        assert "at most" in r.json()["error"]["message"] or "within" in r.json()["error"]["message"]
    assert admin.put("/api/v1/triage/settings/repeat_window_days", json={"value": 3650}).status_code == 200
    # The runtime took it: the routing table can still be edited (its reload reads the settings).
    assert admin.get("/api/v1/triage/settings").json()["overrides"] == {"repeat_window_days": 3650.0}


NUL_BODIES = [
    ("operator1", "POST", "/api/v1/tickets", {"detail": "路灯\x00坏了"}),
    ("operator1", "POST", "/api/v1/tickets", {"detail": "路灯坏了", "citizen_name": "\x00"}),
    (None, "POST", "/api/v1/public/tickets", {"detail": "路灯坏了", "channel": "web", "address": "\x00"}),
    (None, "POST", "/api/v1/auth/login", {"username": "admin\x00", "password": "secret-pass"}),
    ("admin", "POST", "/api/v1/areas", {"code": "X1", "name": "a\x00", "level": "street"}),
    (
        "admin",
        "POST",
        "/api/v1/clock/policies",
        {"name": "时限\x00", "limits": {"sign": {"amount": 1, "unit": "hours"}}},
    ),
    ("admin", "POST", "/api/v1/triage/places", {"name": "小区\x00", "area_code": "C0101"}),
    ("admin", "POST", "/api/v1/clock/zones", {"zone": "城区\x00", "area_code": "C01"}),
]


def test_nul_in_json(app_client: TestClient, login: Callable[[str], TestClient]) -> None:
    """PostgreSQL cannot store NUL in text: psycopg's DataError was a 500 (SQLite stored it)."""
    for role, method, url, body in NUL_BODIES:
        c = login(role) if role else app_client
        r = c.request(method, url, json=body)
        assert r.status_code == 422, (url, r.text)
        assert "NUL" in _error(r)["message"], url
    kept = login("operator1").get("/api/v1/tickets", params={"with_total": True}).json()["total"]
    assert kept == 0


def test_nul_in_urls(login: Callable[[str], TestClient]) -> None:
    for role, url in [
        ("operator1", "/api/v1/tickets?text=a%00b"),
        ("operator1", "/api/v1/clock/tickets/2026%00/deadlines"),
        ("admin", "/api/v1/clock/timers?ticket=%00"),
        ("dispatcher1", "/queue?sel=2026%00"),
        ("operator1", "/tickets?q=%00"),
    ]:
        r = login(role).get(url)
        assert r.status_code == 422 and "NUL" in r.text, url


def test_nul_in_urls_of_deletes(login: Callable[[str], TestClient]) -> None:
    admin = login("admin")
    for url in ("/api/v1/clock/templates/a%00b", "/api/v1/triage/settings/a%00b"):
        r = admin.delete(url)
        assert r.status_code == 422 and "NUL" in _error(r)["message"]


def test_nul_in_forms(app_client: TestClient, login: Callable[[str], TestClient]) -> None:
    admin, op = login("admin"), login("operator1")
    for c, url, data in [
        (admin, "/admin/areas", {"code": "X1", "name": "区\x00", "level": "street"}),
        (op, "/desk", {"detail": "路灯\x00坏了"}),
        (op, "/desk/suggest", {"detail": "路灯坏了", "citizen_phone": "\x00"}),
        (admin, "/kb", {"title": "标题", "body": "内容\x00"}),
    ]:
        r = c.post(url, data=data)
        assert r.status_code == 422 and "NUL" in r.text, url
    app_client.get("/login")
    r = app_client.post("/login", data={"username": "admin\x00", "password": "x"})
    assert r.status_code == 422 and "NUL" in r.text
    assert not [a for a in admin.get("/api/v1/areas").json() if a["code"] == "X1"]


def test_admin_form_values_longer_than_their_columns(login: Callable[[str], TestClient]) -> None:
    """PostgreSQL refused them ("value too long for type character varying"): a 500 instead of a message."""
    admin = login("admin")
    cases = [
        ("areas", {"code": "X1", "name": "区" * 101, "level": "street"}, "name", 100),
        ("categories", {"code": "X1", "name": "类" * 101}, "name", 100),
        ("units", {"code": "X1", "name": "单位", "kind": "department", "phone": "1" * 33}, "phone", 32),
        (
            "units",
            {"code": "X1", "name": "单位", "kind": "department", "leader_name": "李" * 51},
            "_form",
            50,
        ),
        (
            "users",
            {"username": "new1", "display_name": "名" * 65, "role": "operator", "password": "long-enough"},
            "display_name",
            64,
        ),
    ]
    for kind, data, fld, most in cases:
        r = admin.post(f"/admin/{kind}", data=data)
        assert r.status_code == 422, (kind, r.status_code)
        assert f'data-field="{fld}">' in r.text and f"最多{most}个字符" in r.text, kind
    assert "X1" not in admin.get("/admin/units").text


def test_extension_decision_note_longer_than_its_column(login: Callable[[str], TestClient]) -> None:
    """The note was accepted up to 2,000 characters and stored in a 500-character column (a 500 on PostgreSQL)."""
    number, aid = _dispatched(login)
    zjj, sup = login("h_zjj"), login("supervisor1")
    assert zjj.post(f"/api/v1/assignments/{aid}/sign", json={}).status_code == 200
    r = zjj.post(f"/api/v1/tickets/{number}/request_extension", json={"hours": 24, "reason": "需要采购灯具"})
    assert r.status_code == 200, r.text
    r = sup.post(f"/api/v1/tickets/{number}/decide_extension", json={"approve": True, "note": "注" * 501})
    assert r.status_code == 422 and _error(r)["detail"][0]["field"] == "note"
    r = sup.post(f"/api/v1/tickets/{number}/decide_extension", json={"approve": True, "note": "注" * 500})
    assert r.status_code == 200, r.text
