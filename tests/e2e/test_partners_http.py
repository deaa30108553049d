"""Linkage with 110 and peer hotlines over HTTP, against a partner simulator on loopback (tests/partner_simulator.py),
on both stores: inbound transfers (once per incident id, refused when unsigned or unknown), the report back to
the partner, outbound transfers with a partner that fails, one that answers twice and one that answers late
(the injected clock; the worker's pass is run by hand), and the registry's CLI, API and admin page.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from minsheng.cli.main import app as cli
from minsheng.domain.clock import FixedClock
from minsheng.notify.delivery import RetryPolicy
from minsheng.notify.partner import signed_headers
from minsheng.services.background import RunStats, run_once
from minsheng.services.partners import inbound, registry, views
from minsheng.services.uow import reading, writing
from minsheng.storage.audit_tables import AuditEntry
from minsheng.storage.db import Database
from minsheng.storage.models import Ticket
from minsheng.storage.partner_tables import PartnerTransfer
from minsheng.storage.timelimit_tables import Notification, OutboxMessage
from tests.partner_simulator import PartnerSimulator

MIN = timedelta(minutes=1)
Login = Callable[[str], TestClient]


@pytest.fixture
def add_partner(
    app_client: TestClient, db: Database, clock: FixedClock
) -> Iterator[Callable[..., PartnerSimulator]]:
    """Register a partner whose endpoint is a running simulator (stopped after the test)."""
    sims: list[PartnerSimulator] = []

    def answer(path: str, raw: bytes, headers: dict[str, str]) -> Any:
        # The simulator's server thread calls minsheng's app while the test's thread waits for its reply.
        return app_client.post(path, content=raw, headers=headers)

    def add(code: str, **kw: Any) -> PartnerSimulator:
        behaviour = {k: kw.pop(k) for k in ("fail_first", "fail_always", "acks") if k in kw}
        sim = PartnerSimulator("", clock, answer=answer, **behaviour).__enter__()
        sims.append(sim)
        with writing(db) as session:
            _, sim.secret = registry.add_partner(
                session, code=code, name=f"{code}指挥中心", endpoint_url=sim.url, now=clock.now(), **kw
            )
        return sim

    yield add
    for sim in sims:
        sim.__exit__()


def _pass(app_client: TestClient, clock: FixedClock, retry: RetryPolicy | None = None) -> RunStats:
    st = app_client.app.state.minsheng  # type: ignore[attr-defined]
    return run_once(st.db, clock.now(), clockwork=st.clockwork, senders=st.senders, retry=retry or st.retry)


def _post(c: TestClient, path: str, sim: PartnerSimulator, body: dict[str, Any]) -> Any:
    raw, headers = sim.signed(body)
    return c.post(path, content=raw, headers=headers)


def _count(db: Database, *where: Any, model: Any = Ticket) -> int:
    with reading(db) as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def _actions(c: TestClient, number: str) -> list[str]:
    r = c.get(f"/api/v1/tickets/{number}/timeline")
    assert r.status_code == 200, r.text
    return [e["action"] for e in r.json()]


TRANSFER = {
    "incident_id": "JJ-20261121-0001",
    "text": "小区楼下烧烤摊油烟和噪声扰民到深夜",
    "title": "烧烤油烟噪声扰民",
    "address": "幸福路12号",
    "caller": {"name": "李四", "phone": "13900000000"},
    "category": "0201",
}


def _inbound_once_and_refusals(
    app_client: TestClient, db: Database, add_partner: Callable[..., PartnerSimulator], clock: FixedClock
) -> None:
    sim = add_partner("12315", sends=["0201"])
    r = _post(app_client, "/api/v1/partners/12315/transfers", sim, TRANSFER)
    assert r.status_code == 201, r.text
    number = r.json()["ticket"]
    assert r.json() == {"incident_id": TRANSFER["incident_id"], "status": "accepted", "ticket": number}
    # the partner posts again (its answer was lost), even with another text: the same ticket
    r = _post(app_client, "/api/v1/partners/12315/transfers", sim, TRANSFER)
    assert (r.status_code, r.json()["ticket"]) == (200, number)
    r = _post(app_client, "/api/v1/partners/12315/transfers", sim, {**TRANSFER, "text": "又来了"})
    assert (r.status_code, r.json()["ticket"]) == (200, number)
    assert _count(db) == 1
    with reading(db) as session:
        t = session.scalars(select(Ticket).where(Ticket.number == number)).one()
        assert (t.channel, t.external_id, t.citizen_phone, t.detail) == (
            "partner",
            TRANSFER["incident_id"],
            "13900000000",
            TRANSFER["text"],
        )

    # four posts of a new incident at once (the partner's retries racing): one ticket, created once
    st = app_client.app.state.minsheng  # type: ignore[attr-defined]
    raw, headers = sim.signed({**TRANSFER, "incident_id": "JJ-RACE"})

    def post(_: int) -> tuple[dict[str, Any], bool]:
        return inbound.receive_transfer(st.db, st.intake, "12315", headers, raw, clock.now(), 300)

    with ThreadPoolExecutor(4) as pool:
        raced = list(pool.map(post, range(4)))
    assert len({ack["ticket"] for ack, _ in raced}) == 1 and [c for _, c in raced].count(True) == 1
    assert _count(db) == 2

    other = {**TRANSFER, "incident_id": "JJ-2"}
    raw = json.dumps(other).encode()
    bad = [
        signed_headers("not-the-secret-000000", raw, clock.now()),  # wrong secret
        signed_headers(sim.secret, raw, clock.now() - 10 * MIN),  # stale: a replay
        {"X-Partner-Timestamp": str(int(clock.now().timestamp()))},  # unsigned
    ]
    for headers in bad:
        r = app_client.post("/api/v1/partners/12315/transfers", content=raw, headers=headers)
        assert r.status_code == 401, r.text
    raw_tampered, headers = sim.signed(other)
    r = app_client.post("/api/v1/partners/12315/transfers", content=raw_tampered + b" ", headers=headers)
    assert r.status_code == 401
    assert _post(app_client, "/api/v1/partners/99999/transfers", sim, other).status_code == 404
    # signed but wrong: a missing text, a category the partner does not send, not JSON at all
    assert (
        _post(app_client, "/api/v1/partners/12315/transfers", sim, {"incident_id": "JJ-3"}).status_code == 422
    )
    r = _post(app_client, "/api/v1/partners/12315/transfers", sim, {**other, "category": "010101"})
    assert r.status_code == 422
    with writing(db) as session:
        registry.update_partner(session, "12315", clock.now(), sends=[])
    r = _post(app_client, "/api/v1/partners/12315/transfers", sim, {**other, "category": "9999"})
    assert r.status_code == 422 and "unknown category" in r.text
    for bad in ({"lat": 95, "lon": 1}, {"caller": {"phone": "call me"}}, {"urgency": "now"}, {"text": " "}):
        r = _post(app_client, "/api/v1/partners/12315/transfers", sim, {**other, **bad})
        assert r.status_code == 422, (bad, r.text)
    raw, headers = b"\xff not json", signed_headers(sim.secret, b"\xff not json", clock.now())
    assert (
        app_client.post("/api/v1/partners/12315/transfers", content=raw, headers=headers).status_code == 422
    )
    # a disabled partner is refused like an unknown one
    with writing(db) as session:
        registry.update_partner(session, "12315", clock.now(), active=False)
    assert _post(app_client, "/api/v1/partners/12315/transfers", sim, other).status_code == 404
    assert _count(db) == 2 and _count(db, model=PartnerTransfer) == 2


def _inbound_reported_back(
    app_client: TestClient,
    login: Login,
    db: Database,
    add_partner: Callable[..., PartnerSimulator],
    clock: FixedClock,
) -> None:
    sim = add_partner("110")
    r = _post(app_client, "/api/v1/partners/110/transfers", sim, {**TRANSFER, "category": None})
    number = r.json()["ticket"]
    disp, cgj, sup = login("dispatcher1"), login("h_cgj"), login("supervisor1")
    assert sup.get(f"/api/v1/tickets/{number}").json()["channel"] == "transfer_110"
    assert disp.post(f"/api/v1/tickets/{number}/dispatch", json={"lead_unit": "CGJ"}).status_code == 200
    a = next(x["id"] for x in cgj.get(f"/api/v1/tickets/{number}").json()["assignments"])
    clock.advance(5 * MIN)
    assert cgj.post(f"/api/v1/assignments/{a}/sign", json={}).status_code == 200
    assert cgj.post(f"/api/v1/assignments/{a}/feedback", json={"text": "已责令摊主整改"}).status_code == 200
    assert (
        cgj.post(f"/api/v1/assignments/{a}/request_close", json={"summary": "摊点已取缔"}).status_code == 200
    )
    assert sup.post(f"/api/v1/tickets/{number}/review_accept", json={}).status_code == 200
    fu = login("followup1")
    assert fu.post(f"/api/v1/tickets/{number}/follow_up", json={"rating": "dissatisfied"}).status_code == 200
    assert fu.post(f"/api/v1/tickets/{number}/reopen", json={"reason": "摊主又来了"}).status_code == 200
    stats = _pass(app_client, clock)
    got = sim.delivered()
    assert [(b["type"], b["event"]) for b in got] == [
        ("status", "signed"),
        ("status", "feedback"),
        ("status", "feedback"),
        ("status", "closed"),
        ("status", "reopened"),
    ], stats.problems
    assert all(r.signature_ok for r in sim.received)
    assert {b["incident_id"] for b in got} == {TRANSFER["incident_id"]} and {b["ticket"] for b in got} == {
        number
    }
    assert [b["text"] for b in got[1:3]] == ["已责令摊主整改", "摊点已取缔"] and got[3]["state"] == "closed"
    # delivered once: a second pass sends nothing again
    _pass(app_client, clock)
    assert len(sim.received) == 5


CODES: dict[str, str] = {}  # ticket number -> query code, for tracking as the citizen


def _transferred(login: Login, target: str = "110", **extra: Any) -> str:
    op = login("operator1")
    body = {"detail": "有人在小区门口打架，已经见血", "citizen_phone": "13800138000", **extra}
    made = op.post("/api/v1/tickets", json=body).json()
    number = str(made["number"])
    CODES[number] = made["query_code"]
    r = op.post(f"/api/v1/tickets/{number}/transfer", json={"target": target, "note": "警情，转110"})
    assert r.json()["state"] == "transferred", r.text
    return number


def _outbound_answered_twice(
    app_client: TestClient,
    login: Login,
    db: Database,
    add_partner: Callable[..., PartnerSimulator],
    clock: FixedClock,
) -> None:
    sim = add_partner("110", acks=2)  # it answers every transfer twice
    number = _transferred(login)
    assert sim.received == []  # nothing leaves before the worker's pass: the outbox row commits with the step
    _pass(app_client, clock)
    [sent] = sim.delivered()
    assert sim.received[0].signature_ok and sim.received[0].message_id
    assert (sent["type"], sent["ticket"], sent["target"], sent["caller"]["phone"]) == (
        "transfer",
        number,
        "110",
        "13800138000",
    )
    assert sent["acks"] == "/api/v1/partners/110/acks" and sent["note"] == "警情，转110"

    # the simulator acknowledged it twice while our post was in flight: the second changed nothing
    assert sim.answered == [(200, "acknowledged"), (200, "duplicate")]
    ack = {"ticket": number, "incident_id": "SIM-1", "note": "已派警"}
    assert _post(app_client, "/api/v1/partners/110/acks", sim, ack).json()["status"] == "duplicate"
    result = {"ticket": number, "incident_id": "SIM-1", "result_id": "R1", "text": "民警到场，双方已调解"}
    assert _post(app_client, "/api/v1/partners/110/results", sim, result).json()["status"] == "recorded"
    assert _post(app_client, "/api/v1/partners/110/results", sim, result).json()["status"] == "duplicate"
    final = {**result, "result_id": "R2", "text": "已结案，请群众放心", "final": True, "public": True}
    assert _post(app_client, "/api/v1/partners/110/results", sim, final).json()["status"] == "recorded"
    # refused: unsigned, another ticket, another partner's code
    raw = json.dumps(ack).encode()
    assert app_client.post("/api/v1/partners/110/acks", content=raw).status_code == 401
    other = _transferred(login, target="119")  # no partner 119: nothing is sent
    assert _post(app_client, "/api/v1/partners/110/acks", sim, {**ack, "ticket": other}).status_code == 404
    assert _post(app_client, "/api/v1/partners/12345/acks", sim, ack).status_code == 404

    sup = login("supervisor1")
    actions = _actions(sup, number)
    assert actions.count("partner_ack") == 1 and actions.count("partner_result") == 2
    timeline = sup.get(f"/api/v1/tickets/{number}/timeline").json()
    results = [e for e in timeline if e["action"] == "partner_result"]
    assert [e["payload"]["text"] for e in results] == ["民警到场，双方已调解", "已结案，请群众放心"]
    assert results[0]["action_label"] == "对方办理结果"
    # the citizen sees the acknowledgement and the result the partner made public, not the other one
    r = app_client.get(f"/api/v1/public/tickets/{number}", headers={"X-Query-Code": CODES[number]})
    seen = [(e["action"], e["payload"]) for e in r.json()["timeline"] if e["action"].startswith("partner")]
    assert seen == [("partner_ack", {}), ("partner_result", {"summary": "已结案，请群众放心"})], seen
    with reading(db) as session:
        link = session.scalars(select(PartnerTransfer).where(PartnerTransfer.direction == "out")).one()
        assert (link.incident_id, link.acked_at, link.closed_at) == ("SIM-1", clock.now(), clock.now())
    assert _count(db, OutboxMessage.channel == "partner", model=OutboxMessage) == 1


def _outbound_failing(
    app_client: TestClient,
    login: Login,
    db: Database,
    add_partner: Callable[..., PartnerSimulator],
    clock: FixedClock,
) -> None:
    flaky = add_partner("110", fail_first=2, acks=1)
    down = add_partner("119", fail_always=True)
    number = _transferred(login, "110")
    fire = _transferred(login, "119")
    retry = RetryPolicy(max_attempts=3, base_delay=timedelta(seconds=30))

    stats = _pass(app_client, clock, retry)
    assert (len(flaky.received), len(down.received), stats.retrying) == (1, 1, 2)
    _pass(app_client, clock, retry)  # not due yet: the backoff holds them
    assert (len(flaky.received), len(down.received)) == (1, 1)
    clock.advance(MIN)  # past 30 s ± 20 %
    _pass(app_client, clock, retry)
    assert (len(flaky.received), len(down.received)) == (2, 2)
    clock.advance(2 * MIN)  # past 60 s ± 20 %
    stats = _pass(app_client, clock, retry)
    assert [r.status for r in flaky.received] == [503, 503, 200] and stats.sent == 1
    assert len({r.message_id for r in flaky.received}) == 1  # the same message each time, for its dedup
    assert [r.status for r in down.received] == [503, 503, 503] and stats.dead == 1
    assert any("gave up after 3 attempts: HTTP 503" in p for p in stats.problems)
    with reading(db) as session:
        shown = {x["ticket"]: x for x in views.recent_transfers(session)}
    assert (shown[number]["state"], shown[number]["attempts"]) == ("acked", 3)
    assert flaky.answered == [(200, "acknowledged")]
    assert shown[fire]["state"] == "undelivered" and "HTTP 503" in shown[fire]["last_error"]
    clock.advance(60 * MIN)
    _pass(app_client, clock, retry)
    assert len(down.received) == 3  # given up: never sent again
    page = login("admin").get("/admin/partners")
    assert page.status_code == 200 and "发送失败" in page.text and fire in page.text


def _outbound_late(
    app_client: TestClient,
    login: Login,
    db: Database,
    add_partner: Callable[..., PartnerSimulator],
    clock: FixedClock,
) -> None:
    sim = add_partner("119", ack_warn_minutes=15, ack_escalate_minutes=30)
    late, prompt = _transferred(login, "119"), _transferred(login, "119")
    _pass(app_client, clock)
    assert len(sim.delivered()) == 2
    clock.advance(5 * MIN)
    _post(app_client, "/api/v1/partners/119/acks", sim, {"ticket": prompt, "incident_id": "110-1"})
    sup = login("supervisor1")

    def notes(number: str) -> list[str]:
        return [a for a in _actions(sup, number) if a.startswith("partner_ack_")]

    clock.advance(9 * MIN)  # 14 minutes after sending
    _pass(app_client, clock)
    assert notes(late) == []
    clock.advance(2 * MIN)  # 16
    _pass(app_client, clock)
    _pass(app_client, clock)
    assert notes(late) == ["partner_ack_warning"]
    assert _count(db, Notification.kind == "partner_ack", model=Notification) == 1  # the centre's inbox
    clock.advance(15 * MIN)  # 31
    _pass(app_client, clock)
    assert notes(late) == ["partner_ack_warning", "partner_ack_escalation"]
    inbox = sup.get("/api/v1/notifications").json()
    assert any(late in n["title"] and "督办" in n["title"] for n in inbox), inbox
    # the acknowledgement arrives at last: recorded, and the clock stops
    r = _post(app_client, "/api/v1/partners/119/acks", sim, {"ticket": late, "incident_id": "110-2"})
    assert r.json()["status"] == "acknowledged"
    clock.advance(120 * MIN)
    _pass(app_client, clock)
    assert notes(late) == ["partner_ack_warning", "partner_ack_escalation"]
    assert notes(prompt) == []  # acknowledged in time: never warned


def _registry(app_client: TestClient, login: Login, db: Database, db_url: str) -> None:
    runner = CliRunner()
    args = ["--database-url", db_url]
    r = runner.invoke(
        cli,
        [
            "partners",
            "add",
            "--code",
            "12315",
            "--name",
            "市场监管12315",
            "--endpoint",
            "https://p.example/in",
            "--takes",
            "0201",
            *args,
        ],
    )
    assert r.exit_code == 0, r.output
    secret = r.output.strip().splitlines()[-1]
    assert len(secret) >= 32
    r = runner.invoke(cli, ["partners", "list", *args])
    assert r.exit_code == 0 and "12315" in r.output and secret not in r.output and secret[-4:] in r.output
    r = runner.invoke(
        cli, ["partners", "add", "--code", "12315", "--name", "x", "--endpoint", "https://p", *args]
    )
    assert r.exit_code == 2 and "exists" in r.output
    r = runner.invoke(cli, ["partners", "add", "--code", "12", "--name", "x", "--endpoint", "ftp://p", *args])
    assert r.exit_code == 2

    admin, op = login("admin"), login("operator1")
    listed = admin.get("/api/v1/partners").json()["items"]
    assert {p["code"]: p["secret"] for p in listed}["12315"] == "…" + secret[-4:]
    assert op.get("/api/v1/partners").status_code == 403
    page = admin.get("/admin/partners")
    assert page.status_code == 200 and "市场监管12315" in page.text and secret not in page.text
    assert op.get("/admin/partners").status_code == 403
    form = {
        "name": "市市场监管局12315",
        "endpoint_url": "https://p.example/v2",
        "takes": "0201,02",
        "sends": "",
        "ack_warn_minutes": "10",
        "ack_escalate_minutes": "20",
        "active": "1",
    }
    r = admin.post("/admin/partners/12315", data=form, follow_redirects=False)
    assert r.status_code == 303 and "err=" not in r.headers["location"]
    r = admin.post("/admin/partners/12315", data={**form, "takes": "nope"}, follow_redirects=False)
    assert "err=" in r.headers["location"]
    r = runner.invoke(cli, ["partners", "rotate-secret", "12315", *args])
    assert r.exit_code == 0, r.output
    rotated = r.output.strip().splitlines()[-1]
    assert rotated != secret and len(rotated) >= 32
    r = runner.invoke(cli, ["partners", "disable", "12315", *args])
    assert r.exit_code == 0, r.output
    assert runner.invoke(cli, ["partners", "disable", "nope", *args]).exit_code == 2
    with reading(db) as session:
        p = registry.get_partner(session, "12315")
        assert (p.name, p.takes, p.ack_warn_minutes, p.active) == (
            "市市场监管局12315",
            ["02", "0201"],
            10,
            False,
        )
        audit = list(
            session.scalars(
                select(AuditEntry)
                .where(AuditEntry.entity == "partner", AuditEntry.actor_name.in_(["cli", "admin"]))
                .order_by(AuditEntry.id)
            )
        )
    assert [(a.action, a.actor_name) for a in audit] == [
        ("create", "cli"),
        ("update", "admin"),
        ("update", "cli"),
        ("update", "cli"),
    ]
    assert audit[0].after["secret"] == "******" and audit[2].after["secret"] == "******"
    assert secret not in json.dumps([a.after for a in audit]) and rotated not in json.dumps(
        [a.after for a in audit]
    )


# Three tests, not six: each costs a migrated database and an app per store (~4 s on PostgreSQL).
def test_inbound_transfers_once_per_incident_refused_unsigned_and_reported_back(
    app_client: TestClient,
    login: Login,
    db: Database,
    add_partner: Callable[..., PartnerSimulator],
    clock: FixedClock,
) -> None:
    _inbound_once_and_refusals(app_client, db, add_partner, clock)
    _inbound_reported_back(app_client, login, db, add_partner, clock)


def test_outbound_transfers_to_a_partner_that_answers_twice_and_to_one_that_answers_late(
    app_client: TestClient,
    login: Login,
    db: Database,
    add_partner: Callable[..., PartnerSimulator],
    clock: FixedClock,
) -> None:
    _outbound_answered_twice(app_client, login, db, add_partner, clock)
    _outbound_late(app_client, login, db, add_partner, clock)


def test_outbound_transfers_to_failing_partners_and_the_registry(
    app_client: TestClient,
    login: Login,
    db: Database,
    db_url: str,
    add_partner: Callable[..., PartnerSimulator],
    clock: FixedClock,
) -> None:
    _outbound_failing(app_client, login, db, add_partner, clock)
    _registry(app_client, login, db, db_url)
