"""Login sessions for people (cookie + CSRF token) and who-am-I."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import AfterValidator, Field

from minsheng.api.deps import SESSION_COOKIE, CurrentUser, StateDep, require_roles, set_session_cookie
from minsheng.domain.roles import Role
from minsheng.http.limits import client_address, limits_of, too_many
from minsheng.http.uow import ReadSession, UnitOfWorkRoute, WriteSession
from minsheng.services import auth, limits
from minsheng.services import schemas as s
from minsheng.services.errors import Invalid
from minsheng.services.limits import RateLimited
from minsheng.services.schemas import Checked

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/api/v1/auth", tags=["auth"])


class LoginBody(Checked):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=200)


def principal_json(p: auth.Principal) -> dict[str, Any]:
    return {
        "user_id": p.user_id,
        "username": p.username,
        "display_name": p.display_name,
        "role": p.role.value,
        "role_label": p.role.label,
        "unit_id": p.unit_id,
        "unit_name": p.unit_name,
        "csrf_token": p.csrf_token,
    }


@router.post(
    "/login",
    response_model=None,
    responses={429: {"description": "too many failed logins for this username or from this address"}},
)
def login(
    state: StateDep, body: LoginBody, request: Request, response: Response
) -> dict[str, Any] | Response:
    """Open a session. After `login_max_failures` wrong passwords for a username within the window it is
    locked for `login_lockout_seconds`, and too many failures from one address throttle it: 429 with
    Retry-After, even for the right password. Every failed login is recorded (`GET /api/v1/auth/failures`)."""
    try:
        token, principal = auth.login(
            state.db,
            body.username,
            body.password,
            state.clock.now(),
            state.settings.session_hours,
            limits=limits_of(state),
            address=client_address(request),
        )
    except RateLimited as e:
        return too_many(e)
    set_session_cookie(response, token, state.settings)
    return principal_json(principal)


@router.post("/logout")
def logout(session: WriteSession, request: Request, response: Response, user: CurrentUser) -> dict[str, str]:
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        auth.logout(session, cookie)
    response.delete_cookie(SESSION_COOKIE)
    return {"status": "logged out"}


@router.get("/me")
def me(user: CurrentUser) -> dict[str, Any]:
    return principal_json(user)


When = Annotated[datetime | None, AfterValidator(s.utc_representable)]


@router.get("/failures", dependencies=[require_roles(Role.ADMIN)])
def failures(
    session: ReadSession,
    username: Annotated[str | None, Query(max_length=64)] = None,
    address: Annotated[str | None, Query(max_length=64)] = None,
    at_from: When = None,
    at_to: When = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """Failed logins, newest first (admins): who was tried, when, from which address, and why
    (wrong_password, unknown_user, inactive, locked, throttled); `at_from` <= at < `at_to`."""
    for d in (at_from, at_to):
        if d is not None and d.tzinfo is None:
            raise Invalid("at_from / at_to need a timezone (e.g. 2026-11-21T00:00:00+08:00)")
    rows = limits.failed_logins(
        session, username=username, address=address, since=at_from, until=at_to, limit=limit
    )
    return {
        "failures": [
            {
                "id": r.id,
                "username": r.username,
                "at": r.at.isoformat(),
                "address": r.address,
                "reason": r.reason,
            }
            for r in rows
        ]
    }
