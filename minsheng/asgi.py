"""The web application: the JSON API and the pages over one platform (`minsheng serve` runs it with uvicorn).

`create_app` builds (no I/O); the lifespan starts the platform in a worker thread, then turns on the database's
refusal of the event loop's thread, and on shutdown stops the platform in a worker thread.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import Depends, FastAPI
from fastapi.responses import HTMLResponse

from minsheng.api.app import install as install_api
from minsheng.api.deps import TokenCache
from minsheng.bootstrap import Role, build
from minsheng.config import Settings
from minsheng.domain.clock import Clock
from minsheng.http.common import no_nul_in_url
from minsheng.http.headers import SecurityHeaders, docs_page
from minsheng.http.limits import BodyLimit
from minsheng.storage.db import Database
from minsheng.web.pages import install as install_pages


def create_app(
    settings: Settings | None = None, *, clock: Clock | None = None, db: Database | None = None
) -> FastAPI:
    platform = build(settings, role=Role.WEB, clock=clock, db=db)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Few threads: sync handlers share one GIL, and with dozens of threads a handler holding the
        # database's write lock gets a dozenth of the CPU, so every writer queues behind it.
        anyio.to_thread.current_default_thread_limiter().total_tokens = platform.settings.request_threads
        await anyio.to_thread.run_sync(platform.start)
        # Everything built at start-up (org snapshot, gazetteer, word lists, model) lives as long as the process.
        # Frozen, the collector's full passes stop walking it (unfrozen, they were most of intake's p99).
        gc.collect()
        gc.freeze()
        # From here on a query on the event loop's thread raises instead of stalling (or deadlocking) it.
        platform.db.forbid_event_loop()
        yield
        # Stopping joins threads (the intake writer commits what it holds first): off the event loop.
        await anyio.to_thread.run_sync(platform.stop)

    app = FastAPI(
        title="minsheng 民声",
        version="0.1.0",
        description="Citizen-request hotline platform: intake, triage, dispatch, closed loop, evaluation.",
        lifespan=lifespan,
        dependencies=[Depends(no_nul_in_url)],
        # /docs is served below from vendored files (no CDN); ReDoc is off.
        docs_url=None,
        redoc_url=None,
    )

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return docs_page(app.openapi_url or "/openapi.json", app.title)

    app.state.minsheng = platform
    app.state.minsheng_tokens = TokenCache()
    install_api(app)
    install_pages(app, platform)
    app.add_middleware(BodyLimit, settings=platform.settings)
    app.add_middleware(SecurityHeaders, hsts=platform.settings.environment == "production")
    return app
