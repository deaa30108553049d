"""Inbound channel gateways (issue 16): SMS, WeChat official account, call records. Each endpoint is called by
its gateway, not by a user: the gateway's signature is its only credential (a request without a valid one is
refused with 403 before anything is read from the database). The use cases live in `services.channels`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response

from minsheng.api.deps import CurrentUser, StateDep, require_roles
from minsheng.bootstrap import Platform
from minsheng.domain.roles import Role
from minsheng.http.uow import ReadSession, UnitOfWorkRoute, WriteSession
from minsheng.services.channels import calls, mailboxes, sms, wechat
from minsheng.services.channels.base import Context, GatewayRequest

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/api/v1/channels", tags=["channels"])
AdminOnly = require_roles(Role.ADMIN)
#: Who reads call records: the centre's roles and leaders (a handling unit has the ticket, not the call).
CallReaders = require_roles(
    Role.OPERATOR, Role.DISPATCHER, Role.SUPERVISOR, Role.FOLLOWUP, Role.LEADER, Role.ADMIN
)
Number = Annotated[str, Path(pattern=r"^\d{8,20}$")]
XML = "application/xml"


async def raw_body(request: Request) -> bytes:
    """The body exactly as sent: signatures are computed over its bytes (reading it awaits, nothing blocks)."""
    return await request.body()


RawBody = Annotated[bytes, Depends(raw_body)]


def context(state: Platform) -> Context:
    settings = state.settings
    return Context(
        engine=state.engine,
        now=state.clock.now(),
        hotline_name=settings.hotline_name,
        outbound=frozenset(state.senders),
        attachments_dir=settings.attachments_dir,
        max_attachment_bytes=settings.max_attachment_bytes,
    )


def _gateway(request: Request, body: bytes) -> GatewayRequest:
    return GatewayRequest(request.headers, request.query_params, body)


def _sms(state: Platform) -> sms.SmsAdapter:
    return sms.SmsAdapter(state.settings.channel_sms_secret, state.settings.channel_signature_max_age_seconds)


def _wechat(state: Platform) -> wechat.WeChatAdapter:
    s = state.settings
    return wechat.WeChatAdapter(
        s.wechat_token, s.channel_signature_max_age_seconds, aes_key=s.wechat_aes_key, app_id=s.wechat_app_id
    )


@router.post("/sms/inbound", summary="An upstream SMS from the SMS gateway (HMAC-signed)")
def sms_inbound(state: StateDep, session: WriteSession, request: Request, body: RawBody) -> dict[str, Any]:
    return sms.inbound(session, context(state), _sms(state), _gateway(request, body))


@router.get("/wechat", summary="WeChat's server URL verification (echoes echostr)", response_class=Response)
def wechat_verify(state: StateDep, request: Request) -> Response:
    echo = wechat.verify_url(_wechat(state), _gateway(request, b""), state.clock.now())
    return Response(echo, media_type="text/plain")


@router.post("/wechat", summary="A message to the official account (signed XML); the passive reply")
def wechat_inbound(state: StateDep, session: WriteSession, request: Request, body: RawBody) -> Response:
    xml = wechat.inbound(session, context(state), _wechat(state), _gateway(request, body))
    return Response(xml, media_type=XML)


@router.post("/calls", summary="Call records from the telephony system (HMAC-signed)")
def calls_inbound(state: StateDep, session: WriteSession, request: Request, body: RawBody) -> dict[str, Any]:
    secret = state.settings.channel_calls_secret
    max_age = state.settings.channel_signature_max_age_seconds
    return calls.inbound(session, state.clock.now(), secret, max_age, request.headers, body)


@router.get(
    "/calls/ticket/{number}", summary="The call records linked to a ticket", dependencies=[CallReaders]
)
def ticket_calls(session: ReadSession, user: CurrentUser, number: Number) -> list[dict[str, Any]]:
    return calls.for_ticket(session, user, number)


@router.get(
    "/calls/mine", summary="The caller's own latest calls (operator desk)", dependencies=[CallReaders]
)
def my_calls(session: ReadSession, user: CurrentUser) -> list[dict[str, Any]]:
    return calls.recent(session, user.username)


@router.get("/mailboxes", summary="Leaders' mailboxes (领导信箱) and their units", dependencies=[AdminOnly])
def list_mailboxes(session: ReadSession) -> list[dict[str, Any]]:
    return mailboxes.listing(session)


@router.put("/mailboxes", summary="Add or change a leader's mailbox", dependencies=[AdminOnly])
def put_mailbox(state: StateDep, session: WriteSession, body: mailboxes.MailboxIn) -> dict[str, Any]:
    return mailboxes.put(session, body, state.clock.now())
