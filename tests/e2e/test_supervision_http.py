"""Supervision over HTTP (API and console pages), on both stores: who may take each step and who is refused,
bad input answered 4xx, a confidential ticket's instruction never shown outside its unit, and a leader who opens
a ticket is offered the leader's steps instead of "当前没有您可执行的操作"."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

API = "/api/v1/supervision"
# The services' tests run on both stores (tests/integration/supervision); over HTTP, SQLite is enough.
pytestmark = pytest.mark.parametrize("empty_db_url", ["sqlite"], indirect=True)


def _ticket(login: Callable[[str], TestClient], unit: str, *, confidential: bool = False) -> str:
    op, disp = login("operator1"), login("dispatcher1")
    body = {
        "detail": "幸福路3号路灯坏了一个星期",
        "citizen_phone": "13700001111",
        "confidential": confidential,
    }
    r = op.post("/api/v1/tickets", json=body)
    assert r.status_code == 201, r.text
    number = r.json()["number"]
    v = disp.post(f"/api/v1/tickets/{number}/dispatch", json={"lead_unit": unit}).json()
    a = next(x["id"] for x in v["assignments"] if x["unit_code"] == unit)
    handler = login({"CGJ": "h_cgj", "ZJJ": "h_zjj"}[unit])
    assert handler.post(f"/api/v1/assignments/{a}/sign", json={}).is_success
    return number


def test_supervision_roles_visibility_and_pages(login: Callable[[str], TestClient]) -> None:
    number = _ticket(login, "CGJ")
    secret = _ticket(login, "ZJJ", confidential=True)
    sup, leader, fu = login("supervisor1"), login("leader1"), login("followup1")
    cgj, zjj, op = login("h_cgj"), login("h_zjj"), login("operator1")

    # 督办: supervisors and leaders raise; a handler, a follow-up worker, an operator may not.
    order = {"tickets": [number], "reason": "群众多次来电反映", "hours": 24, "level": "key"}
    for refused in (cgj, fu, op):
        assert refused.post(f"{API}/orders", json=order).status_code == 403
    r = sup.post(f"{API}/orders", json=order)
    assert r.status_code == 201, r.text
    order_id = r.json()["id"]
    for bad in (
        {**order, "hours": -1},
        {**order, "tickets": ["abc"]},
        {**order, "level": "x"},
        {**order, "extra": 1},
    ):
        assert sup.post(f"{API}/orders", json=bad).status_code == 422
    assert sup.post(f"{API}/orders", json={**order, "tickets": ["20990101000001"]}).status_code == 404
    assert zjj.post(f"{API}/orders/{order_id}/answer", json={"answer": "不是我们"}).status_code == 404
    assert sup.post(f"{API}/orders/{order_id}/answer", json={"answer": "代答"}).status_code == 403
    assert cgj.post(f"{API}/orders/{order_id}/answer", json={"answer": "已安排抢修"}).json()["late"] is False
    assert cgj.post(f"{API}/orders/{order_id}/answer", json={"answer": "再答"}).status_code == 409
    assert [o["id"] for o in zjj.get(f"{API}/orders").json()["items"]] == []
    assert cgj.get(f"{API}/orders").json()["items"][0]["answer"] == "已安排抢修"
    m = sup.get(f"{API}/measures").json()["units"]
    assert m[0]["unit"] == "CGJ" and m[0]["answered_on_time"] == 1
    assert cgj.get(f"{API}/measures").status_code == 403

    # 催办
    assert fu.post(f"{API}/tickets/{number}/reminders", json={}).status_code == 403
    assert sup.post(f"{API}/tickets/{number}/reminders", json={"note": "请加快"}).json()["reminders"] == 1
    assert leader.post(f"{API}/tickets/{number}/reminders", json={}).json()["reminders"] == 2

    # 盯办 and 批示: leaders only; the unit acknowledges; the confidential ticket's stays with 住建局.
    assert sup.post(f"{API}/tickets/{number}/watch").status_code == 403
    assert leader.post(f"{API}/tickets/{number}/watch").json()["started"] is True
    assert [w["ticket"] for w in leader.get(f"{API}/watch").json()["items"]] == [number]
    assert sup.post(f"{API}/tickets/{number}/instructions", json={"text": "尽快修复"}).status_code == 403
    i1 = leader.post(f"{API}/tickets/{number}/instructions", json={"text": "请本周内彻底修复"}).json()["id"]
    leader.post(f"{API}/tickets/{secret}/instructions", json={"text": "保密件彻底修复"})
    inbox = cgj.get("/inbox").text
    assert 'id="sv-inbox"' in inbox and "请本周内彻底修复" in inbox and "保密件" not in inbox
    assert inbox.index("sv-inbox") < inbox.index('class="cards"')
    assert secret not in str(cgj.get(f"{API}/instructions", params={"q": "彻底修复"}).json())
    assert secret in str(leader.get(f"{API}/instructions", params={"q": "彻底修复"}).json())
    assert secret not in cgj.get("/instructions", params={"q": "保密"}).text
    assert zjj.post(f"{API}/instructions/{i1}/ack").status_code == 404
    assert cgj.post(f"{API}/instructions/{i1}/ack").status_code == 200
    assert cgj.post(f"{API}/instructions/{i1}/ack").status_code == 409
    assert 'id="sv-inbox"' not in cgj.get("/inbox").text

    # Checks: readers list them, a handler may not; unknown ids are 404, not 500.
    assert fu.get(f"{API}/checks").json() == {"items": []}
    assert cgj.get(f"{API}/checks").status_code == 403
    assert fu.post(f"{API}/checks/999/decision", json={"outcome": "reopen"}).status_code == 404
    assert fu.post(f"{API}/checks/999/decision", json={"outcome": "nonsense"}).status_code == 422
    assert cgj.post(f"{API}/checks/999/approval", json={"approve": True}).status_code == 403

    # Pages: the leader is offered the leader's steps on a ticket; pages refuse the roles they are not for.
    page = leader.get(f"/tickets/{number}").text
    assert "当前没有您可执行的操作" not in page and "取消盯办" in page and "批示内容" in page
    assert "已催办 2 次" in page and "请本周内彻底修复" in page
    assert "已催办 2 次" in cgj.get(f"/tickets/{number}").text
    for client, path in (
        (leader, "/watch"),
        (sup, "/supervision"),
        (cgj, "/supervision"),
        (fu, "/checks"),
        (op, "/instructions"),
    ):
        assert client.get(path).status_code == 200, path
    for client, path in ((sup, "/watch"), (cgj, "/checks"), (op, "/supervision")):
        assert client.get(path).status_code == 403, path
    # Forms carry the CSRF token: without it the step is refused; with it the page's form works.
    token = leader.headers.pop("X-CSRF-Token")
    form = {"text": "请于周五前回复进展"}
    assert leader.post(f"/tickets/{number}/supervision/instruct", data=form).status_code == 403
    r = leader.post(
        f"/tickets/{number}/supervision/instruct", data={**form, "csrf_token": token}, follow_redirects=False
    )
    assert r.status_code == 303 and "err=" not in r.headers["location"]
    r = leader.post(
        f"/tickets/{number}/supervision/instruct",
        data={"text": "", "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303 and "err=" in r.headers["location"]  # an empty text: a message, not a 500
