"""Outbound transfers the partner has not acknowledged: a warning, then an escalation, by the clock.

Each outbound `PartnerTransfer` carries ``warn_at`` and ``escalate_at`` (the partner's ack minutes after the
transfer was sent). The worker calls `check_acks` on every pass (`services.background.run_once`); a transfer
still unacknowledged at ``warn_at`` gets a timeline warning and a message in the hotline centre's inbox, and at
``escalate_at`` an escalation to the centre and every supervisor. Each fires once: the row remembers it
(``warned_at``/``escalated_at``), claimed under the ticket's lock so two workers never both fire it. The clock
runs on natural time, day and night: a matter for 110 or 119 does not wait for the working calendar.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from minsheng.domain.roles import Actor, Role
from minsheng.domain.states import UnitKind
from minsheng.services.notifications import add_inbox
from minsheng.services.ticket_core import EngineCore, locked
from minsheng.storage.db import Database
from minsheng.storage.models import Ticket, Unit, User
from minsheng.storage.partner_tables import Partner, PartnerTransfer

log = logging.getLogger("minsheng.partners")
CLOCK_ACTOR = Actor(role=Role.SYSTEM, name="时限监控")
BATCH = 100


@dataclass
class AckStats:
    warned: int = 0
    escalated: int = 0


def _due(session: Session, now: datetime) -> list[int]:
    q = (
        select(PartnerTransfer.id)
        .where(
            PartnerTransfer.direction == "out",
            PartnerTransfer.acked_at.is_(None),
            or_(
                (PartnerTransfer.warned_at.is_(None)) & (PartnerTransfer.warn_at <= now),
                (PartnerTransfer.escalated_at.is_(None)) & (PartnerTransfer.escalate_at <= now),
            ),
        )
        .order_by(PartnerTransfer.id)
        .limit(BATCH)
    )
    return list(session.scalars(q))


def _tell(
    session: Session, t: Ticket, title: str, text: str, now: datetime, source: str, supervisors: bool
) -> None:
    for unit_id in session.scalars(select(Unit.id).where(Unit.kind == UnitKind.CENTRE.value)):
        add_inbox(
            session,
            kind="partner_ack",
            title=title,
            text=text,
            now=now,
            source=source,
            unit_id=unit_id,
            ticket_id=t.id,
        )
    if supervisors:
        q = select(User.id).where(User.role == Role.SUPERVISOR.value, User.active.is_(True))
        for user_id in session.scalars(q):
            add_inbox(
                session,
                kind="partner_ack",
                title=title,
                text=text,
                now=now,
                source=source,
                user_id=user_id,
                ticket_id=t.id,
            )


def _fire(engine: EngineCore, session: Session, transfer_id: int, now: datetime, stats: AckStats) -> None:
    link = session.get(PartnerTransfer, transfer_id)
    assert link is not None
    t = session.scalar(locked(select(Ticket).where(Ticket.id == link.ticket_id)))
    session.refresh(link)  # read again under the ticket's lock: an acknowledgement may have just arrived
    partner = session.get(Partner, link.partner_id)
    if t is None or partner is None or link.acked_at is not None:
        return
    who = f"{partner.name}（{partner.code}）"
    payload = {"partner": partner.code, "partner_name": partner.name, "sent_at": link.created_at.isoformat()}
    escalate = link.escalated_at is None and link.escalate_at is not None and link.escalate_at <= now
    if escalate:
        link.escalated_at = now
        link.warned_at = link.warned_at or now
        minutes = partner.ack_escalate_minutes
        title = f"转办未获签收，已升级督办：{t.number}"
        engine.record_note(
            session, t, CLOCK_ACTOR, "partner_ack_escalation", now, {**payload, "minutes": minutes}
        )
        _tell(
            session,
            t,
            title,
            f"工单 {t.number} 转 {who} 已超过 {minutes} 分钟未获对方签收，请督办。",
            now,
            f"partner-esc:{link.id}",
            True,
        )
        stats.escalated += 1
    elif link.warned_at is None and link.warn_at is not None and link.warn_at <= now:
        link.warned_at = now
        minutes = partner.ack_warn_minutes
        title = f"转办未获签收：{t.number}"
        engine.record_note(
            session, t, CLOCK_ACTOR, "partner_ack_warning", now, {**payload, "minutes": minutes}
        )
        _tell(
            session,
            t,
            title,
            f"工单 {t.number} 转 {who} 已 {minutes} 分钟未获对方签收。",
            now,
            f"partner-warn:{link.id}",
            False,
        )
        stats.warned += 1


def check_acks(db: Database, now: datetime, engine: EngineCore) -> AckStats:
    """Warn and escalate the outbound transfers whose acknowledgement is overdue at ``now``."""
    stats = AckStats()
    with db.read_sessions() as session, session.begin():
        due = _due(session, now)
    for transfer_id in due:
        try:
            with db.write_sessions() as session, session.begin():
                _fire(engine, session, transfer_id, now, stats)
        except Exception:  # one broken row must not stop the worker's pass
            log.exception("partner acknowledgement check failed for transfer %s", transfer_id)
    return stats
