"""批示: a leader's instruction written onto a ticket, addressed to the unit that holds it. The unit sees the
instructions it has not acknowledged at the top of its inbox and acknowledges each once; both are timeline
events (``instruct``, ``instruction_ack``). Instructions are searched by their text, among the tickets the
reader may see (`queries.visible_to`: a confidential ticket never outside its units)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from minsheng.services.auth import Principal
from minsheng.services.errors import Conflict, NotFound
from minsheng.services.queries import ticket_for, visible_to
from minsheng.services.supervision.common import allow, clean, holding_unit, tell
from minsheng.services.ticket_core import EngineCore
from minsheng.storage.models import Ticket, Unit
from minsheng.storage.supervision_tables import Instruction


def instruct(
    session: Session,
    engine: EngineCore,
    who: Principal,
    number: str,
    text: str,
    now: datetime,
    channels: frozenset[str] = frozenset(),
) -> Instruction:
    allow(who, "instruct")
    body = clean(text, "text")
    ticket_for(session, who, number)
    t = engine._lock(session, number)
    unit = holding_unit(session, t)
    row = Instruction(
        ticket_id=t.id,
        unit_id=unit.id if unit else None,
        text=body,
        created_at=now,
        author_user_id=who.user_id,
        author_name=who.display_name,
    )
    session.add(row)
    session.flush()
    payload = {"instruction": row.id, "text": body, "unit": unit.code if unit else None}
    engine.record_note(session, t, who.actor, "instruct", now, payload)
    tell(
        session,
        kind="instruction",
        title=f"领导批示：{t.number}",
        text=f"{who.display_name}批示：{body[:200]}（请签收）",
        now=now,
        source=f"instruction:{row.id}",
        ticket_id=t.id,
        unit=unit,
        leader=True,
        channels=channels,
    )
    return row


def acknowledge(
    session: Session, engine: EngineCore, who: Principal, instruction_id: int, now: datetime
) -> Instruction:
    """The addressed unit acknowledges (签收) the instruction, once."""
    allow(who, "ack")
    row = session.scalar(select(Instruction).where(Instruction.id == instruction_id).with_for_update())
    if row is None or row.unit_id is None or row.unit_id != who.unit_id:
        raise NotFound(f"instruction {instruction_id} not found")
    if row.acked_at is not None:
        raise Conflict("this instruction has already been acknowledged")
    row.acked_at, row.acked_by_user_id, row.acked_by_name = now, who.user_id, who.display_name
    t = session.get(Ticket, row.ticket_id)
    assert t is not None
    t = engine._lock(session, t.number)
    engine.record_note(session, t, who.actor, "instruction_ack", now, {"instruction": row.id})
    if row.author_user_id is not None:
        tell(
            session,
            kind="instruction_ack",
            title=f"批示已签收：{t.number}",
            text=f"{who.unit_name or ''}已签收您对工单 {t.number} 的批示。",
            now=now,
            source=f"instruction-ack:{row.id}",
            ticket_id=t.id,
            user_ids=[row.author_user_id],
        )
    return row


def instruction_json(row: Instruction, number: str, unit_name: str | None) -> dict[str, Any]:
    return {
        "id": row.id,
        "ticket": number,
        "unit_name": unit_name,
        "text": row.text,
        "author": row.author_name,
        "created_at": row.created_at,
        "acked_at": row.acked_at,
        "acked_by": row.acked_by_name,
    }


def search(
    session: Session,
    who: Principal,
    *,
    text: str | None = None,
    ticket_id: int | None = None,
    pending_only: bool = False,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Instructions on tickets the reader may see, newest first; ``text`` matches their wording (a substring).
    A handler sees those addressed to its unit."""
    q = (
        select(Instruction, Ticket.number, Unit.name)
        .join(Ticket, Ticket.id == Instruction.ticket_id)
        .outerjoin(Unit, Unit.id == Instruction.unit_id)
        .where(visible_to(who))
    )
    if who.role.value == "handler":
        q = q.where(Instruction.unit_id == who.unit_id)
    if text:
        escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        q = q.where(Instruction.text.like(f"%{escaped}%", escape="\\"))
    if ticket_id is not None:
        q = q.where(Instruction.ticket_id == ticket_id)
    if pending_only:
        q = q.where(Instruction.acked_at.is_(None))
    q = q.order_by(Instruction.created_at.desc(), Instruction.id.desc()).limit(limit)
    return [instruction_json(row, number, unit_name) for row, number, unit_name in session.execute(q).all()]
