"""Wiring in one place: typed dependencies for the database, the clock, the engine and the caller."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Path, Request, Response
from fastapi.concurrency import run_in_threadpool

from minsheng.config import Settings
from minsheng.domain.clock import Clock
from minsheng.domain.roles import Role
from minsheng.services import auth
from minsheng.services.errors import Invalid, PermissionDenied, Unauthenticated
from minsheng.services.intake_writer import IntakeWriter
from minsheng.services.schemas import MAX_ID, MAX_SMALL_ID
from minsheng.services.tickets import TicketEngine
from minsheng.storage.db import Database

SESSION_COOKIE = "minsheng_session"
CSRF_HEADER = "x-csrf-token"
TOKEN_CACHE_SECONDS = 30.0
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

# A row id in a path, within what its column holds (see `minsheng.services.schemas.MAX_ID`): a larger one would
# fail in the database driver rather than here. IdPath for the 64-bit ids, SmallIdPath for the 32-bit ones.
IdPath = Annotated[int, Path(ge=1, le=MAX_ID, description="a row id")]
SmallIdPath = Annotated[int, Path(ge=1, le=MAX_SMALL_ID, description="a row id")]


@dataclass
class AppState:
    """Everything built at start-up and shared by requests."""

    settings: Settings
    db: Database
    clock: Clock
    engine: TicketEngine
    intake: IntakeWriter
    # Bearer tokens are looked up once per TOKEN_CACHE_SECONDS: a revoked token stops working within that time.
    token_cache: dict[str, tuple[float, auth.Principal]] = field(default_factory=dict)


def set_session_cookie(response: Response, token: str, settings: Settings) -> None:
    """The login cookie, shared by the JSON login and the login page."""
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=settings.cookie_secure,
        max_age=int(settings.session_hours * 3600),
    )


async def no_nul_in_url(request: Request) -> None:
    """Every route's first check: no NUL character in the path or the query (PostgreSQL cannot compare or
    store one, so a %00 would otherwise fail in the database instead of here)."""
    query = request.query_params.multi_items()
    if "\x00" in request.scope["path"] or any("\x00" in k or "\x00" in v for k, v in query):
        raise Invalid("the URL must not contain NUL (%00) characters")


# Dependencies are `async def` where they do no blocking work: FastAPI runs a plain `def` dependency in the
# thread pool, and each such hop costs more than the dependency itself.
async def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.minsheng
    return state


StateDep = Annotated[AppState, Depends(get_state)]


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return None


def _token_principal(state: AppState, token: str) -> auth.Principal | None:
    with state.db.read_sessions() as session:
        return auth.principal_from_token(session, token)


def _session_principal(state: AppState, cookie: str) -> auth.Principal | None:
    with state.db.read_sessions() as session:
        return auth.principal_from_session(session, cookie, state.clock.now())


async def optional_principal(request: Request, state: StateDep) -> auth.Principal | None:
    """The caller, from a bearer token (cached) or the session cookie; database look-ups run in the pool."""
    token = _bearer(request)
    if token:
        hit = state.token_cache.get(token)
        if hit and hit[0] > time.monotonic():
            return hit[1]
        p = await run_in_threadpool(_token_principal, state, token)
        if p is None:
            raise Unauthenticated("invalid or revoked API token")
        state.token_cache[token] = (time.monotonic() + TOKEN_CACHE_SECONDS, p)
        return p
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    p = await run_in_threadpool(_session_principal, state, cookie)
    if p is None:
        return None
    if request.method in UNSAFE_METHODS and request.headers.get(CSRF_HEADER) != p.csrf_token:
        raise PermissionDenied("missing or wrong CSRF token (send the X-CSRF-Token header)")
    return p


async def current_principal(
    p: Annotated[auth.Principal | None, Depends(optional_principal)],
) -> auth.Principal:
    if p is None:
        raise Unauthenticated("log in or send a bearer token")
    return p


CurrentUser = Annotated[auth.Principal, Depends(current_principal)]
MaybeUser = Annotated[auth.Principal | None, Depends(optional_principal)]


def require_roles(*roles: Role):  # type: ignore[no-untyped-def]
    allowed = frozenset(roles)

    async def check(user: CurrentUser) -> auth.Principal:
        if user.role not in allowed:
            raise PermissionDenied(f"role '{user.role.value}' may not do this")
        return user

    return Depends(check)
