"""The transition tables, exhaustively: every state × every action is either a listed move or refused."""

from __future__ import annotations

import pytest

from minsheng.domain import transitions as tx
from minsheng.domain.roles import Role
from minsheng.domain.states import (
    ACTIVE_ASSIGNMENT_STATES,
    OPEN_TICKET_STATES,
    TERMINAL_TICKET_STATES,
    AssignmentState,
    TicketState,
)
from minsheng.domain.transitions import AssignmentAction, TicketAction

TICKET_CASES = [(s, a) for s in TicketState for a in TicketAction if a is not TicketAction.INTAKE]
ASSIGNMENT_CASES = [(s, a, t) for s in AssignmentState for a in AssignmentAction for t in TicketState]


@pytest.mark.parametrize(
    ("state", "action"), TICKET_CASES, ids=[f"{s.value}-{a.value}" for s, a in TICKET_CASES]
)
def test_ticket_state_action(state: TicketState, action: TicketAction) -> None:
    expected = tx.TICKET_TRANSITIONS.get(action, {}).get(state)
    if expected is None:
        with pytest.raises(tx.IllegalTransition) as e:
            tx.next_ticket_state(state, action)
        assert e.value.allowed == tx.allowed_ticket_actions(state)
        assert action.value not in e.value.allowed
    else:
        assert tx.next_ticket_state(state, action) is expected


@pytest.mark.parametrize(
    ("state", "action", "ticket_state"),
    ASSIGNMENT_CASES,
    ids=[f"{s.value}-{a.value}-{t.value}" for s, a, t in ASSIGNMENT_CASES],
)
def test_assignment_state_action(
    state: AssignmentState, action: AssignmentAction, ticket_state: TicketState
) -> None:
    target = tx.ASSIGNMENT_TRANSITIONS[action].get(state)
    needs = tx.ASSIGNMENT_ACTION_TICKET_STATES.get(action)
    legal = target is not None and (needs is None or ticket_state in needs)
    if legal:
        assert tx.next_assignment_state(state, action, ticket_state) is target
    else:
        with pytest.raises(tx.IllegalTransition):
            tx.next_assignment_state(state, action, ticket_state)


def test_terminal_states_allow_only_what_they_should() -> None:
    assert tx.allowed_ticket_actions(TicketState.TRANSFERRED) == []
    assert tx.allowed_ticket_actions(TicketState.MERGED) == []
    assert tx.allowed_ticket_actions(TicketState.RATED) == ["reopen"]
    for s in TERMINAL_TICKET_STATES:
        assert s not in OPEN_TICKET_STATES


def test_every_state_is_reachable_from_intake() -> None:
    seen, frontier = {TicketState.ACCEPTED}, [TicketState.ACCEPTED]
    while frontier:
        s = frontier.pop()
        for moves in tx.TICKET_TRANSITIONS.values():
            nxt = moves.get(s)
            if nxt is not None and nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    assert seen == set(TicketState)
    a_seen, a_frontier = {AssignmentState.PENDING}, [AssignmentState.PENDING]
    while a_frontier:
        s2 = a_frontier.pop()
        for a_moves in tx.ASSIGNMENT_TRANSITIONS.values():
            n2 = a_moves.get(s2)
            if n2 is not None and n2 not in a_seen:
                a_seen.add(n2)
                a_frontier.append(n2)
    assert a_seen == set(AssignmentState)


def test_every_action_has_roles_and_a_label() -> None:
    for a in TicketAction:
        assert a in tx.TICKET_ACTION_ROLES
        assert a.label != a.value
    for b in AssignmentAction:
        assert b in tx.ASSIGNMENT_ACTION_ROLES
        assert b.label != b.value


@pytest.mark.parametrize("role", list(Role))
def test_role_matrix(role: Role) -> None:
    for action, roles in tx.TICKET_ACTION_ROLES.items():
        if role in roles:
            tx.check_ticket_role(action, role)
        else:
            with pytest.raises(tx.Forbidden):
                tx.check_ticket_role(action, role)
    # Unit work is the handlers' alone; engine-driven moves are the system's alone.
    for b in tx.REQUESTABLE_ASSIGNMENT_ACTIONS:
        assert (role in tx.ASSIGNMENT_ACTION_ROLES[b]) == (role is Role.HANDLER)
    for c in (AssignmentAction.CANCEL, AssignmentAction.CLOSE, AssignmentAction.REOPEN):
        assert (role in tx.ASSIGNMENT_ACTION_ROLES[c]) == (role is Role.SYSTEM)


def test_active_states_are_the_ones_that_can_still_move_forward() -> None:
    for s in ACTIVE_ASSIGNMENT_STATES:
        assert s in tx.ASSIGNMENT_TRANSITIONS[AssignmentAction.CANCEL]
    for s in (AssignmentState.CLOSED, AssignmentState.RETURNED, AssignmentState.CANCELLED):
        assert s not in tx.ASSIGNMENT_TRANSITIONS[AssignmentAction.CANCEL]
