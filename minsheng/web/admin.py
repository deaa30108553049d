"""Administration pages: areas (with a map of their polygons), units, users and roles, categories; CSV/XLSX
import through `services.importing` and export; the configuration that other modules own, shown where it exists.
"""

from __future__ import annotations

import csv
import io
import re
import tempfile
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from minsheng.bootstrap import Platform
from minsheng.domain.roles import STAFF_ROLES, Role
from minsheng.domain.states import AreaLevel, UnitKind
from minsheng.http.uow import UnitOfWorkRoute
from minsheng.services import admin_views, audit, auth, importing, org
from minsheng.services.auth import Principal
from minsheng.services.errors import ServiceError
from minsheng.web import admin_config, admin_config_more, admin_open311, core
from minsheng.web.core import FormDep, StateDep

router = APIRouter(route_class=UnitOfWorkRoute, include_in_schema=False)
# Open311's page first: /admin/{kind} below would take /admin/open311 for a kind.
router.include_router(admin_open311.router)
# The city's configuration pages (issue 17 §3), also ahead of /admin/{kind}.
router.include_router(admin_config.router)
router.include_router(admin_config_more.router)
AdminUser = Annotated[Principal, core.need(Role.ADMIN)]
AuditReader = Annotated[Principal, core.need(Role.ADMIN, Role.SUPERVISOR)]
CODE = re.compile(r"^[A-Za-z0-9_.\-]{1,32}$")
# The columns' widths: a longer value would fail in the database (PostgreSQL) rather than next to the field.
MAX_LENGTHS = {"name": 100, "display_name": 64, "phone": 32, "leader_name": 50, "password": 200}

# Configuration kept by other modules, shown here: (what, its table, its API, the page that edits it).
PROVIDED = [
    (
        "派单规则",
        "routing_rules",
        "/api/v1/triage/rules（批量导入 /api/v1/triage/rules/import）",
        "/admin/routing",
    ),
    ("办理时限", "clock_policies", "/api/v1/clock/policies", "/admin/timelimits"),
    ("工作日历", "clock_calendar_days", "/api/v1/clock/calendar", "/admin/calendar"),
    ("值班排班", "duty_shifts", "/api/v1/clock/rosters", "/admin/rosters"),
    ("消息模板", "message_templates", "/api/v1/clock/templates", "/admin/templates"),
]

KINDS: dict[str, dict[str, Any]] = {
    "areas": {"label": "区划", "columns": ["code", "name", "level", "parent_code", "lat", "lon"]},
    "units": {
        "label": "承办单位",
        "columns": ["code", "name", "kind", "parent_code", "area_code", "duty_tier", "phone", "leader_name"],
    },
    "users": {
        "label": "用户与角色",
        "columns": ["username", "display_name", "role", "unit_code", "phone", "active"],
    },
    "categories": {"label": "事项分类", "columns": ["code", "name", "level", "parent_code", "active"]},
}


@router.get("/admin")
def admin_index(request: Request, state: StateDep, user: AdminUser) -> Response:
    sections = []
    with core.read_tx(state) as session:
        for label, name, api, page in PROVIDED:
            cols, rows = admin_views.glimpse(session, name)
            sections.append(
                {"label": label, "api": api, "page": page, "table": name, "cols": cols, "rows": rows}
            )
    ctx = {"sections": sections, "kinds": KINDS, "triage": _triage_status(state)}
    return core.render(request, "admin/index.html", ctx, user=user)


def _model_line(st: dict[str, Any], model_dir: Any) -> str:
    if st["loaded"]:
        return f"已加载（版本 {st['version']}）"
    if not model_dir:
        return "未配置模型目录：所有工单进入派单队列"
    # The loader's reason is technical (a path, a file that is missing): shown as it is, for the administrator.
    return f"未能加载，所有工单进入派单队列（{st['error']}）"


def _threshold_line(st: dict[str, Any], sources: dict[str, str]) -> str:
    """The threshold with the precision it was chosen for and what it reached out of fold, so that a low
    number (a model over hundreds of categories gives low probabilities) reads as the choice it is."""
    line = f"{st['threshold']:.3f}（{sources.get(st['threshold_source'], st['threshold_source'])}"
    target, metrics = st.get("target_precision"), st.get("metrics") or {}
    if st["threshold_source"] == "model" and isinstance(target, int | float):
        line += f"：按目标精确率 ≥ {target:.1%} 选定"
        if isinstance(metrics.get("auto_precision"), int | float):
            line += f"，交叉验证精确率 {metrics['auto_precision']:.1%}"
        if isinstance(metrics.get("auto_coverage"), int | float):
            line += f"、可自动派单 {metrics['auto_coverage']:.1%}"
    elif st["threshold_source"] == "model":
        line += "：模型未记录目标精确率"
    return line + "）"


def _triage_status(state: Platform) -> list[tuple[str, str]] | None:
    """What this process's triage is running on: the model, the deferred backlog, the recent-ticket index."""
    runtime = state.triage
    from minsheng.services.triage.jobs import backlog
    from minsheng.services.triage.status import model_status

    runtime.catch_up()  # so that the index shown includes what other processes took lately
    st = model_status(runtime)
    recent = st["recent"]
    jobs = backlog(state.db, state.clock.now())
    sources = {"model": "模型给定", "override": "管理员设定", "default": "默认值"}
    return [
        ("分类模型", _model_line(st, runtime.settings.model_dir)),
        ("自动派单阈值", _threshold_line(st, sources)),
        ("自动派单", "开启" if st["auto_dispatch"] else "关闭"),
        (
            "分拣方式",
            "受理后分拣（deferred）" if state.settings.triage_mode == "deferred" else "受理时分拣（inline）",
        ),
        (
            "待分拣工单",
            f"{jobs['waiting']} 件" + (f"，最久已等 {jobs['lag_seconds']:.0f} 秒" if jobs["waiting"] else ""),
        ),
        ("本进程已索引近期工单", f"{recent['indexed']} 件（查重、一类事预警用）"),
        ("已读取其他进程工单至", core.fmt_dt(recent["read_up_to"], "%Y-%m-%d %H:%M:%S")),
        ("此后受理时已比对其他进程新工单", f"{recent['seen_at_intake']} 件（查重用，下次读取时索引）"),
    ]


def _page(request: Request, state: Any, user: Principal, kind: str, **extra: Any) -> Response:
    with core.read_tx(state) as session:
        ctx: dict[str, Any] = {
            "kind": kind,
            "spec": KINDS[kind],
            "kinds": KINDS,
            "rows": admin_views.listed(session, kind, level=request.query_params.get("level")),
        }
        if kind == "areas":
            ctx["geo"] = org.city_map(session)
            ctx["levels"] = [(lv.value, lv.label) for lv in AreaLevel]
        ctx["unit_kinds"] = [(k.value, k.label) for k in UnitKind]
        ctx["roles"] = [(r.value, r.label) for r in Role if r in STAFF_ROLES]
    ctx.update(extra)
    return core.render(request, "admin/list.html", ctx, user=user, status=extra.pop("status", 200))


def _local_day(value: str, field: str, errors: dict[str, str]) -> datetime | None:
    """The start of a local (Asia/Shanghai) day given as YYYY-MM-DD, in UTC."""
    if not value:
        return None
    try:
        return datetime.combine(date.fromisoformat(value), time(), core.TZ).astimezone(UTC)
    except ValueError:
        errors[field] = "日期格式为 YYYY-MM-DD"
        return None


@router.get("/admin/audit")
def admin_audit(request: Request, state: StateDep, user: AuditReader) -> Response:
    """审计日志: every administrative change, newest first, filtered by actor, entity and local dates."""
    q = request.query_params
    values = {k: q.get(k, "").strip()[:100] for k in ("actor", "entity", "entity_id", "from", "to")}
    errors: dict[str, str] = {}
    since = _local_day(values["from"], "from", errors)
    until = _local_day(values["to"], "to", errors)
    if values["entity"] and values["entity"] not in audit.ENTITY_LABELS:
        errors["entity"] = "未知的对象类型"
    rows: list[Any] = []
    nxt = None
    if not errors:
        f = audit.AuditFilter(
            actor=values["actor"] or None,
            entity=values["entity"] or None,
            entity_id=values["entity_id"] or None,
            since=since,
            until=until + timedelta(days=1) if until else None,  # "to" includes its day
        )
        try:
            with core.read_tx(state) as session:
                rows, nxt = audit.entries(session, f, limit=50, cursor=q.get("cursor") or None)
        except ServiceError:
            errors["cursor"] = "翻页参数无效，请从第一页重新查看"
    entries = [{"e": e, "changed": audit.changed_fields(e.before, e.after)} for e in rows]
    ctx = {
        "entries": entries,
        "next_cursor": nxt,
        "values": values,
        "errors": errors,
        "entity_labels": audit.ENTITY_LABELS,
        "action_labels": audit.ACTION_LABELS,
        "kinds": KINDS,
    }
    return core.render(request, "admin/audit.html", ctx, user=user, status=422 if errors else 200)


LOGIN_REASONS = {
    "wrong_password": "密码错误",
    "unknown_user": "用户名不存在",
    "inactive": "账号已停用",
    "locked": "账号锁定期间再试",
    "throttled": "来源地址被限流",
}
LOGIN_WINDOWS = {"1": "近 24 小时", "7": "近 7 天", "30": "近 30 天"}


@router.get("/admin/logins")
def admin_logins(request: Request, state: StateDep, user: AdminUser) -> Response:
    """登录失败记录: failed logins per username and (masked) address over a recent window, most first."""
    days = request.query_params.get("days", "7")
    if days not in LOGIN_WINDOWS:
        days = "7"
    since = state.clock.now() - timedelta(days=int(days))
    with core.read_tx(state) as session:
        groups = auth.failure_groups(session, since, limit=200)
    ctx = {
        "groups": groups,
        "days": days,
        "windows": LOGIN_WINDOWS,
        "reasons": LOGIN_REASONS,
        "keep_days": state.settings.login_failure_keep_days,
        "max_failures": state.settings.login_max_failures,
        "lockout_minutes": state.settings.login_lockout_seconds // 60,
    }
    return core.render(request, "admin/logins.html", ctx, user=user)


@router.get("/admin/{kind}")
def admin_list(request: Request, state: StateDep, user: AdminUser, kind: str) -> Response:
    if kind not in KINDS:
        raise core.PageDenied("页面不存在", status=404)
    return _page(request, state, user, kind)


Creator = Callable[[Session, core.Form, Any], Any]


def _create_area(session: Session, f: core.Form, now: Any) -> Any:
    return org.add_area(
        session, f.get("code").strip(), f.get("name").strip(), f.get("level"), f.opt("parent_code")
    )


def _create_unit(session: Session, f: core.Form, now: Any) -> Any:
    return org.add_unit(
        session,
        f.get("code").strip(),
        f.get("name").strip(),
        f.get("kind"),
        f.opt("parent_code"),
        f.opt("area_code"),
        int(f.get("duty_tier") or 3),
        f.opt("phone"),
        f.opt("leader_name"),
    )


def _create_user(session: Session, f: core.Form, now: Any) -> Any:
    return org.add_user(
        session,
        f.get("username").strip(),
        f.get("display_name").strip(),
        f.get("role"),
        f.get("password"),
        now,
        f.opt("unit_code"),
        f.opt("phone"),
    )


def _create_category(session: Session, f: core.Form, now: Any) -> Any:
    return org.add_category(session, f.get("code").strip(), f.get("name").strip(), f.opt("parent_code"))


CREATORS: dict[str, Creator] = {
    "areas": _create_area,
    "units": _create_unit,
    "users": _create_user,
    "categories": _create_category,
}


def _check(kind: str, f: core.Form) -> dict[str, str]:
    errors: dict[str, str] = {}
    key = "username" if kind == "users" else "code"
    if kind == "users":
        if not re.fullmatch(r"[A-Za-z0-9_.\-]{2,64}", f.get("username").strip()):
            errors["username"] = "用户名为2-64位字母、数字或 _ . -"
        if len(f.get("password")) < 8:
            errors["password"] = "密码至少8位"
        if f.get("role") not in {r.value for r in STAFF_ROLES}:
            errors["role"] = "请选择角色"
        if f.get("role") == Role.HANDLER.value and not f.opt("unit_code"):
            errors["unit_code"] = "承办人员必须属于一个单位"
    elif not CODE.fullmatch(f.get(key).strip()):
        errors[key] = "编码为1-32位字母、数字或 _ . -"
    name = "display_name" if kind == "users" else "name"
    if not f.get(name).strip():
        errors[name] = "请填写名称"
    if kind == "areas" and f.get("level") not in AreaLevel.values():
        errors["level"] = "请选择层级"
    for fld, most in MAX_LENGTHS.items():
        if len(f.get(fld).strip()) > most:
            # The form has no leader_name input: its message goes above the form.
            at = "_form" if fld == "leader_name" else fld
            errors.setdefault(at, f"最多{most}个字符" if at == fld else f"负责人姓名最多{most}个字符")
    if kind == "units":
        if f.get("kind") not in UnitKind.values():
            errors["kind"] = "请选择单位类型"
        if f.get("duty_tier") not in ("", "1", "2", "3"):
            errors["duty_tier"] = "值守等级为1、2或3"
    return errors


@router.post("/admin/{kind}")
def admin_create(request: Request, state: StateDep, user: AdminUser, form: FormDep, kind: str) -> Response:
    if kind not in KINDS:
        raise core.PageDenied("页面不存在", status=404)
    errors = _check(kind, form)
    if not errors:
        try:
            with core.write_tx(state, user) as session:
                CREATORS[kind](session, form, state.clock.now())
        except ServiceError as e:
            errors[str(e.detail.get("field") or "_form")] = core.service_message(e)
    if errors:
        return _page(request, state, user, kind, errors=errors, values=form.values(), status=422)
    return core.redirect(f"/admin/{kind}", msg=f"已新增{KINDS[kind]['label']}")


@router.post("/admin/{kind}/import")
def admin_import(request: Request, state: StateDep, user: AdminUser, form: FormDep, kind: str) -> Response:
    if kind not in KINDS:
        raise core.PageDenied("页面不存在", status=404)
    files = [(name, data) for field, name, data in form.files if field == "file"]
    if not files:
        return _page(request, state, user, kind, errors={"file": "请选择 CSV 或 XLSX 文件"}, status=422)
    name, data = files[0]
    suffix = Path(name).suffix.lower()
    if suffix not in (".csv", ".xlsx", ".xlsm"):
        return _page(request, state, user, kind, errors={"file": "只支持 .csv 或 .xlsx 文件"}, status=422)
    importer = getattr(importing, f"import_{kind}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"upload{suffix}"
        path.write_bytes(data)
        try:
            with core.write_tx(state, user) as session:
                report = importer(session, path, state.clock.now())
        except ServiceError as e:
            return _page(request, state, user, kind, errors={"file": core.service_message(e)}, status=422)
    return _page(request, state, user, kind, report=report)


@router.get("/admin/{kind}/export")
def admin_export(request: Request, state: StateDep, user: AdminUser, kind: str) -> Response:
    if kind not in KINDS:
        raise core.PageDenied("页面不存在", status=404)
    fmt = request.query_params.get("format", "csv")
    cols = KINDS[kind]["columns"]
    with core.read_tx(state) as session:
        rows = admin_views.exported(session, kind)
    if fmt == "xlsx":
        from openpyxl import Workbook

        wb = Workbook()
        ws = wb.active
        assert ws is not None
        ws.title = kind
        ws.append(cols)
        for r in rows:
            ws.append([r.get(c) for c in cols])
        buf = io.BytesIO()
        wb.save(buf)
        return Response(
            buf.getvalue(),
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"Content-Disposition": f'attachment; filename="{kind}.xlsx"'},
        )
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(cols)
    for r in rows:
        w.writerow(["" if r.get(c) is None else r.get(c) for c in cols])
    # The BOM lets Excel open the Chinese names as UTF-8.
    return Response(
        "\ufeff" + out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{kind}.csv"'},
    )


@router.get("/admin/")
def admin_slash(user: AdminUser) -> Response:
    return RedirectResponse("/admin", status_code=303)
