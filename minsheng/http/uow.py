"""Transactions of the JSON API: each handler's transaction begins, commits and ends in the one worker thread
that runs the handler, so that no database connection, transaction or write lock is ever held across an
`await` (docs/ARCHITECTURE.md, "Concurrency").

A handler asks for `WriteSession` or `ReadSession`. The dependency only builds an unbegun `Session` (no I/O);
`UnitOfWorkRoute` wraps the handler so that, in its thread, the session begins before the handler's first
query and commits (or rolls back) before the thread is handed back. The route refuses at start-up what would
break that rule: an `async def` handler or dependency that takes a session, and a dependency that takes one
(it would run in another thread than the handler).

Each session carries the caller in `session.info["actor"]` (`services.audit` records administrative changes
with it): the `Principal` among the handler's arguments, or else the one a route-level dependency
(`dependencies=[require_roles(...)]`) resolved, which is handed to the wrapper as a hidden argument.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from typing import Annotated, Any

from fastapi import Depends, Request, params
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session

from minsheng.services.audit import ACTOR_KEY
from minsheng.services.auth import Principal


async def _write_session(request: Request) -> Session:
    # Building a Session connects to nothing: the connection is taken at its first query, in the handler.
    return request.app.state.minsheng.db.write_sessions()  # type: ignore[no-any-return]


async def _read_session(request: Request) -> Session:
    return request.app.state.minsheng.db.read_sessions()  # type: ignore[no-any-return]


WriteSession = Annotated[Session, Depends(_write_session)]
ReadSession = Annotated[Session, Depends(_read_session)]
_PROVIDERS = frozenset({_write_session, _read_session})


class TransactionRuleBroken(TypeError):
    """A route whose transaction could outlive its thread: refused when the app is built."""


def _session_dependencies(dependant: Dependant) -> list[Dependant]:
    return [d for d in dependant.dependencies if d.call in _PROVIDERS]


def _check(dependant: Dependant, where: str) -> None:
    """Only the handler itself may take a session; no dependency below it may (recursively)."""
    for sub in dependant.dependencies:
        if sub.call in _PROVIDERS:
            continue
        if _session_dependencies(sub):
            name = getattr(sub.call, "__qualname__", repr(sub.call))
            raise TransactionRuleBroken(
                f"{where}: dependency {name} takes a database session; only the handler may (use a "
                "service call inside the handler, or open a unit of work in a thread of its own)"
            )
        _check(sub, where)


_CALLER = "minsheng_uow_caller"


def _caller_dependency(dependencies: Sequence[params.Depends]) -> Callable[..., Any] | None:
    """The route-level dependency that resolves the caller (one returning a `Principal`), if any."""
    for d in dependencies:
        call = d.dependency
        if call is None:
            continue
        try:
            hints = typing.get_type_hints(call)
        except Exception:  # an annotation that cannot be resolved here: not the caller's dependency
            continue
        if hints.get("return") is Principal:
            return call
    return None


def in_one_thread(
    endpoint: Callable[..., Any], caller: Callable[..., Any] | None = None
) -> Callable[..., Any]:
    """Wrap a sync handler: the sessions it was given begin, commit and close within its call, each with the
    caller as its actor. `caller`: a dependency resolving the caller when the handler takes none itself."""

    @functools.wraps(endpoint)
    def run(*args: Any, **kwargs: Any) -> Any:
        hidden = kwargs.pop(_CALLER, None)
        actor = next((v for v in kwargs.values() if isinstance(v, Principal)), hidden)
        with ExitStack() as stack:
            for value in kwargs.values():
                if isinstance(value, Session):
                    if actor is not None:
                        value.info[ACTOR_KEY] = actor
                    stack.enter_context(value)  # closes it: the connection goes back to the pool here
                    stack.enter_context(value.begin())  # commits on return, rolls back on an exception
            return endpoint(*args, **kwargs)

    if caller is not None:
        # FastAPI reads this signature: the hidden argument resolves to the value the route-level dependency
        # gave (dependencies are cached per request, so the caller is looked up once).
        sig = inspect.signature(endpoint)
        extra = inspect.Parameter(
            _CALLER, inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[Any, Depends(caller)]
        )
        run.__signature__ = sig.replace(parameters=[*sig.parameters.values(), extra])  # type: ignore[attr-defined]
    return run


class UnitOfWorkRoute(APIRoute):
    """The route class of every API router (see the module docstring)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        where = f"{','.join(sorted(self.methods or []))} {path}"
        _check(self.dependant, where)
        if not _session_dependencies(self.dependant):
            return
        if inspect.iscoroutinefunction(inspect.unwrap(endpoint)):
            raise TransactionRuleBroken(
                f"{where}: an async handler may not take a database session (it would run its queries on "
                "the event loop); make it a plain def"
            )
        # Rebuild with the wrapped handler: FastAPI reads the signature through functools.wraps.
        super().__init__(path, in_one_thread(endpoint, _caller_dependency(self.dependencies)), **kwargs)
