"""What every HTTP entry point reads: the platform of the app, the login cookie and CSRF header, path ids."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request, Response

from minsheng.bootstrap import Platform
from minsheng.config import Settings
from minsheng.services.errors import Invalid
from minsheng.services.schemas import MAX_ID, MAX_SMALL_ID

SESSION_COOKIE = "minsheng_session"
CSRF_HEADER = "x-csrf-token"

# A row id in a path, within what its column holds (see `minsheng.services.schemas.MAX_ID`): a larger one would
# fail in the database driver rather than here. IdPath for the 64-bit ids, SmallIdPath for the 32-bit ones.
IdPath = Annotated[int, Path(ge=1, le=MAX_ID, description="a row id")]
SmallIdPath = Annotated[int, Path(ge=1, le=MAX_SMALL_ID, description="a row id")]


def platform_of(request: Request) -> Platform:
    platform: Platform = request.app.state.minsheng
    return platform


# Dependencies are `async def` where they do no blocking work: FastAPI runs a plain `def` dependency in the
# thread pool, and each such hop costs more than the dependency itself.
async def get_state(request: Request) -> Platform:
    return platform_of(request)


StateDep = Annotated[Platform, Depends(get_state)]


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
