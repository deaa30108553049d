"""The grid worker's mobile page (/grid): report what the patrol found, with photos and the phone's position;
the worker's latest reports and their state below. The use case is `services.channels.grid`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from minsheng.domain.roles import Role
from minsheng.http.uow import UnitOfWorkRoute
from minsheng.services.auth import Principal
from minsheng.services.channels import grid
from minsheng.services.channels.base import Context, Photo
from minsheng.services.errors import ServiceError
from minsheng.web import core
from minsheng.web.core import FormDep, StateDep

router = APIRouter(route_class=UnitOfWorkRoute, include_in_schema=False)
#: Grid workers are handlers of grid units; operators and admins may report for them.
GridUser = Annotated[Principal, core.need(Role.HANDLER, Role.OPERATOR, Role.ADMIN)]


def _page(request: Request, state: StateDep, user: Principal, status: int = 200, **ctx: object) -> Response:
    with core.read_tx(state) as session:
        mine = grid.recent(session, user)
    values = ctx.pop("values", None) or {"key": core.new_key()}
    return core.render(
        request, "grid.html", {"mine": mine, "values": values, **ctx}, user=user, status=status
    )


@router.get("/grid")
def grid_page(request: Request, state: StateDep, user: GridUser) -> Response:
    return _page(request, state, user)


@router.post("/grid")
def grid_submit(request: Request, state: StateDep, user: GridUser, form: FormDep) -> Response:
    try:
        body = grid.GridReport.model_validate(
            {
                "detail": form.get("detail"),
                "address": form.opt("address"),
                "lat": form.opt("lat"),
                "lon": form.opt("lon"),
                "key": form.get("key"),
            }
        )
    except ValidationError as e:
        return _page(request, state, user, 422, errors=core.field_errors(e), values=form.values())
    photos = [Photo(name, data) for field, name, data in form.files if field == "photo"]
    settings = state.settings
    ctx = Context(
        state.engine,
        state.clock.now(),
        settings.hotline_name,
        frozenset(state.senders),
        settings.attachments_dir,
        settings.max_attachment_bytes,
    )
    try:
        out = grid.report(state.db, ctx, user, body, photos)
    except ServiceError as e:
        errors = {"_form": core.service_message(e)}
        return _page(request, state, user, 409, errors=errors, values=form.values())
    done = "（重复提交，未重复建单）" if out.duplicate else ""
    return core.redirect("/grid", msg=f"已上报，工单 {out.ticket_number}{done}")
