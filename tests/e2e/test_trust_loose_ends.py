"""Issue 14, loose ends over HTTP: the admin page of failed logins, personal data on pages following the current
assignments, the portal refusing a citizen's urgency, and photos named by a unit's feedback through the API
becoming public. Each test failed on the code before the fix (the full_pii one at its service-level check)."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from minsheng.domain.clock import FixedClock
from minsheng.domain.roles import Role
from minsheng.services.auth import Principal
from minsheng.storage.db import Database
from minsheng.storage.limit_tables import LoginFailure
from minsheng.storage.models import Ticket, User
from minsheng.web import views
from tests.factories import png

Login = Callable[[str], TestClient]
PHONE = "13700002222"


def _intake(op: TestClient) -> str:
    body = {
        "channel": "phone",
        "title": "路灯不亮",
        "detail": "幸福路3号路灯坏了一个星期",
        "citizen_name": "李四",
        "citizen_phone": PHONE,
    }
    r = op.post("/api/v1/tickets", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["number"])


def _dispatch(disp: TestClient, number: str, lead: str) -> dict[str, Any]:
    r = disp.post(f"/api/v1/tickets/{number}/dispatch", json={"lead_unit": lead})
    assert r.status_code == 200, r.text
    return dict(r.json())


def _assignment(view: dict[str, Any], unit: str) -> int:
    return int(next(a["id"] for a in view["assignments"] if a["unit_code"] == unit))


# ------------------------------------------------------------------------- failed logins: the admin page


def test_admins_read_failed_logins_per_name_and_masked_address(
    app_client: TestClient, login: Login, db: Database, clock: FixedClock
) -> None:
    for _ in range(3):
        r = app_client.post("/api/v1/auth/login", json={"username": "h_zjj", "password": "wrong-password"})
        assert r.status_code == 401
    now = clock.now()
    with db.write_sessions() as session, session.begin():
        for minutes in (5, 30):
            session.add(
                LoginFailure(
                    username="ghost",
                    at=now - timedelta(minutes=minutes),
                    address="203.0.113.77",
                    reason="unknown_user",
                )
            )
        session.add(
            LoginFailure(
                username="ancient",
                at=now - timedelta(days=40),
                address="198.51.100.1",
                reason="wrong_password",
            )
        )
    admin = login("admin")
    assert 'href="/admin/logins"' in admin.get("/admin").text
    page = admin.get("/admin/logins")
    assert page.status_code == 200, page.text
    rows = re.findall(
        r"<tr>\s*<td>([^<]*)</td>\s*<td>([^<]*)</td>\s*<td>(\d+)</td>\s*<td>([^<]*)</td>", page.text
    )
    got = {(u, a): (int(n), why) for u, a, n, why in rows}
    assert got[("ghost", "203.0.113.*")] == (2, "用户名不存在 2 次")
    assert got[("h_zjj", "tes***")] == (3, "密码错误 3 次")
    assert "203.0.113.77" not in page.text and "ancient" not in page.text
    assert "ancient" not in admin.get("/admin/logins", params={"days": "30"}).text
    # Read-only, admins only.
    assert login("supervisor1").get("/admin/logins").status_code == 403
    assert app_client.get("/admin/logins", follow_redirects=False).status_code in (302, 303, 401)
    assert admin.post("/admin/logins", data={}).status_code in (403, 404, 405)  # no write behind it


# ------------------------------------------------------------------- personal data follows the assignment


def test_pages_mask_personal_data_for_a_unit_that_returned_the_ticket(login: Login, db: Database) -> None:
    op, disp, cgj = login("operator1"), login("dispatcher1"), login("h_cgj")
    number = _intake(op)
    view = _dispatch(disp, number, "CGJ")
    assert PHONE in cgj.get(f"/tickets/{number}").text  # while CGJ holds it
    r = cgj.post(f"/api/v1/assignments/{_assignment(view, 'CGJ')}/return", json={"reason": "非本单位职责"})
    assert r.status_code == 200, r.text
    page = cgj.get(f"/tickets/{number}")
    assert page.status_code == 200 and PHONE not in page.text and "137****2222" in page.text
    # The pages' row helper applies the same rule (it counted every assignment, returned ones too).
    with db.read_sessions() as session, session.begin():
        t = session.scalars(select(Ticket).where(Ticket.number == number)).one()
        user = session.scalars(select(User).where(User.username == "h_cgj")).one()
        who = Principal(user.id, user.username, user.display_name, Role.HANDLER, user.unit_id, None)
        assert not views.full_pii(t, who)
        assert views.brief(t, views.Names(session, [t]), who, pii=True)["citizen_phone"] != PHONE
        zjj = session.scalars(select(User).where(User.username == "h_zjj")).one()
        assert not views.full_pii(t, Principal(zjj.id, "h_zjj", "", Role.HANDLER, zjj.unit_id, None))
    _dispatch(disp, number, "ZJJ")
    inbox = login("h_zjj").get("/inbox")
    assert PHONE in inbox.text  # the unit that holds it now sees the contact


# ---------------------------------------------------------------------------- the portal and urgency


def _portal_post(client: TestClient, **fields: str) -> Any:
    page = client.get("/").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    key = re.search(r'name="idempotency_key" value="([^"]+)"', page)
    data = {
        "csrf_token": token.group(1) if token else "",
        "idempotency_key": key.group(1) if key else "",
        "detail": "小区门口路灯坏了，晚上很黑",
        **fields,
    }
    return client.post("/", data=data)


def test_the_portal_refuses_an_urgency_set_by_the_citizen(app_client: TestClient, db: Database) -> None:
    def count() -> int:
        with db.read_sessions() as session, session.begin():
            return int(session.scalar(select(func.count()).select_from(Ticket)) or 0)

    before = count()
    for urgency in ("emergency", "urgent"):
        r = _portal_post(app_client, urgency=urgency)
        assert r.status_code == 422, (urgency, r.text[:300])
        assert "紧急程度由热线工作人员判定" in r.text
    assert count() == before
    assert _portal_post(app_client, urgency="normal").status_code == 201
    assert _portal_post(app_client).status_code == 201
    assert count() == before + 2


# ------------------------------------------------------------- feedback photos uploaded through the API


def test_photos_named_by_a_feedback_through_the_api_become_public(
    app_client: TestClient, login: Login
) -> None:
    r = app_client.post("/api/v1/public/tickets", json={"channel": "web", "detail": "幸福路3号路灯不亮"})
    assert r.status_code == 201, r.text
    number, code = r.json()["number"], r.json()["query_code"]
    zjj = login("h_zjj")
    view = _dispatch(login("dispatcher1"), number, "ZJJ")
    aid = _assignment(view, "ZJJ")
    assert zjj.post(f"/api/v1/assignments/{aid}/sign", json={}).is_success
    files = {"file": ("after.png", io.BytesIO(png()), "image/png")}
    done = zjj.post(f"/api/v1/tickets/{number}/attachments", files=files)
    assert done.status_code == 201, done.text
    internal = zjj.post(
        f"/api/v1/tickets/{number}/attachments",
        files={"file": ("note.png", io.BytesIO(png(5, 5)), "image/png")},
    )
    assert internal.status_code == 201, internal.text

    def citizen_sees() -> set[str]:
        t = app_client.post(f"/api/v1/public/tickets/{number}/track", json={"query_code": code})
        assert t.status_code == 200, t.text
        return {a["filename"] for a in t.json()["attachments"]}

    assert citizen_sees() == set()  # an upload on its own is an internal note
    r = zjj.post(
        f"/api/v1/assignments/{aid}/feedback",
        json={"text": "已更换灯泡", "attachment_ids": [done.json()["id"]]},
    )
    assert r.status_code == 200, r.text
    assert citizen_sees() == {"after.png"}  # the photo the feedback names, as the console's form makes it
