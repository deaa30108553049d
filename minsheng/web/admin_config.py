"""系统管理 → 办理时限 (issue 17 §3): a city configures its clock on its pages instead of the API or the environment.

- the time-limit policies, each step's limit shown with where it comes from (set here, or inherited from the
  parent category's / any-urgency / any-zone policy), edited, added, deleted;
- the five cities' rule sets (and the demo city's) as presets applied into those editable rows;
- 黔西's repeated-failure ladder: period, levels and what counts (missed signs, late answers, returns).

Every save goes through the services, which write through the ORM, so the audit log records it (before/after).
Mounted by `web.admin` ahead of its `/admin/{kind}` pages, with `web.admin_config_more` (calendar, rosters,
templates, routing rules).
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from minsheng.domain.roles import Role
from minsheng.domain.states import Urgency
from minsheng.http.uow import UnitOfWorkRoute
from minsheng.services.auth import Principal
from minsheng.services.errors import Invalid, ServiceError
from minsheng.services.timelimits import admin, city
from minsheng.timelimits.escalation import STANDARD_TARGETS
from minsheng.timelimits.policy import STANDARD_STEPS, UNITS
from minsheng.web import core
from minsheng.web.core import FormDep, StateDep

router = APIRouter(route_class=UnitOfWorkRoute, include_in_schema=False)
AdminUser = Annotated[Principal, core.need(Role.ADMIN)]
PAGE = "/admin/timelimits"

STEPS = (*STANDARD_STEPS, "instruct")
STEP_LABELS = {
    "sign": "签收",
    "contact": "联系群众",
    "arrive": "到场",
    "feedback": "答复",
    "resolve": "办结",
    "instruct": "处置意见",
}
UNIT_LABELS = {
    "minutes": "分钟",
    "hours": "小时",
    "natural_days": "自然日",
    "working_hours": "工作小时",
    "working_days": "工作日",
}
TARGET_LABELS = {
    "unit": "承办单位",
    "unit_leader": "单位领导",
    "district_leader": "区县领导",
    "city_leader": "市领导",
    "deputy_mayor": "分管副市长",
    "mayor": "市长",
    "duty_commander": "当日轮值指挥长",
}
# The same bound as the API's: no limit longer than a year (beyond that the calendar arithmetic fails).
MAX_AMOUNT = {
    "minutes": 366 * 24 * 60,
    "hours": 366 * 24,
    "natural_days": 366,
    "working_hours": 366 * 24,
    "working_days": 366,
}
STEP_RE = re.compile(r"^[A-Za-z0-9_]{1,24}$")
CODE_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,32}$")


def _labels() -> dict[str, Any]:
    return {
        "steps": STEPS,
        "step_labels": STEP_LABELS,
        "units": UNITS,
        "unit_labels": UNIT_LABELS,
        "target_labels": TARGET_LABELS,
        "targets": (*STANDARD_TARGETS, "duty_commander"),
        "urgencies": {u.value: u.label for u in Urgency},
        "presets": city.PRESET_LABELS,
    }


def _page(request: Request, state: Any, user: Principal, status: int = 200, **extra: Any) -> Response:
    config = state.clockwork.config
    with core.read_tx(state) as session:
        views, fallback = city.policy_views(session, config.fallback)
        preset, applied_at = city.applied_preset(session, state.settings.clock_preset)
        rules, stored = city.failure_rules(session, config)
    ctx: dict[str, Any] = {
        "views": views,
        "fallback": fallback,
        "preset": preset,
        "applied_at": applied_at,
        "rules": rules,
        "rules_stored": stored,
        "env_preset": state.settings.clock_preset,
        **_labels(),
    }
    ctx.update(extra)
    return core.render(request, "admin/config_timelimits.html", ctx, user=user, status=status)


@router.get(PAGE)
def admin_timelimits(request: Request, state: StateDep, user: AdminUser) -> Response:
    return _page(request, state, user)


# ------------------------------------------------------------------------------------------- the form
def _number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise Invalid(f"{what}须为数字（收到 {text!r}）") from None
    if not math.isfinite(value) or value <= 0:
        raise Invalid(f"{what}须大于零（收到 {text!r}）")
    return value


def _limits(form: core.Form) -> dict[str, dict[str, Any]]:
    limits: dict[str, dict[str, Any]] = {}
    steps = list(STEPS)
    extra = form.get("extra_step").strip()
    if extra:
        if not STEP_RE.match(extra):
            raise Invalid(f"环节名须为字母、数字或下划线（至多24个字符，收到 {extra!r}）")
        steps.append(extra)
    for step in steps:
        key = "extra" if step == extra and step not in STEPS else step
        amount = form.get(f"amount_{key}").strip()
        if not amount:
            continue
        unit = form.get(f"unit_{key}")
        label = STEP_LABELS.get(step, step)
        if unit not in UNITS:
            raise Invalid(f"{label}：请选择时间单位")
        value = _number(amount, f"{label}时限")
        if value > MAX_AMOUNT[unit]:
            raise Invalid(f"{label}：时限至多一年（{MAX_AMOUNT[unit]} {UNIT_LABELS[unit]}）")
        limits[step] = {"amount": int(value) if value == int(value) else value, "unit": unit}
    if not limits:
        raise Invalid("至少设定一个环节的时限（留空的环节沿用上级）")
    return limits


def _warn_at(text: str) -> list[float] | None:
    text = text.strip()
    if not text:
        return None
    parts = [p for p in re.split(r"[,，\s]+", text) if p]
    if len(parts) > 10:
        raise Invalid("预警比例至多10个")
    shares = []
    for p in parts:
        value = float(p.rstrip("%")) / 100 if p.endswith("%") else _safe_float(p)
        if not 0 < value < 1:
            raise Invalid(f"预警比例须在 0 与 1 之间（如 0.8 或 80%，收到 {p!r}）")
        shares.append(value)
    return shares


def _safe_float(p: str) -> float:
    try:
        return float(p)
    except ValueError:
        raise Invalid(f"预警比例须为数字（收到 {p!r}）") from None


def _escalation(text: str) -> dict[str, list[dict[str, Any]]]:
    """Lines ``环节 分钟 动作 对象 [名称]``, e.g. ``sign 30 notify unit_leader 推送单位领导``."""
    out: dict[str, list[dict[str, Any]]] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=4)
        if len(parts) < 4:
            raise Invalid(f"升级第{n}行须为“环节 分钟 动作 对象 [名称]”（收到 {line.strip()!r}）")
        step, minutes, action, target = parts[:4]
        if not STEP_RE.match(step) or not STEP_RE.match(target) or len(target) > 32:
            raise Invalid(f"升级第{n}行：环节与对象须为代码（收到 {step!r}、{target!r}）")
        if action not in ("press", "notify"):
            raise Invalid(f"升级第{n}行：动作须为 press（催办）或 notify（推送）")
        try:
            after = float(minutes)
        except ValueError:
            raise Invalid(f"升级第{n}行：分钟须为数字（收到 {minutes!r}）") from None
        if not math.isfinite(after) or not 0 <= after <= MAX_AMOUNT["minutes"]:
            raise Invalid(f"升级第{n}行：分钟须在 0 至一年之间")
        name = parts[4][:100] if len(parts) > 4 else ""
        out.setdefault(step, []).append(
            {"after_minutes": after, "action": action, "target": target, "name": name}
        )
    if len(out) > 20 or any(len(v) > 20 for v in out.values()):
        raise Invalid("升级阶梯过长（每环节至多20级）")
    return out


def _spec(form: core.Form) -> admin.PolicySpec:
    category, zone, urgency = form.opt("category_code"), form.opt("zone"), form.opt("urgency")
    if category is not None and not CODE_RE.match(category):
        raise Invalid(f"事项分类编码无效（收到 {category!r}）")
    if zone is not None and not CODE_RE.match(zone):
        raise Invalid(f"分区编码无效（收到 {zone!r}）")
    if urgency is not None and urgency not in {u.value for u in Urgency}:
        raise Invalid(f"紧急程度无效（收到 {urgency!r}）")
    name = form.get("name").strip()
    if len(name) > 100:
        raise Invalid("名称至多100个字符")
    return admin.PolicySpec(
        limits=_limits(form),
        name=name,
        category_code=category,
        urgency=urgency,
        zone=zone,
        warn_at=_warn_at(form.get("warn_at")),
        escalation=_escalation(form.get("escalation")),
        active=form.flag("active"),
    )


def _failed(
    request: Request, state: Any, user: Principal, form: core.Form, where: str, e: Exception
) -> Response:
    return _page(
        request, state, user, status=422, err=core.service_message(e), failed=where, values=form.values()
    )


@router.post(PAGE + "/policies")
def admin_policy_create(request: Request, state: StateDep, user: AdminUser, form: FormDep) -> Response:
    try:
        with core.write_tx(state, user) as session:
            row = admin.create_policy(session, _spec(form), state.clock.now())
            pid = row.id
    except ServiceError as e:
        return _failed(request, state, user, form, "new", e)
    return core.redirect(PAGE, msg=f"已新增时限策略 {pid}", at=f"policy-{pid}")


@router.post(PAGE + "/policies/{policy_id}")
def admin_policy_update(
    request: Request, state: StateDep, user: AdminUser, form: FormDep, policy_id: str
) -> Response:
    pid = core.page_id(policy_id)
    try:
        with core.write_tx(state, user) as session:
            admin.update_policy(session, pid, _spec(form), state.clock.now())
    except ServiceError as e:
        return _failed(request, state, user, form, str(pid), e)
    return core.redirect(PAGE, msg=f"已保存时限策略 {pid}", at=f"policy-{pid}")


@router.post(PAGE + "/policies/{policy_id}/delete")
def admin_policy_delete(
    request: Request, state: StateDep, user: AdminUser, form: FormDep, policy_id: str
) -> Response:
    pid = core.page_id(policy_id)
    try:
        with core.write_tx(state, user) as session:
            admin.delete_policy(session, pid, state.clock.now())
    except ServiceError as e:
        return core.redirect(PAGE, err=core.service_message(e))
    return core.redirect(PAGE, msg=f"已删除时限策略 {pid}")


@router.post(PAGE + "/preset")
def admin_preset_apply(request: Request, state: StateDep, user: AdminUser, form: FormDep) -> Response:
    name = form.get("preset")
    if name not in city.PRESET_LABELS:
        return _page(request, state, user, status=422, err="请选择一个预设", failed="preset")
    with core.write_tx(state, user) as session:
        written = city.apply_preset(session, name, state.clock.now())
    return core.redirect(
        PAGE, msg=f"已应用预设「{city.PRESET_LABELS[name]}」：{written} 条时限策略，可在下方调整"
    )


@router.post(PAGE + "/ladder")
def admin_ladder_save(request: Request, state: StateDep, user: AdminUser, form: FormDep) -> Response:
    try:
        period = form.get("period_days").strip()
        try:
            days = float(period)
        except ValueError:
            raise Invalid(f"统计周期须为天数（收到 {period!r}）") from None
        if not math.isfinite(days):
            raise Invalid("统计周期须为有限的天数")
        rules = city.check_rules(
            form.flag("enabled"),
            days,
            re.split(r"[,，\s]+", form.get("levels")),
            form.flag("missed_signs"),
            form.flag("late_answers"),
            form.flag("returns"),
        )
        with core.write_tx(state, user) as session:
            city.save_rules(session, rules, state.clock.now())
    except ServiceError as e:
        return _failed(request, state, user, form, "ladder", e)
    return core.redirect(PAGE, msg="已保存屡次超时升级规则", at="ladder")
