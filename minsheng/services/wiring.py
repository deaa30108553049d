"""Start-up wiring of the platform's parts into the app (engine subscribers, routers, background threads).

`minsheng.api.app.create_app` calls `install` once; each part keeps its own wiring in its module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

    from minsheng.api.deps import AppState


def install(app: FastAPI, state: AppState) -> None:
    from minsheng.services import triage_service
    from minsheng.services.timelimits import wiring as timelimits

    timelimits.install(app, state)
    triage_service.install(app, state)
