"""A city configures itself on its pages, in headless Chromium (issue 17 §3): the admin applies 黔西's preset and
adjusts its repeated-failure ladder, imports a year's holiday notice, generates a rotating commander roster,
previews a template (htmx) and opens the routing rules. Screenshots go to docs/screenshots/ (admin-config-*.png)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.browser.server import PASSWORD, Running
from tests.e2e.browser.test_csp import RECORD

pytestmark = pytest.mark.browser
SHOTS = Path(__file__).resolve().parents[3] / "docs" / "screenshots"
NOTICE = """一、元旦：1月1日（周四）至3日（周六）放假调休，共3天。1月4日（周日）上班。
二、春节：2月15日（农历腊月二十八、周日）至23日（农历正月初七、周一）放假调休，共9天。2月14日（周六）、2月28日（周六）上班。
三、清明节：4月4日（周六）至6日（周一）放假，共3天。"""


def _shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"admin-config-{name}.png"), full_page=True)


def test_admin_configures_the_city(browser: Any, server: Running) -> None:
    context = browser.new_context(
        base_url=server.url, locale="zh-CN", viewport={"width": 1400, "height": 900}
    )
    context.add_init_script(RECORD)
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.on("dialog", lambda d: d.accept())
    page.goto("/login")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('登录')")
    page.wait_for_load_state("networkidle")
    page.goto("/admin")
    page.click(".subnav >> text=办理时限")
    page.select_option("select[name=preset]", "qianxi")
    page.click("button:has-text('应用预设')")
    page.wait_for_selector(".flash.ok")
    assert "已应用预设" in page.inner_text(".flash.ok")
    assert page.locator("#policies article").count() == 3
    page.fill("#ladder input[name=period_days]", "15")
    page.check("#ladder input[name=returns]")
    page.click("#ladder button:has-text('保存')")
    page.wait_for_selector(".flash.ok")
    assert page.input_value("#ladder input[name=period_days]") == "15"
    # A category's own policy that sets only the resolve limit: the other steps say where they come from.
    page.click("#new-policy summary")
    page.fill("#new-policy input[name=name]", "市政设施 办结10个工作日")
    page.fill("#new-policy input[name=category_code]", "0101")
    page.fill("#new-policy input[name=amount_resolve]", "10")
    page.select_option("#new-policy select[name=unit_resolve]", "working_days")
    page.click("#new-policy button:has-text('保存')")
    page.wait_for_selector(".flash.ok")
    article = page.locator("#policies article").last
    assert "继承自「默认 一般」" in article.inner_text()
    article.locator("summary").click()
    _shot(page, "timelimits")

    page.click(".subnav >> text=工作日历")
    page.fill("#import input[name=year]", "2026")
    page.fill("#import textarea[name=text]", NOTICE)
    page.click("#import button:has-text('导入')")
    page.wait_for_selector(".flash.ok")
    assert "春节调休上班" in page.inner_text("#days")
    _shot(page, "calendar")

    page.click(".subnav >> text=值班排班")
    page.fill("#generate textarea[name=units]", "ZJJ,CGJ,HBJ")
    page.fill("#generate input[name=first]", "2026-12-01")
    page.fill("#generate input[name=days]", "14")
    page.click("#generate button:has-text('生成')")
    page.wait_for_selector(".flash.ok")
    _shot(page, "rosters")

    page.click(".subnav >> text=消息模板")
    page.fill(
        "#tpl-warning textarea[name=text]",
        "【预警】工单{{ ticket_number }}请于{{ due_at | local }}前{{ step_label }}",
    )
    page.click("#tpl-warning button:has-text('预览')")
    page.wait_for_selector("#preview-warning:has-text('MS20261203-0042')")
    _shot(page, "templates")

    page.click(".subnav >> text=派单规则")
    page.click("#new-rule summary")
    page.fill("#new-rule input[name=category_code]", "010101")
    page.fill("#new-rule input[name=lead_unit]", "CGJ")
    page.fill("#new-rule input[name=priority]", "10")
    page.click("#new-rule button:has-text('保存')")
    page.wait_for_selector(".flash.ok")
    assert "CGJ" in page.inner_text("table.tbl")
    _shot(page, "routing")
    assert page.evaluate("window.__csp") == []
