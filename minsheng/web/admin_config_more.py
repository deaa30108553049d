"""系统管理 → 工作日历, 值班排班, 消息模板, 派单规则 (issue 17 §3): the rest of a city's configuration on its pages.

- the working calendar of a year, a day or range added or removed, and a year's holiday notice (调休) imported;
- duty rosters, added by hand or generated (a commander of the day rotating over units; shifts by duty tier);
- the notification templates, edited with their placeholders and previewed on sample values;
- the routing rules, including whether a rule takes consultations.

Every save goes through the services and so through the audit log. Mounted by `web.admin`.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from minsheng.domain.roles import Role
from minsheng.http.uow import UnitOfWorkRoute
from minsheng.notify.templates import TemplateError, render
from minsheng.services.auth import Principal
from minsheng.services.errors import Invalid, ServiceError
from minsheng.services.timelimits import admin, generate
from minsheng.services.triage import routing_admin
from minsheng.web import core
from minsheng.web.core import FormDep, StateDep

router = APIRouter(route_class=UnitOfWorkRoute, include_in_schema=False)
AdminUser = Annotated[Principal, core.need(Role.ADMIN)]


def _day(text: str, what: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise Invalid(f"{what}须为日期（如 2026-10-01，收到 {text!r}）") from None


def _int(text: str, what: str, low: int, high: int) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise Invalid(f"{what}须为整数（收到 {text!r}）") from None
    if not low <= value <= high:
        raise Invalid(f"{what}须在 {low} 至 {high} 之间（收到 {value}）")
    return value


# ------------------------------------------------------------------------------------------------ calendar
CAL = "/admin/calendar"


def _calendar(request: Request, state: Any, user: Principal, status: int = 200, **extra: Any) -> Response:
    year = extra.pop("year", None) or state.clock.now().year
    with core.read_tx(state) as session:
        days = admin.calendar_days(session, year)
    ctx = {"year": year, "days": days, **extra}
    return core.render(request, "admin/config_calendar.html", ctx, user=user, status=status)


@router.get(CAL)
def admin_calendar(request: Request, state: StateDep, user: AdminUser, year: int | None = None) -> Response:
    if year is not None and not 2000 <= year <= 2100:
        year = None
    return _calendar(request, state, user, year=year)


@router.post(CAL)
def admin_calendar_add(request: Request, state: StateDep, user: AdminUser, form: FormDep) -> Response:
    try:
        first = _day(form.get("first"), "起始日期")
        last = _day(form.get("last"), "结束日期") if form.opt("last") else first
        kind = form.get("kind")
        if kind not in ("holiday", "workday"):
            raise Invalid("请选择放假或上班")
        name = form.get("name").strip()[:100]
        with core.write_tx(state, user) as session:
            added = admin.add_calendar_days(session, first, last, kind, name, state.clock.now())
    except ServiceError as e:
        err = core.service_message(e)
        return _calendar(request, state, user, 422, err=err, failed="add", values=form.values())
    return core.redirect(f"{CAL}?year={first.year}", msg=f"已添加 {len(added)} 天")


@router.post(CAL + "/import")
def admin_calendar_import(request: Request, state: StateDep, user: AdminUser, form: FormDep) -> Response:
    try:
        year = _int(form.get("year"), "年份", 2000, 2100)
        with core.write_tx(state, user) as session:
            got = generate.import_notice(session, year, form.get("text"), state.clock.now())
    except ServiceError as e:
        err = core.service_message(e)
        return _calendar(request, state, user, 422, err=err, failed="import", values=form.values())
    msg = f"已导入 {year} 年放假安排：放假 {got.holidays} 天、调休上班 {got.workdays} 天（新增 {got.added}，已有 {got.kept}）"
    return core.redirect(f"{CAL}?year={year}", msg=msg)


@router.post(CAL + "/{day}/delete")
def admin_calendar_delete(
    request: Request, state: StateDep, user: AdminUser, form: FormDep, day: str
) -> Response:
    try:
        d = _day(day, "日期")
        with core.write_tx(state, user) as session:
            admin.delete_calendar_day(session, d)
    except ServiceError as e:
        return core.redirect(CAL, err=core.service_message(e))
    return core.redirect(f"{CAL}?year={d.year}", msg=f"已删除 {d}")


# ------------------------------------------------------------------------------------------------- rosters
ROS = "/admin/rosters"


def _rosters(request: Request, state: Any, user: Principal, status: int = 200, **extra: Any) -> Response:
    start = extra.pop("start", None) or state.clock.now() - timedelta(days=1)
    with core.read_tx(state) as session:
        shifts = admin.shifts(session, None, start, start + timedelta(days=15), limit=500)
        units = admin.unit_codes(session)
    ctx = {"shifts": shifts, "units": units, "start": start, **extra}
    return core.render(request, "admin/config_rosters.html", ctx, user=user, status=status)


@router.get(ROS)
def admin_rosters(request: Request, state: StateDep, user: AdminUser) -> Response:
    return _rosters(request, state, user)


@router.post(ROS + "/generate")
def admin_rosters_generate(request: Request, state: StateDep, user: AdminUser, form: FormDep) -> Response:
    try:
        kind = form.get("kind")
        if kind not in ("commander", "tiers"):
            raise Invalid("请选择轮值指挥长或分级值班")
        first = _day(form.get("first"), "起始日期")
        days = _int(form.get("days"), "天数", 1, 92)
        hour = _int(form.get("hour") or "8", "交班时刻", 0, 23)
        offset = _int(form.get("offset") or "0", "起始序号", 0, 100000)
        codes = [c for c in form.get("units").replace("，", ",").replace("\n", ",").split(",") if c.strip()]
        with core.write_tx(state, user) as session:
            got = generate.generate_roster(
                session,
                kind,  # type: ignore[arg-type]
                [c.strip() for c in codes],
                first,
                days,
                time(hour),
                state.clockwork.config.zone,
                offset,
            )
    except ServiceError as e:
        err = core.service_message(e)
        return _rosters(request, state, user, 422, err=err, failed="generate", values=form.values())
    msg = f"已生成 {got.added} 个班次（替换原有 {got.replaced} 个）"
    if got.skipped:
        msg += f"；无人可排、已跳过：{'、'.join(got.skipped[:20])}"
    return core.redirect(ROS, msg=msg)


def _instant(text: str, what: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise Invalid(f"{what}须为时间（如 2026-12-03T08:00，收到 {text!r}）") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=core.TZ)
    return value


@router.post(ROS)
def admin_rosters_add(request: Request, state: StateDep, user: AdminUser, form: FormDep) -> Response:
    try:
        spec = admin.ShiftSpec(
            starts_at=_instant(form.get("starts_at"), "开始时间"),
            ends_at=_instant(form.get("ends_at"), "结束时间"),
            unit_code=form.opt("unit_code"),
            username=form.opt("username"),
            person_name=form.get("person_name").strip()[:64],
            phone=(form.opt("phone") or "")[:32] or None,
            duty_role=(form.opt("duty_role") or "duty")[:32],
            tier=_int(form.get("tier") or "3", "值班等级", 1, 3),
            commander=form.flag("commander"),
        )
        with core.write_tx(state, user) as session:
            admin.add_shift(session, spec)
    except ServiceError as e:
        err = core.service_message(e)
        return _rosters(request, state, user, 422, err=err, failed="add", values=form.values())
    return core.redirect(ROS, msg="已添加班次")


@router.post(ROS + "/{shift_id}/delete")
def admin_rosters_delete(
    request: Request, state: StateDep, user: AdminUser, form: FormDep, shift_id: str
) -> Response:
    sid = core.page_id(shift_id)
    try:
        with core.write_tx(state, user) as session:
            admin.delete_shift(session, sid)
    except ServiceError as e:
        return core.redirect(ROS, err=core.service_message(e))
    return core.redirect(ROS, msg=f"已删除班次 {sid}")


# ----------------------------------------------------------------------------------------------- templates
TPL = "/admin/templates"


def sample_context(now: datetime) -> dict[str, Any]:
    """Values for every placeholder, as a preview shows them."""
    return {
        "hotline_name": "12345",
        "ticket_number": "MS20261203-0042",
        "query_code": "836291",
        "rating_url": "https://example.gov.cn/r/836291",
        "unit_name": "南湖街道办事处",
        "step_label": "签收",
        "due_at": now + timedelta(minutes=30),
        "sign_due_at": now + timedelta(minutes=30),
        "category_name": "市政设施/路灯不亮",
        "summary": "南湖路12号门前路灯连续三晚不亮",
        "remaining": timedelta(minutes=6),
        "overdue_by": timedelta(hours=1, minutes=5),
        "target_label": "单位领导",
        "level_name": "超时1小时，推送单位领导",
        "urgency_label": "紧急",
        "area_name": "南湖街道",
        "count": 5,
        "period": "24小时",
        "first_ticket_number": "MS20261203-0031",
    }


def _preview(kind: str, text: str, now: datetime) -> tuple[str, str, str]:
    """(title, text, error) of ``text`` rendered as template ``kind`` on sample values."""
    try:
        msg = render(kind, sample_context(now), {kind: text})
    except TemplateError as err:
        return "", "", str(err)
    return msg.title, msg.text, ""


def _templates(request: Request, state: Any, user: Principal, status: int = 200, **extra: Any) -> Response:
    with core.read_tx(state) as session:
        items = admin.templates(session)
    ctx = {"items": items, **extra}
    return core.render(request, "admin/config_templates.html", ctx, user=user, status=status)


@router.get(TPL)
def admin_templates(request: Request, state: StateDep, user: AdminUser) -> Response:
    return _templates(request, state, user)


@router.post(TPL + "/{kind}/preview")
def admin_template_preview(
    request: Request, state: StateDep, user: AdminUser, form: FormDep, kind: str
) -> Response:
    title, text, error = _preview(kind, form.get("text")[:2000], state.clock.now())
    ctx = {"kind": kind, "title": title, "text": text, "error": error}
    if request.headers.get("HX-Request"):
        return core.render(request, "admin/config_template_preview.html", ctx, user=user)
    return _templates(request, state, user, preview=ctx, values={kind: form.get("text")[:2000]})


@router.post(TPL + "/{kind}")
def admin_template_save(
    request: Request, state: StateDep, user: AdminUser, form: FormDep, kind: str
) -> Response:
    text = form.get("text")
    try:
        if not text.strip() or len(text) > 2000:
            raise Invalid("模板内容不能为空，且至多2000字")
        with core.write_tx(state, user) as session:
            admin.put_template(session, kind, text, state.clock.now())
    except ServiceError as e:
        return _templates(
            request, state, user, 422, err=core.service_message(e), failed=kind, values={kind: text[:2000]}
        )
    return core.redirect(TPL, msg=f"已保存模板 {kind}", at=f"tpl-{kind}")


@router.post(TPL + "/{kind}/reset")
def admin_template_reset(
    request: Request, state: StateDep, user: AdminUser, form: FormDep, kind: str
) -> Response:
    with core.write_tx(state, user) as session:
        admin.reset_template(session, kind)
    return core.redirect(TPL, msg=f"模板 {kind} 已恢复默认")


# ------------------------------------------------------------------------------------------- routing rules
RUL = "/admin/routing"


def _routing(request: Request, state: Any, user: Principal, status: int = 200, **extra: Any) -> Response:
    category = request.query_params.get("category") or None
    with core.read_tx(state) as session:
        rules = routing_admin.list_rules(session, category=category[:32] if category else None, limit=300)
    ctx = {"rules": rules, "category": category or "", **extra}
    return core.render(request, "admin/config_routing.html", ctx, user=user, status=status)


@router.get(RUL)
def admin_routing(request: Request, state: StateDep, user: AdminUser) -> Response:
    return _routing(request, state, user)


def _rule(form: core.Form) -> routing_admin.RuleIn:
    assists = [x.strip() for x in form.get("assist_units").replace("，", ",").split(",") if x.strip()]
    priority = form.get("priority").strip() or "0"
    return routing_admin.RuleIn(
        category_code=form.opt("category_code"),
        area_code=form.opt("area_code"),
        lead_unit=form.get("lead_unit").strip(),
        assist_units=assists,
        priority=priority,  # type: ignore[arg-type]
        enabled=form.flag("enabled"),
        takes_consultations=form.flag("takes_consultations"),
        note=form.opt("note"),
    )


def _rule_failed(
    request: Request, state: Any, user: Principal, form: core.Form, where: str, e: Exception
) -> Response:
    if isinstance(e, ValidationError):
        errs = core.field_errors(e)
        message = "输入有误：" + "；".join(f"{k} {v}" for k, v in errs.items())
    else:
        message = core.service_message(e)
    return _routing(request, state, user, 422, err=message, failed=where, values=form.values())


@router.post(RUL)
def admin_rule_create(request: Request, state: StateDep, user: AdminUser, form: FormDep) -> Response:
    try:
        body = _rule(form)
        with core.write_tx(state, user) as session:
            rid = routing_admin.create_rule(session, body, user.username, state.clock.now()).id
    except (ServiceError, ValidationError) as e:
        return _rule_failed(request, state, user, form, "new", e)
    return core.redirect(RUL, msg=f"已新增派单规则 {rid}", at=f"rule-{rid}")


@router.post(RUL + "/{rule_id}")
def admin_rule_update(
    request: Request, state: StateDep, user: AdminUser, form: FormDep, rule_id: str
) -> Response:
    rid = core.page_id(rule_id)
    try:
        body = _rule(form)
        with core.write_tx(state, user) as session:
            routing_admin.update_rule(session, rid, body, user.username, state.clock.now())
    except (ServiceError, ValidationError) as e:
        return _rule_failed(request, state, user, form, str(rid), e)
    return core.redirect(RUL, msg=f"已保存派单规则 {rid}", at=f"rule-{rid}")


@router.post(RUL + "/{rule_id}/delete")
def admin_rule_delete(
    request: Request, state: StateDep, user: AdminUser, form: FormDep, rule_id: str
) -> Response:
    rid = core.page_id(rule_id)
    try:
        with core.write_tx(state, user) as session:
            routing_admin.delete_rule(session, rid, state.clock.now())
    except ServiceError as e:
        return core.redirect(RUL, err=core.service_message(e))
    return core.redirect(RUL, msg=f"已删除派单规则 {rid}")
