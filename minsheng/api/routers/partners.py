"""The partners' side of the linkage with 110 and peer hotlines (docs/INTEGRATIONS.md, "Partners").

Partner systems call these without a login: every call is signed with the partner's shared secret
(`X-Partner-Timestamp`, `X-Partner-Signature`) and checked before anything is read from its body. The raw body is
what is signed, so the handlers read it as bytes (from their worker thread, through the event loop) and the
services parse it after the check. Administrators list the registry (secrets masked).
"""

from __future__ import annotations

from typing import Annotated, Any

import anyio.from_thread
from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel

from minsheng.api.deps import require_roles
from minsheng.domain.roles import Role
from minsheng.http.common import StateDep
from minsheng.http.uow import ReadSession, UnitOfWorkRoute, WriteSession
from minsheng.services.partners import callbacks, inbound, registry


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inline(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


def _body(model: type[BaseModel]) -> dict[str, Any]:
    """The documented request body (the handlers read the raw bytes: they are what is signed)."""
    schema = model.model_json_schema()
    schema = _inline(schema, schema.get("$defs", {}))
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


router = APIRouter(route_class=UnitOfWorkRoute, prefix="/api/v1/partners", tags=["partners"])
Code = Annotated[
    str, Path(pattern=registry.CODE_PATTERN, description="the partner's code, e.g. 110 or 12315")
]
SIGNED: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing, stale or wrong signature"},
    404: {"description": "no active partner with this code"},
}


def _raw(request: Request) -> bytes:
    return anyio.from_thread.run(request.body)


@router.post(
    "/{code}/transfers",
    status_code=201,
    responses=SIGNED,
    summary="A partner transfers a matter to us",
    openapi_extra=_body(inbound.InboundTransfer),
)
def receive_transfer(code: Code, request: Request, response: Response, state: StateDep) -> dict[str, Any]:
    """201 with our ticket number; 200 with the same number when the incident id was posted before."""
    body = _raw(request)
    tolerance = state.settings.partner_signature_tolerance_seconds
    ack, created = inbound.receive_transfer(
        state.db, state.intake, code, request.headers, body, state.clock.now(), tolerance
    )
    response.status_code = 201 if created else 200
    return ack


@router.post(
    "/{code}/acks",
    responses=SIGNED,
    summary="A partner acknowledges our transfer",
    openapi_extra=_body(callbacks.Ack),
)
def receive_ack(code: Code, request: Request, session: WriteSession, state: StateDep) -> dict[str, Any]:
    body = _raw(request)
    tolerance = state.settings.partner_signature_tolerance_seconds
    return callbacks.record_ack(
        state.engine, session, code, request.headers, body, state.clock.now(), tolerance
    )


@router.post(
    "/{code}/results",
    responses=SIGNED,
    summary="A partner reports its result on our transfer",
    openapi_extra=_body(callbacks.Result),
)
def receive_result(code: Code, request: Request, session: WriteSession, state: StateDep) -> dict[str, Any]:
    body = _raw(request)
    tolerance = state.settings.partner_signature_tolerance_seconds
    return callbacks.record_result(
        state.engine, session, code, request.headers, body, state.clock.now(), tolerance
    )


@router.get("", dependencies=[require_roles(Role.ADMIN)], summary="The partner registry (secrets masked)")
def list_partners(session: ReadSession) -> dict[str, Any]:
    return {"items": [registry.partner_json(p) for p in registry.list_partners(session)]}
