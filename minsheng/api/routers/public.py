"""The citizens' side: submit without an account, track with number + query code, rate.

Every endpoint here is limited per client address (`Settings.public_submit_limit`, `public_track_limit`):
over the limit it answers 429 with Retry-After. The limit is checked by a plain `def` dependency, so its
database work runs in a worker thread, before the handler and outside the handler's transaction.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from pydantic import Field

from minsheng.api.deps import StateDep
from minsheng.api.routers.tickets import intake_ticket
from minsheng.bootstrap import Platform
from minsheng.domain.roles import Actor
from minsheng.domain.states import Channel, Urgency
from minsheng.http.common import get_state
from minsheng.http.limits import client_address, limits_of, too_many
from minsheng.http.uow import ReadSession, UnitOfWorkRoute, WriteSession
from minsheng.services import queries
from minsheng.services import schemas as s
from minsheng.services.errors import Invalid
from minsheng.services.limits import RateLimited

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/api/v1/public", tags=["citizens"])
Number = Annotated[str, Path(pattern=r"^\d{8,20}$")]
LIMITED: dict[int | str, dict[str, Any]] = {
    429: {"description": "too many requests from this address: retry after Retry-After seconds"}
}


class CitizenRate(s.Rate):
    query_code: str = Field(min_length=4, max_length=16)


class TrackBody(s.Checked):
    query_code: str = Field(description="the query code given at intake", min_length=4, max_length=16)


def submit_limit(request: Request, state: Annotated[Platform, Depends(get_state)]) -> RateLimited | None:
    """Counts a submission from the client's address; the refusal, if over the limit (a `def`: a thread)."""
    try:
        limits_of(state).public_submit(client_address(request))
    except RateLimited as e:
        return e
    return None


def track_limit(request: Request, state: Annotated[Platform, Depends(get_state)]) -> RateLimited | None:
    """Counts a look-up with a query code from the client's address (track, rate)."""
    try:
        limits_of(state).public_track(client_address(request))
    except RateLimited as e:
        return e
    return None


SubmitLimit = Annotated[RateLimited | None, Depends(submit_limit)]
TrackLimit = Annotated[RateLimited | None, Depends(track_limit)]
CITIZEN_URGENCY = (
    "a citizen's request is normal; its urgency is decided by triage and the hotline staff "
    "(for an emergency call 110, 119 or 120, or the hotline)"
)


@router.post(
    "/tickets",
    status_code=201,
    summary="Submit a request as a citizen",
    response_model=None,
    responses=LIMITED,
)
async def submit(
    state: StateDep, req: s.IntakeRequest, response: Response, refused: SubmitLimit
) -> dict[str, Any] | Response:
    """`urgency` may be omitted or `normal`: `urgent` and `emergency` are refused (422), since the urgency of
    a citizen's request, and with it a unit's sign deadline, is decided by triage and staff."""
    if refused is not None:
        return too_many(refused)
    if req.channel not in (Channel.WEB, Channel.APP, Channel.WECHAT):
        raise Invalid("citizens submit through web, app or wechat", field="channel")
    if req.urgency not in (None, Urgency.NORMAL):
        raise Invalid(CITIZEN_URGENCY, field="urgency")
    return await intake_ticket(state, Actor.citizen(), req, response)


def _tracked(session: ReadSession, number: str, query_code: str) -> dict[str, Any]:
    t = queries.ticket_for_citizen(session, number, query_code)
    out = queries.ticket_view(session, t, None, citizen=True)
    out["timeline"] = queries.timeline(session, t, public_only=True)
    return out


@router.post("/tickets/{number}/track", summary="Track a request", response_model=None, responses=LIMITED)
def track_post(
    session: ReadSession, number: Number, body: TrackBody, refused: TrackLimit
) -> dict[str, Any] | Response:
    """The query code travels in the body, so it stays out of URLs and access logs."""
    if refused is not None:
        return too_many(refused)
    return _tracked(session, number, body.query_code)


@router.get(
    "/tickets/{number}",
    summary="Track a request (code in X-Query-Code)",
    response_model=None,
    responses=LIMITED,
)
def track(
    session: ReadSession,
    number: Number,
    refused: TrackLimit,
    x_query_code: Annotated[
        str | None, Header(description="the query code given at intake", min_length=4, max_length=16)
    ] = None,  # type: ignore[call-overload]
    query_code: Annotated[
        str | None,
        Query(
            deprecated=True,
            description="deprecated: a code in the URL ends up in logs and histories; send it in the "
            "X-Query-Code header or POST /tickets/{number}/track",
            min_length=4,
            max_length=16,
        ),
    ] = None,
) -> dict[str, Any] | Response:
    if refused is not None:
        return too_many(refused)
    code = x_query_code or query_code
    if not code:
        raise Invalid("the query code is missing: send it in the X-Query-Code header", field="query_code")
    return _tracked(session, number, code)


@router.post("/tickets/{number}/rate", summary="Rate the result", response_model=None, responses=LIMITED)
def rate(
    state: StateDep, session: WriteSession, number: Number, body: CitizenRate, refused: TrackLimit
) -> dict[str, Any] | Response:
    if refused is not None:
        return too_many(refused)
    t = queries.ticket_for_citizen(session, number, body.query_code)
    state.engine.rate(
        session,
        Actor.citizen(),
        t.number,
        s.Rate(rating=body.rating, comment=body.comment),
        state.clock.now(),
    )
    return queries.ticket_view(session, t, None, citizen=True)
