"""Start-up wiring of the time limits into the web app."""

from __future__ import annotations

from typing import TYPE_CHECKING

from minsheng.services.notifications import NotifySettings
from minsheng.services.timelimits.config import ClockConfig
from minsheng.services.timelimits.subscriber import Clockwork

if TYPE_CHECKING:
    from fastapi import FastAPI

    from minsheng.api.deps import AppState


def install(app: FastAPI, state: AppState) -> None:
    """Subscribe the clockwork to the engine, mount the clock API and start the embedded worker if asked."""
    from minsheng.api.routers import clock as clock_router
    from minsheng.worker.run import EmbeddedWorker

    ns = NotifySettings()
    senders = ns.senders()
    clockwork = Clockwork(state.engine, ClockConfig.from_settings(ns, senders))
    state.engine.subscribers.append(clockwork)
    app.state.clockwork = clockwork
    app.include_router(clock_router.router)
    app.include_router(clock_router.inbox_router)
    if state.settings.embedded_worker:
        worker = EmbeddedWorker(
            state.db,
            state.clock,
            clockwork,
            senders,
            retry=ns.retry_policy(),
            interval=state.settings.worker_interval_seconds,
        )
        worker.start()
        app.state.on_shutdown.append(worker.stop)
