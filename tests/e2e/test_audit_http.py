"""The audit log over HTTP (issue 14, finding 6): a policy edited through the API and a unit edited through the
admin pages each leave a row naming the actor with the values before and after; a deleted policy is kept
(soft delete) and no longer applies; GET /api/v1/audit filters and pages; /admin/audit shows the log."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from minsheng.domain.clock import FixedClock
from minsheng.storage.db import Database
from minsheng.storage.timelimit_tables import TimeLimitPolicy
from tests.factories import PASSWORD

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
POLICY = {
    "name": "签收20分钟",
    "limits": {"sign": {"amount": 20, "unit": "minutes"}, "resolve": {"amount": 3, "unit": "working_days"}},
}


def _audit(c: TestClient, **params: object) -> list[dict[str, object]]:
    r = c.get("/api/v1/audit", params=params)
    assert r.status_code == 200, r.text
    return r.json()["items"]  # type: ignore[no-any-return]


def test_a_policy_edit_through_the_api_is_audited_and_a_delete_is_soft(
    login: Callable[[str], TestClient], db: Database, clock: FixedClock
) -> None:
    admin, sup, op = login("admin"), login("supervisor1"), login("operator1")
    r = admin.post("/api/v1/clock/policies", json=POLICY)
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    clock.advance(timedelta(minutes=5))
    r = admin.put(f"/api/v1/clock/policies/{pid}", json={**POLICY, "name": "签收30分钟"})
    assert r.status_code == 200, r.text

    rows = _audit(sup, entity="timelimit_policy", entity_id=str(pid))
    assert [e["action"] for e in rows] == ["update", "create"]  # newest first
    update, create = rows
    assert update["actor"]["name"] == "admin" and update["actor"]["role"] == "admin"  # type: ignore[index]
    assert update["before"]["name"] == "签收20分钟" and update["after"]["name"] == "签收30分钟"  # type: ignore[index]
    assert create["before"] is None and create["after"]["limits"]["sign"]["amount"] == 20  # type: ignore[index]

    # Filters: actor, entity, time; keyset pages.
    assert _audit(sup, actor="nobody") == []
    assert all(e["actor"]["name"] == "admin" for e in _audit(sup, actor="admin"))  # type: ignore[index]
    assert _audit(sup, entity="unit", entity_id=str(pid)) == []
    later = (clock.now() - timedelta(minutes=1)).isoformat()
    assert [e["action"] for e in _audit(sup, entity="timelimit_policy", at_from=later)] == ["update"]
    assert [e["action"] for e in _audit(sup, entity="timelimit_policy", at_to=later)] == ["create"]
    first = sup.get("/api/v1/audit", params={"entity": "timelimit_policy", "limit": 1}).json()
    assert [e["action"] for e in first["items"]] == ["update"] and first["next_cursor"]
    second = sup.get(
        "/api/v1/audit", params={"entity": "timelimit_policy", "limit": 1, "cursor": first["next_cursor"]}
    ).json()
    assert [e["action"] for e in second["items"]] == ["create"] and second["next_cursor"] is None
    assert sup.get("/api/v1/audit", params={"cursor": "bogus"}).status_code == 422
    assert sup.get("/api/v1/audit", params={"entity": "tickets"}).status_code == 422
    assert op.get("/api/v1/audit").status_code == 403

    # A delete keeps the row, which no longer applies: the policy is not listed, a new one with the same key
    # is accepted (one active policy per key), and the log has the delete.
    assert admin.delete(f"/api/v1/clock/policies/{pid}").status_code == 204
    with db.read_sessions() as session:
        kept = session.get(TimeLimitPolicy, pid)
        assert kept is not None and kept.deleted_at is not None
    assert pid not in [p["id"] for p in admin.get("/api/v1/clock/policies").json()]
    assert admin.put(f"/api/v1/clock/policies/{pid}", json=POLICY).status_code == 404
    assert admin.post("/api/v1/clock/policies", json=POLICY).status_code == 201
    deleted = _audit(sup, entity="timelimit_policy", entity_id=str(pid))[0]
    assert deleted["action"] == "delete" and deleted["actor"]["name"] == "admin"  # type: ignore[index]
    assert deleted["before"]["deleted_at"] is None and deleted["after"]["deleted_at"]  # type: ignore[index]
    with db.read_sessions() as session:
        live = session.scalars(select(TimeLimitPolicy).where(TimeLimitPolicy.deleted_at.is_(None))).all()
        assert [p.name for p in live] == ["签收20分钟"] and all(p.id != pid for p in live)


def test_a_unit_edit_through_the_admin_pages_is_audited_and_shown(app_client: TestClient) -> None:
    admin = TestClient(app_client.app)
    token = CSRF.search(admin.get("/login").text).group(1)  # type: ignore[union-attr]
    r = admin.post(
        "/login",
        data={"username": "admin", "password": PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303
    token = CSRF.search(admin.get("/admin/units").text).group(1)  # type: ignore[union-attr]
    csv_file = "code,name,kind\nCGJ,市综合行政执法局,department\n".encode()
    r = admin.post(
        "/admin/units/import",
        data={"csrf_token": token},
        files=[("file", ("units.csv", io.BytesIO(csv_file), "text/csv"))],
    )
    assert r.status_code == 200 and "导入完成" in r.text

    api = TestClient(app_client.app)
    r = api.post("/api/v1/auth/login", json={"username": "admin", "password": PASSWORD})
    api.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    rows = _audit(api, entity="unit")
    assert [e["action"] for e in rows] == ["update"]
    e = rows[0]
    assert e["actor"]["name"] == "admin"  # type: ignore[index]
    assert e["before"]["name"] == "市城管局" and e["after"]["name"] == "市综合行政执法局"  # type: ignore[index]

    page = admin.get("/admin/audit", params={"entity": "unit"})
    assert page.status_code == 200
    assert "审计日志" in page.text and "承办单位" in page.text and "市综合行政执法局" in page.text
    assert "修改" in page.text and "admin" in page.text
    assert "市综合行政执法局" not in admin.get("/admin/audit", params={"entity": "user"}).text
    assert admin.get("/admin/audit", params={"from": "yesterday"}).status_code == 422
