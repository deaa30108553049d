"""Display helpers for the pages: brief ticket rows with personal data masked per viewer, a ticket's returns,
an assignment's deadline. They read rows already loaded; the queries live in `services` (`queries.Names` names a
page of tickets, `org.*_options` fill the forms' lists).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from minsheng.domain.masking import mask_address, mask_name, mask_phone, pii_view
from minsheng.domain.roles import Role
from minsheng.domain.states import AssignmentState
from minsheng.services.auth import Principal
from minsheng.services.queries import Names, current_unit_ids

if TYPE_CHECKING:
    from minsheng.storage.models import Assignment, Ticket


def full_pii(t: Ticket, who: Principal | None) -> bool:
    """Whether `who` sees the ticket's personal data unmasked: the rule of `queries.ticket_view`, over the units
    that hold the ticket now (a unit that returned it, or whose assignment was cancelled or closed, sees it
    masked)."""
    role = who.role if who else Role.CITIZEN
    return pii_view(
        role,
        viewer_unit_id=who.unit_id if who else None,
        assigned_unit_ids=current_unit_ids(t),
        confidential=t.confidential,
    ).full


def brief(t: Ticket, names: Names, who: Principal | None, *, pii: bool = False) -> dict[str, Any]:
    """A row for lists; contact details only when asked for, and masked unless the viewer needs them."""
    out: dict[str, Any] = {
        "number": t.number,
        "title": t.title,
        "detail": t.detail,
        "state": t.state,
        "kind": t.kind,
        "urgency": t.urgency,
        "channel": t.channel,
        "created_at": t.created_at,
        "updated_at": t.updated_at,
        "closed_at": t.closed_at,
        "rating": t.rating,
        "reopen_count": t.reopen_count,
        "return_count": t.return_count,
        "resolve_due_at": t.resolve_due_at,
        "category": names.category.get(t.category_id or 0),
        "area": names.area.get(t.area_id or 0),
        "lead_unit": names.unit.get(t.lead_unit_id or 0),
        "triage": t.triage,
        "confidential": t.confidential,
    }
    if pii:
        full = full_pii(t, who)
        out["citizen_name"] = t.citizen_name if full else mask_name(t.citizen_name)
        out["citizen_phone"] = t.citizen_phone if full else mask_phone(t.citizen_phone)
        out["address"] = t.address if full else mask_address(t.address)
    return out


def returns(t: Ticket) -> list[dict[str, Any]]:
    return [
        {"unit": a.unit.name, "reason": a.return_reason, "at": a.returned_at}
        for a in t.assignments
        if a.state == AssignmentState.RETURNED.value
    ]


def due_of(a: Assignment) -> datetime | None:
    return a.sign_due_at if a.state == AssignmentState.PENDING.value else (a.resolve_due_at or a.sign_due_at)
