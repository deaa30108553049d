"""The follow-up desk (回访): the most recently closed tickets first, filtered by unit, category and channel."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from minsheng.domain.clock import FixedClock
from minsheng.services.background import PassLimits, run_once
from minsheng.services.followup import apply_default_ratings
from minsheng.services.uow import reading
from minsheng.storage.db import Database
from minsheng.storage.models import Ticket, TimelineEvent


def _closed(
    login: Callable[[str], TestClient], title: str, unit: str, channel: str, kind: str = "complaint"
) -> str:
    op, disp, sup = login("operator1"), login("dispatcher1"), login("supervisor1")
    handler = login({"CGJ": "h_cgj", "ZJJ": "h_zjj"}[unit])
    body = {
        "detail": f"{title}，请尽快处理",
        "title": title,
        "channel": channel,
        "citizen_phone": "13700001111",
        "kind": kind,
    }
    r = op.post("/api/v1/tickets", json=body)
    assert r.status_code == 201, r.text
    number = r.json()["number"]
    v = disp.post(f"/api/v1/tickets/{number}/dispatch", json={"lead_unit": unit}).json()
    a = next(x["id"] for x in v["assignments"] if x["unit_code"] == unit)
    for step, payload in [
        ("sign", {}),
        ("feedback", {"text": "已处理"}),
        ("request_close", {"summary": "已处理完毕"}),
    ]:
        assert handler.post(f"/api/v1/assignments/{a}/{step}", json=payload).is_success
    assert sup.post(f"/api/v1/tickets/{number}/review_accept", json={}).is_success
    return number


def test_newest_closed_first_and_filters(login: Callable[[str], TestClient], clock: FixedClock) -> None:
    old = _closed(login, "幸福路路灯不亮", "CGJ", "phone")
    clock.advance(timedelta(days=30))
    middle = _closed(login, "小区楼道漏水", "ZJJ", "web")
    clock.advance(timedelta(days=1))
    new = _closed(login, "人行道井盖缺失", "CGJ", "web")
    fu = login("followup1")

    page = fu.get("/followup").text
    assert page.index(new) < page.index(middle) < page.index(old)
    assert "最近办结的在前" in page

    cgj = fu.get("/followup", params={"unit": "CGJ"}).text
    assert new in cgj and old in cgj and middle not in cgj
    web = fu.get("/followup", params={"channel": "web"}).text
    assert new in web and middle in web and old not in web
    both = fu.get("/followup", params={"unit": "CGJ", "channel": "web"}).text
    assert new in both and old not in both and middle not in both

    for bad in ({"channel": "fax"}, {"unit": "NOPE"}, {"category": "NOPE"}):
        r = fu.get("/followup", params=bad)
        assert r.status_code == 400 and new not in r.text, (bad, r.status_code)


def _ids(db: Database, numbers: list[str]) -> dict[str, int]:
    with reading(db) as session:
        rows = session.execute(select(Ticket.number, Ticket.id).where(Ticket.number.in_(numbers)))
        return {n: i for n, i in rows}


def test_the_desk_calls_a_sample_by_kind(
    app_client: TestClient, login: Callable[[str], TestClient], db: Database
) -> None:
    shares = app_client.app.state.minsheng.settings.followup_sample
    asks = [_closed(login, f"咨询事项{i}", "CGJ", "phone", kind="consultation") for i in range(4)]
    complaint = _closed(login, "噪音扰民", "CGJ", "phone")
    fu = login("followup1")
    shares.update({"consultation": 0.0, "complaint": 1.0})
    page = fu.get("/followup").text
    assert complaint in page and not any(n in page for n in asks)
    shares["consultation"] = 1.0
    page = fu.get("/followup").text
    assert all(n in page for n in asks)
    # A share takes the tickets whose id mod 100 is below the percentage: the same on every page load.
    ids = _ids(db, asks)
    cut = sorted(i % 100 for i in ids.values())[1] + 1  # the two lowest residues are in, the others out
    shares["consultation"] = cut / 100
    page = fu.get("/followup").text
    assert {n for n in asks if n in page} == {n for n, i in ids.items() if i % 100 < cut}


def test_default_rating_after_the_set_days(
    app_client: TestClient, login: Callable[[str], TestClient], db: Database, clock: FixedClock
) -> None:
    platform = app_client.app.state.minsheng
    old = _closed(login, "幸福路路灯不亮", "CGJ", "phone")
    clock.advance(timedelta(days=5))
    recent = _closed(login, "小区楼道漏水", "ZJJ", "web")
    clock.advance(timedelta(days=2, minutes=1))  # old: 7 days closed; recent: 2 days
    # The worker's pass gives it (Settings.followup_default_days); a second pass, or a second worker, not again.
    run_once(db, clock.now(), clockwork=platform.clockwork, limits=PassLimits(default_rating_days=7))
    engine = platform.engine
    assert apply_default_ratings(db, engine, clock.now(), days=7, rating="satisfied") == 0
    with reading(db) as session:
        t = {x.number: x for x in session.scalars(select(Ticket).where(Ticket.number.in_([old, recent])))}
        assert t[old].state == "rated" and t[old].rating == "satisfied"
        assert t[recent].state == "closed" and t[recent].rating is None
        ev = session.scalars(
            select(TimelineEvent).where(
                TimelineEvent.ticket_id == t[old].id, TimelineEvent.action == "follow_up"
            )
        ).one()
        assert (
            ev.payload["default"] is True and ev.payload["method"] == "default" and ev.actor_role == "system"
        )
    fu = login("followup1")
    assert old not in fu.get("/followup").text and recent in fu.get("/followup").text


def test_workload_and_answer_rate(
    app_client: TestClient, login: Callable[[str], TestClient], clock: FixedClock
) -> None:
    a, b, _ = (_closed(login, t, "CGJ", "phone") for t in ("路灯不亮", "井盖缺失", "树枝折断"))
    fu = login("followup1")
    for number in (a, b):
        r = fu.post(f"/api/v1/tickets/{number}/follow_up_unreached", json={"note": "无人接听"})
        assert r.is_success, r.text
    r = fu.post(f"/api/v1/tickets/{a}/follow_up", json={"rating": "satisfied", "method": "phone"})
    assert r.is_success, r.text
    mine = fu.get("/followup").text
    assert "接通 1 件，未接通 2 件，接通率 33.3%" in mine
    sup = login("supervisor1").get("/followup").text
    assert 'id="workload"' in sup and "33.3%" in sup
    assert 'id="workload"' not in mine  # a worker sees their own figures, not everyone's
