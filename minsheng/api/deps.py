"""The JSON API's dependencies: the platform, the caller (session cookie or bearer token), role checks."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool

from minsheng.bootstrap import Platform
from minsheng.domain.roles import Role
from minsheng.http.common import (
    CSRF_HEADER,
    SESSION_COOKIE,
    IdPath,
    SmallIdPath,
    StateDep,
    get_state,
    set_session_cookie,
)
from minsheng.services import auth
from minsheng.services.errors import PermissionDenied, Unauthenticated

TOKEN_CACHE_SECONDS = 30.0
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
__all__ = ["SESSION_COOKIE", "IdPath", "SmallIdPath", "StateDep", "get_state", "set_session_cookie"]


class TokenCache(dict[str, tuple[float, auth.Principal]]):
    """Bearer tokens are looked up once per TOKEN_CACHE_SECONDS: a revoked token stops working within that
    time. One per app (`app.state.minsheng_tokens`)."""


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return None


def _token_principal(state: Platform, token: str) -> auth.Principal | None:
    with state.db.read_sessions() as session:
        return auth.principal_from_token(session, token)


def _session_principal(state: Platform, cookie: str) -> auth.Principal | None:
    with state.db.read_sessions() as session:
        return auth.principal_from_session(session, cookie, state.clock.now())


async def optional_principal(request: Request, state: StateDep) -> auth.Principal | None:
    """The caller, from a bearer token (cached) or the session cookie; database look-ups run in the pool."""
    token = _bearer(request)
    if token:
        cache: TokenCache = request.app.state.minsheng_tokens
        hit = cache.get(token)
        if hit and hit[0] > time.monotonic():
            return hit[1]
        p = await run_in_threadpool(_token_principal, state, token)
        if p is None:
            raise Unauthenticated("invalid or revoked API token")
        cache[token] = (time.monotonic() + TOKEN_CACHE_SECONDS, p)
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
