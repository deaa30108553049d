"""Leaders' mailboxes (领导信箱): each address routes its mail to one unit (the leader's office or the unit the
city names), so a letter to the district head is dispatched to the district at intake."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from minsheng.services import schemas as s
from minsheng.services.errors import NotFound
from minsheng.storage.channel_tables import LeaderMailbox
from minsheng.storage.models import Unit

ADDRESS_RE = r"^[^@\s<>\"]{1,100}@[^@\s<>\"]{1,98}$"


class MailboxIn(s.Strict):
    address: str = Field(pattern=ADDRESS_RE, max_length=200)
    leader_name: str = Field(min_length=1, max_length=64)
    unit_code: str = Field(pattern=s.CODE_RE)


def put(session: Session, body: MailboxIn, now: datetime) -> dict[str, Any]:
    unit = session.scalar(select(Unit).where(Unit.code == body.unit_code))
    if unit is None:
        raise NotFound(f"unknown unit '{body.unit_code}'", field="unit_code")
    address = body.address.lower()
    row = session.scalar(select(LeaderMailbox).where(LeaderMailbox.address == address))
    if row is None:
        row = LeaderMailbox(address=address, leader_name=body.leader_name, unit_id=unit.id, created_at=now)
        session.add(row)
    else:
        row.leader_name, row.unit_id = body.leader_name, unit.id
    session.flush()
    return {"address": row.address, "leader_name": row.leader_name, "unit_code": unit.code}


def listing(session: Session) -> list[dict[str, Any]]:
    rows = session.execute(
        select(LeaderMailbox, Unit.code)
        .join(Unit, Unit.id == LeaderMailbox.unit_id)
        .order_by(LeaderMailbox.address)
    )
    return [{"address": m.address, "leader_name": m.leader_name, "unit_code": code} for m, code in rows]


def unit_for(session: Session, addresses: list[str]) -> tuple[str, str] | None:
    """(unit code, leader name) of the first leader's mailbox among a mail's recipients."""
    wanted = [a.lower() for a in addresses if a]
    if not wanted:
        return None
    row = session.execute(
        select(Unit.code, LeaderMailbox.leader_name)
        .join(Unit, Unit.id == LeaderMailbox.unit_id)
        .where(func.lower(LeaderMailbox.address).in_(wanted))
        .limit(1)
    ).first()
    return (row[0], row[1]) if row else None
