"""A city configures itself on its pages (issue 17 §3), over HTTP on both stores: time-limit policies with where
each value comes from, presets, the repeated-failure ladder, the calendar and its holiday notice, rosters and
their generator, templates with a preview, routing rules. Each page: the admin edits, other roles are refused,
a bad value is shown on the page and stores nothing, each save leaves an audit entry, and the edit changes a
computed deadline or an escalation (injected clock, no sleep)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from minsheng.cli.main import app as cli
from minsheng.domain.clock import FixedClock
from minsheng.services.background import run_once
from minsheng.storage.audit_tables import AuditEntry
from minsheng.storage.db import Database
from minsheng.storage.timelimit_tables import CalendarDay, DutyShift, TimeLimitPolicy, UnitFailure

Login = Callable[[str], TestClient]

NOTICE = """国务院办公厅关于2026年部分节假日安排的通知
一、元旦：1月1日（周四）至3日（周六）放假调休，共3天。1月4日（周日）上班。
二、春节：2月15日（农历腊月二十八、周日）至23日（农历正月初七、周一）放假调休，共9天。2月14日（周六）、2月28日（周六）上班。
三、国庆节：10月1日（周四）至7日（周三）放假调休，共7天。9月20日（周日）、10月10日（周六）上班。"""


def _count(db: Database, model: Any, *where: Any) -> int:
    with db.read_sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def _audits(db: Database, entity: str) -> list[AuditEntry]:
    with db.read_sessions() as session:
        q = select(AuditEntry).where(AuditEntry.entity == entity).order_by(AuditEntry.id)
        return list(session.scalars(q))


def _post(c: TestClient, url: str, data: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    return c.post(url, data=data, follow_redirects=False, headers=headers)


def _ticket(login: Login, unit: str = "ZJJ") -> tuple[str, dict[str, Any]]:
    op, disp = login("operator1"), login("dispatcher1")
    r = op.post(
        "/api/v1/tickets", json={"channel": "phone", "detail": "小区路灯不亮", "citizen_phone": "13800138000"}
    )
    number = r.json()["number"]
    r = disp.post(f"/api/v1/tickets/{number}/dispatch", json={"lead_unit": unit})
    assert r.status_code == 200, r.text
    return number, r.json()


def _due(c: TestClient, number: str, step: str) -> datetime:
    rows = c.get(f"/api/v1/clock/tickets/{number}/deadlines").json()
    return datetime.fromisoformat(next(d["due_at"] for d in rows if d["step"] == step))


def _policy_id(db: Database, name: str) -> int:
    with db.read_sessions() as session:
        q = select(TimeLimitPolicy.id).where(
            TimeLimitPolicy.name == name, TimeLimitPolicy.deleted_at.is_(None)
        )
        return int(session.scalar(q) or 0)


POLICY_FORM = {
    "name": "住建 办结",
    "category_code": "0101",
    "amount_resolve": "3",
    "unit_resolve": "working_days",
    "active": "1",
}


def _policies_presets_and_where_values_come_from(login: Login, db: Database, clock: FixedClock) -> None:
    admin = login("admin")
    for role in ("operator1", "supervisor1", "h_zjj", "leader1"):
        c = login(role)
        assert c.get("/admin/timelimits").status_code == 403
        assert _post(c, "/admin/timelimits/preset", {"preset": "qiannan"}).status_code == 403
    page = admin.get("/admin/timelimits")
    assert page.status_code == 200 and "尚未保存任何时限策略" in page.text
    # A preset applied from the page becomes stored, editable rows (and the preset setting), all audited.
    r = _post(admin, "/admin/timelimits/preset", {"preset": "qiannan"})
    assert r.status_code == 303 and "err=" not in r.headers["location"]
    assert _count(db, TimeLimitPolicy, TimeLimitPolicy.deleted_at.is_(None)) == 1
    assert [a.action for a in _audits(db, "timelimit_policy")] == ["create"]
    assert {a.entity_id for a in _audits(db, "city_setting")} == {"clock_preset", "repeated_failures"}
    # A category's own policy sets resolve only: the page says sign comes from the preset's city-wide policy.
    r = _post(admin, "/admin/timelimits/policies", POLICY_FORM)
    assert r.status_code == 303, r.text
    page = admin.get("/admin/timelimits").text
    assert "继承自「黔南 签收15分钟」" in page and "本条设定" in page and "黔南州政务110" in page
    # Bad values are shown on the page and store nothing.
    before = len(_audits(db, "timelimit_policy"))
    for bad, says in [
        ({**POLICY_FORM, "category_code": "0201", "amount_resolve": "abc"}, "须为数字"),
        ({**POLICY_FORM, "category_code": "0201", "amount_resolve": "-1"}, "须大于零"),
        ({**POLICY_FORM, "category_code": "0201", "amount_resolve": "2.5"}, "working_days"),
        ({**POLICY_FORM, "category_code": "0201", "warn_at": "1.5"}, "预警比例"),
        ({**POLICY_FORM, "category_code": "0201", "escalation": "sign 10 shout unit"}, "press"),
        (POLICY_FORM, "two policies"),  # the same category twice
    ]:
        r = _post(admin, "/admin/timelimits/policies", bad)
        assert r.status_code == 422 and says in r.text, (bad, r.text[-3000:])
    assert len(_audits(db, "timelimit_policy")) == before
    # Editing the preset's sign limit changes the next ticket's deadline.
    pid = _policy_id(db, "黔南 签收15分钟")
    number, _ = _ticket(login)
    assert _due(admin, number, "sign") == clock.now() + timedelta(minutes=15)
    form = {
        "name": "黔南 签收15分钟",
        "amount_sign": "45",
        "unit_sign": "minutes",
        "active": "1",
        "escalation": "sign 0 press unit 催办\nsign 15 notify unit_leader 推送部门领导",
    }
    clock.advance(timedelta(minutes=1))  # the policy cache is keyed by the latest updated_at
    r = _post(admin, f"/admin/timelimits/policies/{pid}", form)
    assert r.status_code == 303 and "err=" not in r.headers["location"], r.text
    edit = _audits(db, "timelimit_policy")[-1]
    assert edit.action == "update" and edit.actor_name == "admin"
    assert edit.before["limits"]["sign"]["amount"] == 15 and edit.after["limits"]["sign"]["amount"] == 45
    number, _ = _ticket(login)
    assert _due(admin, number, "sign") == clock.now() + timedelta(minutes=45)
    r = _post(admin, f"/admin/timelimits/policies/{pid}/delete", {})
    assert r.status_code == 303 and _audits(db, "timelimit_policy")[-1].action == "delete"
    assert _post(admin, "/admin/timelimits/policies/999999", form).status_code == 422
    assert _post(admin, "/admin/timelimits/preset", {"preset": "nowhere"}).status_code == 422


def _repeated_failure_ladder_is_edited_and_used(
    login: Login, app_client: TestClient, db: Database, clock: FixedClock
) -> None:
    admin = login("admin")
    assert _post(admin, "/admin/timelimits/preset", {"preset": "qianxi"}).status_code == 303
    page = admin.get("/admin/timelimits").text
    assert 'name="enabled" value="1" checked' in page and "unit_leader, deputy_mayor, mayor" in page
    good = {"enabled": "1", "period_days": "7", "levels": "unit_leader, mayor", "returns": "1"}
    before = len(_audits(db, "city_setting"))
    for bad, says in [
        ({**good, "period_days": "0"}, "统计周期"),
        ({**good, "period_days": "x"}, "统计周期"),
        ({**good, "levels": ""}, "层级"),
        ({**good, "levels": "unit leader!"}, "角色代码"),
        ({"enabled": "1", "period_days": "7", "levels": "mayor"}, "至少选择一种"),
    ]:
        r = _post(admin, "/admin/timelimits/ladder", bad)
        assert r.status_code == 422 and says in r.text, bad
    assert len(_audits(db, "city_setting")) == before
    assert _post(login("supervisor1"), "/admin/timelimits/ladder", good).status_code == 403
    assert _post(admin, "/admin/timelimits/ladder", good).status_code == 303
    saved = _audits(db, "city_setting")[-1]
    assert saved.entity_id == "repeated_failures" and saved.before["value"]["period_days"] == 30
    assert saved.after["value"]["levels"] == ["unit_leader", "mayor"]
    # Returns count now: the unit's first return goes to its leader, the second within 7 days to the mayor,
    # one more after the period to its leader again.
    targets = []
    for wait in (timedelta(0), timedelta(days=1), timedelta(days=9)):
        clock.advance(wait)
        zjj, admin = login("h_zjj"), login("admin")  # sessions do not last nine days
        _, view = _ticket(login)
        a = next(x["id"] for x in view["assignments"] if x["unit_code"] == "ZJJ")
        assert zjj.post(f"/api/v1/assignments/{a}/return", json={"reason": "非本单位职责"}).status_code == 200
        with db.read_sessions() as session:
            targets.append(session.scalars(select(UnitFailure.target).order_by(UnitFailure.id)).all()[-1])
    assert targets == ["unit_leader", "mayor", "unit_leader"]
    # Switched off: a return is no failure any more.
    assert _post(admin, "/admin/timelimits/ladder", {**good, "enabled": ""}).status_code == 303
    _, view = _ticket(login)
    a = next(x["id"] for x in view["assignments"] if x["unit_code"] == "ZJJ")
    assert zjj.post(f"/api/v1/assignments/{a}/return", json={"reason": "非本单位职责"}).status_code == 200
    assert _count(db, UnitFailure) == 3
    # Missed signs only, one level: the worker counts a sign deadline missed (30 min) from the stored rules.
    admin = login("admin")
    only_signs = {"enabled": "1", "period_days": "7", "levels": "district_leader", "missed_signs": "1"}
    assert _post(admin, "/admin/timelimits/ladder", only_signs).status_code == 303
    _ticket(login)
    clock.advance(timedelta(minutes=31))
    run_once(db, clock.now(), clockwork=app_client.app.state.minsheng.clockwork)
    with db.read_sessions() as session:
        last = session.scalars(select(UnitFailure).order_by(UnitFailure.id.desc())).first()
    assert last is not None and (last.step, last.target) == ("sign", "district_leader")


def _calendar_notice_changes_a_working_day_deadline(login: Login, db: Database, clock: FixedClock) -> None:
    admin = login("admin")
    assert login("dispatcher1").get("/admin/calendar").status_code == 403
    # Two working days from the clock's Saturday 2026-11-21: Tuesday's end of work on the statutory calendar.
    policy = {"name": "答复", "amount_feedback": "2", "unit_feedback": "working_days", "active": "1"}
    assert _post(admin, "/admin/timelimits/policies", policy).status_code == 303
    number, _ = _ticket(login)
    plain = _due(admin, number, "feedback")
    # A local holiday on the next two working days moves the next ticket's deadline by two working days.
    first = (plain.date() - timedelta(days=1)).isoformat()
    r = _post(
        admin,
        "/admin/calendar",
        {"first": first, "last": plain.date().isoformat(), "kind": "holiday", "name": "本地假日"},
    )
    assert r.status_code == 303 and "err=" not in r.headers["location"]
    number, _ = _ticket(login)
    assert _due(admin, number, "feedback") > plain + timedelta(days=1)
    assert [a.action for a in _audits(db, "calendar_day")] == ["create", "create"]
    # A conflicting entry is refused on the page.
    r = _post(admin, "/admin/calendar", {"first": first, "kind": "workday"})
    assert r.status_code == 422 and first in r.text
    assert _count(db, CalendarDay) == 2
    # The year's notice: holidays and swapped working days; imported twice, nothing doubles.
    r = _post(admin, "/admin/calendar/import", {"year": "2026", "text": NOTICE})
    assert r.status_code == 303 and "err=" not in r.headers["location"]
    assert _count(db, CalendarDay) == 2 + 3 + 1 + 9 + 2 + 7 + 2
    assert _post(admin, "/admin/calendar/import", {"year": "2026", "text": NOTICE}).status_code == 303
    assert _count(db, CalendarDay) == 26
    page = admin.get("/admin/calendar", params={"year": 2026}).text
    assert "春节调休上班" in page and "2026-02-28" in page
    for bad in (
        {"year": "2026", "text": "明天放假"},
        {"year": "1900", "text": NOTICE},
        {"year": "2026", "text": "一、元旦：2月30日放假。"},
    ):
        r = _post(admin, "/admin/calendar/import", bad)
        assert r.status_code == 422, bad
    assert _count(db, CalendarDay) == 26
    r = _post(admin, f"/admin/calendar/{first}/delete", {})
    assert r.status_code == 303 and _audits(db, "calendar_day")[-1].action == "delete"


def _roster_generator_and_the_commander_who_gets_the_escalation(
    login: Login, app_client: TestClient, db: Database, clock: FixedClock
) -> None:
    admin = login("admin")
    assert login("operator1").get("/admin/rosters").status_code == 403
    assert _post(admin, "/admin/timelimits/preset", {"preset": "haikou"}).status_code == 303
    today = clock.now().date().isoformat()
    # 海口: the units in turn as commander of the day (a unit's leader or its named head with a phone).
    gen = {
        "kind": "commander",
        "units": "ZJJ,CGJ,HBJ",
        "first": today,
        "days": "6",
        "hour": "0",
        "offset": "1",
    }
    for bad, says in [
        ({**gen, "days": "200"}, "天数"),
        ({**gen, "units": "NOPE"}, "NOPE"),
        ({**gen, "kind": "x"}, "轮值"),
    ]:
        r = _post(admin, "/admin/rosters/generate", bad)
        assert r.status_code == 422 and says in r.text, bad
    assert _count(db, DutyShift) == 0
    r = _post(admin, "/admin/rosters/generate", gen)
    assert r.status_code == 303 and "err=" not in r.headers["location"], r.headers["location"]
    with db.read_sessions() as session:
        shifts = list(session.scalars(select(DutyShift).order_by(DutyShift.starts_at)))
    assert len(shifts) == 6 and all(
        s.commander and (s.ends_at - s.starts_at) == timedelta(hours=24) for s in shifts
    )
    assert [s.person_name for s in shifts][:3] == ["城管局承办人", "环境局承办人", "住建局承办人"]
    assert len(_audits(db, "duty_shift")) == 6
    # 黔西's tiers: ZJJ is a tier-2 unit (8-hour shifts).
    tiers = {"kind": "tiers", "units": "ZJJ", "first": today, "days": "2", "hour": "8"}
    assert _post(admin, "/admin/rosters/generate", tiers).status_code == 303
    with db.read_sessions() as session:
        duty = list(session.scalars(select(DutyShift).where(DutyShift.commander.is_(False))))
    assert len(duty) == 6 and {s.ends_at - s.starts_at for s in duty} == {timedelta(hours=8)}
    # The time limits enforce it: 30 min unsigned, then 30 more → the commander of the day is told.
    now = clock.now()
    commander = next(s for s in shifts if s.starts_at <= now + timedelta(hours=1) < s.ends_at)
    number, _ = _ticket(login, "XFL")
    clock.advance(timedelta(minutes=61))
    run_once(db, clock.now(), clockwork=app_client.app.state.minsheng.clockwork)
    sup = login("supervisor1")
    events = sup.get(f"/api/v1/tickets/{number}/timeline").json()
    assert [e["action"] for e in events][-2:] == ["press", "escalation"]
    who = login(
        {"城管局承办人": "h_cgj", "环境局承办人": "h_hbj", "住建局承办人": "h_zjj"}[commander.person_name]
    )
    inbox = who.get("/api/v1/notifications").json()
    assert any(n["kind"] == "escalation" and number in n["text"] for n in inbox), inbox
    r = _post(admin, f"/admin/rosters/{shifts[0].id}/delete", {})
    assert r.status_code == 303 and _audits(db, "duty_shift")[-1].action == "delete"


def _templates_preview_and_routing_rules(login: Login, db: Database) -> None:
    admin = login("admin")
    for c in (login("supervisor1"), login("operator1")):
        assert c.get("/admin/templates").status_code == 403 and c.get("/admin/routing").status_code == 403
    assert "工单督办" in admin.get("/admin/templates").text
    text = "【预警】工单{{ ticket_number }}请在{{ due_at | local }}前{{ step_label }}"
    r = _post(admin, "/admin/templates/warning/preview", {"text": text}, {"HX-Request": "true"})
    assert r.status_code == 200 and "【预警】工单MS20261203-0042请在" in r.text and "<html" not in r.text
    r = _post(admin, "/admin/templates/warning/preview", {"text": "{{ secret }}"})
    assert r.status_code == 200 and "无法预览" in r.text and "secret" in r.text
    r = _post(admin, "/admin/templates/warning", {"text": "{{ secret }}"})
    assert r.status_code == 422 and "secret" in r.text
    assert _audits(db, "message_template") == []
    assert _post(admin, "/admin/templates/warning", {"text": text}).status_code == 303
    assert _audits(db, "message_template")[-1].after["text"] == text
    assert _post(admin, "/admin/templates/warning/reset", {}).status_code == 303
    assert _audits(db, "message_template")[-1].action == "delete"
    # Routing rules: a rule that takes consultations, a bad one refused on the page.
    rule = {
        "category_code": "0101",
        "lead_unit": "ZJJ",
        "assist_units": "CGJ",
        "priority": "5",
        "enabled": "1",
        "takes_consultations": "1",
    }
    for bad in ({**rule, "lead_unit": "NOPE"}, {**rule, "priority": "x"}, {**rule, "assist_units": "ZJJ"}):
        r = _post(admin, "/admin/routing", bad)
        assert r.status_code == 422 and ("输入有误" in r.text or "未找到" in r.text), bad
    assert _audits(db, "routing_rule") == []
    r = _post(admin, "/admin/routing", rule)
    assert r.status_code == 303, r.text
    created = _audits(db, "routing_rule")[-1]
    assert created.action == "create" and created.after["takes_consultations"] is True
    rid = created.entity_id
    r = _post(admin, f"/admin/routing/{rid}", {**rule, "takes_consultations": ""})
    assert r.status_code == 303 and _audits(db, "routing_rule")[-1].after["takes_consultations"] is False
    assert "受理台答复" in admin.get("/admin/routing").text
    assert _post(admin, f"/admin/routing/{rid}/delete", {}).status_code == 303


# Two tests per store, each a sequence of pages: a database per test costs more than the pages themselves.
def test_policies_presets_and_the_repeated_failure_ladder(
    login: Login, app_client: TestClient, db: Database, db_url: str, clock: FixedClock
) -> None:
    _policies_presets_and_where_values_come_from(login, db, clock)
    _repeated_failure_ladder_is_edited_and_used(login, app_client, db, clock)
    # The same presets from the command line, audited with the CLI as the actor.
    runner, args = CliRunner(), ["--database-url", db_url]
    r = runner.invoke(cli, ["timelimits", "preset", "apply", "jiaxing", *args])
    assert r.exit_code == 0 and "preset jiaxing applied: 4 policies" in r.output, r.output
    assert _audits(db, "city_setting")[-1].actor_name == "cli"
    assert runner.invoke(cli, ["timelimits", "preset", "apply", "atlantis", *args]).exit_code == 2
    r = runner.invoke(cli, ["timelimits", "preset", "list", *args])
    assert r.exit_code == 0 and "jiaxing" in r.output and "yes" in r.output
    assert "嘉兴 主城区10分钟到场" in login("admin").get("/admin/timelimits").text


def test_calendar_rosters_templates_and_routing(
    login: Login, app_client: TestClient, db: Database, clock: FixedClock
) -> None:
    _calendar_notice_changes_a_working_day_deadline(login, db, clock)
    _roster_generator_and_the_commander_who_gets_the_escalation(login, app_client, db, clock)
    _templates_preview_and_routing_rules(login, db)
