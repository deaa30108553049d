"""Login sessions for people (cookie + CSRF token) and who-am-I."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import Field

from minsheng.api.deps import SESSION_COOKIE, CurrentUser, StateDep, set_session_cookie
from minsheng.http.uow import UnitOfWorkRoute, WriteSession
from minsheng.services import auth
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


@router.post("/login")
def login(state: StateDep, body: LoginBody, response: Response) -> dict[str, Any]:
    token, principal = auth.login(
        state.db, body.username, body.password, state.clock.now(), state.settings.session_hours
    )
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
