"""The unit inbox says why a lead cannot ask to close yet: its assisting units have not all reported."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

HINT = "等协办单位都反馈后可申请结案"


def test_lead_waits_for_its_assists_and_is_told_so(login: Callable[[str], TestClient]) -> None:
    op, disp = login("operator1"), login("dispatcher1")
    lead, assist = login("h_cgj"), login("h_zjj")
    number = op.post("/api/v1/tickets", json={"detail": "幸福路井盖缺失，夜里有人摔倒"}).json()["number"]
    v = disp.post(f"/api/v1/tickets/{number}/dispatch", json={"lead_unit": "CGJ", "assist_units": ["ZJJ"]})
    assert v.is_success, v.text
    ids = {x["unit_code"]: x["id"] for x in v.json()["assignments"]}
    for step, payload in [("sign", {}), ("feedback", {"text": "已设置围挡"})]:
        assert lead.post(f"/api/v1/assignments/{ids['CGJ']}/{step}", json=payload).is_success
    page = lead.get("/inbox").text
    assert HINT in page and f'action="/assignments/{ids["CGJ"]}/act/request_close"' not in page

    for step, payload in [("sign", {}), ("feedback", {"text": "已联系施工方补装井盖"})]:
        assert assist.post(f"/api/v1/assignments/{ids['ZJJ']}/{step}", json=payload).is_success
    page = lead.get("/inbox").text
    assert HINT not in page and f'action="/assignments/{ids["CGJ"]}/act/request_close"' in page
