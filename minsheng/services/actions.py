"""One table of the loop's steps as the entry points offer them: for each ticket and assignment action, the
body it takes (a schema of `services.schemas`) and the engine call that makes it. The JSON API builds one route
per action from it, and the console's forms take the same steps through it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy.orm import Session

from minsheng.domain.roles import Actor
from minsheng.domain.transitions import AssignmentAction, TicketAction
from minsheng.services import schemas as s
from minsheng.services.tickets import TicketEngine

Step = Callable[[TicketEngine, Session, Actor, str, Any, datetime], Any]


def _link(action: TicketAction) -> Step:
    return lambda e, ss, a, n, p, now: e.link(ss, a, n, p, now, action)


TICKET_STEPS: dict[TicketAction, tuple[type[BaseModel], Step]] = {
    TicketAction.ANSWER_DIRECTLY: (
        s.AnswerDirectly,
        lambda e, ss, a, n, p, now: e.answer_directly(ss, a, n, p, now),
    ),
    TicketAction.TRANSFER: (s.Transfer, lambda e, ss, a, n, p, now: e.transfer(ss, a, n, p, now)),
    TicketAction.DISPATCH: (s.Dispatch, lambda e, ss, a, n, p, now: e.dispatch(ss, a, n, p, now)),
    TicketAction.REDISPATCH: (s.Redispatch, lambda e, ss, a, n, p, now: e.dispatch(ss, a, n, p, now)),
    TicketAction.MARK_REPEAT: (s.LinkTicket, _link(TicketAction.MARK_REPEAT)),
    TicketAction.MERGE: (s.LinkTicket, _link(TicketAction.MERGE)),
    TicketAction.CONFER: (s.Conference, lambda e, ss, a, n, p, now: e.confer(ss, a, n, p, now)),
    TicketAction.PAUSE: (s.WithReason, lambda e, ss, a, n, p, now: e.pause(ss, a, n, p, now)),
    TicketAction.RESUME: (s.WithNote, lambda e, ss, a, n, p, now: e.resume(ss, a, n, p, now)),
    TicketAction.REQUEST_EXTENSION: (
        s.RequestExtension,
        lambda e, ss, a, n, p, now: e.request_extension(ss, a, n, p, now),
    ),
    TicketAction.DECIDE_EXTENSION: (
        s.DecideExtension,
        lambda e, ss, a, n, p, now: e.decide_extension(ss, a, n, p, now),
    ),
    TicketAction.REVIEW_ACCEPT: (
        s.WithNote,
        lambda e, ss, a, n, p, now: e.review(ss, a, n, True, p.note, now),
    ),
    TicketAction.REVIEW_REJECT: (
        s.WithReason,
        lambda e, ss, a, n, p, now: e.review(ss, a, n, False, p.reason, now),
    ),
    TicketAction.FOLLOW_UP: (s.FollowUp, lambda e, ss, a, n, p, now: e.follow_up(ss, a, n, p, now)),
    TicketAction.FOLLOW_UP_UNREACHED: (
        s.WithNote,
        lambda e, ss, a, n, p, now: e.follow_up_unreached(ss, a, n, p, now),
    ),
    TicketAction.REOPEN: (s.WithReason, lambda e, ss, a, n, p, now: e.reopen(ss, a, n, p, now)),
}

ASSIGNMENT_STEPS: dict[AssignmentAction, type[BaseModel]] = {
    AssignmentAction.SIGN: s.WithNote,
    AssignmentAction.RETURN: s.WithReason,
    AssignmentAction.CONTACT: s.Contact,
    AssignmentAction.ARRIVE: s.WithNote,
    AssignmentAction.FEEDBACK: s.Feedback,
    AssignmentAction.REQUEST_CLOSE: s.RequestClose,
}
