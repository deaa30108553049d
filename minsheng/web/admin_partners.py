"""系统管理 → 联动单位: the partner registry (110 and peer hotlines) read and edited by administrators, and the
recent transfers with their delivery and acknowledgement state. Adding a partner (which makes its secret) is the
CLI's `minsheng partners add`: the secret is shown there once, and here only as its last characters.

Registered before `web.admin`, whose `/admin/{kind}` would otherwise take `/admin/partners`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from minsheng.domain.roles import Role
from minsheng.http.uow import UnitOfWorkRoute
from minsheng.services.auth import Principal
from minsheng.services.errors import ServiceError
from minsheng.services.partners import registry, views
from minsheng.web import core
from minsheng.web.core import FormDep, StateDep

router = APIRouter(route_class=UnitOfWorkRoute, include_in_schema=False)
AdminUser = Annotated[Principal, core.need(Role.ADMIN)]
Code = Annotated[str, Path(pattern=registry.CODE_PATTERN)]
STATES = {
    "open": "办理中",
    "closed": "已办结",
    "sending": "发送中",
    "sent": "已送达，待签收",
    "acked": "对方已签收",
    "result": "对方已反馈",
    "warned": "未签收预警",
    "escalated": "未签收督办",
    "undelivered": "发送失败",
}


@router.get("/admin/partners")
def partners_page(request: Request, state: StateDep, user: AdminUser) -> Response:
    with core.read_tx(state) as session:
        ctx = views.overview(session)
    return core.render(request, "admin/partners.html", {**ctx, "states": STATES}, user=user)


@router.post("/admin/partners/{code}")
def partners_edit(request: Request, state: StateDep, user: AdminUser, form: FormDep, code: Code) -> Response:
    changes = {
        "name": form.get("name"),
        "endpoint_url": form.get("endpoint_url"),
        "takes": form.get("takes").replace("，", ",").split(","),
        "sends": form.get("sends").replace("，", ",").split(","),
        "active": form.flag("active"),
    }
    try:
        changes["ack_warn_minutes"] = int(form.get("ack_warn_minutes"))
        changes["ack_escalate_minutes"] = int(form.get("ack_escalate_minutes"))
    except ValueError:
        return core.redirect("/admin/partners", err="签收时限须为整数分钟", at=f"p-{code}")
    try:
        with core.write_tx(state, user) as session:
            registry.update_partner(session, code, state.clock.now(), **changes)
    except ServiceError as e:
        return core.redirect("/admin/partners", err=core.service_message(e), at=f"p-{code}")
    return core.redirect("/admin/partners", msg=f"联动单位 {code} 已保存", at=f"p-{code}")
