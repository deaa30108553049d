"""The staff console: operator desk, dispatch queue, unit inbox, supervisor board, follow-up desk, ticket
pages, and the form endpoints that take each step of the loop through `services.tickets`.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from minsheng.bootstrap import Platform
from minsheng.domain.roles import Role
from minsheng.domain.states import AssignmentRole, Channel, ExtensionState, Rating, TicketState
from minsheng.domain.transitions import AssignmentAction, IllegalTransition, TicketAction
from minsheng.http.common import IdPath
from minsheng.http.uow import UnitOfWorkRoute
from minsheng.services import followup as followup_service
from minsheng.services import kb, org, queries
from minsheng.services import schemas as s
from minsheng.services.actions import ASSIGNMENT_STEPS, TICKET_STEPS
from minsheng.services.attachments import Blob, record_attachment, save_blob
from minsheng.services.auth import Principal
from minsheng.services.errors import ServiceError
from minsheng.services.suggest import suggest
from minsheng.services.supervision import views as supervision_views
from minsheng.web import core, views
from minsheng.web.core import FormDep, StateDep

router = APIRouter(route_class=UnitOfWorkRoute, include_in_schema=False)
Number = Annotated[str, Path(pattern=r"^\d{8,20}$")]
DeskUser = Annotated[Principal, core.need(core.DESK_ROLES)]
QueueUser = Annotated[Principal, core.need(core.QUEUE_ROLES)]
HandlerUser = Annotated[Principal, core.need(Role.HANDLER)]
BoardUser = Annotated[Principal, core.need(core.BOARD_ROLES)]
FollowupUser = Annotated[Principal, core.need(core.FOLLOWUP_ROLES)]
StaffUser = Annotated[Principal, core.need(core.STAFF)]
BOARD_EVENTS = ("warning", "overdue", "escalation", "press", "cluster_warning")
PAGE = 30


# ---------------------------------------------------------------------- operator desk


def _desk_ctx(session: Session) -> dict[str, Any]:
    return {
        "categories": org.category_options(session),
        "areas": org.area_options(session),
    }


@router.get("/desk")
def desk(request: Request, state: StateDep, user: DeskUser) -> Response:
    with core.read_tx(state) as session:
        ctx = _desk_ctx(session)
    ctx |= {
        "values": {"channel": "phone", "idempotency_key": core.new_key()},
        "last": request.query_params.get("n"),
    }
    return core.render(request, "desk.html", ctx, user=user)


INTAKE_FIELDS = [
    "channel",
    "kind",
    "urgency",
    "category_code",
    "title",
    "detail",
    "address",
    "lat",
    "lon",
    "area_code",
    "citizen_name",
    "citizen_phone",
    "citizen_id_number",
    "idempotency_key",
]


def intake_from(form: core.Form, channel: str | None = None) -> s.IntakeRequest:
    data: dict[str, Any] = {k: form.opt(k) for k in INTAKE_FIELDS if form.opt(k) is not None}
    if channel:
        data["channel"] = channel
    data["confidential"] = form.flag("confidential")
    data["public_consent"] = form.flag("public_consent")
    return s.IntakeRequest.model_validate(data)


@router.post("/desk")
def desk_submit(request: Request, state: StateDep, user: DeskUser, form: FormDep) -> Response:
    errors: dict[str, str] = {}
    req = None
    try:
        req = intake_from(form)
    except ValidationError as e:
        errors = core.field_errors(e)
    action = form.get("action", "intake")
    answer = form.opt("answer")
    target = form.opt("target")
    if action == "answer" and not answer:
        errors["answer"] = "直接办结需要填写答复内容"
    if action == "transfer" and not target:
        errors["target"] = "请选择转办对象"
    if req is None or errors:
        with core.read_tx(state) as session:
            ctx = _desk_ctx(session)
        return core.render(
            request, "desk.html", ctx | {"errors": errors, "values": form.values()}, user=user, status=422
        )
    now = state.clock.now()
    try:
        number, _code, created = state.intake.submit_sync(user.actor, req, now)
        if created and action in ("answer", "transfer"):
            with core.write_tx(state) as session:
                if action == "answer":
                    state.engine.answer_directly(
                        session, user.actor, number, s.AnswerDirectly(answer=answer or ""), now
                    )
                else:
                    step = s.Transfer.model_validate({"target": target, "note": form.opt("note")})
                    state.engine.transfer(session, user.actor, number, step, now)
    except (ServiceError, ValidationError) as e:
        with core.read_tx(state) as session:
            ctx = _desk_ctx(session)
        msg = core.service_message(e) if isinstance(e, ServiceError) else "输入有误"
        return core.render(
            request,
            "desk.html",
            ctx | {"errors": {"_form": msg}, "values": form.values()},
            user=user,
            status=409,
        )
    done = {"answer": "已直接办结", "transfer": "已转办"}.get(action, "已受理")
    note = "" if created else "（重复提交，未重复建单）"
    return core.redirect(f"/desk?n={number}", msg=f"工单 {number} {done}{note}")


@router.post("/desk/suggest")
def desk_suggest(request: Request, state: StateDep, user: DeskUser, form: FormDep) -> Response:
    """Live suggestions while the operator types (HTMX): triage if wired, earlier tickets, KB answers."""
    title, detail = form.get("title"), form.get("detail")
    phone = form.opt("citizen_phone")
    lat = _coordinate(form.opt("lat"), 90)
    lon = _coordinate(form.opt("lon"), 180)
    text = f"{title} {detail}".strip()
    with core.read_tx(state) as session:
        try:
            out = dict(
                suggest(
                    session,
                    state.triage,
                    title=title,
                    detail=detail,
                    address=form.opt("address"),
                    lat=lat if lon is not None else None,
                    lon=lon if lat is not None else None,
                    phone=phone,
                )
            )
            out["triage_wired"] = True
        except ServiceError:
            out = {"triage_wired": False}  # e.g. lat and lon not both given: show what we know
        # Earlier tickets and full KB answers are computed here the same way whether triage is wired or not.
        earlier = []
        if phone:
            rows = queries.earlier_from(session, user, phone, limit=5)
            names = queries.Names(session, rows)
            earlier = [views.brief(t, names, user) for t in rows]
        out["earlier"] = earlier
        out["answers"] = (
            [
                {"id": e.id, "title": e.title, "body": e.body, "department": e.department}
                for e in kb.search(session, text, limit=4)
            ]
            if len(text) >= 2
            else []
        )
    return core.render(request, "_suggest.html", {"s": out, "typed": bool(text)}, user=user)


def _coordinate(v: str | None, limit: float) -> float | None:
    """A coordinate half typed into the desk: used when it is one (NaN, inf and 1e999 are not), else ignored."""
    try:
        x = float(v) if v else None
    except ValueError:
        return None
    return x if x is not None and math.isfinite(x) and abs(x) <= limit else None


# ---------------------------------------------------------------------- dispatch queue


@router.get("/queue")
def queue(request: Request, state: StateDep, user: QueueUser) -> Response:
    sel = request.query_params.get("sel")
    with core.read_tx(state) as session:
        returned = queries.waiting(session, user, TicketState.RETURNED, PAGE)
        new = queries.waiting(session, user, TicketState.ACCEPTED, PAGE)
        names = queries.Names(session, returned + new)
        rows = [views.brief(t, names, user) | {"returns": views.returns(t)} for t in returned + new]
        panel = None
        number = sel or (rows[0]["number"] if rows else None)
        if number:
            t = queries.ticket_for(session, user, number)
            panel = queries.ticket_view(session, t, user)
            panel["returns"] = views.returns(t)
            panel["units"] = org.unit_options(session)
    ctx = {"returned": rows[: len(returned)], "new": rows[len(returned) :], "panel": panel, "sel": number}
    return core.render(request, "queue.html", ctx, user=user)


# ---------------------------------------------------------------------- unit inbox


@router.get("/inbox")
def inbox(request: Request, state: StateDep, user: HandlerUser) -> Response:
    now = state.clock.now()
    with core.read_tx(state) as session:
        items = []
        assignments = queries.inbox(session, user, limit=50)
        # The inbox loaded the page's tickets with it: their names in one query each, not one per row.
        names = queries.Names(session, [a.ticket for a in assignments])
        for a in assignments:
            t = a.ticket
            row = views.brief(t, names, user, pii=True)
            row["a"] = queries.assignment_view(a, TicketState(t.state))
            row["due"] = core.countdown(views.due_of(a), now)
            row["is_lead"] = a.role == AssignmentRole.LEAD.value
            row["attachments"] = []
            items.append(row)
        sv_block = supervision_views.inbox_block(session, user, now)
    # Late first, then soonest: the query sorts by deadline, this keeps undated work last.
    return core.render(request, "inbox.html", {"items": items, "sv_block": sv_block}, user=user)


# ---------------------------------------------------------------------- supervisor board


@router.get("/board")
def board(request: Request, state: StateDep, user: BoardUser) -> Response:
    now = state.clock.now()
    with core.read_tx(state) as session:
        review = queries.waiting(session, user, TicketState.CLOSE_REQUESTED, PAGE)
        paused = queries.waiting(session, user, TicketState.PAUSED, PAGE)
        returned = queries.waiting(session, user, TicketState.RETURNED, PAGE)
        dissatisfied = queries.dissatisfied(session, user, PAGE)
        ext_rows = queries.pending_extensions(session, user, PAGE)
        names = queries.Names(session, review + paused + returned + dissatisfied + [t for _, t in ext_rows])
        events = queries.recent_events(session, user, now - timedelta(days=3), BOARD_EVENTS, PAGE)
        ctx = {
            "review": [views.brief(t, names, user) for t in review],
            "paused": [views.brief(t, names, user) for t in paused],
            "returned": [views.brief(t, names, user) | {"returns": views.returns(t)} for t in returned],
            "dissatisfied": [views.brief(t, names, user) for t in dissatisfied],
            "extensions": [
                {"id": e.id, "hours": e.hours, "reason": e.reason, "requested_at": e.requested_at}
                | {"t": views.brief(t, names, user)}
                for e, t in ext_rows
            ],
            "events": [
                {"at": e.at, "action": e.action, "payload": e.payload, "number": n, "title": title}
                for e, n, title in events
            ],
            "can_act": user.role in (Role.SUPERVISOR, Role.ADMIN),
        }
    return core.render(request, "board.html", ctx, user=user)


# ---------------------------------------------------------------------- follow-up desk


@router.get("/followup")
def followup(request: Request, state: StateDep, user: FollowupUser) -> Response:
    params = request.query_params
    f = followup_service.FollowUpFilter(
        **{k: (params.get(k) or "").strip()[:32] or None for k in ("unit", "category", "channel")}
    )
    error, status = None, 200
    with core.read_tx(state) as session:
        shares = state.settings.followup_sample
        try:
            closed = followup_service.queue(session, user, f, shares=shares, limit=PAGE)
        except ServiceError as e:
            closed, error, status = [], core.service_message(e), 400
        now = state.clock.now()
        load = followup_service.workload(session, now - timedelta(days=30), now)
        dissatisfied = queries.dissatisfied(session, user, 10)
        names = queries.Names(session, closed + dissatisfied)
        ctx = {
            "closed": [views.brief(t, names, user, pii=True) for t in closed],
            "dissatisfied": [views.brief(t, names, user, pii=True) for t in dissatisfied],
            "ratings": [(r.value, r.label) for r in Rating],
            "filter": f,
            "filter_error": error,
            "units": org.unit_options(session),
            "categories": [c for c in org.category_options(session) if c["level"] == 1],
            "channels": [(c.value, c.label) for c in Channel],
            "waiting": followup_service.waiting_count(session, shares),
            "mine": next((w for w in load if w["user_id"] == user.user_id), None),
            # Supervisors and admins see every follow-up worker's month; a worker sees their own.
            "workload": load if user.role in (Role.SUPERVISOR, Role.ADMIN) else [],
            "default_days": state.settings.followup_default_days,
        }
    return core.render(request, "followup.html", ctx, user=user, status=status)


# ---------------------------------------------------------------------- tickets


@router.get("/tickets")
def ticket_list(request: Request, state: StateDep, user: StaffUser) -> Response:
    qp = request.query_params
    text = (qp.get("q") or "").strip()[:100] or None
    st = qp.get("state") or None
    f = queries.TicketFilter(state=[st] if st in TicketState.values() else None, text=text)
    with core.read_tx(state) as session:
        rows, nxt, _ = queries.list_tickets(session, user, f, limit=PAGE, cursor=qp.get("cursor") or None)
        names = queries.Names(session, rows)
        items = [views.brief(t, names, user) for t in rows]
    ctx = {"items": items, "next": nxt, "q": text or "", "state": st or "", "states": list(TicketState)}
    return core.render(request, "tickets.html", ctx, user=user)


@router.get("/tickets/{number}")
def ticket_page(request: Request, state: StateDep, user: StaffUser, number: Number) -> Response:
    with core.read_tx(state) as session:
        t = queries.ticket_for(session, user, number, past=True)
        view = queries.ticket_view(session, t, user)
        timeline = queries.timeline(session, t, who=user)
        rep_rows = queries.repeats_of(session, t, user, limit=20)
        related = queries.related(
            session,
            t,
            user,
            same_phone=bool(t.citizen_phone) and view["citizen_phone"] == t.citizen_phone,
            same_area=queries.can_see_all(user.role),
        )
        names = queries.Names(session, [*rep_rows, *related])
        # The unit's current assignments: a unit that handled the ticket before only reads it.
        mine = [
            a
            for a in t.assignments
            if user.role is Role.HANDLER and a.unit_id == user.unit_id and queries.is_current(a)
        ]
        ctx = {
            "t": view,
            "timeline": timeline,
            "repeats": [views.brief(r, names, user) for r in rep_rows],
            "related": [views.brief(r, names, user) for r in related],
            "units": org.unit_options(session) if user.role in core.QUEUE_ROLES else [],
            "mine": [queries.assignment_view(a, TicketState(t.state)) for a in mine],
            "mine_lead": any(a.role == AssignmentRole.LEAD.value for a in mine),
            "geo": org.city_map(session) if t.lat is not None and t.lon is not None else None,
            "can": set(view["allowed_actions"]),  # offered_ticket_steps: what this viewer may take now
            "read_only": bool(view.get("read_only")),
            "ratings": [(r.value, r.label) for r in Rating],
            "pending_ext": [e for e in view["extensions"] if e["state"] == ExtensionState.PENDING.value],
            "triage_pending": queries.triage_pending(session, t) and queries.can_see_all(user.role),
            "sv": None
            if view.get("read_only")
            else supervision_views.ticket_panel(session, t, user, state.clock.now()),
        }
    return core.render(request, "ticket.html", ctx, user=user)


# ---------------------------------------------------------------------- steps taken from forms

LIST_FIELDS = {"assist_units", "participants"}
BOOL_FIELDS = {"first_receiver", "approve"}


def _params(model: type[BaseModel], form: core.Form) -> BaseModel:
    data: dict[str, Any] = {}
    for name in model.model_fields:
        if name in LIST_FIELDS:
            data[name] = (
                [v for v in form.getlist(name) if v != form.get("lead_unit")]
                if name == "assist_units"
                else form.getlist(name)
            )
        elif name in BOOL_FIELDS:
            if name in form.multi:
                data[name] = form.flag(name)
        elif name == "attachment_ids":
            continue
        elif form.opt(name) is not None:
            data[name] = form.opt(name)
    return model.model_validate(data)


@router.post("/tickets/{number}/act/{action}")
def ticket_act(
    request: Request, state: StateDep, user: StaffUser, form: FormDep, number: Number, action: str
) -> Response:
    back = core.safe_next(form.get("next"), f"/tickets/{number}")
    if action not in {a.value for a in TICKET_STEPS}:
        return core.redirect(back, err="未知操作", at=number)
    model, step = TICKET_STEPS[TicketAction(action)]
    try:
        params = _params(model, form)
        with core.write_tx(state) as session:
            queries.ticket_for(session, user, number)
            step(state.engine, session, user.actor, number, params, state.clock.now())
    except ValidationError as e:
        fe = core.field_errors(e)
        field, msg = next(iter(fe.items()))
        return core.redirect(back, err=f"{_FIELD_LABELS.get(field, field)}：{msg}", at=number)
    except (ServiceError, IllegalTransition) as e:
        return core.redirect(back, err=core.service_message(e), at=number)
    return core.redirect(
        back, msg=f"工单 {number}：{core.LABELS['action'].get(action, action)}成功", at=number
    )


_FIELD_LABELS = {
    "reason": "原因",
    "note": "备注",
    "lead_unit": "主办单位",
    "assist_units": "协办单位",
    "answer": "答复",
    "target": "转办对象",
    "ticket": "关联工单编号",
    "decision": "会商结论",
    "hours": "延期小时数",
    "rating": "满意度",
    "text": "反馈内容",
    "summary": "办结说明",
    "method": "方式",
    "file": "照片",
}


@router.post("/assignments/{assignment_id}/act/{action}")
def assignment_act(
    request: Request, state: StateDep, user: HandlerUser, form: FormDep, assignment_id: IdPath, action: str
) -> Response:
    back = core.safe_next(form.get("next"), "/inbox")
    at = form.get("at") or f"a{assignment_id}"
    if action not in {a.value for a in ASSIGNMENT_STEPS}:
        return core.redirect(back, err="未知操作", at=at)
    now = state.clock.now()
    try:
        params = _params(ASSIGNMENT_STEPS[AssignmentAction(action)], form)
        # A feedback's photos are decoded, cleaned and written before the write transaction (no lock held).
        root, limit = state.settings.attachments_dir, state.settings.max_attachment_bytes
        feedback = action == AssignmentAction.FEEDBACK.value
        blobs = [save_blob(root, name, data, limit) for _f, name, data in form.files] if feedback else []
        with core.write_tx(state) as session:
            if blobs:
                params = _attach(state, session, user, assignment_id, blobs, params)
            state.engine.assignment_step(
                session, user.actor, assignment_id, AssignmentAction(action), params, now
            )
    except ValidationError as e:
        field, msg = next(iter(core.field_errors(e).items()))
        return core.redirect(back, err=f"{_FIELD_LABELS.get(field, field)}：{msg}", at=at)
    except (ServiceError, IllegalTransition) as e:
        return core.redirect(back, err=core.service_message(e), at=at)
    return core.redirect(back, msg=f"{core.LABELS['action'].get(action, action)}成功", at=at)


def _attach(
    state: Platform,
    session: Session,
    user: Principal,
    assignment_id: int,
    blobs: list[Blob],
    params: BaseModel,
) -> BaseModel:
    a = queries.own_assignment(session, user, assignment_id)
    if a is None:
        return params
    t = queries.ticket_for(session, user, a.ticket.number)
    # The feedback's photos: public notes, as the feedback is.
    now = state.clock.now()
    ids = [record_attachment(session, state.engine, t, user.actor, b, now, public=True).id for b in blobs]
    assert isinstance(params, s.Feedback)
    return params.model_copy(update={"attachment_ids": [*params.attachment_ids, *ids]})
