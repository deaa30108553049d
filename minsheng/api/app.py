"""The JSON API under /api/v1: its routers, its error answers and the operations endpoints."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from minsheng.api import open311
from minsheng.api.routers import (
    audit,
    auth,
    channels,
    org,
    partners,
    public,
    supervision,
    tickets,
    timelimits,
    triage,
)
from minsheng.domain.transitions import IllegalTransition
from minsheng.services.errors import ServiceError

log = logging.getLogger("minsheng.api")


def error_body(status: int, code: str, message: str, detail: Any = None) -> JSONResponse:
    body: dict[str, Any] = {"error": {"code": code, "message": message}}
    if detail:
        body["error"]["detail"] = detail
    return JSONResponse(status_code=status, content=body)


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service(_: Request, e: ServiceError) -> JSONResponse:
        return error_body(e.status, e.code, e.message, e.detail or None)

    @app.exception_handler(IllegalTransition)
    async def _illegal(_: Request, e: IllegalTransition) -> JSONResponse:
        return error_body(
            409,
            "illegal_transition",
            str(e),
            {"machine": e.machine, "state": e.state, "action": e.action, "allowed": e.allowed},
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, e: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": _field(err.get("loc", ())), "message": str(err.get("msg", "")), "type": err.get("type")}
            for err in e.errors()
        ]
        summary = "; ".join(f"{x['field']}: {x['message']}" for x in errors[:5])
        return error_body(422, "invalid", f"invalid request: {summary}", errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, e: StarletteHTTPException) -> JSONResponse:
        return error_body(e.status_code, "http_error", str(e.detail))

    @app.exception_handler(IntegrityError)
    async def _integrity(_: Request, e: IntegrityError) -> JSONResponse:
        log.warning("integrity error: %s", e)
        return error_body(409, "conflict", "the change conflicts with another change; reload and retry")

    @app.exception_handler(OperationalError)
    async def _operational(_: Request, e: OperationalError) -> JSONResponse:
        log.error("database error: %s", e)
        return error_body(503, "unavailable", "the database is busy or unavailable; retry shortly")


def install(app: FastAPI) -> None:
    """The JSON API: its error answers, its routers and the operations endpoints."""
    install_error_handlers(app)
    for r in (
        auth.router,
        tickets.router,
        public.router,
        org.router,
        timelimits.router,
        timelimits.inbox_router,
        triage.router,
        audit.router,
        channels.router,
        partners.router,
        supervision.router,
    ):
        app.include_router(r)
    open311.install(app)

    # async and without I/O: it answers from the event loop even when every worker thread is busy.
    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/api/v1/ping", tags=["ops"], summary="A trivial endpoint: the framework's ceiling in benchmarks"
    )
    def ping() -> dict[str, str]:
        return {"pong": "ok"}
