"""Triage over HTTP: routing table CRUD with bad input, auto-dispatch at intake, suggestions, model, settings."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from minsheng.asgi import create_app
from minsheng.config import Settings
from minsheng.domain.clock import FixedClock
from minsheng.storage.db import Database
from tests.factories import PASSWORD, small_city


def test_routing_crud_and_bad_input(login: Callable[[str], TestClient]) -> None:
    admin, op = login("admin"), login("operator1")
    for body, status in [
        ({"lead_unit": "NOPE"}, 404),
        ({"lead_unit": "HBJ", "category_code": "9999"}, 404),
        ({"lead_unit": "HBJ", "area_code": "ZZ"}, 404),
        ({"lead_unit": "P110"}, 422),
        ({"lead_unit": "HBJ", "assist_units": ["HBJ"]}, 422),
        ({"lead_unit": "bad code!"}, 422),
        ({"lead_unit": "HBJ", "priority": "high"}, 422),
        ({"lead_unit": "HBJ", "extra": 1}, 422),
        ({}, 422),
    ]:
        r = admin.post("/api/v1/triage/rules", json=body)
        assert r.status_code == status, (body, r.text)
    assert op.post("/api/v1/triage/rules", json={"lead_unit": "HBJ"}).status_code == 403
    r = admin.post("/api/v1/triage/rules", json={"category_code": "02", "lead_unit": "HBJ", "note": "环境类"})
    assert r.status_code == 201, r.text
    rule = r.json()
    assert admin.get("/api/v1/triage/rules").json()[0]["lead_unit"] == "HBJ"
    r = admin.put(f"/api/v1/triage/rules/{rule['id']}", json={"category_code": "02", "lead_unit": "CGJ"})
    assert r.status_code == 200 and r.json()["lead_unit"] == "CGJ"
    assert admin.put("/api/v1/triage/rules/99999", json={"lead_unit": "CGJ"}).status_code == 404
    route = admin.get("/api/v1/triage/route", params={"category": "0201"}).json()
    assert route["lead_unit"] == "CGJ" and "继承" in route["explanation"]
    assert admin.delete(f"/api/v1/triage/rules/{rule['id']}").status_code == 204
    assert admin.delete(f"/api/v1/triage/rules/{rule['id']}").status_code == 404
    r = admin.post(
        "/api/v1/triage/rules/import",
        files={"file": ("rules.csv", b"category_code,lead_unit\n0201,HBJ\n0101,NOPE\n", "text/csv")},
    )
    assert r.status_code == 200 and r.json()["created"] == 1 and r.json()["errors"][0]["row"] == 3
    bad = admin.post("/api/v1/triage/rules/import", files={"file": ("x.txt", b"junk", "text/plain")})
    assert bad.status_code == 422


def test_intake_auto_dispatch_over_http(login: Callable[[str], TestClient]) -> None:
    admin, op, disp = login("admin"), login("operator1"), login("dispatcher1")
    assert (
        admin.post("/api/v1/triage/rules", json={"category_code": "0201", "lead_unit": "HBJ"}).status_code
        == 201
    )
    r = op.post("/api/v1/tickets", json={"detail": "楼下酒吧每晚噪音到凌晨两点", "category_code": "0201"})
    assert r.status_code == 201, r.text
    number = r.json()["number"]
    t = disp.get(f"/api/v1/tickets/{number}").json()
    assert t["state"] == "dispatched"
    timeline = disp.get(f"/api/v1/tickets/{number}/timeline").json()
    events = timeline["events"] if isinstance(timeline, dict) else timeline
    dispatch = next(e for e in events if e["action"] == "dispatch")
    assert dispatch["actor_role"] == "system"
    # No rule for 0101 and no model: the ticket waits for a dispatcher.
    r = op.post("/api/v1/tickets", json={"detail": "幸福路的路灯坏了一排", "category_code": "0101"})
    assert disp.get(f"/api/v1/tickets/{r.json()['number']}").json()["state"] == "accepted"


def test_suggest_model_settings_and_clusters(login: Callable[[str], TestClient]) -> None:
    op, admin, h = login("operator1"), login("admin"), login("h_zjj")
    for body in [
        {"detail": "幸福路街道的路灯坏了", "address": "东城区幸福路街道", "phone": "13800001111"},
        {"detail": "😀😀😀", "title": "🙏"},
        {"detail": "！！？？……"},
        {"detail": "路灯" * 5000},
        {"detail": "Hello 路灯 مرحبا", "lat": 30.1, "lon": 120.1},
        {},
    ]:
        r = op.post("/api/v1/triage/suggest", json=body)
        assert r.status_code == 200, (body, r.text)
        assert set(r.json()) >= {
            "category",
            "kind",
            "urgency",
            "transfer",
            "area",
            "repeats",
            "earlier",
            "answers",
        }
    area = op.post("/api/v1/triage/suggest", json={"detail": "x", "address": "东城区幸福路街道"}).json()[
        "area"
    ]
    assert area["code"] == "C0101" and area["chain"] == ["民声市", "东城区", "幸福路街道"]
    for body in [{"detail": "x" * 10_001}, {"lat": 1.0}, {"lat": 100, "lon": 1}, {"detail": 5}, [1]]:
        assert op.post("/api/v1/triage/suggest", json=body).status_code == 422, body
    assert h.post("/api/v1/triage/suggest", json={"detail": "x"}).status_code == 403

    model = admin.get("/api/v1/triage/model").json()
    assert model["loaded"] is False and model["error"]
    r = admin.post("/api/v1/triage/model/retrain", json={})
    assert r.status_code == 422 and "model directory" in r.json()["error"]["message"]
    assert op.post("/api/v1/triage/model/retrain", json={}).status_code == 403

    assert admin.put("/api/v1/triage/settings/auto_threshold", json={"value": 0.8}).status_code == 200
    assert admin.get("/api/v1/triage/settings").json()["effective"]["auto_threshold"] == 0.8
    assert admin.put("/api/v1/triage/settings/auto_threshold", json={"value": 1.5}).status_code == 422
    assert admin.put("/api/v1/triage/settings/nope", json={"value": 1}).status_code == 404
    assert admin.delete("/api/v1/triage/settings/auto_threshold").status_code == 204

    assert admin.get("/api/v1/triage/clusters").json() == []
    assert admin.post("/api/v1/triage/clusters/1/acknowledge", json={}).status_code == 404
    assert admin.get("/api/v1/triage/corrections").json() == []
    r = admin.post(
        "/api/v1/triage/places", json={"name": "幸福家园", "area_code": "C0101", "aliases": ["幸福园"]}
    )
    assert r.status_code == 201
    assert admin.post("/api/v1/triage/places", json={"name": "某地", "area_code": "NOPE"}).status_code == 404
    area = op.post("/api/v1/triage/suggest", json={"address": "幸福园门口"}).json()["area"]
    assert area["code"] == "C0101"


def _deferred_app(db: Database, db_url: str, clock: FixedClock, tmp_path: Path, **settings: Any) -> Any:
    """The app over the small city with deferred triage (and the given settings)."""
    with db.write_sessions() as session, session.begin():
        small_city(session, clock.now())
    config = Settings(
        database_url=db_url,
        data_dir=tmp_path / "data",
        environment="test",
        triage_mode="deferred",
        **settings,
    )
    return create_app(config, clock=clock, db=db)


def _client_as(app: Any, username: str) -> TestClient:
    c = TestClient(app)
    r = c.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    c.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    return c


def test_deferred_intake_answers_first_and_the_triage_thread_dispatches(
    db: Database, db_url: str, clock: FixedClock, tmp_path: Path
) -> None:
    app = _deferred_app(
        db,
        db_url,
        clock,
        tmp_path,
        embedded_worker=True,
        worker_interval_seconds=30,  # only the intake writer's wake-up can start the triage round
    )
    with TestClient(app):
        admin, op = _client_as(app, "admin"), _client_as(app, "operator1")
        assert (
            admin.post("/api/v1/triage/rules", json={"category_code": "0201", "lead_unit": "HBJ"}).status_code
            == 201
        )
        r = op.post("/api/v1/tickets", json={"detail": "楼下酒吧每晚噪音到凌晨两点", "category_code": "0201"})
        assert r.status_code == 201, r.text
        assert r.json()["triage"] is None and r.json()["state"] == "accepted"
        number = r.json()["number"]
        done = threading.Event()
        t: dict[str, Any] = {}
        for _ in range(200):  # waits for the thread, not for a time rule: the clock is fixed
            t = admin.get(f"/api/v1/tickets/{number}").json()
            if t["state"] == "dispatched":
                done.set()
                break
            done.wait(0.05)
        assert done.is_set(), t
        assert t["triage"]["decision"] == "auto_dispatch"
        assert t["assignments"][0]["unit_code"] == "HBJ"


def test_ticket_page_says_triage_is_pending_until_the_job_runs(
    db: Database, db_url: str, clock: FixedClock, tmp_path: Path
) -> None:
    from minsheng.services.triage.jobs import run_triage_jobs

    # No triage thread: the job waits until this test runs it.
    app = _deferred_app(db, db_url, clock, tmp_path, embedded_worker=False)
    with TestClient(app):
        client = _client_as(app, "dispatcher1")
        r = client.post("/api/v1/tickets", json={"detail": "楼下酒吧每晚噪音到凌晨两点"})
        assert r.status_code == 201, r.text
        number = r.json()["number"]
        page = client.get(f"/tickets/{number}").text
        assert 'id="triage-pending"' in page and "分拣中" in page
        clock.advance(timedelta(seconds=12))
        backlog = client.get("/api/v1/triage/jobs").json()
        assert backlog["mode"] == "deferred" and backlog["waiting"] == 1 and backlog["lag_seconds"] == 12.0
        stats = run_triage_jobs(db, app.state.minsheng.engine, clock.now())
        assert stats.triaged == 1
        page = client.get(f"/tickets/{number}").text
        assert 'id="triage-pending"' not in page and 'class="triage"' in page
        assert client.get("/api/v1/triage/jobs").json()["waiting"] == 0
