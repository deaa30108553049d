"""Tickets: intake, lists, one ticket, its timeline, every step of the loop, attachments, inbox and queue."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, File, Header, Path, Query, Response, UploadFile
from fastapi.responses import FileResponse
from pydantic import AfterValidator, BaseModel

from minsheng.api.deps import CurrentUser, IdPath, StateDep
from minsheng.bootstrap import Platform
from minsheng.domain.roles import Actor, Role
from minsheng.domain.states import Channel, Kind, TicketState, Urgency
from minsheng.domain.transitions import AssignmentAction, TicketAction
from minsheng.http.uow import ReadSession, UnitOfWorkRoute, WriteSession
from minsheng.services import attachments, queries
from minsheng.services import schemas as s
from minsheng.services.actions import ASSIGNMENT_STEPS, TICKET_STEPS, Step
from minsheng.services.attachments import blob_path, sniff_image
from minsheng.services.errors import Invalid, PermissionDenied

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/api/v1", tags=["tickets"])

Number = Annotated[str, Path(pattern=r"^\d{8,20}$", description="ticket number, e.g. 2026112100001")]


async def intake_ticket(
    state: Platform, actor: Actor, req: s.IntakeRequest, response: Response
) -> dict[str, Any]:
    """Through the process's intake writer (group commit); answers once the ticket is committed."""
    out, code, created = await state.intake.submit(
        actor,
        req,
        state.clock.now(),
        render=lambda session, t: queries.intake_view(session, t, full=actor.role is not Role.CITIZEN),
    )
    response.status_code = 201 if created else 200
    out["created"] = created
    out["query_code"] = code
    return dict(out)


@router.post("/tickets", status_code=201, summary="Register a request (受理)")
async def create_ticket(
    state: StateDep,
    user: CurrentUser,
    req: s.IntakeRequest,
    response: Response,
    idempotency_key: Annotated[str | None, Header(min_length=8, max_length=128)] = None,
) -> dict[str, Any]:
    """The same idempotency key (header `Idempotency-Key` or field) with the same body returns the same ticket."""
    if idempotency_key and not req.idempotency_key:
        req = req.model_copy(update={"idempotency_key": idempotency_key})
    return await intake_ticket(state, user.actor, req, response)


@router.get("/tickets", summary="List tickets with filters (keyset pages)")
def list_tickets(
    session: ReadSession,
    user: CurrentUser,
    state: Annotated[list[TicketState] | None, Query()] = None,
    unit: Annotated[str | None, Query(pattern=s.CODE_RE)] = None,
    area: Annotated[str | None, Query(pattern=s.CODE_RE)] = None,
    category: Annotated[str | None, Query(pattern=s.CODE_RE)] = None,
    channel: Channel | None = None,
    kind: Kind | None = None,
    urgency: Urgency | None = None,
    created_from: Annotated[datetime | None, AfterValidator(s.utc_representable)] = None,
    created_to: Annotated[datetime | None, AfterValidator(s.utc_representable)] = None,
    text: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    with_total: bool = False,
) -> dict[str, Any]:
    for d in (created_from, created_to):
        if d is not None and d.tzinfo is None:
            raise Invalid("created_from / created_to need a timezone (e.g. 2026-11-21T00:00:00+08:00)")
    f = queries.TicketFilter(
        state=[x.value for x in state] if state else None,
        unit=unit,
        area=area,
        category=category,
        channel=channel.value if channel else None,
        kind=kind.value if kind else None,
        urgency=urgency.value if urgency else None,
        created_from=created_from,
        created_to=created_to,
        text=text,
    )
    rows, nxt, total = queries.list_tickets(
        session, user, f, limit=limit, cursor=cursor, with_total=with_total
    )
    return {
        "items": [queries.ticket_view(session, t, user, detail=False) for t in rows],
        "next_cursor": nxt,
        "total": total,
        "total_capped": total is not None and total > queries.TOTAL_CAP,
    }


@router.get("/tickets/{number}", summary="One ticket")
def get_ticket(session: ReadSession, user: CurrentUser, number: Number) -> dict[str, Any]:
    """A unit that handled the ticket before gets its own part, read-only, personal data masked."""
    t = queries.ticket_for(session, user, number, past=True)
    return queries.ticket_view(session, t, user)


@router.get("/tickets/{number}/timeline", summary="The ticket's timeline (audit trail)")
def get_timeline(session: ReadSession, user: CurrentUser, number: Number) -> list[dict[str, Any]]:
    t = queries.ticket_for(session, user, number, past=True)
    return queries.timeline(session, t, who=user)


@router.post("/tickets/{number}/attachments", status_code=201, summary="Attach a photo")
def upload_attachment(
    state: StateDep, user: CurrentUser, number: Number, file: Annotated[UploadFile, File()]
) -> dict[str, Any]:
    limit = state.settings.max_attachment_bytes
    # The form parser has spooled the upload; reading its spool blocks, so this handler is a plain def.
    data = file.file.read(limit + 1)
    att = attachments.upload(
        state.db,
        state.engine,
        state.settings.attachments_dir,
        user,
        number,
        file.filename or "",
        data,
        limit,
        state.clock.now(),
    )
    return {"id": att.id, "sha256": att.sha256, "content_type": att.content_type, "size": att.size}


@router.get("/attachments/{attachment_id}", summary="Download an attachment")
def get_attachment(
    state: StateDep, session: ReadSession, user: CurrentUser, attachment_id: IdPath
) -> FileResponse:
    att = queries.attachment_for(session, user, attachment_id)
    path = blob_path(state.settings.attachments_dir, att.sha256)
    # The type is sniffed again from the stored bytes (a blob stored before uploads were re-encoded may be no
    # image): an image is shown inline, anything else only downloaded, never rendered, never sniffed by the
    # browser, and sandboxed were it opened.
    with path.open("rb") as fh:
        ctype = sniff_image(fh.read(16))
    return FileResponse(
        path,
        media_type=ctype or "application/octet-stream",
        filename=att.filename,
        content_disposition_type="inline" if ctype else "attachment",
        headers={
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, max-age=3600",
        },
    )


# ---------------------------------------------------------------------- ticket steps


def _step_route(
    base: str, machine: str, action: TicketAction | AssignmentAction, model: type[BaseModel], handler: Any
) -> None:
    """POST {base}/{action}: the body is the step's schema (set on the handler, which FastAPI reads)."""
    handler.__annotations__["body"] = model
    router.add_api_route(
        f"{base}/{action.value}",
        handler,
        methods=["POST"],
        summary=f"{action.label} ({action.value})",
        name=f"{machine}_{action.value}",
    )


def _ticket_route(action: TicketAction, model: type[BaseModel], step: Step) -> None:
    def handler(
        state: StateDep, session: WriteSession, user: CurrentUser, number: Number, body: Any = Body(...)
    ) -> dict[str, Any]:
        queries.ticket_for(session, user, number)
        step(state.engine, session, user.actor, number, body, state.clock.now())
        session.flush()
        t = queries.ticket_for(session, user, number)
        return queries.ticket_view(session, t, user)

    _step_route("/tickets/{number}", "ticket", action, model, handler)
    for old in LEGACY_NAMES.get(action, ()):
        # The path of 0.1 clients, before the action was renamed: same handler, not in the schema.
        router.add_api_route(
            f"/tickets/{{number}}/{old}",
            handler,
            methods=["POST"],
            name=f"ticket_{old}",
            include_in_schema=False,
        )


# 会商 was `consult`, which is also 咨询 (the kind consultation): renamed `confer`, the old path still answers.
LEGACY_NAMES: dict[TicketAction, tuple[str, ...]] = {TicketAction.CONFER: ("consult",)}

for _action, (_model, _step) in TICKET_STEPS.items():
    _ticket_route(_action, _model, _step)


def _assignment_route(action: AssignmentAction, model: type[BaseModel]) -> None:
    def handler(
        state: StateDep,
        session: WriteSession,
        user: CurrentUser,
        assignment_id: IdPath,
        body: Any = Body(...),
    ) -> dict[str, Any]:
        a = state.engine.assignment_step(session, user.actor, assignment_id, action, body, state.clock.now())
        session.flush()
        t = a.ticket
        return queries.ticket_view(session, t, user)

    _step_route("/assignments/{assignment_id}", "assignment", action, model, handler)


for _aaction, _amodel in ASSIGNMENT_STEPS.items():
    _assignment_route(_aaction, _amodel)


@router.get("/inbox", summary="My unit's open assignments, soonest deadline first")
def get_inbox(
    session: ReadSession,
    user: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> list[dict[str, Any]]:
    out = []
    for a in queries.inbox(session, user, limit=limit, offset=offset):
        t = a.ticket
        item = queries.ticket_view(session, t, user, detail=False)
        item["assignment"] = queries.assignment_view(a, TicketState(t.state))
        out.append(item)
    return out


@router.get("/queue", summary="Tickets waiting for dispatch (new and returned)")
def get_queue(
    session: ReadSession,
    user: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> list[dict[str, Any]]:
    if user.role not in (Role.DISPATCHER, Role.SUPERVISOR, Role.ADMIN, Role.OPERATOR):
        raise PermissionDenied("the dispatch queue is for dispatchers")
    return [
        queries.ticket_view(session, t, user)
        for t in queries.dispatch_queue(session, limit=limit, offset=offset, who=user)
    ]
