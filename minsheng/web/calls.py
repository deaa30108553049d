"""Call records on the console: the calls of a ticket (its page) and the operator's own latest calls (the
desk), as fragments the pages load with HTMX. The queries are `services.channels.calls`'."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from minsheng.domain.roles import Role
from minsheng.http.uow import UnitOfWorkRoute
from minsheng.services.auth import Principal
from minsheng.services.channels import calls
from minsheng.web import core
from minsheng.web.core import StateDep

router = APIRouter(route_class=UnitOfWorkRoute, include_in_schema=False)
CALL_READERS = frozenset(
    {Role.OPERATOR, Role.DISPATCHER, Role.SUPERVISOR, Role.FOLLOWUP, Role.LEADER, Role.ADMIN}
)
CallReader = Annotated[Principal, core.need(CALL_READERS)]
Number = Annotated[str, Path(pattern=r"^\d{8,20}$")]


@router.get("/calls/ticket/{number}")
def ticket_calls(request: Request, state: StateDep, user: CallReader, number: Number) -> Response:
    with core.read_tx(state) as session:
        rows = calls.for_ticket(session, user, number)
    return core.render(request, "_calls.html", {"calls": rows, "title": "来电记录"}, user=user)


@router.get("/calls/mine")
def my_calls(request: Request, state: StateDep, user: CallReader) -> Response:
    with core.read_tx(state) as session:
        rows = calls.recent(session, user.username, limit=10)
    return core.render(request, "_calls.html", {"calls": rows, "title": "我的最近来电"}, user=user)
