"""Supervision in headless Chromium, entirely through the pages: a supervisor raises a 督办 on a ticket, the unit
answers it; a leader takes the ticket under watch and writes a 批示, which the unit sees first in its inbox and
acknowledges. Screenshots of the new pages go to docs/screenshots/ (supervision-*.png)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from minsheng.domain.clock import SystemClock
from minsheng.domain.roles import Actor, Role
from minsheng.domain.states import Rating
from minsheng.domain.transitions import AssignmentAction
from minsheng.services import schemas as s
from minsheng.services import supervision
from minsheng.services.tickets import TicketEngine
from minsheng.storage.db import Database
from minsheng.storage.models import Assignment, Ticket, User
from tests.e2e.browser.server import PASSWORD, Running

pytestmark = pytest.mark.browser
SHOTS = Path(__file__).resolve().parents[3] / "docs" / "screenshots"


def _actor(session: Any, username: str) -> Actor:
    u = session.scalars(select(User).where(User.username == username)).one()
    return Actor(Role(u.role), user_id=u.id, unit_id=u.unit_id, name=u.display_name)


def _seed(db: Database, detail: str, *, rated: Rating | None = None) -> str:
    """A ticket dispatched to 城管局 and signed; with ``rated``, also closed and rated (a check opens). In a
    thread of its own: Playwright's sync API runs an event loop in this one, where the database is refused."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(_seed_now, db, detail, rated).result()


def _seed_now(db: Database, detail: str, rated: Rating | None) -> str:
    engine = TicketEngine()
    engine.subscribers.extend(supervision.subscribers(engine))
    now = SystemClock().now() - timedelta(hours=3)
    with db.write_sessions() as session, session.begin():
        req = s.IntakeRequest(
            detail=detail, category_code="010101", area_code="C0101", citizen_phone="13800138000"
        )
        t, _, _ = engine.intake(session, _actor(session, "operator1"), req, now)
        number = t.number
        engine.dispatch(session, _actor(session, "dispatcher1"), number, s.Dispatch(lead_unit="CGJ"), now)
        a_id = session.scalar(select(Assignment.id).join(Ticket).where(Ticket.number == number))
        h = _actor(session, "h_cgj")
        engine.assignment_step(session, h, a_id, AssignmentAction.SIGN, s.WithNote(), now)
        if rated is not None:
            engine.assignment_step(
                session, h, a_id, AssignmentAction.FEEDBACK, s.Feedback(text="已处理"), now
            )
            engine.assignment_step(
                session, h, a_id, AssignmentAction.REQUEST_CLOSE, s.RequestClose(summary="已处理"), now
            )
            engine.review(session, _actor(session, "supervisor1"), number, True, "通过", now)
            engine.follow_up(
                session, _actor(session, "followup1"), number, s.FollowUp(rating=rated, comment="没修好"), now
            )
    return number


def _page(browser: Any, server: Running, username: str) -> Any:
    context = browser.new_context(
        base_url=server.url, locale="zh-CN", viewport={"width": 1280, "height": 900}
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto("/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('登录')")
    page.wait_for_load_state("networkidle")
    assert "/login" not in page.url
    return page


def _ok(page: Any) -> str:
    bad = page.locator(".flash.bad")
    assert bad.count() == 0, bad.first.inner_text()
    return str(page.locator(".flash.ok").first.inner_text())


def _shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"supervision-{name}.png"), full_page=True)


def test_order_answer_watch_instruction_ack(browser: Any, server: Running) -> None:
    number = _seed(server.db, "幸福路3号路灯坏了一个星期，晚上很黑，老人出门不安全")

    # The supervisor raises a 督办 from the ticket's page.
    sup = _page(browser, server, "supervisor1")
    sup.goto(f"/tickets/{number}")
    sup.click("#sv summary:has-text('下达督办')")
    sup.select_option("#sv select[name=level]", "key")
    sup.fill("#sv input[name=hours]", "24")
    sup.fill("#sv textarea[name=reason]", "群众多次来电反映路灯未修，请说明原因并限期修复")
    sup.click("#sv button:has-text('下达督办')")
    sup.wait_for_load_state("networkidle")
    assert "督办已下达" in _ok(sup)
    sup.click("#sv button:has-text('催办')")
    sup.wait_for_load_state("networkidle")
    assert "第 1 次" in _ok(sup)
    sup.goto("/supervision")
    assert sup.locator("#orders tr", has_text=number).count() == 1

    # The unit answers it in writing.
    h = _page(browser, server, "h_cgj")
    h.goto("/inbox")
    assert h.locator("#sv-inbox .order", has_text=number).count() == 1
    h.goto("/supervision")
    row = h.locator("#orders tr", has_text=number)
    row.locator("textarea[name=answer]").fill("已安排维修班组，明日18时前完成更换")
    row.locator("button:has-text('提交回复')").click()
    h.wait_for_load_state("networkidle")
    assert "督办回复已提交" in _ok(h)
    assert "已安排维修班组" in h.locator("#orders").inner_text()
    sup.goto("/supervision")
    _shot(sup, "orders")

    # The leader takes the ticket under watch and writes an instruction.
    leader = _page(browser, server, "leader1")
    leader.goto(f"/tickets/{number}")
    assert "当前没有您可执行的操作" not in leader.content()
    leader.click("#sv button:has-text('提级盯办')")
    leader.wait_for_load_state("networkidle")
    assert "已提级盯办" in _ok(leader)
    leader.fill("#sv textarea[name=text]", "请城管局本周内彻底排查幸福路全线路灯，举一反三")
    leader.click("#sv button:has-text('批示')")
    leader.wait_for_load_state("networkidle")
    assert "批示已送达" in _ok(leader)
    _shot(leader, "ticket-leader")
    leader.goto("/watch")
    assert leader.locator("#watched tr", has_text=number).count() == 1
    _shot(leader, "watch")

    # The unit sees the instruction first in its inbox and acknowledges it.
    h.goto("/inbox")
    block = h.locator("#sv-inbox")
    assert "举一反三" in block.inner_text()
    box = block.bounding_box()
    first_card = h.locator("article.card").first
    assert first_card.count() == 0 or box["y"] < first_card.bounding_box()["y"]
    _shot(h, "inbox")
    block.locator("button:has-text('签收批示')").click()
    h.wait_for_load_state("networkidle")
    assert "批示已签收" in _ok(h)
    assert h.locator("#sv-inbox").count() == 0

    # The leader is told of the unit's steps, and finds the instruction by its words, acknowledged.
    leader.goto("/instructions?q=举一反三")
    assert (
        "已签收" in leader.locator("#instructions").inner_text()
        or "签收" in leader.locator("#instructions").inner_text()
    )
    _shot(leader, "instructions")
    leader.goto(f"/tickets/{number}")
    timeline = leader.locator("ol.timeline").inner_text()
    for label in ("督办", "督办回复", "催办", "提级盯办", "领导批示", "签收批示"):
        assert label in timeline, label


def test_checks_page(browser: Any, server: Running) -> None:
    number = _seed(server.db, "和平街道菜市场门口垃圾堆积发臭", rated=Rating.DISSATISFIED)
    fu = _page(browser, server, "followup1")
    fu.goto("/checks")
    card = fu.locator("article.card", has_text=number)
    card.locator("select[name=outcome]").select_option("explained")
    card.locator("input[name=justification]").fill("群众要求在主干道设置私人停车位，不属合理诉求")
    card.locator("button:has-text('记录核查结论')").click()
    fu.wait_for_load_state("networkidle")
    assert "核查结论已记录" in _ok(fu)
    assert fu.locator("article.card", has_text=number).locator("text=待另一人复核").count() == 1
    sup = _page(browser, server, "supervisor1")
    sup.goto("/checks")
    _shot(sup, "checks")
    sup.locator("article.card", has_text=number).locator("button:has-text('复核通过')").click()
    sup.wait_for_load_state("networkidle")
    assert "不计入满意率" in _ok(sup)
