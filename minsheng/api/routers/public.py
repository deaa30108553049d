"""The citizens' side: submit without an account, track with number + query code, rate."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from pydantic import Field

from minsheng.api.deps import StateDep
from minsheng.api.routers.tickets import intake_ticket
from minsheng.domain.roles import Actor
from minsheng.domain.states import Channel
from minsheng.http.uow import ReadSession, UnitOfWorkRoute, WriteSession
from minsheng.services import queries
from minsheng.services import schemas as s
from minsheng.services.errors import Invalid

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/api/v1/public", tags=["citizens"])
Number = Annotated[str, Path(pattern=r"^\d{8,20}$")]
QueryCode = Annotated[str, Query(min_length=4, max_length=16, description="the query code given at intake")]


class CitizenRate(s.Rate):
    query_code: str = Field(min_length=4, max_length=16)


@router.post("/tickets", status_code=201, summary="Submit a request as a citizen")
async def submit(state: StateDep, req: s.IntakeRequest, response: Response) -> dict[str, Any]:
    if req.channel not in (Channel.WEB, Channel.APP, Channel.WECHAT):
        raise Invalid("citizens submit through web, app or wechat", field="channel")
    return await intake_ticket(state, Actor.citizen(), req, response)


@router.get("/tickets/{number}", summary="Track a request")
def track(session: ReadSession, number: Number, query_code: QueryCode) -> dict[str, Any]:
    t = queries.ticket_for_citizen(session, number, query_code)
    out = queries.ticket_view(session, t, None, citizen=True)
    out["timeline"] = queries.timeline(session, t, public_only=True)
    return out


@router.post("/tickets/{number}/rate", summary="Rate the result")
def rate(state: StateDep, session: WriteSession, number: Number, body: CitizenRate) -> dict[str, Any]:
    t = queries.ticket_for_citizen(session, number, body.query_code)
    state.engine.rate(
        session,
        Actor.citizen(),
        t.number,
        s.Rate(rating=body.rating, comment=body.comment),
        state.clock.now(),
    )
    return queries.ticket_view(session, t, None, citizen=True)
