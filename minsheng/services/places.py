"""Named places of the triage gazetteer (a market, a school, an estate) as the API lists them, with their area's
code; `services.triage.routing_admin` creates them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from minsheng.storage.models import Area
from minsheng.storage.triage_tables import Place


def list_places(session: Session, *, limit: int, offset: int = 0) -> list[dict[str, Any]]:
    """One page of places in the order they were added."""
    rows = session.execute(
        select(Place, Area.code)
        .join(Area, Area.id == Place.area_id)
        .order_by(Place.id)
        .limit(limit)
        .offset(offset)
    )
    return [
        {
            "id": p.id,
            "name": p.name,
            "area_code": code,
            "kind": p.kind,
            "aliases": p.aliases,
            "lat": p.lat,
            "lon": p.lon,
        }
        for p, code in rows
    ]
