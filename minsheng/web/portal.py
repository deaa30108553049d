"""The citizens' portal: submit a request (text, category, photo, address or map point), get a number and a
query code, track the public timeline, rate; a public board of consented tickets; the service catalogue.
"""

from __future__ import annotations

import functools
import threading
import time
from collections import OrderedDict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from minsheng.domain.digits import ascii_digits
from minsheng.domain.masking import mask_address
from minsheng.domain.roles import Actor
from minsheng.domain.states import Channel, Rating, TicketState, Urgency
from minsheng.http.uow import UnitOfWorkRoute
from minsheng.services import kb, org, queries
from minsheng.services import schemas as s
from minsheng.services.attachments import Blob, check_filename, record_attachment, save_blob
from minsheng.services.errors import Invalid, NotFound, ServiceError
from minsheng.web import core, views
from minsheng.web.console import intake_from
from minsheng.web.core import FormDep, MaybeUser, StateDep

router = APIRouter(route_class=UnitOfWorkRoute, include_in_schema=False)


class _Receipts:
    """Query codes by idempotency key for a few minutes, so a double-submitted form still shows the code.

    The code is stored only hashed in the database; the key is known only to the browser that had the form.
    """

    def __init__(self, ttl: float = 900.0, size: int = 5000) -> None:
        self.ttl, self.size = ttl, size
        self.items: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self.lock = threading.Lock()

    def put(self, key: str, code: str) -> None:
        with self.lock:
            self.items[key] = (time.monotonic() + self.ttl, code)
            while len(self.items) > self.size:
                self.items.popitem(last=False)

    def get(self, key: str) -> str | None:
        with self.lock:
            hit = self.items.get(key)
        return hit[1] if hit and hit[0] > time.monotonic() else None


def _receipts(request: Request) -> _Receipts:
    r = getattr(request.app.state, "minsheng_receipts", None)
    if r is None:
        r = request.app.state.minsheng_receipts = _Receipts()
    return r


def _portal_ctx(state: Any) -> dict[str, Any]:
    with core.read_tx(state) as session:
        return {
            "categories": [c for c in org.category_options(session) if c["level"] <= 2],
            "geo": org.city_map(session),
        }


@functools.wraps(core.read_form)  # read_form itself, its errors in the portal's words
async def portal_form(request: Request) -> core.Form:
    """The portal's form, read before anything else that reads it: a field over the form parser's 1 MB per part
    is answered in Chinese (the parser's own 400 is an English sentence)."""
    try:
        return await core.read_form(request)
    except HTTPException as e:
        if e.status_code == 400 and "maximum size" in str(e.detail):
            raise Invalid("提交的内容过长：每项内容不能超过 1 MB，请删减后重新提交") from None
        raise


PortalForm = Annotated[core.Form, Depends(portal_form)]
CITIZEN_URGENCY = (
    "群众提交的诉求按一般程度受理，紧急程度由热线工作人员判定；紧急情况请拨打 110、119、120 或热线电话"
)


@router.get("/")
def portal(request: Request, state: StateDep, user: MaybeUser) -> Response:
    ctx = _portal_ctx(state) | {"values": {"idempotency_key": core.new_key()}}
    return core.render(request, "portal.html", ctx, user=user)


@router.post("/")
def portal_submit(request: Request, state: StateDep, form: PortalForm, user: MaybeUser) -> Response:
    errors: dict[str, str] = {}
    req = None
    try:
        req = intake_from(form, channel=Channel.WEB.value)
    except ValidationError as e:
        errors = core.field_errors(e)
    if req is not None and req.urgency not in (None, Urgency.NORMAL):
        # As the API refuses it: the urgency, and with it a unit's sign deadline, is for triage and staff to set.
        errors["_form"] = CITIZEN_URGENCY
    photos = [(name, data) for f, name, data in form.files if f == "photo"]
    blobs: list[Blob] = []
    for name, data in photos:
        try:
            check_filename(name)
        except ServiceError:
            errors["photo"] = "文件名不合法"
            continue
        if len(data) > state.settings.max_attachment_bytes:
            errors["photo"] = f"照片不能超过 {state.settings.max_attachment_bytes // (1024 * 1024)} MB"
            continue
        try:
            # Decoded, cleaned of its metadata and written here, before any transaction.
            blobs.append(
                save_blob(state.settings.attachments_dir, name, data, state.settings.max_attachment_bytes)
            )
        except ServiceError:
            errors["photo"] = "只接受能正常打开的 JPEG、PNG、GIF 或 WebP 图片（不得夹带网页代码）"
    if req is None or errors:
        ctx = _portal_ctx(state) | {"errors": errors, "values": form.values()}
        return core.render(request, "portal.html", ctx, user=user, status=422)
    now = state.clock.now()
    number, code, created = state.intake.submit_sync(Actor.citizen(), req, now)
    key = req.idempotency_key or ""
    if created and code:
        if key:
            _receipts(request).put(key, code)
        if blobs:
            with core.write_tx(state) as session:
                t = queries.ticket_by_number(session, number)
                for blob in blobs:
                    # The citizen's own photo: a note the citizen sees on the timeline.
                    record_attachment(session, state.engine, t, Actor.citizen(), blob, now, public=True)
    else:
        code = _receipts(request).get(key)
    return core.render(
        request,
        "receipt.html",
        {"number": number, "code": code, "replayed": not created},
        user=user,
        status=201,
    )


@router.get("/track")
def track_page(request: Request, user: MaybeUser) -> Response:
    return core.render(
        request, "track.html", {"values": {"number": request.query_params.get("number", "")}}, user=user
    )


def _tracked(state: Any, number: str, code: str) -> dict[str, Any]:
    with core.read_tx(state) as session:
        t = queries.ticket_for_citizen(session, number, code)
        view = queries.ticket_view(session, t, None, citizen=True)
        view["timeline"] = queries.timeline(session, t, public_only=True)
    return view


def _track_errors(form: core.Form) -> dict[str, str]:
    errors = {}
    number, code = form.get("number").strip(), form.get("query_code").strip()
    if not ascii_digits(number) or not 8 <= len(number) <= 20:
        errors["number"] = "请输入正确的工单编号（数字）"
    if not 4 <= len(code) <= 16:
        errors["query_code"] = "请输入查询码"
    return errors


@router.post("/track")
def track(request: Request, state: StateDep, form: FormDep, user: MaybeUser) -> Response:
    errors = _track_errors(form)
    t = None
    if not errors:
        try:
            t = _tracked(state, form.get("number").strip(), form.get("query_code").strip())
        except NotFound:
            errors["query_code"] = "编号或查询码不正确"
    status = 422 if errors else 200
    ctx = {"errors": errors, "values": form.values(), "t": t, "ratings": [(r.value, r.label) for r in Rating]}
    return core.render(request, "track.html", ctx, user=user, status=status)


@router.post("/track/rate")
def track_rate(request: Request, state: StateDep, form: FormDep, user: MaybeUser) -> Response:
    errors = _track_errors(form)
    number, code = form.get("number").strip(), form.get("query_code").strip()
    if not errors:
        try:
            rate = s.Rate.model_validate({"rating": form.get("rating"), "comment": form.opt("comment")})
            with core.write_tx(state) as session:
                queries.ticket_for_citizen(session, number, code)
                state.engine.rate(session, Actor.citizen(), number, rate, state.clock.now())
        except ValidationError:
            errors["rating"] = "请选择满意度"
        except NotFound:
            errors["query_code"] = "编号或查询码不正确"
        except ServiceError as e:
            errors["rating"] = core.service_message(e)
        except Exception as e:  # IllegalTransition: not closed yet
            errors["rating"] = core.service_message(e)
    t = None
    if "query_code" not in errors and "number" not in errors:
        t = _tracked(state, number, code)
    ctx = {
        "errors": errors,
        "values": form.values(),
        "t": t,
        "ratings": [(r.value, r.label) for r in Rating],
        "rated": not errors,
    }
    return core.render(request, "track.html", ctx, user=user, status=422 if errors else 200)


@router.get("/public")
def public_board(request: Request, state: StateDep, user: MaybeUser) -> Response:
    now = state.clock.now()
    with core.read_tx(state) as session:
        rows = queries.public_board(session, now, days=30, limit=30)
        names = queries.Names(session, rows)
        items = []
        for t in rows:
            row = views.brief(t, names, None)
            row["address"] = mask_address(t.address)
            row["detail"] = None
            items.append(row)
    done = {TicketState.CLOSED.value, TicketState.RATED.value}
    return core.render(request, "public.html", {"items": items, "done": done}, user=user)


@router.get("/help")
def help_search(request: Request, state: StateDep, user: MaybeUser) -> Response:
    q = (request.query_params.get("q") or "").strip()[:100]
    with core.read_tx(state) as session:
        rows = (
            kb.search(session, q, public_only=True, limit=20)
            if q
            else kb.latest(session, public_only=True, limit=20)
        )
        items = [
            {"id": e.id, "title": e.title, "body": e.body, "department": e.department, "kind": e.kind}
            for e in rows
        ]
    return core.render(request, "help.html", {"items": items, "q": q}, user=user)
