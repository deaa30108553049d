"""What every page shares: the logged-in user from the session cookie, CSRF checks on forms, form reading,
Chinese messages for validation errors, time display in Asia/Shanghai, and rendering with the navigation.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile

from minsheng.bootstrap import Platform
from minsheng.domain.digits import whole_number
from minsheng.domain.roles import Role
from minsheng.domain.states import (
    AreaLevel,
    AssignmentRole,
    AssignmentState,
    Channel,
    ExtensionState,
    Kind,
    Rating,
    TicketState,
    TransferTarget,
    UnitKind,
    Urgency,
)
from minsheng.domain.transitions import ACTION_LABELS, IllegalTransition
from minsheng.http.common import CSRF_HEADER, SESSION_COOKIE, get_state
from minsheng.services import auth
from minsheng.services.audit import ACTOR_KEY
from minsheng.services.errors import Conflict, Invalid, NotFound, PermissionDenied, ServiceError
from minsheng.services.schemas import MAX_SMALL_ID

# China has had no daylight saving time since 1991: a fixed offset needs no tz database.
TZ = timezone(timedelta(hours=8), "Asia/Shanghai")
ANON_CSRF_COOKIE = "minsheng_form"
STAFF = frozenset(
    {Role.OPERATOR, Role.DISPATCHER, Role.HANDLER, Role.SUPERVISOR, Role.FOLLOWUP, Role.LEADER, Role.ADMIN}
)
DESK_ROLES = frozenset({Role.OPERATOR, Role.DISPATCHER, Role.ADMIN})
QUEUE_ROLES = frozenset({Role.DISPATCHER, Role.SUPERVISOR, Role.ADMIN})
BOARD_ROLES = frozenset({Role.SUPERVISOR, Role.LEADER, Role.ADMIN})
FOLLOWUP_ROLES = frozenset({Role.FOLLOWUP, Role.SUPERVISOR, Role.ADMIN})
SCREEN_ROLES = STAFF - {Role.HANDLER}

HOME: dict[Role, str] = {
    Role.OPERATOR: "/desk",
    Role.DISPATCHER: "/queue",
    Role.HANDLER: "/inbox",
    Role.SUPERVISOR: "/board",
    Role.FOLLOWUP: "/followup",
    Role.LEADER: "/screen",
    Role.ADMIN: "/admin",
}

NAV: list[tuple[str, str, frozenset[Role]]] = [
    ("/desk", "坐席受理", DESK_ROLES),
    ("/queue", "派单", QUEUE_ROLES),
    ("/inbox", "待办", frozenset({Role.HANDLER})),
    ("/grid", "网格上报", frozenset({Role.HANDLER})),  # grid workers (issue 16)
    ("/board", "督办", BOARD_ROLES),
    ("/followup", "回访", FOLLOWUP_ROLES),
    (
        "/supervision",
        "督办单",
        frozenset({Role.SUPERVISOR, Role.LEADER, Role.FOLLOWUP, Role.ADMIN, Role.HANDLER}),
    ),
    ("/watch", "盯办", frozenset({Role.LEADER})),
    ("/instructions", "批示", frozenset({Role.SUPERVISOR, Role.LEADER, Role.HANDLER})),
    ("/checks", "核查", frozenset({Role.FOLLOWUP, Role.SUPERVISOR, Role.LEADER})),
    ("/tickets", "工单查询", STAFF),
    ("/kb", "知识库", STAFF),
    ("/screen", "大屏", SCREEN_ROLES),
    ("/stats", "统计分析", BOARD_ROLES),
    ("/stats/unit", "本单位", frozenset({Role.HANDLER})),
    ("/admin", "系统管理", frozenset({Role.ADMIN})),
]

LABELS: dict[str, dict[str, str]] = {
    "state": {s.value: s.label for s in TicketState},
    "astate": {s.value: s.label for s in AssignmentState},
    "arole": {s.value: s.label for s in AssignmentRole},
    "ext": {s.value: s.label for s in ExtensionState},
    "channel": {s.value: s.label for s in Channel},
    "kind": {s.value: s.label for s in Kind},
    "urgency": {s.value: s.label for s in Urgency},
    "rating": {s.value: s.label for s in Rating},
    "target": {s.value: s.label for s in TransferTarget},
    "level": {s.value: s.label for s in AreaLevel},
    "unit_kind": {s.value: s.label for s in UnitKind},
    "role": {r.value: r.label for r in Role},
    "action": dict(ACTION_LABELS),
}
COLOURS = {s.value: s.colour for s in TicketState} | {u.value: u.colour for u in Urgency}

# Chinese messages for pydantic error types; field-specific ones win.
_TYPE_MESSAGES = {
    "missing": "必填",
    "string_too_short": "请填写此项",
    "string_too_long": "内容太长",
    "string_pattern_mismatch": "格式不正确",
    "enum": "请选择有效的选项",
    "literal_error": "请选择有效的选项",
    "float_parsing": "请输入数字",
    "int_parsing": "请输入整数",
    "greater_than": "数值太小",
    "greater_than_equal": "数值太小",
    "less_than": "数值太大",
    "less_than_equal": "数值太大",
    "bool_parsing": "请选择是或否",
    "too_long": "选择太多",
    "extra_forbidden": "不接受此字段",
}
_FIELD_MESSAGES = {
    "citizen_phone": "电话号码只能包含数字、+、- 或空格",
    "citizen_id_number": "身份证号应为18位（17位数字加一位数字或X）或15位数字",
    "detail": "请填写诉求内容",
    "lat": "经纬度需要同时填写，且为有效数字",
    "lon": "经纬度需要同时填写，且为有效数字",
    "lead_unit": "请选择主办单位",
    "reason": "请填写原因（至少2个字）",
    "username": "用户名为2-64位字母、数字或 _ . -",
    "password": "密码至少8位",
}


class LoginRequired(Exception):
    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


class PageDenied(Exception):
    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def page_id(text: str, most: int = MAX_SMALL_ID) -> int:
    """A row id from a page's path: ASCII digits within what its column holds, else the page's 404, which a
    malformed link deserves rather than a 422."""
    ident = whole_number(text, 1, most)
    if ident is None:
        raise PageDenied("页面不存在", status=404)
    return ident


@dataclass
class Form:
    """A submitted form: text fields and the bytes of uploaded files, read once before the handler runs."""

    multi: dict[str, list[str]] = field(default_factory=dict)
    files: list[tuple[str, str, bytes]] = field(default_factory=list)

    def get(self, name: str, default: str = "") -> str:
        values = self.multi.get(name)
        return values[0] if values else default

    def opt(self, name: str) -> str | None:
        v = self.get(name).strip()
        return v or None

    def getlist(self, name: str) -> list[str]:
        return [v for v in self.multi.get(name, []) if v.strip()]

    def flag(self, name: str) -> bool:
        return self.get(name) in ("1", "on", "true", "yes")

    def values(self) -> dict[str, str]:
        return {k: v[0] for k, v in self.multi.items() if v}


async def read_form(request: Request) -> Form:
    if request.method != "POST":
        return Form()
    state: Platform = request.app.state.minsheng
    limit = state.settings.max_attachment_bytes
    ctype = request.headers.get("content-type", "")
    if not (ctype.startswith("multipart/form-data") or ctype.startswith("application/x-www-form-urlencoded")):
        return Form()
    data = await request.form(max_files=20, max_fields=500)
    out = Form()
    for key, value in data.multi_items():
        if isinstance(value, UploadFile):
            if value.filename:
                out.files.append((key, value.filename, await value.read(limit + 1)))
        else:
            out.multi.setdefault(key, []).append(value)
    # No browser sends NUL in a form, and PostgreSQL cannot store or compare it: refused before any handler.
    if any("\x00" in k or any("\x00" in v for v in vs) for k, vs in out.multi.items()) or any(
        "\x00" in name for _, name, _ in out.files
    ):
        raise Invalid("表单内容包含无效字符（NUL），请检查后重新提交")
    return out


FormDep = Annotated[Form, Depends(read_form)]
StateDep = Annotated[Platform, Depends(get_state)]


def _lookup(request: Request, state: Platform) -> auth.Principal | None:
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    with state.db.read_sessions() as session:
        return auth.principal_from_session(session, cookie, state.clock.now())


def page_user(request: Request, state: StateDep, form: FormDep) -> auth.Principal | None:
    """The logged-in person, if any; every POST must carry that session's CSRF token (field or header)."""
    p = _lookup(request, state)
    if request.method == "POST":
        sent = form.get("csrf_token") or request.headers.get(CSRF_HEADER, "")
        expected = p.csrf_token if p else request.cookies.get(ANON_CSRF_COOKIE)
        # As bytes: compare_digest refuses str with non-ASCII characters, and a forged token may have some.
        if not expected or not sent or not secrets.compare_digest(sent.encode(), expected.encode()):
            raise PageDenied("表单已过期或来源不明（CSRF 校验失败），请刷新页面后重试。")
    return p


MaybeUser = Annotated[auth.Principal | None, Depends(page_user)]


def need(*roles: Role | frozenset[Role]) -> Any:
    """A dependency: a logged-in user with one of the roles, else a redirect to login or a 403 page."""
    allowed: set[Role] = set()
    for r in roles:
        allowed |= {r} if isinstance(r, Role) else set(r)

    def check(request: Request, user: MaybeUser) -> auth.Principal:
        if user is None:
            raise LoginRequired(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
        if user.role not in allowed:
            raise PageDenied(f"您的角色（{user.role.label}）无权访问此页面。")
        return user

    return Depends(check)


def reading(state: Platform) -> Iterator[Session]:
    with state.db.read_sessions() as session, session.begin():
        yield session


def writing(state: Platform, actor: auth.Principal | str | None = None) -> Iterator[Session]:
    """A write transaction; `actor` (the page's user) is who the audit log names for what it changes."""
    with state.db.write_sessions() as session:
        if actor is not None:
            session.info[ACTOR_KEY] = actor
        with session.begin():
            yield session


read_tx = contextmanager(reading)
write_tx = contextmanager(writing)


# ---------------------------------------------------------------------- messages


def field_errors(e: ValidationError) -> dict[str, str]:
    """One Chinese message per field (the first error wins); model-level errors go under "_form"."""
    out: dict[str, str] = {}
    for err in e.errors():
        loc = [str(x) for x in err.get("loc", ())]
        name = loc[0] if loc else "_form"
        etype = str(err.get("type", ""))
        if etype == "value_error" and name == "_form":
            msg = str(err.get("msg", "")).removeprefix("Value error, ")
            if "lat and lon" in msg:
                name, msg = "lat", _FIELD_MESSAGES["lat"]
            elif "lead unit" in msg or "assist" in msg:
                name, msg = "assist_units", "主办单位不能同时协办，协办单位不能重复"
            out.setdefault(name, msg)
            continue
        special = _FIELD_MESSAGES.get(name) if etype in ("value_error", "string_pattern_mismatch") else None
        if special is None and etype in ("string_too_short", "missing") and name in _FIELD_MESSAGES:
            special = _FIELD_MESSAGES[name]
        out.setdefault(name, special or _TYPE_MESSAGES.get(etype, str(err.get("msg", "输入有误"))))
    return out


def service_message(e: Exception) -> str:
    """A Chinese sentence for an error raised by a use case (the English detail kept for the record)."""
    if isinstance(e, IllegalTransition):
        allowed = "、".join(LABELS["action"].get(a, a) for a in e.allowed) or "无"
        return f"当前状态不允许「{LABELS['action'].get(e.action, e.action)}」，可进行：{allowed}"
    if isinstance(e, RequestValidationError):
        # A bad path or query parameter of a page: name it, without the exception's text (it holds source paths).
        parts = []
        for err in e.errors()[:3]:
            name = (
                ".".join(str(x) for x in err.get("loc", ()) if x not in ("path", "query", "body")) or "请求"
            )
            parts.append(f"{name} {_TYPE_MESSAGES.get(str(err.get('type')), str(err.get('msg', '')))}")
        return "输入有误：" + "；".join(parts)
    prefix = {
        NotFound: "未找到",
        PermissionDenied: "无权操作",
        Conflict: "操作冲突",
        Invalid: "输入有误",
    }
    for cls, label in prefix.items():
        if isinstance(e, cls):
            return f"{label}：{e.message}" if isinstance(e, ServiceError) else label
    return f"操作失败：{e}"


# ---------------------------------------------------------------------- display


def local(value: datetime | str | None) -> datetime | None:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    return value.astimezone(TZ) if value else None


def fmt_dt(value: datetime | str | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    v = local(value)
    return v.strftime(fmt) if v else ""


def span(seconds: float) -> str:
    s = int(abs(seconds))
    d, rem = divmod(s, 86400)
    h, rem = divmod(rem, 3600)
    m = rem // 60
    if d:
        return f"{d}天{h}小时"
    if h:
        return f"{h}小时{m}分"
    return f"{m}分"


def countdown(due: datetime | None, now: datetime) -> dict[str, str]:
    """Text and CSS class for a deadline: remaining time, or how late it is."""
    if due is None:
        return {"text": "未设时限", "cls": "muted", "iso": ""}
    left = (due - now).total_seconds()
    if left < 0:
        return {"text": f"已超时 {span(left)}", "cls": "late", "iso": due.isoformat()}
    cls = "soon" if left < 3600 else "ok"
    return {"text": f"剩余 {span(left)}", "cls": cls, "iso": due.isoformat()}


def new_key() -> str:
    return secrets.token_urlsafe(18)


def redirect(url: str, msg: str | None = None, err: str | None = None, at: str | None = None) -> Response:
    """Post/redirect/get with a one-line message (no personal data ever goes into these URLs)."""
    params = []
    if msg:
        params.append("msg=" + quote(msg))
    if err:
        params.append("err=" + quote(err))
    if at:
        params.append("at=" + quote(at))
    anchor = f"#{at}" if at else ""
    base, _, frag = url.partition("#")
    sep = "&" if "?" in base else "?"
    target = base + (sep + "&".join(params) if params else "") + (anchor or (f"#{frag}" if frag else ""))
    return RedirectResponse(target, status_code=303)


def safe_next(url: str | None, default: str) -> str:
    # Only local paths: an open redirect would let a phishing link log people in and send them elsewhere.
    if url and url.startswith("/") and not url.startswith("//") and "\\" not in url:
        return url
    return default


def render(
    request: Request,
    template: str,
    ctx: dict[str, Any] | None = None,
    *,
    user: auth.Principal | None = None,
    status: int = 200,
) -> HTMLResponse:
    state: Platform = request.app.state.minsheng
    anon_token = request.cookies.get(ANON_CSRF_COOKIE) or secrets.token_urlsafe(24)
    context: dict[str, Any] = {
        "request": request,
        "user": user,
        "csrf": user.csrf_token if user and user.csrf_token else anon_token,
        "nav": [(p, label) for p, label, roles in NAV if user and user.role in roles],
        "path": request.url.path,
        "msg": request.query_params.get("msg"),
        "err": request.query_params.get("err"),
        "at": request.query_params.get("at"),
        "now": state.clock.now(),
        "L": LABELS,
        "errors": {},
        "values": {},
    }
    context.update(ctx or {})
    templates = request.app.state.minsheng_templates
    resp: HTMLResponse = templates.TemplateResponse(request, template, context, status_code=status)
    if not (user and user.csrf_token) and ANON_CSRF_COOKIE not in request.cookies:
        resp.set_cookie(
            ANON_CSRF_COOKIE, anon_token, httponly=True, samesite="lax", secure=state.settings.cookie_secure
        )
    return resp


Filter = Callable[..., Any]


def pretty(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=1, default=str)


FILTERS: dict[str, Filter] = {"dt": fmt_dt, "local": local, "pretty": pretty}
