"""The console's supervision pages (issue 17, section 1): 督办 (/supervision: orders, their answers and the
measures), a leader's watched tickets (/watch), the search of leaders' instructions (/instructions), the checks
of dissatisfied ratings (/checks), and the form endpoints of every supervision step, also reached from a
ticket's page. Thin: the rules are in `services.supervision`."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError

from minsheng.domain.roles import Role
from minsheng.domain.transitions import IllegalTransition
from minsheng.http.common import IdPath
from minsheng.http.uow import UnitOfWorkRoute
from minsheng.services import org
from minsheng.services.auth import Principal
from minsheng.services.errors import ServiceError
from minsheng.services.supervision import checks, instructions, orders, reminders, watch
from minsheng.services.supervision import schemas as sv
from minsheng.services.supervision.common import LEVELS
from minsheng.web import core
from minsheng.web.core import FormDep, StateDep

router = APIRouter(route_class=UnitOfWorkRoute, include_in_schema=False)
Number = Annotated[str, Path(pattern=r"^\d{8,20}$")]
READERS = frozenset({Role.SUPERVISOR, Role.LEADER, Role.FOLLOWUP, Role.ADMIN})
ReaderOrUnit = Annotated[Principal, core.need(READERS | {Role.HANDLER})]
Supervisor = Annotated[Principal, core.need(Role.SUPERVISOR, Role.LEADER)]
Handler = Annotated[Principal, core.need(Role.HANDLER)]
Leader = Annotated[Principal, core.need(Role.LEADER)]
Reader = Annotated[Principal, core.need(READERS)]
Checker = Annotated[Principal, core.need(Role.FOLLOWUP, Role.SUPERVISOR)]
Approver = Annotated[Principal, core.need(Role.FOLLOWUP, Role.SUPERVISOR, Role.LEADER)]
Staff = Annotated[Principal, core.need(core.STAFF)]
_LABELS = {
    "tickets": "工单编号",
    "reason": "督办事由",
    "hours": "回复时限",
    "level": "督办级别",
    "unit": "责任单位",
    "answer": "回复内容",
    "text": "批示内容",
    "note": "备注",
    "outcome": "核查结论",
    "justification": "说明",
    "referred_to": "移交对象",
}


def _step(
    state: Any, user: Principal, back: str, done: str, at: str | None, run: Callable[[Any], Any]
) -> Response:
    """Run one step in a write transaction; a refusal or a bad field comes back as a message, never a 500."""
    try:
        with core.write_tx(state, user) as session:
            run(session)
    except ValidationError as e:
        field, msg = next(iter(core.field_errors(e).items()))
        return core.redirect(back, err=f"{_LABELS.get(field, field)}：{msg}", at=at)
    except (ServiceError, IllegalTransition) as e:
        return core.redirect(back, err=core.service_message(e), at=at)
    return core.redirect(back, msg=done, at=at)


def _model(model: type[BaseModel], data: dict[str, Any]) -> Any:
    return model.model_validate({k: v for k, v in data.items() if v is not None})


def _channels(state: Any) -> frozenset[str]:
    return frozenset(state.clockwork.config.channels)


# --------------------------------------------------------------------------------------------- 督办
@router.get("/supervision")
def supervision_page(request: Request, state: StateDep, user: ReaderOrUnit) -> Response:
    now = state.clock.now()
    with core.read_tx(state) as session:
        rows = orders.list_orders(session, user, now, limit=100)
        measures = (
            orders.measures(session, now - timedelta(days=30), now, now) if user.role in READERS else []
        )
        units = org.unit_options(session) if user.role in (Role.SUPERVISOR, Role.LEADER) else []
    ctx = {
        "orders": rows,
        "measures": measures,
        "units": units,
        "levels": LEVELS,
        "can_raise": user.role in (Role.SUPERVISOR, Role.LEADER),
        "ticket": request.query_params.get("ticket", "")[:20],
    }
    return core.render(request, "supervision/orders.html", ctx, user=user)


@router.post("/supervision/orders")
def raise_order(request: Request, state: StateDep, user: Supervisor, form: FormDep) -> Response:
    back = core.safe_next(form.get("next"), "/supervision")
    numbers = [n for n in re.split(r"[\s,，、;；]+", form.get("tickets")) if n]

    def run(session: Any) -> None:
        body = _model(
            sv.OrderIn,
            {
                "tickets": numbers,
                "reason": form.opt("reason"),
                "hours": form.opt("hours"),
                "level": form.opt("level"),
                "unit": form.opt("unit"),
            },
        )
        p = orders.NewOrder(tuple(body.tickets), body.reason, body.hours, body.level, body.unit)
        orders.raise_order(session, state.engine, user, p, state.clock.now(), _channels(state))

    return _step(state, user, back, "督办已下达", "sv", run)


@router.post("/supervision/orders/{order_id}/answer")
def answer_order(
    request: Request, state: StateDep, user: Handler, form: FormDep, order_id: IdPath
) -> Response:
    back = core.safe_next(form.get("next"), "/supervision")

    def run(session: Any) -> None:
        body = _model(sv.AnswerIn, {"answer": form.opt("answer")})
        orders.answer_order(
            session, state.engine, user, order_id, body.answer, state.clock.now(), _channels(state)
        )

    return _step(state, user, back, "督办回复已提交", f"o{order_id}", run)


# ----------------------------------------------------------------------------- steps from a ticket page
@router.post("/tickets/{number}/supervision/remind")
def remind(request: Request, state: StateDep, user: Supervisor, form: FormDep, number: Number) -> Response:
    back = core.safe_next(form.get("next"), f"/tickets/{number}")
    done: list[int] = []

    def run(session: Any) -> None:
        body = _model(sv.RemindIn, {"note": form.opt("note")})
        done.append(
            reminders.remind(
                session, state.engine, user, number, body.note, state.clock.now(), _channels(state)
            )
        )

    resp = _step(state, user, back, "已催办", "sv", run)
    return core.redirect(back, msg=f"已催办（第 {done[0]} 次）", at="sv") if done else resp


@router.post("/tickets/{number}/supervision/watch")
def toggle_watch(request: Request, state: StateDep, user: Leader, form: FormDep, number: Number) -> Response:
    back = core.safe_next(form.get("next"), f"/tickets/{number}")
    stop = form.flag("stop")

    def run(session: Any) -> None:
        step = watch.unwatch if stop else watch.watch
        step(session, state.engine, user, number, state.clock.now())

    return _step(state, user, back, "已取消盯办" if stop else "已提级盯办", "sv", run)


@router.post("/tickets/{number}/supervision/instruct")
def instruct(request: Request, state: StateDep, user: Leader, form: FormDep, number: Number) -> Response:
    back = core.safe_next(form.get("next"), f"/tickets/{number}")

    def run(session: Any) -> None:
        body = _model(sv.InstructionIn, {"text": form.opt("text")})
        instructions.instruct(
            session, state.engine, user, number, body.text, state.clock.now(), _channels(state)
        )

    return _step(state, user, back, "批示已送达承办单位", "sv", run)


@router.post("/supervision/instructions/{instruction_id}/ack")
def ack(request: Request, state: StateDep, user: Handler, form: FormDep, instruction_id: IdPath) -> Response:
    back = core.safe_next(form.get("next"), "/inbox")

    def run(session: Any) -> None:
        instructions.acknowledge(session, state.engine, user, instruction_id, state.clock.now())

    return _step(state, user, back, "批示已签收", f"i{instruction_id}", run)


# ------------------------------------------------------------------------------ watch and instructions
@router.get("/watch")
def watch_page(request: Request, state: StateDep, user: Leader) -> Response:
    with core.read_tx(state) as session:
        rows = [
            {
                "number": t.number,
                "title": t.title,
                "state": t.state,
                "since": at,
                "due": core.countdown(t.resolve_due_at, state.clock.now()),
            }
            for t, at in watch.watched(session, user)
        ]
    return core.render(request, "supervision/watch.html", {"items": rows}, user=user)


@router.get("/instructions")
def instructions_page(request: Request, state: StateDep, user: Staff) -> Response:
    q = (request.query_params.get("q") or "").strip()[:100]
    with core.read_tx(state) as session:
        rows = instructions.search(session, user, text=q or None, limit=100)
    return core.render(request, "supervision/instructions.html", {"items": rows, "q": q}, user=user)


# --------------------------------------------------------------------------------------------- checks
@router.get("/checks")
def checks_page(request: Request, state: StateDep, user: Reader) -> Response:
    st = request.query_params.get("state") or None
    st = st if st in checks.STATES else None
    with core.read_tx(state) as session:
        rows = checks.list_checks(session, user, state=st, limit=100)
    ctx = {"items": rows, "state": st or "", "states": checks.STATES, "outcomes": checks.OUTCOMES}
    return core.render(request, "supervision/checks.html", ctx, user=user)


@router.post("/supervision/checks/{check_id}/decide")
def decide(request: Request, state: StateDep, user: Checker, form: FormDep, check_id: IdPath) -> Response:
    back = core.safe_next(form.get("next"), "/checks")

    def run(session: Any) -> None:
        body = _model(
            sv.DecisionIn,
            {
                "outcome": form.opt("outcome"),
                "justification": form.opt("justification"),
                "referred_to": form.opt("referred_to"),
            },
        )
        checks.decide(
            session,
            state.engine,
            user,
            check_id,
            body.outcome,
            state.clock.now(),
            justification=body.justification,
            referred_to=body.referred_to,
            channels=_channels(state),
        )

    return _step(state, user, back, "核查结论已记录", f"c{check_id}", run)


@router.post("/supervision/checks/{check_id}/approve")
def approve(request: Request, state: StateDep, user: Approver, form: FormDep, check_id: IdPath) -> Response:
    back = core.safe_next(form.get("next"), "/checks")
    yes = form.flag("approve")

    def run(session: Any) -> None:
        body = _model(sv.ApprovalIn, {"approve": yes, "note": form.opt("note")})
        checks.approve(session, state.engine, user, check_id, body.approve, state.clock.now(), body.note)

    return _step(
        state,
        user,
        back,
        "复核通过：不计入满意率" if yes else "复核不同意：核查重新打开",
        f"c{check_id}",
        run,
    )
