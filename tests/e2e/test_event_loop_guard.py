"""The guard against the hang's class of bug: nothing blocks the event loop, no transaction crosses an await.

Three layers: (1) `UnitOfWorkRoute` refuses, when the app is built, an async handler or any dependency that
takes a database session; (2) once started, the database refuses a connection on the event loop's thread;
(3) here, every `async def` handler, dependency and exception handler of the app is listed, each must be
known with the reason it may be async, and each async route is called with the refusal of (2) on.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterator
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Depends
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import text

from minsheng.http.uow import TransactionRuleBroken, UnitOfWorkRoute, WriteSession
from minsheng.storage.db import BlockingOnEventLoop, Database

# (method, path) of every async route, and why it may be async (it awaits, and does no blocking work itself).
ASYNC_ROUTES = {
    ("GET", "/healthz"): "answers from the loop while every worker thread is busy",
    ("POST", "/api/v1/tickets"): "awaits the intake writer; the analysis runs in a worker thread",
    ("POST", "/api/v1/public/tickets"): "awaits the intake writer; the analysis runs in a worker thread",
    ("GET", "/screen/events"): "a stream holds no thread: sleeps between polls of the shared feed",
}
# Async dependencies: none does blocking work on the loop (the principal look-up hops to a thread).
ASYNC_DEPENDENCIES = {
    "no_nul_in_url",
    "get_state",
    "optional_principal",
    "current_principal",
    "require_roles.<locals>.check",
    "read_form",
    "raw_body",  # channel gateways: the body's bytes, awaited, for their signatures
    "_write_session",
    "_read_session",
}


def _walk(dependant: Dependant) -> Iterator[Dependant]:
    for sub in dependant.dependencies:
        yield sub
        yield from _walk(sub)


def _is_async(call: Any) -> bool:
    return inspect.iscoroutinefunction(inspect.unwrap(call)) or inspect.iscoroutinefunction(
        type(call).__call__
    )


def test_every_async_route_and_dependency_is_known(app_client: TestClient) -> None:
    contexts = list(iter_route_contexts(app_client.app.routes))  # type: ignore[attr-defined]
    routes = [c for c in contexts if isinstance(c.original_route, APIRoute)]
    assert len(routes) > 100, "the app's routes were not found"
    async_routes = {
        (m, c.path) for c in routes if _is_async(c.endpoint) for m in (c.methods or set()) if m != "HEAD"
    }
    assert async_routes == set(ASYNC_ROUTES), (
        "an async route was added or removed: make it a plain def, or list it with the reason it may await"
    )
    deps = {
        d.call.__qualname__
        for c in routes
        for d in _walk(c.original_route.dependant)
        if d.call is not None and _is_async(d.call)
    }
    assert deps <= ASYNC_DEPENDENCIES, f"unlisted async dependencies: {deps - ASYNC_DEPENDENCIES}"


def test_every_async_route_answers_with_the_event_loop_guard_on(
    login: Callable[[str], TestClient], app_client: TestClient
) -> None:
    op, sup = login("operator1"), login("supervisor1")
    body = {"channel": "phone", "detail": "幸福路3号路灯坏了，晚上很黑", "citizen_phone": "13800138000"}
    calls = {
        ("GET", "/healthz"): lambda: app_client.get("/healthz"),
        ("POST", "/api/v1/tickets"): lambda: op.post("/api/v1/tickets", json=body),
        ("POST", "/api/v1/public/tickets"): lambda: app_client.post(
            "/api/v1/public/tickets", json=body | {"channel": "web"}
        ),
        ("GET", "/screen/events"): lambda: sup.get("/screen/events?once=1"),
    }
    assert set(calls) == set(ASYNC_ROUTES)
    for key, call in calls.items():
        r = call()
        assert r.status_code < 300, (key, r.status_code, r.text[:300])
    # The feed's events carry the tickets just taken.
    assert "event: ticket" in sup.get("/screen/events?once=1").text


def test_the_database_refuses_the_event_loop_once_started(db: Database) -> None:
    def query() -> Any:
        with db.read_sessions() as session:
            return session.execute(text("select 1")).scalar()

    async def on_the_loop() -> Any:
        return query()

    async def in_a_thread() -> Any:
        return await asyncio.to_thread(query)

    assert asyncio.run(on_the_loop()) == 1  # not yet forbidden
    db.forbid_event_loop()
    with pytest.raises(BlockingOnEventLoop):
        asyncio.run(on_the_loop())
    assert asyncio.run(in_a_thread()) == 1
    assert query() == 1  # a thread without a loop (the worker's, the CLI's) is unaffected


# Module level: FastAPI resolves these string annotations in the module's namespace.
async def _async_handler_with_session(session: WriteSession) -> None:
    return None


def _loads_something(session: WriteSession) -> int:
    return 1


def _handler_with_loading_dependency(value: Annotated[int, Depends(_loads_something)]) -> None:
    return None


def test_a_session_in_an_async_handler_is_refused_when_the_app_is_built() -> None:
    router = APIRouter(route_class=UnitOfWorkRoute)
    with pytest.raises(TransactionRuleBroken, match="async handler"):
        router.add_api_route("/x", _async_handler_with_session, methods=["POST"])


def test_a_dependency_that_takes_a_session_is_refused() -> None:
    router = APIRouter(route_class=UnitOfWorkRoute)
    with pytest.raises(TransactionRuleBroken, match="_loads_something"):
        router.add_api_route("/x", _handler_with_loading_dependency, methods=["GET"])
