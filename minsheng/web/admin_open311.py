"""系统管理 → Open311 接口 (issue 16): the integrations' API keys (listed, revoked: an audited change; issued with
`minsheng open311 key`) and the service definitions of the categories GeoReport offers (description, keywords,
attributes as JSON). Mounted by `web.admin` ahead of its `/admin/{kind}` pages."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from minsheng.domain.roles import Role
from minsheng.http.uow import UnitOfWorkRoute
from minsheng.services import open311_catalogue, open311_keys
from minsheng.services.auth import Principal
from minsheng.services.errors import ServiceError
from minsheng.web import core
from minsheng.web.core import FormDep, StateDep

router = APIRouter(route_class=UnitOfWorkRoute, include_in_schema=False)
AdminUser = Annotated[Principal, core.need(Role.ADMIN)]
PAGE = "/admin/open311"


def _page(request: Request, state: Any, user: Principal, status: int = 200, **extra: Any) -> Response:
    with core.read_tx(state) as session:
        ctx: dict[str, Any] = {
            "keys": open311_keys.listed(session),
            "services": open311_catalogue.definitions(session),
            "settings": state.settings,
        }
    ctx.update(extra)
    return core.render(request, "admin/open311.html", ctx, user=user, status=status)


@router.get(PAGE)
def admin_open311(request: Request, state: StateDep, user: AdminUser) -> Response:
    return _page(request, state, user)


@router.post(PAGE + "/keys/{key_id}/revoke")
def admin_open311_revoke(
    request: Request, state: StateDep, user: AdminUser, form: FormDep, key_id: str
) -> Response:
    kid = core.page_id(key_id)
    try:
        with core.write_tx(state, user) as session:
            row = open311_keys.revoke(session, kid, state.clock.now())
    except ServiceError as e:
        return core.redirect(PAGE, err=core.service_message(e))
    return core.redirect(PAGE, msg=f"已吊销密钥 {row.prefix}…（{row.name}）")


@router.post(PAGE + "/services/{code}")
def admin_open311_service(
    request: Request, state: StateDep, user: AdminUser, form: FormDep, code: str
) -> Response:
    try:
        with core.write_tx(state, user) as session:
            open311_catalogue.set_definition(
                session,
                code,
                form.opt("description"),
                form.opt("keywords"),
                form.get("attributes"),
                state.clock.now(),
            )
    except ServiceError as e:
        errors = {"service": code, "message": core.service_message(e)}
        return _page(request, state, user, status=422, failed=errors, values=form.values())
    return core.redirect(PAGE, msg=f"已保存服务 {code} 的定义", at=f"svc-{code}")
