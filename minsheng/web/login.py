"""Login and logout for staff (session cookie + CSRF token from `services.auth`)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from minsheng.http.common import SESSION_COOKIE, set_session_cookie
from minsheng.http.limits import client_address, limits_of
from minsheng.http.uow import UnitOfWorkRoute
from minsheng.services import auth
from minsheng.services.errors import Unauthenticated
from minsheng.services.limits import RateLimited
from minsheng.web import core
from minsheng.web.core import FormDep, MaybeUser, StateDep

router = APIRouter(route_class=UnitOfWorkRoute, include_in_schema=False)


@router.get("/login")
def login_page(request: Request, user: MaybeUser) -> Response:
    if user is not None:
        return RedirectResponse(core.HOME.get(user.role, "/tickets"), status_code=303)
    return core.render(request, "login.html", {"next": request.query_params.get("next", "")})


@router.post("/login")
def login_submit(request: Request, state: StateDep, form: FormDep, user: MaybeUser) -> Response:
    username, password = form.get("username").strip(), form.get("password")
    errors = {}
    retry_after: int | None = None
    if not username:
        errors["username"] = "请输入用户名"
    if not password:
        errors["password"] = "请输入密码"
    if not errors:
        try:
            token, principal = auth.login(
                state.db,
                username,
                password,
                state.clock.now(),
                state.settings.session_hours,
                limits=limits_of(state),
                address=client_address(request),
            )
        except Unauthenticated:
            errors["password"] = "用户名或密码错误"
        except RateLimited as e:
            retry_after = e.retry_after
            errors["password"] = f"登录失败次数过多，请 {max(1, -(-e.retry_after // 60))} 分钟后再试"
    if errors:
        page = core.render(
            request,
            "login.html",
            {"errors": errors, "values": {"username": username}, "next": form.get("next")},
            status=422 if retry_after is None else 429,
        )
        if retry_after is not None:
            page.headers["Retry-After"] = str(retry_after)
        return page
    target = core.safe_next(form.get("next"), core.HOME.get(principal.role, "/tickets"))
    resp = RedirectResponse(target, status_code=303)
    set_session_cookie(resp, token, state.settings)
    return resp


@router.post("/logout")
def logout(request: Request, state: StateDep, user: MaybeUser) -> Response:
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        with core.write_tx(state) as session:
            auth.logout(session, cookie)
    resp = RedirectResponse("/login?msg=" + "已退出登录", status_code=303)
    resp.delete_cookie(SESSION_COOKIE)
    return resp
