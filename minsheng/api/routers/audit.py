"""The audit log of administrative changes (issue 14): who changed which configuration row, when, before and
after. Admins and supervisors read it; nobody writes it through the API (`services.audit` records changes)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import AfterValidator

from minsheng.api.deps import require_roles
from minsheng.domain.roles import Role
from minsheng.http.uow import ReadSession, UnitOfWorkRoute
from minsheng.services import audit
from minsheng.services import schemas as s
from minsheng.services.errors import Invalid

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/api/v1/audit", tags=["audit"])
Readers = require_roles(Role.ADMIN, Role.SUPERVISOR)
Entity = Annotated[str | None, Query(pattern="^(" + "|".join(sorted(audit.ENTITY_LABELS)) + ")$")]
When = Annotated[datetime | None, AfterValidator(s.utc_representable)]


@router.get("", dependencies=[Readers])
def list_audit(
    session: ReadSession,
    actor: Annotated[str | None, Query(max_length=64)] = None,
    entity: Entity = None,
    entity_id: Annotated[str | None, Query(max_length=100)] = None,
    at_from: When = None,
    at_to: When = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    """Newest first; `at_from` ≤ at < `at_to`; `next_cursor` gives the next page (None on the last)."""
    for d in (at_from, at_to):
        if d is not None and d.tzinfo is None:
            raise Invalid("at_from / at_to need a timezone (e.g. 2026-11-21T00:00:00+08:00)")
    f = audit.AuditFilter(actor=actor, entity=entity, entity_id=entity_id, since=at_from, until=at_to)
    rows, nxt = audit.entries(session, f, limit=limit, cursor=cursor)
    return {"items": [audit.entry_json(e) for e in rows], "next_cursor": nxt}
