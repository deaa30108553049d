"""Open311 GeoReport v2 under /open311/v2 (issue 16; docs/INTEGRATIONS.md), in XML and JSON by the path's
extension, with the specification's errors (`[{"code", "description"}]`, 400/403/404, and 429 over a limit).

Who may call: anyone may read (GETs are counted per client address, `open311_read_limit`); POSTs need the
`api_key` of an integration (`minsheng open311 key`), counted per key (`open311_key_limit`). The handlers only
parse and render: the rules are in `services.open311*`.

Every parameter is taken as text and checked by the services, so that a bad one gets GeoReport's error in the
format asked for rather than the JSON API's 422.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request
from fastapi.responses import FileResponse, Response

from minsheng.api.deps import StateDep
from minsheng.api.open311 import render
from minsheng.bootstrap import Platform
from minsheng.domain.digits import whole_number
from minsheng.http.limits import client_address
from minsheng.http.uow import ReadSession, UnitOfWorkRoute
from minsheng.services import open311, open311_catalogue, open311_intake
from minsheng.services.attachments import blob_path, sniff_image
from minsheng.services.errors import ServiceError
from minsheng.services.open311_keys import Open311Error, count_read
from minsheng.services.schemas import MAX_ID

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/open311", tags=["open311"])
Param = Annotated[str | None, Query()]
Form = dict[str, list[str]]
F = TypeVar("F", bound=Callable[..., Any])
_SPEC_STATUSES = (400, 403, 404, 429)


def spec_errors(handler: F) -> F:
    """Any other service error of a handler answered in GeoReport's format (Open311Error's handler)."""

    @functools.wraps(handler)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return handler(*args, **kwargs)
        except Open311Error:
            raise
        except ServiceError as e:
            raise Open311Error(e.status if e.status in _SPEC_STATUSES else 400, e.message) from None

    return run  # type: ignore[return-value]


async def read_form(request: Request) -> Form:
    """The POSTed form's fields (GeoReport posts application/x-www-form-urlencoded); no files."""
    ctype = request.headers.get("content-type", "").lower()
    if not ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        raise Open311Error(400, "send the request as a form (application/x-www-form-urlencoded)")
    try:
        data = await request.form(max_files=0, max_fields=500)
    except Exception:  # a malformed body, or a file (photos come as media_url)
        raise Open311Error(
            400, "the form could not be read (files are not accepted: send media_url)"
        ) from None
    out: Form = {}
    for key, value in data.multi_items():
        if not isinstance(value, str) or "\x00" in key or "\x00" in value:
            raise Open311Error(400, "the form holds a file or a NUL character")
        out.setdefault(key, []).append(value)
    return out


FormDep = Annotated[Form, Depends(read_form)]


def _fmt(fmt: str) -> str:
    if fmt not in render.FORMATS:
        raise Open311Error(404, f"format {fmt[:20]} is not served: use .json or .xml")
    return fmt


def _base(state: Platform, request: Request) -> str:
    return (state.settings.open311_base_url or str(request.base_url)).rstrip("/")


def _read(state: Platform, request: Request, fmt: str, jurisdiction_id: str | None) -> str:
    """What every GET does first: the format, the per-address count, the jurisdiction."""
    fmt = _fmt(fmt)
    count_read(state.db, state.settings, state.clock, client_address(request))
    open311.check_jurisdiction(state.settings, jurisdiction_id)
    return fmt


@router.get("/discovery.{fmt}", summary="Service discovery")
@router.get("/v2/discovery.{fmt}", summary="Service discovery")
@spec_errors
def discovery(request: Request, state: StateDep, fmt: str) -> Response:
    fmt = _read(state, request, fmt, None)
    return render.answer(fmt, "discovery", open311.discovery(state.settings, _base(state, request)))


@router.get("/v2/services.{fmt}", summary="GET service list")
@spec_errors
def services(
    request: Request, state: StateDep, session: ReadSession, fmt: str, jurisdiction_id: Param = None
) -> Response:
    fmt = _read(state, request, fmt, jurisdiction_id)
    return render.answer(fmt, "services", open311_catalogue.services_list(session))


@router.get("/v2/services/{service_code}.{fmt}", summary="GET service definition")
@spec_errors
def service_definition(
    request: Request,
    state: StateDep,
    session: ReadSession,
    service_code: str,
    fmt: str,
    jurisdiction_id: Param = None,
) -> Response:
    fmt = _read(state, request, fmt, jurisdiction_id)
    return render.answer(fmt, "service_definition", open311_catalogue.definition(session, service_code))


@router.get("/v2/requests.{fmt}", summary="GET service requests (filters; page, page_size, extensions)")
@spec_errors
def requests(
    request: Request,
    state: StateDep,
    session: ReadSession,
    fmt: str,
    jurisdiction_id: Param = None,
    service_request_id: Param = None,
    service_code: Param = None,
    start_date: Param = None,
    end_date: Param = None,
    status: Param = None,
    page: Param = None,
    page_size: Param = None,
    extensions: Param = None,
) -> Response:
    fmt = _read(state, request, fmt, jurisdiction_id)
    params = {
        "service_request_id": service_request_id,
        "service_code": service_code,
        "start_date": start_date,
        "end_date": end_date,
        "status": status,
        "page": page,
        "page_size": page_size,
        "extensions": extensions,
    }
    q = open311.parse_query(params, state.clock.now())
    rows = open311.list_requests(session, state.settings, q, _base(state, request))
    return render.answer(fmt, "service_requests", rows)


@router.post("/v2/requests.{fmt}", summary="POST service request (form; api_key)")
@spec_errors
def post_request(
    request: Request,
    state: StateDep,
    fmt: str,
    form: FormDep,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> Response:
    """A plain def: it waits (in its worker thread) for the intake writer to commit the ticket."""
    fmt = _fmt(fmt)
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= 200:
        raise Open311Error(400, "Idempotency-Key must have 1 to 200 characters")
    rows, created = open311_intake.submit(
        state.db, state.intake, state.settings, state.clock, form, explicit_key=idempotency_key
    )
    return render.answer(fmt, "service_requests", rows, status=201 if created else 200)


@router.get("/v2/requests/{service_request_id}.{fmt}", summary="GET service request")
@spec_errors
def one_request(
    request: Request,
    state: StateDep,
    session: ReadSession,
    service_request_id: str,
    fmt: str,
    jurisdiction_id: Param = None,
    extensions: Param = None,
) -> Response:
    fmt = _read(state, request, fmt, jurisdiction_id)
    wanted = (extensions or "").lower() in ("true", "1", "yes")
    rows = open311.one_request(
        session, state.settings, service_request_id, _base(state, request), extensions=wanted
    )
    return render.answer(fmt, "service_requests", rows)


@router.get("/v2/tokens/{token}.{fmt}", summary="GET service_request_id from a token")
@spec_errors
def token(
    request: Request,
    state: StateDep,
    session: ReadSession,
    token: str,
    fmt: str,
    jurisdiction_id: Param = None,
) -> Response:
    fmt = _read(state, request, fmt, jurisdiction_id)
    return render.answer(fmt, "service_requests", open311.token(session, state.settings, token))


@router.get("/v2/servicerequestupdates.{fmt}", summary="GET request updates (mySociety's extension)")
@spec_errors
def updates(
    request: Request,
    state: StateDep,
    session: ReadSession,
    fmt: str,
    jurisdiction_id: Param = None,
    start_date: Param = None,
    end_date: Param = None,
    page: Param = None,
    page_size: Param = None,
) -> Response:
    fmt = _read(state, request, fmt, jurisdiction_id)
    params = {"start_date": start_date, "end_date": end_date, "page": page, "page_size": page_size}
    rows = open311.updates(session, state.settings, params, state.clock.now(), _base(state, request))
    return render.answer(fmt, "service_request_updates", rows)


@router.post("/v2/servicerequestupdates.{fmt}", summary="POST a citizen's update (mySociety's extension)")
@spec_errors
def post_update(request: Request, state: StateDep, fmt: str, form: FormDep) -> Response:
    fmt = _fmt(fmt)
    rows = open311_intake.post_update(state.db, state.engine, state.settings, state.clock, form)
    return render.answer(fmt, "service_request_updates", rows)


@router.get("/v2/media/{attachment_id}", summary="A public photo of a published request (media_url)")
@spec_errors
def media(request: Request, state: StateDep, session: ReadSession, attachment_id: str) -> FileResponse:
    count_read(state.db, state.settings, state.clock, client_address(request))
    ident = whole_number(attachment_id, 1, MAX_ID)
    if ident is None:
        raise Open311Error(404, f"media {attachment_id[:20]} was not found")
    att = open311.public_photo(session, state.settings, ident)
    path = blob_path(state.settings.attachments_dir, att.sha256)
    if not path.is_file():  # a blob lost from the disk (a restore without attachments): not found, not a 500
        raise Open311Error(404, f"media {attachment_id} was not found")
    # Only an image is published, its type sniffed again from the stored bytes (as the staff download does).
    with path.open("rb") as fh:
        ctype = sniff_image(fh.read(16))
    if ctype is None:
        raise Open311Error(404, f"media {attachment_id} was not found")
    return FileResponse(
        path,
        media_type=ctype,
        headers={
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "public, max-age=3600",
        },
    )


async def _open311_error(request: Request, e: Exception) -> Response:
    # Async and without I/O: it renders the error in the format the path asked for.
    assert isinstance(e, Open311Error)
    return render.error(render.fmt_of(request.url.path), e)


def install(app: FastAPI) -> None:
    """The routes and the error answer of Open311 (called by `api.app.install`)."""
    app.add_exception_handler(Open311Error, _open311_error)
    app.include_router(router)
