"""One ticket through every branch of the closed loop over HTTP, as the right roles, checking the timeline."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from fastapi.testclient import TestClient

from minsheng.domain.clock import FixedClock
from tests.factories import png

PNG = png()


def _intake(c: TestClient, detail: str = "幸福路3号路灯坏了一个星期，晚上很黑", **kw: object) -> dict:
    body = {
        "channel": "phone",
        "detail": detail,
        "citizen_name": "张三",
        "citizen_phone": "13800138000",
        **kw,
    }
    r = c.post("/api/v1/tickets", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def _assignment(c: TestClient, number: str, unit: str) -> int:
    t = c.get(f"/api/v1/tickets/{number}").json()
    return next(a["id"] for a in reversed(t["assignments"]) if a["unit_code"] == unit)


def test_full_loop_with_every_branch(login: Callable[[str], TestClient], clock: FixedClock) -> None:
    op, disp, sup, fu = login("operator1"), login("dispatcher1"), login("supervisor1"), login("followup1")
    zjj, cgj, xfl = login("h_zjj"), login("h_cgj"), login("h_xfl")

    t = _intake(op, category_code="010101", area_code="C0101", kind="complaint")
    number = t["number"]
    assert t["state"] == "accepted" and len(t["query_code"]) == 10

    # dispatch to the wrong unit, which returns it
    r = disp.post(f"/api/v1/tickets/{number}/dispatch", json={"lead_unit": "ZJJ"})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "dispatched"
    clock.advance(timedelta(minutes=5))
    a = _assignment(zjj, number, "ZJJ")
    r = zjj.post(f"/api/v1/assignments/{a}/return", json={"reason": "路灯属城管局管理，非我局职责"})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "returned" and r.json()["return_count"] == 1

    # redispatch jointly: lead CGJ, assist XFL
    r = disp.post(
        f"/api/v1/tickets/{number}/redispatch",
        json={"lead_unit": "CGJ", "assist_units": ["XFL"], "reason": "按职责改派城管局主办"},
    )
    assert r.status_code == 200, r.text
    lead, assist = _assignment(cgj, number, "CGJ"), _assignment(xfl, number, "XFL")

    # a handler of another unit may not sign
    assert zjj.post(f"/api/v1/assignments/{lead}/sign", json={}).status_code == 403
    # request close before signing is illegal and lists the allowed steps
    r = cgj.post(f"/api/v1/assignments/{lead}/request_close", json={"summary": "x"})
    assert r.status_code == 409 and "sign" in r.json()["error"]["detail"]["allowed"]

    clock.advance(timedelta(minutes=3))
    assert cgj.post(f"/api/v1/assignments/{lead}/sign", json={}).json()["state"] == "in_progress"
    assert xfl.post(f"/api/v1/assignments/{assist}/sign", json={}).status_code == 200
    assert cgj.post(f"/api/v1/assignments/{lead}/contact", json={"method": "phone"}).status_code == 200
    assert cgj.post(f"/api/v1/assignments/{lead}/arrive", json={}).status_code == 200

    # consultation, extension (refused then approved), pause and resume
    r = sup.post(
        f"/api/v1/tickets/{number}/confer", json={"participants": ["CGJ", "XFL"], "decision": "城管主办"}
    )
    assert r.status_code == 200, r.text
    r = cgj.post(f"/api/v1/tickets/{number}/request_extension", json={"hours": 48, "reason": "需采购灯具"})
    assert r.status_code == 200, r.text
    assert (
        cgj.post(
            f"/api/v1/tickets/{number}/request_extension", json={"hours": 1, "reason": "再次"}
        ).status_code
        == 409
    )
    assert cgj.post(f"/api/v1/tickets/{number}/decide_extension", json={"approve": True}).status_code == 403
    r = sup.post(f"/api/v1/tickets/{number}/decide_extension", json={"approve": False, "note": "时间过长"})
    assert r.json()["extensions"][0]["state"] == "refused"
    cgj.post(f"/api/v1/tickets/{number}/request_extension", json={"hours": 24, "reason": "需采购灯具"})
    r = sup.post(f"/api/v1/tickets/{number}/decide_extension", json={"approve": True})
    assert [e["state"] for e in r.json()["extensions"]] == ["refused", "approved"]
    assert (
        cgj.post(f"/api/v1/tickets/{number}/pause", json={"reason": "等待群众在家"}).json()["state"]
        == "paused"
    )
    # a unit step while paused is refused
    assert cgj.post(f"/api/v1/assignments/{lead}/feedback", json={"text": "x"}).status_code == 409
    clock.advance(timedelta(hours=2))
    assert cgj.post(f"/api/v1/tickets/{number}/resume", json={}).json()["state"] == "in_progress"

    # feedback with a photo; lead cannot request close before the assist reported
    att = cgj.post(f"/api/v1/tickets/{number}/attachments", files={"file": ("after.png", PNG, "image/png")})
    assert att.status_code == 201, att.text
    r = cgj.post(
        f"/api/v1/assignments/{lead}/feedback",
        json={"text": "已更换灯泡", "attachment_ids": [att.json()["id"]]},
    )
    assert r.status_code == 200, r.text
    r = cgj.post(f"/api/v1/assignments/{lead}/request_close", json={"summary": "已修复"})
    assert r.status_code == 409 and "幸福路街道办" in r.json()["error"]["message"]
    assert (
        xfl.post(f"/api/v1/assignments/{assist}/feedback", json={"text": "配合现场围挡"}).status_code == 200
    )
    assert (
        cgj.post(f"/api/v1/assignments/{lead}/request_close", json={"summary": "已修复"}).json()["state"]
        == "close_requested"
    )

    # review rejects (counted reopen), then handling again and accept
    r = sup.post(f"/api/v1/tickets/{number}/review_reject", json={"reason": "缺少现场照片说明"})
    assert r.json()["state"] == "in_progress" and r.json()["reopen_count"] == 1
    cgj.post(f"/api/v1/assignments/{lead}/feedback", json={"text": "补充照片说明"})
    cgj.post(f"/api/v1/assignments/{lead}/request_close", json={"summary": "已修复并说明"})
    r = sup.post(f"/api/v1/tickets/{number}/review_accept", json={})
    assert r.json()["state"] == "closed"
    assert {a["state"] for a in r.json()["assignments"] if a["unit_code"] in ("CGJ", "XFL")} == {"closed"}

    # follow-up: unreached, then dissatisfied → reopen → close again → satisfied
    assert (
        fu.post(f"/api/v1/tickets/{number}/follow_up_unreached", json={"note": "无人接听"}).json()["state"]
        == "closed"
    )
    r = fu.post(f"/api/v1/tickets/{number}/follow_up", json={"rating": "dissatisfied", "comment": "灯又坏了"})
    assert r.json()["state"] == "rated" and r.json()["rating"] == "dissatisfied"
    r = fu.post(f"/api/v1/tickets/{number}/reopen", json={"reason": "群众不满意，灯又坏了"})
    assert r.json()["state"] == "in_progress" and r.json()["reopen_count"] == 2
    cgj.post(f"/api/v1/assignments/{lead}/feedback", json={"text": "更换整套灯具"})
    cgj.post(f"/api/v1/assignments/{lead}/request_close", json={"summary": "彻底修复"})
    sup.post(f"/api/v1/tickets/{number}/review_accept", json={})
    r = fu.post(f"/api/v1/tickets/{number}/follow_up", json={"rating": "satisfied"})
    assert r.json()["state"] == "rated"
    # a satisfied rating does not reopen
    assert fu.post(f"/api/v1/tickets/{number}/reopen", json={"reason": "试试"}).status_code == 409

    # timeline: complete, ordered, with actors and states
    tl = sup.get(f"/api/v1/tickets/{number}/timeline").json()
    actions = [e["action"] for e in tl]
    assert actions[0] == "intake" and [e["seq"] for e in tl] == list(range(1, len(tl) + 1))
    for step in [
        "dispatch",
        "return",
        "lead_returned",
        "redispatch",
        "sign",
        "lead_signed",
        "contact",
        "arrive",
        "confer",
        "request_extension",
        "decide_extension",
        "pause",
        "resume",
        "attachment",
        "feedback",
        "request_close",
        "lead_requested_close",
        "review_reject",
        "reopen",
        "review_accept",
        "close",
        "follow_up_unreached",
        "follow_up",
    ]:
        assert step in actions, step
    ret = next(e for e in tl if e["action"] == "return")
    assert ret["actor_role"] == "handler" and ret["from_state"] == "pending" and ret["to_state"] == "returned"
    assert ret["payload"]["reason"].startswith("路灯属城管局")
    assert all(e["at"] for e in tl)


def test_answer_directly_transfer_repeat_merge(login: Callable[[str], TestClient]) -> None:
    op, disp = login("operator1"), login("dispatcher1")
    consult = _intake(op, "请问办理居住证需要什么材料？", kind="consultation")
    r = op.post(
        f"/api/v1/tickets/{consult['number']}/answer_directly",
        json={"answer": "带身份证和租房合同到派出所办理"},
    )
    assert r.json()["state"] == "closed"
    police = _intake(op, "楼下有人打架斗殴")
    r = op.post(f"/api/v1/tickets/{police['number']}/transfer", json={"target": "110"})
    assert r.json()["state"] == "transferred" and r.json()["transfer_target"] == "110"
    first = _intake(op, "和平街道菜市场门口垃圾堆积发臭")
    second = _intake(op, "和平街道菜市场门口垃圾没人清理")
    third = _intake(op, "和平街道菜市场垃圾问题")
    r = disp.post(f"/api/v1/tickets/{second['number']}/mark_repeat", json={"ticket": first["number"]})
    assert r.json()["state"] == "merged" and r.json()["repeat_of"] == first["number"]
    r = disp.post(f"/api/v1/tickets/{third['number']}/merge", json={"ticket": first["number"]})
    assert r.json()["state"] == "merged"
    # linking to a merged ticket is refused
    fourth = _intake(op, "又一件")
    assert (
        disp.post(f"/api/v1/tickets/{fourth['number']}/merge", json={"ticket": second["number"]}).status_code
        == 409
    )
    tl = disp.get(f"/api/v1/tickets/{first['number']}/timeline").json()
    assert [e["payload"]["ticket"] for e in tl if e["action"] == "repeat_linked"] == [
        second["number"],
        third["number"],
    ]
    # transfer target external unit cannot be dispatched to
    r = disp.post(f"/api/v1/tickets/{fourth['number']}/dispatch", json={"lead_unit": "P110"})
    assert r.status_code == 422


def test_citizen_submits_tracks_and_rates(app_client: TestClient, login: Callable[[str], TestClient]) -> None:
    r = app_client.post(
        "/api/v1/public/tickets",
        json={
            "channel": "web",
            "detail": "小区门口井盖缺失很危险",
            "citizen_phone": "13912345678",
            "public_consent": True,
        },
    )
    assert r.status_code == 201, r.text
    number, code = r.json()["number"], r.json()["query_code"]
    assert (
        app_client.get(f"/api/v1/public/tickets/{number}", params={"query_code": "WRONG1"}).status_code == 404
    )
    r = app_client.get(f"/api/v1/public/tickets/{number}", params={"query_code": code})
    assert r.status_code == 200 and r.json()["timeline"][0]["action"] == "intake"
    assert "actor_name" in r.json()["timeline"][0] and r.json()["timeline"][0]["actor_name"] is None
    # cannot rate before closing
    assert (
        app_client.post(
            f"/api/v1/public/tickets/{number}/rate", json={"query_code": code, "rating": "satisfied"}
        ).status_code
        == 409
    )
    op = login("operator1")
    op.post(f"/api/v1/tickets/{number}/answer_directly", json={"answer": "已转告物业"})
    r = app_client.post(
        f"/api/v1/public/tickets/{number}/rate", json={"query_code": code, "rating": "basically_satisfied"}
    )
    assert r.status_code == 200 and r.json()["state"] == "rated"


def test_idempotent_intake(login: Callable[[str], TestClient]) -> None:
    op = login("operator1")
    body = {"channel": "app", "detail": "路面塌陷"}
    r1 = op.post("/api/v1/tickets", json=body, headers={"Idempotency-Key": "abc-12345678"})
    r2 = op.post("/api/v1/tickets", json=body, headers={"Idempotency-Key": "abc-12345678"})
    assert r1.status_code == 201 and r2.status_code == 200
    assert r1.json()["number"] == r2.json()["number"] and r2.json()["created"] is False
    r3 = op.post(
        "/api/v1/tickets", json={**body, "detail": "别的"}, headers={"Idempotency-Key": "abc-12345678"}
    )
    assert r3.status_code == 409


def test_roles_and_masking(login: Callable[[str], TestClient]) -> None:
    op, disp, leader, zjj, cgj = (
        login("operator1"),
        login("dispatcher1"),
        login("leader1"),
        login("h_zjj"),
        login("h_cgj"),
    )
    t = _intake(op, citizen_id_number="11010519491231002X")
    number = t["number"]
    assert op.get(f"/api/v1/tickets/{number}").json()["citizen_phone"] == "13800138000"
    masked = leader.get(f"/api/v1/tickets/{number}").json()
    assert masked["citizen_phone"] == "138****8000" and masked["citizen_name"] == "张*"
    assert masked["citizen_id_number"] == "1101**********002X"
    # a handler cannot see a ticket not assigned to its unit, nor dispatch
    assert zjj.get(f"/api/v1/tickets/{number}").status_code == 403
    assert zjj.post(f"/api/v1/tickets/{number}/dispatch", json={"lead_unit": "ZJJ"}).status_code == 403
    assert leader.post(f"/api/v1/tickets/{number}/answer_directly", json={"answer": "x"}).status_code == 403
    disp.post(f"/api/v1/tickets/{number}/dispatch", json={"lead_unit": "ZJJ"})
    assert zjj.get(f"/api/v1/tickets/{number}").json()["citizen_phone"] == "13800138000"
    assert cgj.get(f"/api/v1/tickets/{number}").status_code == 403
    # inbox and list for handlers are scoped to their unit
    assert [x["number"] for x in zjj.get("/api/v1/inbox").json()] == [number]
    assert cgj.get("/api/v1/inbox").json() == []
    assert [x["number"] for x in zjj.get("/api/v1/tickets").json()["items"]] == [number]
    # confidential tickets stay masked for the unit
    secret = _intake(op, "举报某餐馆使用地沟油", confidential=True, kind="report")
    disp.post(f"/api/v1/tickets/{secret['number']}/dispatch", json={"lead_unit": "ZJJ"})
    assert zjj.get(f"/api/v1/tickets/{secret['number']}").json()["citizen_phone"] == "138****8000"


def test_first_receiver_cannot_return(login: Callable[[str], TestClient]) -> None:
    op, disp, zjj = login("operator1"), login("dispatcher1"), login("h_zjj")
    t = _intake(op)
    disp.post(f"/api/v1/tickets/{t['number']}/dispatch", json={"lead_unit": "ZJJ", "first_receiver": True})
    a = _assignment(zjj, t["number"], "ZJJ")
    r = zjj.post(f"/api/v1/assignments/{a}/return", json={"reason": "不是我们的"})
    assert r.status_code == 409 and "首接责任制" in r.json()["error"]["message"]


def test_lists_filter_and_page(login: Callable[[str], TestClient], clock: FixedClock) -> None:
    op = login("operator1")
    numbers = []
    for i in range(7):
        clock.advance(timedelta(minutes=1))
        numbers.append(
            _intake(op, f"第{i}件诉求", category_code="0201" if i % 2 else "010101", area_code="C0101")[
                "number"
            ]
        )
    page1 = op.get("/api/v1/tickets", params={"limit": 3, "with_total": True}).json()
    assert [x["number"] for x in page1["items"]] == numbers[::-1][:3] and page1["total"] == 7
    page2 = op.get("/api/v1/tickets", params={"limit": 3, "cursor": page1["next_cursor"]}).json()
    assert [x["number"] for x in page2["items"]] == numbers[::-1][3:6]
    env = op.get("/api/v1/tickets", params={"category": "02"}).json()["items"]
    assert len(env) == 3
    assert len(op.get("/api/v1/tickets", params={"area": "C01"}).json()["items"]) == 7
    assert op.get("/api/v1/tickets", params={"area": "C02"}).json()["items"] == []
    assert len(op.get("/api/v1/tickets", params={"text": "第3件"}).json()["items"]) == 1
    assert op.get("/api/v1/tickets", params={"state": "nonsense"}).status_code == 422
    assert op.get("/api/v1/tickets", params={"area": "NOPE"}).status_code == 404


def test_redispatch_cancels_active_assignments(login: Callable[[str], TestClient]) -> None:
    op, disp, zjj = login("operator1"), login("dispatcher1"), login("h_zjj")
    t = _intake(op)
    disp.post(f"/api/v1/tickets/{t['number']}/dispatch", json={"lead_unit": "ZJJ"})
    a = _assignment(zjj, t["number"], "ZJJ")
    r = disp.post(
        f"/api/v1/tickets/{t['number']}/redispatch", json={"lead_unit": "CGJ", "reason": "派错单位"}
    )
    states = {x["unit_code"]: x["state"] for x in r.json()["assignments"]}
    assert states == {"ZJJ": "cancelled", "CGJ": "pending"}
    assert zjj.post(f"/api/v1/assignments/{a}/sign", json={}).status_code == 409
    assert zjj.get("/api/v1/inbox").json() == []


def test_parallel_http_dispatch_one_wins(login: Callable[[str], TestClient]) -> None:
    """Over HTTP the handler reads the ticket before the engine locks it: the lock must still see the winner."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    op = login("operator1")
    clients = [login("dispatcher1"), login("dispatcher1")]
    for _ in range(3):
        number = _intake(op)["number"]
        barrier = threading.Barrier(2)

        def go(i: int, number: str = number, barrier: threading.Barrier = barrier) -> int:
            barrier.wait()
            r = clients[i].post(f"/api/v1/tickets/{number}/dispatch", json={"lead_unit": ["ZJJ", "CGJ"][i]})
            return r.status_code

        with ThreadPoolExecutor(2) as pool:
            codes = sorted(pool.map(go, range(2)))
        assert codes == [200, 409]
        assert len(op.get(f"/api/v1/tickets/{number}").json()["assignments"]) == 1


def test_the_old_path_of_confer_still_answers(login: Callable[[str], TestClient]) -> None:
    """会商 was posted to /consult before the action was named confer; 0.1 clients keep working."""
    op, sup = login("operator1"), login("supervisor1")
    number = _intake(op, category_code="010101", area_code="C0101")["number"]
    assert (
        login("dispatcher1").post(f"/api/v1/tickets/{number}/dispatch", json={"lead_unit": "CGJ"}).status_code
        == 200
    )
    r = sup.post(f"/api/v1/tickets/{number}/consult", json={"participants": ["CGJ"], "decision": "城管主办"})
    assert r.status_code == 200, r.text
    actions = [e["action"] for e in sup.get(f"/api/v1/tickets/{number}/timeline").json()]
    assert actions[-1] == "confer"


def test_a_citizen_does_not_see_staff_photos(
    login: Callable[[str], TestClient], app_client: TestClient
) -> None:
    op = login("operator1")
    t = _intake(op)
    number, code = t["number"], t["query_code"]
    r = op.post(f"/api/v1/tickets/{number}/attachments", files={"file": ("note.png", PNG, "image/png")})
    assert r.status_code == 201, r.text
    assert len(op.get(f"/api/v1/tickets/{number}").json()["attachments"]) == 1
    seen = app_client.get(f"/api/v1/public/tickets/{number}", params={"query_code": code})
    assert seen.status_code == 200, seen.text
    assert seen.json()["attachments"] == []
