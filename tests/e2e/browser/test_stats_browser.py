"""统计分析 in headless Chromium: a supervisor opens /stats, the charts draw (ECharts, no CSP violation), changes
the period, drills down from the city to a district, and follows a figure to the tickets behind it; a handler
opens 本单位. Screenshots go to var/browser-shots/ (docs/screenshots/ holds the demo city's)."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from minsheng.domain.clock import SystemClock
from minsheng.domain.roles import Actor, Role
from minsheng.services import schemas as s
from minsheng.services.tickets import TicketEngine
from minsheng.storage.models import User
from tests.e2e.browser.server import PASSWORD, Running
from tests.e2e.browser.test_csp import RECORD

pytestmark = pytest.mark.browser
SHOTS = Path(__file__).resolve().parents[3] / "var" / "browser-shots"


def _tickets(server: Running) -> None:
    """Four tickets of today in two districts, dispatched to two units (the engine keeps the facts)."""
    engine, now = TicketEngine(), SystemClock().now()
    with server.db.write_sessions() as session, session.begin():
        users = {u.username: u for u in session.scalars(select(User))}
        op, disp = users["operator1"], users["dispatcher1"]
        operator = Actor(Role.OPERATOR, user_id=op.id, name=op.display_name)
        dispatcher = Actor(Role.DISPATCHER, user_id=disp.id, name=disp.display_name)
        for detail, area, unit in (
            ("幸福路3号路灯坏了", "C0101", "CGJ"),
            ("幸福路井盖缺失", "C0101", "CGJ"),
            ("和平街道垃圾堆积", "C0201", "CGJ"),
            ("和平街道工地噪音", "C0201", "HBJ"),
        ):
            req = s.IntakeRequest(detail=detail, area_code=area, category_code="0101")
            t, _, _ = engine.intake(session, operator, req, now)
            engine.dispatch(session, dispatcher, t.number, s.Dispatch(lead_unit=unit), now)


def _page(browser: Any, server: Running, username: str) -> Any:
    context = browser.new_context(
        base_url=server.url, locale="zh-CN", viewport={"width": 1400, "height": 900}
    )
    context.add_init_script(RECORD)
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto("/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('登录')")
    page.wait_for_load_state("networkidle")
    assert "/login" not in page.url
    return page


def _shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_stats_period_drill_down_and_tickets_behind(browser: Any, server: Running) -> None:
    # In a thread of its own: Playwright runs an event loop in this one, where the database refuses to block.
    seeding = threading.Thread(target=_tickets, args=(server,))
    seeding.start()
    seeding.join(timeout=60)
    page = _page(browser, server, "supervisor1")
    page.click("nav >> text=统计分析")
    page.wait_for_selector("body[data-charts-ready='1']")
    assert page.locator("#st-trend canvas").count() == 1 and page.locator("#st-map canvas").count() == 1
    assert page.locator(".st-card[data-measure=volume] b").inner_text() == "4"
    _shot(page, "stats")
    # change the period: this year, then a range typed in
    page.click("a.pill:has-text('本年')")
    page.wait_for_url(re.compile(r"period=\d{4}(&|$)"))
    assert "年" in page.locator("h1 small").inner_text()
    assert page.locator(".st-card[data-measure=volume] b").inner_text() == "4"
    # drill down: the city, then 东城区 (its street appears), from the table's link
    page.click("#st-table a:has-text('东城区')")
    page.wait_for_url(re.compile(r"area=C01"))
    page.wait_for_selector("body[data-charts-ready='1']")
    assert "东城区" in page.locator("h1 small").inner_text()
    assert page.locator("#st-table a:has-text('幸福路街道')").count() == 1
    assert page.locator(".st-card[data-measure=volume] b").inner_text() == "2"
    _shot(page, "stats-district")
    # the figure's tickets
    page.click(".st-card[data-measure=volume]")
    page.wait_for_url(re.compile(r"/stats/tickets\?"))
    assert page.locator("#behind tbody tr").count() == 2
    assert not page.evaluate("window.__csp")
    _shot(page, "stats-tickets")
    page.context.close()
    unit = _page(browser, server, "h_cgj")
    unit.click("nav >> text=本单位")
    unit.wait_for_url(re.compile(r"/stats/unit"))
    assert "市城管局" in unit.locator("h1").inner_text()
    assert not unit.evaluate("window.__csp")
    _shot(unit, "stats-unit")
    unit.context.close()
