"""The clock over HTTP: admins edit policies, calendar, rosters and templates (bad input refused with 422),
deadlines show on the ticket, and a user's in-app inbox fills when the worker fires."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from fastapi.testclient import TestClient

from minsheng.domain.clock import FixedClock
from minsheng.services.background import run_once
from minsheng.storage.db import Database


def test_clock_admin_api_and_inbox(
    login: Callable[[str], TestClient], app_client: TestClient, clock: FixedClock, db: Database
) -> None:
    admin, sup, op, disp, h = (
        login(u) for u in ("admin", "supervisor1", "operator1", "dispatcher1", "h_zjj")
    )
    policy = {
        "name": "签收20分钟",
        "limits": {
            "sign": {"amount": 20, "unit": "minutes"},
            "resolve": {"amount": 3, "unit": "working_days"},
        },
        "warn_at": [0.5],
        "escalation": {"sign": [{"after_minutes": 0, "action": "press", "target": "unit"}]},
    }
    r = admin.post("/api/v1/clock/policies", json=policy)
    assert r.status_code == 201, r.text
    for bad in (0, -5):
        body = {**policy, "urgency": "urgent", "limits": {"sign": {"amount": bad, "unit": "minutes"}}}
        r = admin.post("/api/v1/clock/policies", json=body)
        assert r.status_code == 422 and "greater than zero" in r.json()["error"]["message"], r.text
    r = admin.post(
        "/api/v1/clock/policies",
        json={**policy, "escalation": {"sign": [{"target": "unit", "action": "shout"}]}},
    )
    assert r.status_code == 422
    assert admin.post("/api/v1/clock/policies", json=policy).status_code == 422  # same key twice
    assert sup.post("/api/v1/clock/policies", json=policy).status_code == 403
    assert sup.get("/api/v1/clock/policies").status_code == 200

    r = admin.post(
        "/api/v1/clock/calendar",
        json={"first": "2026-12-01", "last": "2026-12-03", "kind": "holiday", "name": "本地假日"},
    )
    assert r.status_code == 201 and r.json()["added"] == 3
    r = admin.post(
        "/api/v1/clock/calendar", json={"first": "2026-12-03", "last": "2026-12-05", "kind": "workday"}
    )
    assert r.status_code == 422 and "2026-12-03" in r.json()["error"]["message"]

    r = admin.put(
        "/api/v1/clock/templates/warning", json={"text": "【预警】{{ ticket_number }} {{ secret }}"}
    )
    assert r.status_code == 422 and "secret" in r.json()["error"]["message"]
    r = admin.put(
        "/api/v1/clock/templates/warning",
        json={"text": "【预警】工单{{ ticket_number }}请在{{ due_at | local }}前{{ step_label }}"},
    )
    assert r.status_code == 200

    now = clock.now()
    shift = {
        "unit_code": "ZJJ",
        "username": "h_zjj",
        "tier": 2,
        "starts_at": (now - timedelta(hours=1)).isoformat(),
        "ends_at": (now + timedelta(hours=11)).isoformat(),
    }
    assert admin.post("/api/v1/clock/rosters", json=shift).status_code == 201
    bad_shift = {**shift, "ends_at": (now - timedelta(hours=2)).isoformat()}
    assert admin.post("/api/v1/clock/rosters", json=bad_shift).status_code == 422
    commander = {
        "username": "supervisor1",
        "commander": True,
        "tier": 1,
        "starts_at": now.isoformat(),
        "ends_at": (now + timedelta(hours=24)).isoformat(),
    }
    assert admin.post("/api/v1/clock/rosters", json=commander).status_code == 201
    duty = sup.get("/api/v1/clock/on-duty", params={"unit": "ZJJ"}).json()
    assert [s["person_name"] for s in duty["on_duty"]] == ["住建局承办人"]
    assert [s["person_name"] for s in duty["commander"]] == ["督办员一"]

    r = op.post(
        "/api/v1/tickets", json={"channel": "phone", "detail": "小区路灯不亮", "citizen_phone": "13800138000"}
    )
    number = r.json()["number"]
    assert disp.post(f"/api/v1/tickets/{number}/dispatch", json={"lead_unit": "ZJJ"}).status_code == 200
    t = h.get(f"/api/v1/tickets/{number}").json()
    assert t["assignments"][0]["sign_due_at"] is not None and t["resolve_due_at"] is not None
    steps = {d["step"] for d in h.get(f"/api/v1/clock/tickets/{number}/deadlines").json()}
    assert steps == {"sign", "resolve"}
    assert [x["kind"] for x in sup.get("/api/v1/clock/timers", params={"ticket": number}).json()] == [
        "warning",
        "overdue",
        "escalation",
        "warning",
        "overdue",
    ]

    clock.advance(timedelta(minutes=10))
    clockwork = app_client.app.state.minsheng.clockwork
    assert run_once(db, clock.now(), clockwork=clockwork).fired == 1
    inbox = h.get("/api/v1/notifications", params={"unread": True}).json()
    assert [n["kind"] for n in inbox] == ["warning", "assignment_new"]
    assert inbox[0]["text"].startswith(f"【预警】工单{number}")  # the admin's template
    r = h.post("/api/v1/notifications/read", json={"ids": [inbox[0]["id"]]})
    assert r.json() == {"marked": 1}
    assert len(h.get("/api/v1/notifications", params={"unread": True}).json()) == 1
    assert h.post("/api/v1/notifications/read", json={"ids": [999999]}).status_code == 404
