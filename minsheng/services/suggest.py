"""Live suggestions for the operator desk, recomputed as the operator types (category, area, repeats, answers).

Nothing is written: this reads the triage runtime built at start-up and the database. The knowledge-base
answers come from ``minsheng.services.kb`` when that part is installed, looked up at call time.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from minsheng.domain.masking import mask_phone
from minsheng.services import kb
from minsheng.services.errors import Invalid
from minsheng.services.schemas import PHONE_RE
from minsheng.storage.models import Ticket

if TYPE_CHECKING:
    from minsheng.services.triage.runtime import TriageRuntime

log = logging.getLogger("minsheng.triage")

MAX_EARLIER = 5
MAX_ANSWERS = 5


def suggest(
    session: Session,
    runtime: TriageRuntime,
    *,
    title: str | None = None,
    detail: str | None = None,
    address: str | None = None,
    lat: float | None = None,
    lon: float | None = None,
    phone: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Suggestions for a request being typed; every key is present even when nothing is known yet."""
    if (lat is None) != (lon is None):
        raise Invalid("lat and lon must be given together")
    at = now or runtime.clock.now()
    a = runtime.analyse(title=title, detail=detail, address=address, lat=lat, lon=lon, at=at)
    org = a.org
    area: dict[str, Any] | None = None
    j = a.jurisdiction
    if j is not None:
        area = {
            "code": j.area_code,
            "name": org.areas[j.area_code].name if j.area_code in org.areas else j.area_code,
            "chain": [org.areas[c].name for c in j.chain if c in org.areas],
            "explanation": j.explanation,
            "confidence": j.confidence,
            "ambiguous": j.ambiguous,
        }
    titles: dict[str, str] = {}
    if a.repeats:
        numbers = [n for n, _, _ in a.repeats]
        rows = session.execute(select(Ticket.number, Ticket.title).where(Ticket.number.in_(numbers)))
        titles = {number: title for number, title in rows}
    return {
        "category": [
            {"code": g.label, "name": org.category_name(g.label), "confidence": round(g.confidence, 4)}
            for g in a.classification.top
        ],
        "category_cues": a.classification.cues,
        "threshold": round(a.threshold, 4),
        "kind": a.signals.kind,
        "urgency": a.signals.urgency,
        "transfer": a.signals.transfer,
        "cues": a.signals.cues,
        "area": area,
        "route": a.suggestions[0] if a.suggestions else None,
        "repeats": [
            {"number": n, "title": titles.get(n, ""), "score": round(sc, 3)}
            for n, sc, _ in a.repeats
            if n in titles
        ],
        "earlier": earlier_tickets(session, phone),
        "answers": answers(session, a.text),
        "model": {"loaded": runtime.model is not None, "version": runtime.model_version},
    }


def earlier_tickets(session: Session, phone: str | None, limit: int = MAX_EARLIER) -> list[dict[str, Any]]:
    """The citizen's earlier tickets by phone number, newest first."""
    phone = (phone or "").strip()
    if not phone or not PHONE_RE.match(phone):
        return []
    rows = session.scalars(
        select(Ticket)
        .where(Ticket.citizen_phone == phone)
        .order_by(Ticket.created_at.desc(), Ticket.id.desc())
        .limit(limit)
    )
    return [
        {
            "number": t.number,
            "title": t.title,
            "state": t.state,
            "created_at": t.created_at.isoformat(),
            "phone": mask_phone(t.citizen_phone),
        }
        for t in rows
    ]


def answers(session: Session, text: str, limit: int = MAX_ANSWERS) -> list[dict[str, Any]]:
    """Knowledge-base answers for the text (none when the search fails)."""
    if not text:
        return []
    try:
        # A savepoint: a failed full-text query must not poison the caller's transaction on PostgreSQL.
        with session.begin_nested():
            found = kb.search(session, text[:200], limit=limit)
    except Exception as e:
        log.warning("knowledge-base search failed: %s", e)
        return []
    return [
        {
            "id": getattr(e, "id", None),
            "title": getattr(e, "title", ""),
            "kind": getattr(e, "kind", None),
            "body": (getattr(e, "body", "") or "")[:300],
        }
        for e in found
    ]
