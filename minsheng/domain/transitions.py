"""The explicit transition tables of the ticket and assignment state machines, and who may take each step.

Every state change in minsheng is checked here and nowhere else: `services.tickets` asks these tables before it
writes a row and its timeline event.
"""

from __future__ import annotations

from collections.abc import Mapping

from minsheng.domain.roles import Role
from minsheng.domain.states import AssignmentState as A
from minsheng.domain.states import LabelledEnum
from minsheng.domain.states import TicketState as T


class TicketAction(LabelledEnum):
    INTAKE = "intake"
    ANSWER_DIRECTLY = "answer_directly"
    TRANSFER = "transfer"
    DISPATCH = "dispatch"
    REDISPATCH = "redispatch"
    MARK_REPEAT = "mark_repeat"
    MERGE = "merge"
    CONFER = "confer"  # 会商 (a conference of units); not 咨询, which is the kind consultation
    PAUSE = "pause"
    RESUME = "resume"
    REQUEST_EXTENSION = "request_extension"
    DECIDE_EXTENSION = "decide_extension"
    REVIEW_ACCEPT = "review_accept"
    REVIEW_REJECT = "review_reject"
    FOLLOW_UP = "follow_up"
    FOLLOW_UP_UNREACHED = "follow_up_unreached"
    RATE = "rate"
    REOPEN = "reopen"
    # Consequences on the ticket of unit steps; taken by the engine, never requested directly.
    LEAD_SIGNED = "lead_signed"
    LEAD_RETURNED = "lead_returned"
    LEAD_REQUESTED_CLOSE = "lead_requested_close"

    @property
    def label(self) -> str:
        return ACTION_LABELS.get(self.value, self.value)


class AssignmentAction(LabelledEnum):
    SIGN = "sign"
    RETURN = "return"
    CONTACT = "contact"
    ARRIVE = "arrive"
    FEEDBACK = "feedback"
    REQUEST_CLOSE = "request_close"
    # Engine-driven consequences of ticket steps.
    CANCEL = "cancel"
    CLOSE = "close"
    REOPEN = "reopen"

    @property
    def label(self) -> str:
        return ACTION_LABELS.get(self.value, self.value)


ACTION_LABELS: dict[str, str] = {
    "intake": "受理",
    "answer_directly": "直接办结",
    "transfer": "转办",
    "dispatch": "派单",
    "redispatch": "改派",
    "mark_repeat": "标记重复件",
    "merge": "合并",
    "confer": "会商",
    "pause": "挂起",
    "resume": "恢复",
    "request_extension": "申请延期",
    "decide_extension": "延期审批",
    "review_accept": "审核通过",
    "review_reject": "审核退回",
    "follow_up": "回访",
    "follow_up_unreached": "回访未接通",
    "rate": "评价",
    "reopen": "重办",
    "lead_signed": "主办签收",
    "lead_returned": "主办退回",
    "lead_requested_close": "主办申请结案",
    "sign": "签收",
    "return": "退回",
    "contact": "联系群众",
    "arrive": "到场",
    "feedback": "反馈",
    "request_close": "申请结案",
    "cancel": "撤回",
    "close": "结案",
    # timeline-only events
    "warning": "预警",
    "overdue": "超时",
    "escalation": "督办",
    "press": "催办",
    "auto_dispatch": "自动派单",
    "cluster_warning": "一类事预警",
    "repeat_linked": "关联重复件",
    "attachment": "上传附件",
    "partner_ack": "对方签收",
    "partner_result": "对方办理结果",
    "partner_ack_warning": "转办未签收预警",
    "partner_ack_escalation": "转办未签收督办",
    "citizen_update": "群众补充",
    # supervision by people (services/supervision)
    "supervision_order": "督办",
    "supervision_answer": "督办回复",
    "supervision_overdue": "督办回复逾期",
    "remind": "催办",
    "watch": "提级盯办",
    "unwatch": "取消盯办",
    "instruct": "领导批示",
    "instruction_ack": "签收批示",
    "check_opened": "不满意核查",
    "check_reopen": "核查：重新办理",
    "check_explained": "核查：不合理诉求",
    "check_refused": "核查：复核不同意",
    "rating_excluded": "不合理诉求复核通过",
    "check_referred": "核查：移交问责",
}

_OPEN_BEFORE_CLOSE = (T.ACCEPTED, T.DISPATCHED, T.RETURNED, T.IN_PROGRESS, T.PAUSED)

TICKET_TRANSITIONS: Mapping[TicketAction, Mapping[T, T]] = {
    TicketAction.ANSWER_DIRECTLY: {T.ACCEPTED: T.CLOSED, T.RETURNED: T.CLOSED},
    TicketAction.TRANSFER: {T.ACCEPTED: T.TRANSFERRED, T.RETURNED: T.TRANSFERRED},
    TicketAction.DISPATCH: {T.ACCEPTED: T.DISPATCHED, T.RETURNED: T.DISPATCHED},
    TicketAction.REDISPATCH: {
        T.DISPATCHED: T.DISPATCHED,
        T.RETURNED: T.DISPATCHED,
        T.IN_PROGRESS: T.DISPATCHED,
    },
    TicketAction.MARK_REPEAT: {s: T.MERGED for s in _OPEN_BEFORE_CLOSE},
    TicketAction.MERGE: {s: T.MERGED for s in _OPEN_BEFORE_CLOSE},
    TicketAction.CONFER: {
        s: s for s in (T.DISPATCHED, T.RETURNED, T.IN_PROGRESS, T.PAUSED, T.CLOSE_REQUESTED)
    },
    TicketAction.PAUSE: {T.IN_PROGRESS: T.PAUSED},
    TicketAction.RESUME: {T.PAUSED: T.IN_PROGRESS},
    TicketAction.REQUEST_EXTENSION: {T.IN_PROGRESS: T.IN_PROGRESS, T.DISPATCHED: T.DISPATCHED},
    TicketAction.DECIDE_EXTENSION: {
        s: s for s in (T.DISPATCHED, T.IN_PROGRESS, T.PAUSED, T.CLOSE_REQUESTED, T.RETURNED)
    },
    TicketAction.REVIEW_ACCEPT: {T.CLOSE_REQUESTED: T.CLOSED},
    TicketAction.REVIEW_REJECT: {T.CLOSE_REQUESTED: T.IN_PROGRESS},
    TicketAction.FOLLOW_UP: {T.CLOSED: T.RATED},
    TicketAction.FOLLOW_UP_UNREACHED: {T.CLOSED: T.CLOSED},
    TicketAction.RATE: {T.CLOSED: T.RATED},
    TicketAction.REOPEN: {T.CLOSED: T.IN_PROGRESS, T.RATED: T.IN_PROGRESS},
    TicketAction.LEAD_SIGNED: {T.DISPATCHED: T.IN_PROGRESS},
    TicketAction.LEAD_RETURNED: {T.DISPATCHED: T.RETURNED, T.IN_PROGRESS: T.RETURNED},
    TicketAction.LEAD_REQUESTED_CLOSE: {T.IN_PROGRESS: T.CLOSE_REQUESTED},
}

ASSIGNMENT_TRANSITIONS: Mapping[AssignmentAction, Mapping[A, A]] = {
    AssignmentAction.SIGN: {A.PENDING: A.SIGNED},
    AssignmentAction.RETURN: {A.PENDING: A.RETURNED, A.SIGNED: A.RETURNED},
    AssignmentAction.CONTACT: {A.SIGNED: A.SIGNED, A.REPORTED: A.REPORTED},
    AssignmentAction.ARRIVE: {A.SIGNED: A.SIGNED, A.REPORTED: A.REPORTED},
    AssignmentAction.FEEDBACK: {A.SIGNED: A.REPORTED, A.REPORTED: A.REPORTED},
    AssignmentAction.REQUEST_CLOSE: {A.REPORTED: A.CLOSE_REQUESTED},
    AssignmentAction.CANCEL: {
        A.PENDING: A.CANCELLED,
        A.SIGNED: A.CANCELLED,
        A.REPORTED: A.CANCELLED,
        A.CLOSE_REQUESTED: A.CANCELLED,
    },
    AssignmentAction.CLOSE: {A.REPORTED: A.CLOSED, A.CLOSE_REQUESTED: A.CLOSED, A.SIGNED: A.CLOSED},
    AssignmentAction.REOPEN: {A.CLOSE_REQUESTED: A.SIGNED, A.CLOSED: A.SIGNED, A.REPORTED: A.SIGNED},
}

# A unit may only work on its assignment while the ticket itself is being handled.
ASSIGNMENT_ACTION_TICKET_STATES: Mapping[AssignmentAction, frozenset[T]] = {
    AssignmentAction.SIGN: frozenset({T.DISPATCHED, T.IN_PROGRESS, T.RETURNED}),
    AssignmentAction.RETURN: frozenset({T.DISPATCHED, T.IN_PROGRESS, T.RETURNED}),
    AssignmentAction.CONTACT: frozenset({T.IN_PROGRESS, T.DISPATCHED, T.RETURNED}),
    AssignmentAction.ARRIVE: frozenset({T.IN_PROGRESS, T.DISPATCHED, T.RETURNED}),
    AssignmentAction.FEEDBACK: frozenset({T.IN_PROGRESS, T.DISPATCHED, T.RETURNED}),
    AssignmentAction.REQUEST_CLOSE: frozenset({T.IN_PROGRESS}),
}

REQUESTABLE_TICKET_ACTIONS = frozenset(
    a
    for a in TicketAction
    if a not in (TicketAction.INTAKE, TicketAction.LEAD_SIGNED, TicketAction.LEAD_RETURNED)
    and a is not TicketAction.LEAD_REQUESTED_CLOSE
)
REQUESTABLE_ASSIGNMENT_ACTIONS = frozenset(ASSIGNMENT_ACTION_TICKET_STATES)

_DESK = frozenset({Role.OPERATOR, Role.DISPATCHER, Role.ADMIN})
_DISPATCH = frozenset({Role.DISPATCHER, Role.ADMIN, Role.SYSTEM})
_SUPERVISE = frozenset({Role.SUPERVISOR, Role.ADMIN})

TICKET_ACTION_ROLES: Mapping[TicketAction, frozenset[Role]] = {
    TicketAction.INTAKE: frozenset(
        {
            Role.OPERATOR,
            Role.DISPATCHER,
            Role.ADMIN,
            Role.CITIZEN,
            Role.INTEGRATION,
            Role.SYSTEM,
            Role.HANDLER,
        }
    ),
    TicketAction.ANSWER_DIRECTLY: _DESK,
    TicketAction.TRANSFER: _DESK | {Role.SYSTEM},
    TicketAction.DISPATCH: _DISPATCH,
    TicketAction.REDISPATCH: _DISPATCH | {Role.SUPERVISOR},
    TicketAction.MARK_REPEAT: _DISPATCH | _SUPERVISE | {Role.OPERATOR},
    TicketAction.MERGE: _DISPATCH | _SUPERVISE,
    TicketAction.CONFER: _SUPERVISE | {Role.DISPATCHER, Role.HANDLER},
    TicketAction.PAUSE: _SUPERVISE | {Role.HANDLER},
    TicketAction.RESUME: _SUPERVISE | {Role.HANDLER},
    TicketAction.REQUEST_EXTENSION: frozenset({Role.HANDLER}),
    TicketAction.DECIDE_EXTENSION: _SUPERVISE,
    TicketAction.REVIEW_ACCEPT: _SUPERVISE,
    TicketAction.REVIEW_REJECT: _SUPERVISE,
    # The system records the default rating of a ticket nobody answered for (services/followup.py).
    TicketAction.FOLLOW_UP: _SUPERVISE | {Role.FOLLOWUP, Role.SYSTEM},
    TicketAction.FOLLOW_UP_UNREACHED: _SUPERVISE | {Role.FOLLOWUP},
    TicketAction.RATE: frozenset({Role.CITIZEN}),
    TicketAction.REOPEN: _SUPERVISE | {Role.FOLLOWUP},
    TicketAction.LEAD_SIGNED: frozenset({Role.SYSTEM}),
    TicketAction.LEAD_RETURNED: frozenset({Role.SYSTEM}),
    TicketAction.LEAD_REQUESTED_CLOSE: frozenset({Role.SYSTEM}),
}

# Unit steps are also scoped: the handler must belong to the assignment's unit (checked by the engine).
ASSIGNMENT_ACTION_ROLES: Mapping[AssignmentAction, frozenset[Role]] = {
    AssignmentAction.SIGN: frozenset({Role.HANDLER}),
    AssignmentAction.RETURN: frozenset({Role.HANDLER}),
    AssignmentAction.CONTACT: frozenset({Role.HANDLER}),
    AssignmentAction.ARRIVE: frozenset({Role.HANDLER}),
    AssignmentAction.FEEDBACK: frozenset({Role.HANDLER}),
    AssignmentAction.REQUEST_CLOSE: frozenset({Role.HANDLER}),
    AssignmentAction.CANCEL: frozenset({Role.SYSTEM}),
    AssignmentAction.CLOSE: frozenset({Role.SYSTEM}),
    AssignmentAction.REOPEN: frozenset({Role.SYSTEM}),
}


class IllegalTransition(Exception):
    """A step that the current state does not allow; carries the steps that are allowed."""

    def __init__(self, machine: str, state: str, action: str, allowed: list[str]) -> None:
        self.machine = machine
        self.state = state
        self.action = action
        self.allowed = allowed
        super().__init__(
            f"{machine} in state '{state}' cannot '{action}'; allowed: {', '.join(allowed) or 'none'}"
        )


class Forbidden(Exception):
    """A step taken by a role or unit that may not take it."""


def allowed_ticket_actions(state: T) -> list[str]:
    return [
        a.value
        for a in TicketAction
        if a in REQUESTABLE_TICKET_ACTIONS and state in TICKET_TRANSITIONS.get(a, {})
    ]


def allowed_assignment_actions(state: A, ticket_state: T) -> list[str]:
    return [
        a.value
        for a in REQUESTABLE_ASSIGNMENT_ACTIONS
        if state in ASSIGNMENT_TRANSITIONS[a] and ticket_state in ASSIGNMENT_ACTION_TICKET_STATES[a]
    ]


def next_ticket_state(state: T, action: TicketAction) -> T:
    """The state a ticket moves to, or IllegalTransition listing what is allowed instead."""
    target = TICKET_TRANSITIONS.get(action, {}).get(state)
    if target is None:
        raise IllegalTransition("ticket", state.value, action.value, allowed_ticket_actions(state))
    return target


def next_assignment_state(state: A, action: AssignmentAction, ticket_state: T | None = None) -> A:
    """The state an assignment moves to, checking the ticket's state for unit steps."""
    target = ASSIGNMENT_TRANSITIONS.get(action, {}).get(state)
    needs = ASSIGNMENT_ACTION_TICKET_STATES.get(action)
    if target is None or (needs is not None and ticket_state is not None and ticket_state not in needs):
        allowed = allowed_assignment_actions(state, ticket_state) if ticket_state else []
        raise IllegalTransition("assignment", state.value, action.value, allowed)
    return target


def check_ticket_role(action: TicketAction, role: Role) -> None:
    if role not in TICKET_ACTION_ROLES[action]:
        raise Forbidden(f"role '{role.value}' may not '{action.value}'")


def check_assignment_role(action: AssignmentAction, role: Role) -> None:
    if role not in ASSIGNMENT_ACTION_ROLES[action]:
        raise Forbidden(f"role '{role.value}' may not '{action.value}'")
