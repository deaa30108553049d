"""What the console shows of supervision: the panel of a ticket's page (its orders, reminders, instructions,
checks, and the supervision steps the viewer may take) and the block at the top of a unit's inbox (the
instructions it has not acknowledged and the orders it has not answered)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from minsheng.domain.roles import Role
from minsheng.services.auth import Principal
from minsheng.services.supervision import checks, instructions, orders, reminders, watch
from minsheng.services.supervision.common import LEVELS, may
from minsheng.storage.models import Ticket

_OPEN = frozenset({"dispatched", "in_progress", "paused", "close_requested", "returned"})
_READERS = frozenset({Role.SUPERVISOR, Role.LEADER, Role.FOLLOWUP, Role.ADMIN})


def ticket_panel(session: Session, t: Ticket, who: Principal, now: datetime) -> dict[str, Any]:
    """The supervision panel of a ticket page the viewer may already see."""
    reader = who.role in _READERS or who.role is Role.HANDLER
    dispatched = bool(t.assignments)
    can: set[str] = set()
    if may(who, "order") and dispatched:
        can.add("order")
    if may(who, "remind") and t.state in _OPEN:
        can.add("remind")
    if may(who, "watch"):
        can.add("watch")
    if may(who, "instruct") and dispatched:
        can.add("instruct")
    order_rows = orders.list_orders(session, who, now, ticket=t) if reader else []
    instr = instructions.search(session, who, ticket_id=t.id, limit=20) if reader else []
    check_rows = checks.list_checks(session, who, ticket_id=t.id) if who.role in _READERS else []
    if who.role is Role.HANDLER:
        if any(o["answered_at"] is None for o in order_rows):
            can.add("answer")
        if any(i["acked_at"] is None for i in instr):
            can.add("ack")
    if may(who, "check") and any(c["state"] == "open" for c in check_rows):
        can.add("check")
    if may(who, "approve") and any(c["state"] == "explained" for c in check_rows):
        can.add("approve")
    return {
        "can": can,
        "reminders": reminders.count(session, t.id),
        "orders": order_rows,
        "instructions": instr,
        "checks": check_rows,
        "watching": watch.is_watching(session, who, t.id) if "watch" in can else False,
        "levels": LEVELS,
        "outcomes": checks.OUTCOMES,
    }


def inbox_block(session: Session, who: Principal, now: datetime) -> dict[str, Any]:
    """For a handler's inbox: instructions to acknowledge and orders to answer, newest first."""
    if who.role is not Role.HANDLER:
        return {"instructions": [], "orders": []}
    return {
        "instructions": instructions.search(session, who, pending_only=True, limit=20),
        "orders": orders.list_orders(session, who, now, open_only=True, limit=20),
    }
