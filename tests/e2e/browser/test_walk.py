"""One ticket walked through the whole loop in headless Chromium, entirely through the pages, as the operator,
the dispatcher, the unit handler, the supervisor and the follow-up staff; and a citizen submitting and tracking.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.browser.server import PASSWORD, Running, png

pytestmark = pytest.mark.browser
SHOTS = Path(__file__).resolve().parents[3] / "var" / "browser-shots"


def _page(browser: Any, server: Running, username: str | None, **ctx: Any) -> Any:
    context = browser.new_context(base_url=server.url, locale="zh-CN", **ctx)
    page = context.new_page()
    page.set_default_timeout(15_000)
    if username:
        page.goto("/login")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", PASSWORD)
        page.click("button:has-text('登录')")
        page.wait_for_load_state("networkidle")
        assert "/login" not in page.url, page.content()[:500]
    return page


def _shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _flash(page: Any) -> str:
    bad = page.locator(".flash.bad")
    assert bad.count() == 0, bad.first.inner_text()
    return str(page.locator(".flash.ok").first.inner_text())


def test_one_ticket_through_the_loop(browser: Any, server: Running, tmp_path: Path) -> None:
    # operator types the call and submits with Ctrl+Enter; suggestions arrive while typing
    op = _page(browser, server, "operator1")
    assert op.url.endswith("/desk")
    op.fill("input[name=citizen_phone]", "13800138000")
    op.fill("input[name=citizen_name]", "张三")
    op.fill("textarea[name=detail]", "幸福路3号路灯坏了一个星期，晚上很黑，老人出门不安全")
    op.fill("input[name=address]", "幸福路3号")
    op.select_option("select[name=category_code]", "010101")
    op.select_option("select[name=area_code]", "C0101")
    op.wait_for_selector("#suggest h3")
    _shot(op, "desk")
    op.focus("textarea[name=detail]")
    op.keyboard.press("Control+Enter")
    op.wait_for_url(re.compile(r"/desk\?n=\d+"))
    number = re.search(r"n=(\d+)", op.url).group(1)  # type: ignore[union-attr]
    assert number in _flash(op)

    # dispatcher dispatches it to the city management bureau
    disp = _page(browser, server, "dispatcher1")
    disp.goto(f"/queue?sel={number}")
    _shot(disp, "queue")
    disp.select_option("#dispatch-form select[name=lead_unit]", "CGJ")
    disp.click("#dispatch-form button:has-text('派单')")
    disp.wait_for_load_state("networkidle")
    assert "派单成功" in _flash(disp)

    # the unit handler works it on a phone-sized screen
    h = _page(
        browser, server, "h_cgj", viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    h.goto("/inbox")
    card = h.locator("article.card", has_text=number)
    card.locator("button:has-text('签收')").click()
    h.wait_for_load_state("networkidle")
    assert "签收成功" in _flash(h)
    card = h.locator("article.card", has_text=number)
    card.locator("button:has-text('已联系群众')").click()
    h.wait_for_load_state("networkidle")
    h.locator("article.card", has_text=number).locator("button:has-text('已到场')").click()
    h.wait_for_load_state("networkidle")
    card = h.locator("article.card", has_text=number)
    card.locator("summary:has-text('反馈办理情况')").click()
    card.locator("textarea[name=text]").fill("已更换灯泡，恢复照明")
    photo = tmp_path / "after.png"
    photo.write_bytes(png(320, 240, (230, 180, 40)))
    card.locator("input[name=photos]").set_input_files(str(photo))
    _shot(h, "inbox")
    card.locator("button:has-text('提交反馈')").click()
    h.wait_for_load_state("networkidle")
    assert "反馈成功" in _flash(h)
    card = h.locator("article.card", has_text=number)
    card.locator("summary:has-text('申请结案')").click()
    card.locator("textarea[name=summary]").fill("路灯已修复")
    card.locator("button:has-text('申请结案')").click()
    h.wait_for_load_state("networkidle")
    assert "申请结案成功" in _flash(h)

    # supervisor accepts the closing
    sup = _page(browser, server, "supervisor1")
    sup.goto("/board")
    _shot(sup, "board")
    sup.locator(f"[id='{number}']").first.locator("button:has-text('通过结案')").click()
    sup.wait_for_load_state("networkidle")
    assert "审核通过成功" in _flash(sup)

    # follow-up staff records the citizen's rating
    fu = _page(browser, server, "followup1")
    fu.goto("/followup")
    _shot(fu, "followup")
    card = fu.locator(f"[id='{number}']").first
    card.locator("input[value=satisfied]").check()
    card.locator("button:has-text('记录评价')").click()
    fu.wait_for_load_state("networkidle")
    assert "回访成功" in _flash(fu)

    sup.goto(f"/tickets/{number}")
    sup.wait_for_load_state("networkidle")
    _shot(sup, "ticket")
    assert "已评价" in sup.locator("h1").inner_text()
    timeline = sup.locator(".timeline").inner_text()
    for label in ("受理", "派单", "签收", "联系群众", "到场", "反馈", "申请结案", "审核通过", "回访"):
        assert label in timeline, label
    assert sup.locator(".photos img").count() == 1


def test_citizen_submits_and_tracks(browser: Any, server: Running, tmp_path: Path) -> None:
    c = _page(browser, server, None)
    c.goto("/")
    c.fill("textarea[name=detail]", "和平街道菜市场门口垃圾堆积发臭，请尽快清理")
    c.fill("input[name=address]", "和平街道菜市场")
    c.fill("input[name=citizen_phone]", "13912345678")
    c.check("input[name=public_consent]")
    c.wait_for_selector("#pmap canvas")
    box = c.locator("#pmap").bounding_box()
    c.mouse.click(box["x"] + box["width"] * 0.7, box["y"] + box["height"] * 0.5)
    assert c.input_value("#lat") != ""
    photo = tmp_path / "rubbish.png"
    photo.write_bytes(png(200, 150, (90, 160, 90)))
    c.set_input_files("input[name=photo]", str(photo))
    _shot(c, "portal")
    c.click("#portal-form button:has-text('提交')")
    c.wait_for_selector("#number")
    number, code = c.inner_text("#number"), c.inner_text("#code")
    _shot(c, "receipt")
    c.goto(f"/track?number={number}")
    c.fill("input[name=query_code]", code)
    c.click("button:has-text('查询')")
    c.wait_for_selector("#result")
    assert number in c.inner_text("#result") and "受理" in c.inner_text("#result .timeline")
    _shot(c, "track")
    c.goto("/public")
    assert number in c.content() and "13912345678" not in c.content()
