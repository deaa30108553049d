"""Start-up wiring of triage into the app: the runtime, the engine's hooks, the triage API (see `install`)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from minsheng.services.triage.runtime import TriageRuntime

if TYPE_CHECKING:
    from fastapi import FastAPI

    from minsheng.api.deps import AppState


def install(app: FastAPI, state: AppState) -> None:
    """Build the runtime, plug it into the engine and mount the triage API (called from services.wiring)."""
    runtime = TriageRuntime(state.db, state.settings, state.engine, state.clock).start()
    state.engine.triage = runtime.hook
    state.engine.triage_prepare = runtime.prepare
    state.engine.triage_prepare_many = runtime.prepare_many
    if state.settings.triage_mode == "deferred":
        state.engine.defer_triage = True
        if state.settings.embedded_worker:
            from minsheng.services.triage.jobs import TriageWorker

            worker = TriageWorker(
                state.db,
                state.engine,
                state.clock,
                interval=state.settings.worker_interval_seconds,
                busy=state.intake.busy,
                max_lag=state.settings.triage_max_lag_seconds,
            ).start()
            state.intake.on_commit = worker.wake
            app.state.on_shutdown.append(worker.stop)
    # AppState belongs to the API layer; the runtime rides along on it so that handlers reach it by the state.
    state.__dict__["triage"] = runtime

    from minsheng.api.routers import triage as triage_router

    app.include_router(triage_router.router)

    app.add_middleware(_OrgChangeWatch, on_change=runtime.mark_stale)


class _OrgChangeWatch:
    """ASGI middleware: a successful write to the org API (areas, categories, units), which belongs to another
    part, marks the triage snapshot stale so that the gazetteer and the routing table follow it.

    Plain ASGI rather than `@app.middleware("http")`: that wrapper streams every response of every route through
    an extra task, which costs more than most handlers.
    """

    def __init__(self, app: Any, on_change: Callable[[], None]) -> None:
        self.app = app
        self.on_change = on_change

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] == "GET" or not _ORG_PATHS.match(scope["path"]):
            await self.app(scope, receive, send)
            return

        async def watch(message: Any) -> None:
            if message["type"] == "http.response.start" and message["status"] < 300:
                self.on_change()
            await send(message)

        await self.app(scope, receive, watch)


_ORG_PATHS = re.compile(r"^/api/v1/(areas|categories|units)(/|$)")
