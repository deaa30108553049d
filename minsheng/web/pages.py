"""Wires the console pages, the citizens' portal and the big screen into the app at start-up.

Pages answer errors with HTML (a login redirect, a 403 page, a message next to a form); the JSON API under
/api keeps its JSON errors: the handlers installed here delegate to the API's for /api paths.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from minsheng.bootstrap import Platform
from minsheng.domain.transitions import IllegalTransition
from minsheng.services.errors import ServiceError
from minsheng.web import (
    admin,
    admin_partners,
    calls,
    console,
    core,
    grid,
    hotspots,
    kbpages,
    login,
    portal,
    screen,
    stats,
    stats_unit,
    supervision,
)

HERE = Path(__file__).parent


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path.startswith("/open311")


def install(app: FastAPI, state: Platform) -> None:
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.filters.update(core.FILTERS)
    templates.env.globals["countdown"] = core.countdown
    templates.env.globals["new_key"] = core.new_key
    app.state.minsheng_templates = templates
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    # admin_partners before admin: its /admin/partners is not one of admin's /admin/{kind} lists.
    for module in (
        login,
        console,
        portal,
        screen,
        admin_partners,
        admin,
        kbpages,
        grid,
        calls,
        stats,
        stats_unit,
        hotspots,
        supervision,
    ):
        app.include_router(module.router)
    _install_error_pages(app)
    state.on_stop(screen.install_stream_stop(app, state))


def _install_error_pages(app: FastAPI) -> None:
    api_handlers: dict[Any, Any] = dict(app.exception_handlers)

    def delegate(exc_type: type[Exception]) -> Any:
        original = api_handlers.get(exc_type)

        async def handler(request: Request, e: Exception) -> Response:
            if _is_api(request) and original is not None:
                response: Response = await original(request, e)
                return response
            status = getattr(e, "status", None) or getattr(e, "status_code", None) or 400
            if isinstance(e, IllegalTransition):
                status = 409
            if isinstance(e, RequestValidationError):
                status = 422
            message = core.service_message(e)
            if isinstance(e, StarletteHTTPException):
                message = {404: "页面不存在", 405: "不支持此请求方式"}.get(e.status_code, str(e.detail))
            user = None
            try:
                user = await anyio.to_thread.run_sync(core._lookup, request, request.app.state.minsheng)
            except Exception:  # an error page must render even when the database is down
                user = None
            return core.render(
                request, "error.html", {"message": message, "status": status}, user=user, status=int(status)
            )

        return handler

    for exc_type in (ServiceError, IllegalTransition, StarletteHTTPException, RequestValidationError):
        app.add_exception_handler(exc_type, delegate(exc_type))

    @app.exception_handler(core.LoginRequired)
    async def _login(request: Request, e: core.LoginRequired) -> Response:
        # Quoted whole: the path may hold any character (HX-Redirect is a latin-1 header) and the query its own &.
        target = "/login?next=" + quote(e.next_path, safe="/")
        if request.headers.get("hx-request"):
            return Response(status_code=204, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)

    @app.exception_handler(core.PageDenied)
    async def _denied(request: Request, e: core.PageDenied) -> Response:
        user = None
        if e.status != 403 or "CSRF" not in e.message:
            user = await anyio.to_thread.run_sync(core._lookup, request, request.app.state.minsheng)
        return core.render(
            request, "error.html", {"message": e.message, "status": e.status}, user=user, status=e.status
        )
