"""`make screenshots`: start the app on a free loopback port over a small seeded city, log in as each role and
save a PNG of every page into docs/screenshots/ (headless Debian chromium).

Run as `python -m tests.e2e.screenshots [--out docs/screenshots]`.
"""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from minsheng.domain.clock import SystemClock
from minsheng.domain.roles import Actor, Role
from minsheng.domain.transitions import AssignmentAction
from minsheng.services import kb
from minsheng.services import schemas as s
from minsheng.services.tickets import TicketEngine
from minsheng.storage.db import Database
from minsheng.storage.models import Ticket, User
from tests.e2e.browser.server import CHROMIUM, CHROMIUM_ARGS, PASSWORD, running_server

ROOT = Path(__file__).resolve().parents[2]
TEXTS = [
    ("幸福路3号路灯不亮已经一周，晚上很黑", "010101", "C0101", "幸福路3号", "13800138001"),
    ("和平街道菜市场门口垃圾堆积发臭", "02", "C0201", "和平街道菜市场", "13800138002"),
    ("小区楼下餐馆油烟扰民，每天晚上十点后仍在营业", "0201", "C0101", "幸福路18号", "13800138003"),
    ("幸福路与和平街交叉口井盖缺失，非常危险", "0101", "C0101", "幸福路与和平街交叉口", "13800138004"),
    ("工地夜间施工噪音太大，影响休息", "0201", "C0201", "和平街道12号工地", "13800138005"),
    ("请问办理居住证需要什么材料", None, None, None, "13800138006"),
    ("公交站台顶棚破损漏雨", "0101", "C0201", "和平街道公交站", "13800138007"),
    ("小区绿化带被私自占用种菜", "01", "C0101", "幸福里小区", "13800138008"),
    ("路边违停车辆堵塞消防通道", "01", "C0201", "和平街道8号", "13800138009"),
    ("幸福路街道路灯又坏了一盏", "010101", "C0101", "幸福路20号", "13800138001"),
]
KB = [
    (
        "办理居住证需要哪些材料",
        "携带本人身份证、租房合同或房产证明，到居住地社区警务室或派出所办理，5个工作日内领取。",
        "市公安局",
    ),
    (
        "路灯损坏找谁修",
        "城市道路路灯由市城管局负责维修，一般3个工作日内修复；小区内路灯由物业负责。",
        "市城管局",
    ),
    (
        "夜间施工噪声投诉",
        "夜间22时至次日6时禁止产生噪声的施工作业，特殊情况须持夜间施工许可证。可拨打12345投诉。",
        "市生态环境局",
    ),
]


def seed_tickets(db: Database) -> None:
    engine = TicketEngine()
    clock = SystemClock()
    now = clock.now() - timedelta(hours=3)
    with db.write_sessions() as session, session.begin():
        users = {u.username: u for u in session.scalars(select(User))}

        def actor(name: str) -> Actor:
            u = users[name]
            return Actor(role=Role(u.role), user_id=u.id, unit_id=u.unit_id, name=u.display_name)

        for title, body, dept in KB:
            kb.create(session, kb.KbIn(title=title, body=body, department=dept), now)
        numbers = []
        for i, (detail, cat, area, addr, phone) in enumerate(TEXTS):
            req = s.IntakeRequest(
                channel=["phone", "wechat", "app", "web", "phone"][i % 5],
                detail=detail,
                category_code=cat,
                area_code=area,
                address=addr,
                citizen_name="王五" if i % 2 else "李四",
                citizen_phone=phone,
                public_consent=i % 3 == 0,
                kind="consultation" if "请问" in detail else None,
                lat=39.88 + 0.005 * i if area else None,
                lon=(116.33 if area == "C0101" else 116.43) + 0.004 * i if area else None,
            )
            t, _, _ = engine.intake(session, actor("operator1"), req, now + timedelta(minutes=7 * i))
            numbers.append(t.number)
        session.flush()
        at = now + timedelta(hours=1)

        def step(n: str, unit: str, *actions: tuple[AssignmentAction, s.BaseModel]) -> None:
            t = session.scalar(select(Ticket).where(Ticket.number == n))
            assert t is not None
            a = next(x for x in reversed(t.assignments) if x.unit.code == unit)
            for act, p in actions:
                engine.assignment_step(session, actor(f"h_{unit.lower()}"), a.id, act, p, at)

        for n, unit in zip(numbers[:5], ["CGJ", "CGJ", "HBJ", "CGJ", "HBJ"], strict=True):
            engine.dispatch(session, actor("dispatcher1"), n, s.Dispatch(lead_unit=unit), at)
        # 0: closed and rated dissatisfied; 1: waiting for review; 2: in progress with an extension request;
        # 3: returned by the unit; 4: paused
        done = (AssignmentAction.FEEDBACK, s.Feedback(text="已更换灯泡"))
        step(
            numbers[0],
            "CGJ",
            (AssignmentAction.SIGN, s.WithNote()),
            done,
            (AssignmentAction.REQUEST_CLOSE, s.RequestClose(summary="已修复")),
        )
        engine.review(session, actor("supervisor1"), numbers[0], True, None, at)
        engine.follow_up(
            session,
            actor("followup1"),
            numbers[0],
            s.FollowUp(rating="dissatisfied", comment="修好后又坏了"),
            at,
        )
        step(
            numbers[1],
            "CGJ",
            (AssignmentAction.SIGN, s.WithNote()),
            (AssignmentAction.CONTACT, s.Contact()),
            (AssignmentAction.ARRIVE, s.WithNote()),
            (AssignmentAction.FEEDBACK, s.Feedback(text="已组织清运")),
            (AssignmentAction.REQUEST_CLOSE, s.RequestClose(summary="垃圾已清运")),
        )
        step(numbers[2], "HBJ", (AssignmentAction.SIGN, s.WithNote()))
        engine.request_extension(
            session,
            actor("h_hbj"),
            numbers[2],
            s.RequestExtension(hours=48, reason="需联合执法，协调时间"),
            at,
        )
        step(
            numbers[3], "CGJ", (AssignmentAction.RETURN, s.WithReason(reason="井盖属住建局管理，非我局职责"))
        )
        step(numbers[4], "HBJ", (AssignmentAction.SIGN, s.WithNote()))
        engine.pause(session, actor("h_hbj"), numbers[4], s.WithReason(reason="等待群众在家配合取证"), at)
        engine.answer_directly(
            session,
            actor("operator1"),
            numbers[5],
            s.AnswerDirectly(answer="携带身份证和租房合同到社区警务室办理"),
            at,
        )
        engine.dispatch(session, actor("dispatcher1"), numbers[6], s.Dispatch(lead_unit="CGJ"), at)
        # what the clock and triage modules will write: shown on the supervisor board
        for n, action, msg in [
            (numbers[6], "warning", "签收时限即将到期"),
            (numbers[2], "overdue", "已超过办结时限"),
            (numbers[1], "cluster_warning", "和平街道3天内5件环境卫生诉求"),
        ]:
            t = session.scalar(select(Ticket).where(Ticket.number == n))
            assert t is not None
            engine.record_note(session, t, Actor.system(), action, at, {"message": msg})


def shoot(out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    saved: list[Path] = []
    out.mkdir(parents=True, exist_ok=True)
    with running_server() as srv, sync_playwright() as p:
        seed_tickets(srv.db)
        with srv.db.read_sessions() as session:
            first = session.scalar(select(Ticket.number).order_by(Ticket.id).limit(1))
            second = session.scalar(select(Ticket.number).order_by(Ticket.id).offset(1).limit(1))
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)

        def page_for(user: str | None, **ctx: Any) -> Any:
            context = browser.new_context(base_url=srv.url, locale="zh-CN", **ctx)
            page = context.new_page()
            if user:
                page.goto("/login")
                page.fill("input[name=username]", user)
                page.fill("input[name=password]", PASSWORD)
                page.click("button:has-text('登录')")
                page.wait_for_load_state("networkidle")
            return page

        def save(page: Any, name: str, path: str, full: bool = True, before: Any = None) -> None:
            page.goto(path)
            page.wait_for_load_state("networkidle")
            if before:
                before(page)
            page.wait_for_timeout(400)  # let ECharts finish its first animation frame
            target = out / f"{name}.png"
            page.screenshot(path=str(target), full_page=full)
            saved.append(target)
            print("saved", target.relative_to(ROOT) if target.is_relative_to(ROOT) else target)

        def type_call(page: Any) -> None:
            page.fill("input[name=citizen_phone]", "13800138001")
            page.fill("input[name=citizen_name]", "李四")
            page.fill("textarea[name=detail]", "请问办理居住证需要什么材料")
            page.wait_for_selector("#suggest details.kb")
            page.locator("#suggest details.kb").first.locator("summary").click()

        anon = page_for(None, viewport={"width": 1280, "height": 900})
        save(anon, "login", "/login")
        save(anon, "portal", "/")
        save(anon, "public", "/public")
        save(anon, "help", "/help?q=居住证")
        save(anon, "track", "/track")
        save(
            page_for("operator1", viewport={"width": 1440, "height": 900}), "desk", "/desk", before=type_call
        )
        disp = page_for("dispatcher1", viewport={"width": 1440, "height": 900})
        save(disp, "queue", "/queue")
        handler = page_for("h_cgj", viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
        save(handler, "inbox-mobile", "/inbox")
        sup = page_for("supervisor1", viewport={"width": 1440, "height": 900})
        save(sup, "board", "/board")
        save(sup, "ticket", f"/tickets/{first}")
        save(sup, "tickets", "/tickets")
        save(page_for("followup1", viewport={"width": 1440, "height": 900}), "followup", "/followup")
        leader = page_for("leader1", viewport={"width": 1920, "height": 1080})
        save(leader, "screen", "/screen", full=False)
        save(leader, "ticket-masked", f"/tickets/{second}")
        admin = page_for("admin", viewport={"width": 1440, "height": 900})
        save(admin, "admin", "/admin")
        save(admin, "admin-areas", "/admin/areas")
        save(admin, "admin-units", "/admin/units")
        save(admin, "admin-users", "/admin/users")
        save(admin, "admin-categories", "/admin/categories")
        save(admin, "kb", "/kb")
        browser.close()
    return saved


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = ap.parse_args(argv)
    if not Path(CHROMIUM).exists():
        print(
            f"chromium not found at {CHROMIUM}: install it (make chromium) to take screenshots",
            file=sys.stderr,
        )
        return 1
    shoot(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
