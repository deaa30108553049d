"""Grid patrol reports (网格员上报): a grid worker's report from the mobile page (/grid), with photos and the
phone's GPS position, becomes a ticket on channel `grid` in the worker's grid (the area of the worker's unit,
unless the position says otherwise), triaged and dispatched like any other. Idempotent on the form's key: a
report sent twice (a double tap, a retry on a weak signal) makes one ticket."""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from minsheng.domain.states import Channel, TicketState
from minsheng.services import schemas as s
from minsheng.services.auth import Principal
from minsheng.services.channels.base import (
    Context,
    InboundMessage,
    Outcome,
    Photo,
    prepare,
    receive,
    save_photos,
)
from minsheng.storage.db import Database
from minsheng.storage.models import Area, Ticket, Unit


class GridReport(s.Strict):
    detail: str = Field(min_length=1, max_length=5000)
    address: Annotated[str | None, s.Line] = Field(default=None, max_length=300)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    key: str = Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")

    @field_validator("detail")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("detail must not be blank")
        return v

    @field_validator("lat", "lon")
    @classmethod
    def _finite(cls, v: float | None) -> float | None:
        if v is not None and not math.isfinite(v):
            raise ValueError("coordinate must be a finite number")
        return v

    @model_validator(mode="after")
    def _both(self) -> GridReport:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("lat and lon must be given together")
        return self


def report(db: Database, ctx: Context, who: Principal, body: GridReport, photos: list[Photo]) -> Outcome:
    """Take a grid worker's report in: photos stored first, then one write transaction."""
    blobs = save_photos(ctx.attachments_dir, photos, ctx.max_attachment_bytes)
    with db.read_sessions() as session, session.begin():
        area_code = session.scalar(
            select(Area.code).join(Unit, Unit.area_id == Area.id).where(Unit.id == who.unit_id)
        )
    message = InboundMessage(
        channel=Channel.GRID,
        external_id=f"grid:{who.user_id}:{body.key}",
        sender=who.username,
        text=body.detail,
        received_at=ctx.now,
        lat=body.lat,
        lon=body.lon,
        address=body.address,
        area_code=area_code if body.lat is None else None,
    )
    prepared = prepare(ctx.engine, message, ctx.now)
    with db.write_sessions() as session, session.begin():
        return receive(
            session, ctx.engine, message, ctx.now, prepared=prepared, photos=blobs, actor=who.actor
        )


def recent(session: Session, who: Principal, limit: int = 10) -> list[dict[str, Any]]:
    """The worker's latest reports, with their state (what happened to them)."""
    rows = session.scalars(
        select(Ticket)
        .where(Ticket.created_by_user_id == who.user_id, Ticket.channel == Channel.GRID.value)
        .order_by(Ticket.created_at.desc(), Ticket.id.desc())
        .limit(limit)
    )
    return [
        {"number": t.number, "title": t.title, "state": t.state, "state_label": TicketState(t.state).label}
        for t in rows
    ]
