"""The follow-up desk (回访): the most recently closed tickets first, filtered by unit, category and channel."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from fastapi.testclient import TestClient

from minsheng.domain.clock import FixedClock


def _closed(login: Callable[[str], TestClient], title: str, unit: str, channel: str) -> str:
    op, disp, sup = login("operator1"), login("dispatcher1"), login("supervisor1")
    handler = login({"CGJ": "h_cgj", "ZJJ": "h_zjj"}[unit])
    body = {
        "detail": f"{title}，请尽快处理",
        "title": title,
        "channel": channel,
        "citizen_phone": "13700001111",
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
