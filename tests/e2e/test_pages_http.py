"""The console pages, the portal and the big screen over HTTP (SQLite and PostgreSQL): roles, CSRF, form errors,
double submission, masking, and one ticket walked through the loop by form posts only.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from tests.factories import PASSWORD, png

PNG = png()
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
KEY = re.compile(r'name="idempotency_key" value="([^"]+)"')

PAGES: dict[str, set[str]] = {
    "/desk": {"operator1", "dispatcher1", "admin"},
    "/queue": {"dispatcher1", "supervisor1", "admin"},
    "/inbox": {"h_cgj"},
    "/board": {"supervisor1", "leader1", "admin"},
    "/followup": {"followup1", "supervisor1", "admin"},
    "/tickets": {"operator1", "dispatcher1", "supervisor1", "followup1", "leader1", "admin", "h_cgj"},
    "/kb": {"operator1", "dispatcher1", "supervisor1", "followup1", "leader1", "admin", "h_cgj"},
    "/screen": {"operator1", "dispatcher1", "supervisor1", "followup1", "leader1", "admin"},
    "/admin": {"admin"},
    "/admin/areas": {"admin"},
    "/admin/units": {"admin"},
    "/admin/users": {"admin"},
    "/admin/categories": {"admin"},
}
USERS = ["operator1", "dispatcher1", "supervisor1", "followup1", "leader1", "admin", "h_cgj"]
PUBLIC = ["/", "/track", "/public", "/help", "/login"]


def csrf_of(c: TestClient, path: str) -> str:
    r = c.get(path)
    assert r.status_code == 200, (path, r.status_code, r.text[:300])
    m = CSRF.search(r.text)
    assert m, path
    return m.group(1)


@pytest.fixture
def page_login(app_client: TestClient) -> Callable[[str], TestClient]:
    """A client logged in through the login form (no CSRF header: forms carry the token)."""

    def _login(username: str) -> TestClient:
        c = TestClient(app_client.app)
        token = csrf_of(c, "/login")
        r = c.post(
            "/login",
            data={"username": username, "password": PASSWORD, "csrf_token": token},
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text
        return c

    return _login


def _intake(c: TestClient, **fields: str) -> str:
    page = c.get("/desk").text
    data = {
        "csrf_token": CSRF.search(page).group(1),  # type: ignore[union-attr]
        "idempotency_key": KEY.search(page).group(1),  # type: ignore[union-attr]
        "channel": "phone",
        "detail": "幸福路3号路灯坏了一个星期，晚上很黑",
        "citizen_name": "张三",
        "citizen_phone": "13800138000",
        "address": "幸福路3号楼下",
        "category_code": "010101",
        "area_code": "C0101",
        "action": "intake",
        **fields,
    }
    r = c.post("/desk", data=data, follow_redirects=False)
    assert r.status_code == 303, r.text[:500]
    m = re.search(r"n=(\d+)", r.headers["location"])
    assert m
    return m.group(1)


def _post(c: TestClient, path: str, page: str, data: dict[str, str], files: object = None) -> str:
    body = {"csrf_token": csrf_of(c, page), **data}
    r = c.post(path, data=body, files=files, follow_redirects=False)  # type: ignore[arg-type]
    assert r.status_code == 303, r.text[:500]
    loc = r.headers["location"]
    assert "err=" not in loc, loc
    return loc


def test_every_page_for_its_roles(app_client: TestClient, page_login: Callable[[str], TestClient]) -> None:
    for path in PUBLIC:
        assert app_client.get(path).status_code == 200, path
    for path in PAGES:
        r = app_client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login"), path
    clients = {u: page_login(u) for u in USERS}
    for path, allowed in PAGES.items():
        for u, c in clients.items():
            r = c.get(path)
            assert r.status_code == (200 if u in allowed else 403), (path, u, r.status_code)
            if u not in allowed:
                assert "无权" in r.text
    assert clients["admin"].get("/nope").status_code == 404
    assert app_client.get("/api/v1/tickets").json()["error"]["code"] == "unauthenticated"


def test_loop_entirely_through_the_pages(page_login: Callable[[str], TestClient]) -> None:
    op, disp, cgj = page_login("operator1"), page_login("dispatcher1"), page_login("h_cgj")
    sup, fu = page_login("supervisor1"), page_login("followup1")
    number = _intake(op)
    assert number in disp.get("/queue").text
    _post(disp, f"/tickets/{number}/act/dispatch", "/queue", {"lead_unit": "CGJ", "next": "/queue"})
    inbox = cgj.get("/inbox").text
    assert number in inbox and "13800138000" in inbox
    aid = re.search(r'id="a(\d+)"', inbox).group(1)  # type: ignore[union-attr]
    for step, extra in [("sign", {}), ("contact", {"method": "phone"}), ("arrive", {})]:
        _post(cgj, f"/assignments/{aid}/act/{step}", "/inbox", {"next": "/inbox", **extra})
    _post(
        cgj,
        f"/assignments/{aid}/act/feedback",
        "/inbox",
        {"next": "/inbox", "text": "已更换灯泡"},
        files=[("photos", ("after.png", io.BytesIO(PNG), "image/png"))],
    )
    _post(cgj, f"/assignments/{aid}/act/request_close", "/inbox", {"next": "/inbox", "summary": "已修复"})
    assert number in sup.get("/board").text
    _post(sup, f"/tickets/{number}/act/review_accept", "/board", {"next": "/board"})
    assert number in fu.get("/followup").text
    _post(fu, f"/tickets/{number}/act/follow_up", "/followup", {"next": "/followup", "rating": "satisfied"})
    page = sup.get(f"/tickets/{number}").text
    for label in (
        "受理",
        "派单",
        "签收",
        "联系群众",
        "到场",
        "反馈",
        "申请结案",
        "审核通过",
        "回访",
        "已评价",
    ):
        assert label in page, label
    assert "/api/v1/attachments/" in page


def test_csrf_is_checked_on_every_form(app_client: TestClient, login: Callable[[str], TestClient]) -> None:
    op = login("operator1")
    del op.headers["X-CSRF-Token"]
    r = op.post("/desk", data={"detail": "没有令牌", "action": "intake"})
    assert r.status_code == 403 and "CSRF" in r.text
    r = op.post("/desk", data={"detail": "错误令牌", "csrf_token": "forged"})
    assert r.status_code == 403
    assert op.get("/api/v1/tickets").json()["items"] == []
    # the public forms need the form cookie's token too
    assert app_client.post("/", data={"detail": "无令牌"}).status_code == 403
    assert app_client.post("/login", data={"username": "admin", "password": PASSWORD}).status_code == 403


def test_bad_input_shows_a_message_next_to_the_field(page_login: Callable[[str], TestClient]) -> None:
    op = page_login("operator1")
    page = op.get("/desk").text
    token = CSRF.search(page).group(1)  # type: ignore[union-attr]
    r = op.post(
        "/desk", data={"csrf_token": token, "detail": " ", "citizen_phone": "abc", "action": "answer"}
    )
    assert r.status_code == 422
    assert '<span class="ferr" data-field="detail">请填写诉求内容</span>' in r.text
    assert 'data-field="citizen_phone"' in r.text and 'data-field="answer"' in r.text
    assert 'value="abc"' in r.text  # what was typed is kept
    bad = page_login("admin").post(
        "/admin/areas", data={"csrf_token": csrf_of(page_login("admin"), "/admin/areas"), "code": "坏 码"}
    )
    assert bad.status_code in (403, 422)


def test_double_submission_makes_one_ticket(page_login: Callable[[str], TestClient]) -> None:
    op = page_login("operator1")
    page = op.get("/desk").text
    data = {
        "csrf_token": CSRF.search(page).group(1),  # type: ignore[union-attr]
        "idempotency_key": KEY.search(page).group(1),  # type: ignore[union-attr]
        "detail": "小区门口井盖缺失",
        "action": "intake",
    }
    r1 = op.post("/desk", data=data, follow_redirects=False)
    r2 = op.post("/desk", data=data, follow_redirects=False)
    n1 = re.search(r"n=(\d+)", r1.headers["location"]).group(1)  # type: ignore[union-attr]
    n2 = re.search(r"n=(\d+)", r2.headers["location"]).group(1)  # type: ignore[union-attr]
    assert n1 == n2
    assert op.get("/tickets").text.count(f'href="/tickets/{n1}"') == 1


def test_personal_data_masked_on_pages(
    app_client: TestClient, page_login: Callable[[str], TestClient], login: Callable[[str], TestClient]
) -> None:
    op, leader, cgj, zjj = (
        page_login("operator1"),
        page_login("leader1"),
        page_login("h_cgj"),
        page_login("h_zjj"),
    )
    number = _intake(op, citizen_id_number="11010519491231002X", public_consent="1")
    assert "13800138000" in op.get(f"/tickets/{number}").text
    masked = leader.get(f"/tickets/{number}").text
    assert "13800138000" not in masked and "138****8000" in masked and "张*" in masked
    assert "11010519491231002X" not in masked and "1101**********002X" in masked
    assert "幸福路3号楼下" not in masked
    assert zjj.get(f"/tickets/{number}").status_code == 403
    login("dispatcher1").post(f"/api/v1/tickets/{number}/dispatch", json={"lead_unit": "CGJ"})
    assert "13800138000" in cgj.get("/inbox").text
    public = app_client.get("/public").text
    assert number in public and "13800138000" not in public and "张三" not in public
    assert "幸福路3号楼下" not in public
    # a confidential ticket stays masked for the handling unit
    secret = _intake(op, detail="举报某餐馆使用地沟油", citizen_phone="13900001111", confidential="1")
    login("dispatcher1").post(f"/api/v1/tickets/{secret}/dispatch", json={"lead_unit": "CGJ"})
    inbox = cgj.get("/inbox").text
    assert "13900001111" not in inbox and "139****1111" in inbox


def test_citizen_submits_tracks_and_rates(app_client: TestClient, login: Callable[[str], TestClient]) -> None:
    c = app_client
    page = c.get("/").text
    data = {
        "csrf_token": CSRF.search(page).group(1),  # type: ignore[union-attr]
        "idempotency_key": KEY.search(page).group(1),  # type: ignore[union-attr]
        "detail": "和平街道菜市场门口垃圾堆积发臭",
        "citizen_phone": "13912345678",
        "lat": "39.9",
        "lon": "116.4",
    }
    r = c.post("/", data=data, files=[("photo", ("p.png", io.BytesIO(PNG), "image/png"))])
    assert r.status_code == 201, r.text[:500]
    number = re.search(r'id="number">(\d+)<', r.text).group(1)  # type: ignore[union-attr]
    code = re.search(r'id="code">(\w+)<', r.text).group(1)  # type: ignore[union-attr]
    again = c.post("/", data=data)
    assert again.status_code == 201 and number in again.text and code in again.text
    bad = c.post("/", data={**data, "idempotency_key": "other-key-123", "detail": ""})
    assert bad.status_code == 422 and 'data-field="detail"' in bad.text
    bad = c.post("/", data={**data, "idempotency_key": "other-key-123", "lat": ""})
    assert bad.status_code == 422 and 'data-field="lat"' in bad.text
    token = csrf_of(c, "/track")
    wrong = c.post("/track", data={"csrf_token": token, "number": number, "query_code": "WRONG1"})
    assert wrong.status_code == 422 and "编号或查询码不正确" in wrong.text
    ok = c.post("/track", data={"csrf_token": token, "number": number, "query_code": code})
    assert ok.status_code == 200 and "受理" in ok.text and "13912345678" not in ok.text
    login("operator1").post(f"/api/v1/tickets/{number}/answer_directly", json={"answer": "已通知环卫清理"})
    ok = c.post("/track", data={"csrf_token": token, "number": number, "query_code": code})
    assert "已通知环卫清理" in ok.text and "提交评价" in ok.text
    rated = c.post(
        "/track/rate", data={"csrf_token": token, "number": number, "query_code": code, "rating": "satisfied"}
    )
    assert rated.status_code == 200 and "感谢您的评价" in rated.text


def test_big_screen_and_event_stream(page_login: Callable[[str], TestClient]) -> None:
    leader = page_login("leader1")
    _intake(page_login("operator1"))
    r = leader.get("/screen")
    assert r.status_code == 200 and "今日受理" in r.text
    data = leader.get("/screen/data").json()
    assert data["today_total"] >= 1 and len(data["hours"]) == 24
    with leader.stream("GET", "/screen/events?once=1") as s:
        assert s.headers["content-type"].startswith("text/event-stream")
        body = "".join(s.iter_text())
    assert "event: ticket" in body and "路灯" in body


def test_knowledge_base_search_in_chinese(
    app_client: TestClient, page_login: Callable[[str], TestClient]
) -> None:
    admin = page_login("admin")
    token = csrf_of(admin, "/kb")
    r = admin.post("/kb", data={"csrf_token": token, "title": "x"})
    assert r.status_code == 422 and 'data-field="title"' in r.text and 'data-field="body"' in r.text
    entries = [
        ("办理居住证需要哪些材料", "携带身份证、租房合同到社区警务室办理居住证。", "1"),
        ("路灯报修渠道", "路灯损坏由市城管局负责维修。", "1"),
        ("内部口径：拆迁补偿", "按内部文件答复。", ""),
    ]
    for title, body, public in entries:
        admin.post(
            "/kb",
            data={
                "csrf_token": token,
                "title": title,
                "body": body,
                "public": public,
                "department": "公安局",
            },
        )
    assert "办理居住证需要哪些材料" in admin.get("/kb", params={"q": "居住证 材料"}).text
    found = app_client.get("/help", params={"q": "怎么办居住证"}).text
    assert "居住证" in found and "路灯报修" not in found
    assert "按内部文件答复" not in app_client.get("/help", params={"q": "拆迁补偿"}).text
    op = page_login("operator1")
    page = op.get("/desk").text
    token = CSRF.search(page).group(1)  # type: ignore[union-attr]
    s = op.post(
        "/desk/suggest", data={"csrf_token": token, "detail": "请问居住证怎么办理", "citizen_phone": ""}
    )
    assert s.status_code == 200 and "用此答复直接办结" in s.text


def test_admin_create_import_export(page_login: Callable[[str], TestClient]) -> None:
    admin = page_login("admin")
    token = csrf_of(admin, "/admin/units")
    bad = admin.post("/admin/units", data={"csrf_token": token, "code": "bad code", "name": "", "kind": "x"})
    assert bad.status_code == 422 and 'data-field="code"' in bad.text and 'data-field="kind"' in bad.text
    ok = admin.post(
        "/admin/units",
        data={"csrf_token": token, "code": "SWJ", "name": "市水务局", "kind": "department"},
        follow_redirects=False,
    )
    assert ok.status_code == 303
    csv_file = "code,name,kind\nJTJ,市交通局,department\n".encode()
    r = admin.post(
        "/admin/units/import",
        data={"csrf_token": token},
        files=[("file", ("units.csv", io.BytesIO(csv_file), "text/csv"))],
    )
    assert r.status_code == 200 and "导入完成" in r.text and "市交通局" in r.text
    exp = admin.get("/admin/units/export", params={"format": "csv"})
    assert exp.status_code == 200 and "市水务局" in exp.text
    xlsx = admin.get("/admin/units/export", params={"format": "xlsx"})
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"
    page = admin.get("/admin").text
    # The configuration other modules keep: each shown from its table, with the interface that edits it.
    assert "尚未接入" not in page
    for table, api in [
        ("routing_rules", "/api/v1/triage/rules"),
        ("clock_policies", "/api/v1/clock/policies"),
        ("clock_calendar_days", "/api/v1/clock/calendar"),
        ("duty_shifts", "/api/v1/clock/rosters"),
        ("message_templates", "/api/v1/clock/templates"),
    ]:
        assert f"表 {table}" in page and api in page, table
    # The triage status of the serving process: model, threshold, backlog, the recent-ticket index.
    assert 'id="triage-status"' in page and "自动派单阈值" in page and "本进程已索引近期工单" in page
    assert "此后受理时已比对其他进程新工单" in page


def test_login_form_errors(app_client: TestClient) -> None:
    token = csrf_of(app_client, "/login")
    r = app_client.post("/login", data={"csrf_token": token, "username": "admin", "password": "wrong-pass"})
    assert r.status_code == 422 and "用户名或密码错误" in r.text
