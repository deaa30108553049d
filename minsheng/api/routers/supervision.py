"""Supervision by people (issue 17, section 1): 督办 orders and their answers, 催办 reminders, leaders' watches
and instructions (批示), and the checks of dissatisfied ratings. Thin: every rule is in
`services.supervision` (who may take each step: `services.supervision.common.RULES`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from minsheng.api.deps import CurrentUser, IdPath, StateDep, require_roles
from minsheng.domain.roles import Role
from minsheng.http.uow import ReadSession, UnitOfWorkRoute, WriteSession
from minsheng.services import queries
from minsheng.services.errors import Invalid
from minsheng.services.supervision import checks, instructions, orders, reminders, watch
from minsheng.services.supervision import schemas as sv

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/api/v1/supervision", tags=["supervision"])
Number = Annotated[str, Path(pattern=r"^\d{8,20}$", description="ticket number")]
Supervisors = require_roles(Role.SUPERVISOR, Role.LEADER)
Readers = require_roles(Role.SUPERVISOR, Role.LEADER, Role.FOLLOWUP, Role.ADMIN)
Handlers = require_roles(Role.HANDLER)
Leaders = require_roles(Role.LEADER)
Checkers = require_roles(Role.FOLLOWUP, Role.SUPERVISOR)
Approvers = require_roles(Role.FOLLOWUP, Role.SUPERVISOR, Role.LEADER)
When = Annotated[datetime | None, Query()]


def _channels(state: Any) -> frozenset[str]:
    return frozenset(state.clockwork.config.channels)


# --------------------------------------------------------------------------------------------- orders
@router.post("/orders", status_code=201, dependencies=[Supervisors], summary="Raise a 督办")
def raise_order(
    body: sv.OrderIn, state: StateDep, session: WriteSession, user: CurrentUser
) -> dict[str, Any]:
    p = orders.NewOrder(tuple(body.tickets), body.reason, body.hours, body.level, body.unit)
    o = orders.raise_order(session, state.engine, user, p, state.clock.now(), _channels(state))
    return {"id": o.id, "answer_due_at": o.answer_due_at}


@router.get("/orders", summary="Orders: all for the centre's readers, the unit's own for a handler")
def list_orders(
    state: StateDep,
    session: ReadSession,
    user: CurrentUser,
    open_only: bool = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    return {"items": orders.list_orders(session, user, state.clock.now(), open_only=open_only, limit=limit)}


@router.post("/orders/{order_id}/answer", dependencies=[Handlers], summary="The unit's written answer")
def answer_order(
    order_id: IdPath, body: sv.AnswerIn, state: StateDep, session: WriteSession, user: CurrentUser
) -> dict[str, Any]:
    o = orders.answer_order(
        session, state.engine, user, order_id, body.answer, state.clock.now(), _channels(state)
    )
    return {
        "id": o.id,
        "answered_at": o.answered_at,
        "late": o.answered_at > o.answer_due_at if o.answered_at else None,
    }


@router.get("/measures", dependencies=[Readers], summary="Orders per unit and answers on time")
def order_measures(
    state: StateDep, session: ReadSession, since: When = None, until: When = None
) -> dict[str, Any]:
    now = state.clock.now()
    if (since is not None and since.tzinfo is None) or (until is not None and until.tzinfo is None):
        raise Invalid("since / until need a timezone (e.g. 2026-11-21T00:00:00+08:00)")
    try:  # 0001-01-01T00:00+14:00 is before the first instant a datetime holds in UTC
        until = (until or now).astimezone(UTC)
        since = since.astimezone(UTC) if since is not None else until - timedelta(days=30)
    except OverflowError:
        raise Invalid("since / until out of range") from None
    return {"since": since, "until": until, "units": orders.measures(session, since, until, now)}


# ------------------------------------------------------------------------------------------ reminders
@router.post("/tickets/{number}/reminders", dependencies=[Supervisors], summary="Remind the holding unit")
def remind(
    number: Number, body: sv.RemindIn, state: StateDep, session: WriteSession, user: CurrentUser
) -> dict[str, Any]:
    n = reminders.remind(session, state.engine, user, number, body.note, state.clock.now(), _channels(state))
    return {"ticket": number, "reminders": n}


# ------------------------------------------------------------------------------------ watch, instructions
@router.post("/tickets/{number}/watch", dependencies=[Leaders], summary="Take the ticket under watch")
def start_watch(number: Number, state: StateDep, session: WriteSession, user: CurrentUser) -> dict[str, Any]:
    return {"ticket": number, "started": watch.watch(session, state.engine, user, number, state.clock.now())}


@router.delete("/tickets/{number}/watch", dependencies=[Leaders], summary="Stop watching the ticket")
def stop_watch(number: Number, state: StateDep, session: WriteSession, user: CurrentUser) -> dict[str, Any]:
    return {
        "ticket": number,
        "stopped": watch.unwatch(session, state.engine, user, number, state.clock.now()),
    }


@router.get("/watch", dependencies=[Leaders], summary="The tickets the leader watches")
def watched(session: ReadSession, user: CurrentUser) -> dict[str, Any]:
    rows = watch.watched(session, user)
    return {
        "items": [{"ticket": t.number, "title": t.title, "state": t.state, "since": at} for t, at in rows]
    }


@router.post("/tickets/{number}/instructions", status_code=201, dependencies=[Leaders], summary="批示")
def instruct(
    number: Number, body: sv.InstructionIn, state: StateDep, session: WriteSession, user: CurrentUser
) -> dict[str, Any]:
    row = instructions.instruct(
        session, state.engine, user, number, body.text, state.clock.now(), _channels(state)
    )
    return {"id": row.id, "ticket": number}


@router.get("/instructions", summary="Search instructions on the tickets the caller may see")
def search_instructions(
    session: ReadSession,
    user: CurrentUser,
    q: Annotated[str | None, Query(max_length=100)] = None,
    pending: bool = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    if not queries.can_see_all(user.role) and user.role is not Role.HANDLER:
        return {"items": []}
    return {"items": instructions.search(session, user, text=q or None, pending_only=pending, limit=limit)}


@router.post("/instructions/{instruction_id}/ack", dependencies=[Handlers], summary="The unit acknowledges")
def ack_instruction(
    instruction_id: IdPath, state: StateDep, session: WriteSession, user: CurrentUser
) -> dict[str, Any]:
    row = instructions.acknowledge(session, state.engine, user, instruction_id, state.clock.now())
    return {"id": row.id, "acked_at": row.acked_at}


# --------------------------------------------------------------------------------------------- checks
@router.get("/checks", dependencies=[Readers], summary="Checks of dissatisfied ratings")
def list_checks(
    session: ReadSession,
    user: CurrentUser,
    state: Annotated[str | None, Query(pattern="^(open|explained|closed)$")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    return {"items": checks.list_checks(session, user, state=state, limit=limit)}


@router.post("/checks/{check_id}/decision", dependencies=[Checkers], summary="Decide a check")
def decide_check(
    check_id: IdPath, body: sv.DecisionIn, state: StateDep, session: WriteSession, user: CurrentUser
) -> dict[str, Any]:
    c = checks.decide(
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
    return {"id": c.id, "state": c.state, "outcome": c.outcome}


@router.post("/checks/{check_id}/approval", dependencies=[Approvers], summary="A second person approves")
def approve_check(
    check_id: IdPath, body: sv.ApprovalIn, state: StateDep, session: WriteSession, user: CurrentUser
) -> dict[str, Any]:
    c = checks.approve(session, state.engine, user, check_id, body.approve, state.clock.now(), body.note)
    return {"id": c.id, "state": c.state, "outcome": c.outcome}
