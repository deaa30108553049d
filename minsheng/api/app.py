"""The FastAPI application factory: builds settings, database, clock and engine at start-up, never at import."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from minsheng.api.deps import AppState, no_nul_in_url
from minsheng.config import Settings
from minsheng.domain.clock import Clock, SystemClock
from minsheng.domain.transitions import IllegalTransition
from minsheng.services.errors import ServiceError
from minsheng.services.intake_writer import IntakeWriter
from minsheng.services.tickets import TicketEngine
from minsheng.storage.db import Database, open_database

log = logging.getLogger("minsheng.api")

Extension = Callable[[FastAPI, AppState], None]
# Other parts (console pages, triage, clock, Open311) register themselves here to be wired at start-up.
EXTENSIONS: list[str] = [
    "minsheng.web.pages:install",
    "minsheng.services.wiring:install",
]


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


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    db: Database | None = None,
    extensions: list[str] | None = None,
) -> FastAPI:
    settings = settings or Settings()
    owns_db = db is None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Few threads: sync handlers share one GIL, and with dozens of threads a handler holding the
        # database's write lock gets a dozenth of the CPU, so every writer queues behind it.
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.request_threads
        # Everything built at start-up (org snapshot, gazetteer, word lists, model) lives as long as the process.
        # Frozen, the collector's full passes stop walking it: unfrozen, each pass under load took long enough
        # to be most of intake's p99 (bench/intake.py, deferred triage on SQLite: p99 175 → 55-70 ms).
        gc.collect()
        gc.freeze()
        # From here on a query on the event loop's thread raises instead of stalling (or deadlocking) it.
        state.db.forbid_event_loop()
        yield
        # Stopping joins threads (the intake writer drains its queue first): off the event loop.
        for stop in app.state.on_shutdown:
            await anyio.to_thread.run_sync(stop)
        if owns_db:
            state.db.dispose()

    app = FastAPI(
        title="minsheng 民声",
        version="0.1.0",
        description="Citizen-request hotline platform: intake, triage, dispatch, closed loop, evaluation.",
        lifespan=lifespan,
        dependencies=[Depends(no_nul_in_url)],
    )
    database = db or open_database(settings.database_url, pool_size=settings.pool_size)
    engine = TicketEngine()
    state = AppState(
        settings=settings,
        db=database,
        clock=clock or SystemClock(),
        engine=engine,
        intake=IntakeWriter(database, engine, max_batch=settings.intake_batch),
    )
    app.state.minsheng = state
    app.state.on_shutdown = [state.intake.stop]
    install_error_handlers(app)

    from minsheng.api.routers import auth, org, public, tickets

    for r in (auth.router, tickets.router, public.router, org.router):
        app.include_router(r)

    # async and without I/O: it answers from the event loop even when every worker thread is busy.
    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/api/v1/ping", tags=["ops"], summary="A trivial endpoint: the framework's ceiling in benchmarks"
    )
    def ping() -> dict[str, str]:
        return {"pong": "ok"}

    import importlib

    for spec in EXTENSIONS if extensions is None else extensions:
        module_name, func = spec.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name and module_name.startswith(e.name):
                continue  # that part of the platform is not built yet
            raise
        getattr(module, func)(app, state)
    return app
