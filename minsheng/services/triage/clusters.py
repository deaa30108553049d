"""Cluster warnings (一类事预警): stored once per cluster, noted on the member tickets, listed and acknowledged."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from minsheng.domain.roles import Actor, Role
from minsheng.services.errors import Conflict, NotFound
from minsheng.services.notifications import add_inbox
from minsheng.services.tickets import TicketEngine
from minsheng.services.triage.snapshot import OrgSnapshot
from minsheng.services.triage.sql import chunks
from minsheng.storage import dialect
from minsheng.storage import triage_tables as tables
from minsheng.storage.models import Ticket, User
from minsheng.storage.triage_tables import ClusterKey, ClusterMember
from minsheng.triage.clusters import ClusterWarning

SYSTEM_NAME = "智能分拨"


def record_cluster(
    session: Session,
    engine: TicketEngine,
    w: ClusterWarning,
    current: Ticket,
    now: datetime,
    org: OrgSnapshot,
) -> tables.ClusterWarning | None:
    """Store a cluster warning once and put it on the member tickets' timelines.

    A new cluster puts one ``cluster_warning`` event on every member and tells the supervisors; a ticket joining
    a stored cluster gets its own event, and the cluster's count and time span grow. A warning under another key
    that shares a member with a stored cluster of its area (another process named it after a different first
    member) joins that one, and its key leads there from then on.
    """
    row = _stored_cluster(session, w.key)
    if row is not None:
        return _join(session, engine, row, w, w.joined or w.member_ticket_ids, current, now, org)
    row = _sharing_members(session, w)
    if row is not None:
        _add_key(session, w.key, row.id)
        return _join(session, engine, row, w, w.member_ticket_ids, current, now, org)
    new_id = _insert_new(session, w, now)
    if new_id is None:
        # Another transaction stored it between our look and our insert: the members it lacks join it.
        row = session.scalar(select(tables.ClusterWarning).where(tables.ClusterWarning.key == w.key))
        return None if row is None else _join(session, engine, row, w, w.member_ticket_ids, current, now, org)
    _add_key(session, w.key, new_id)
    members = _add_members(session, new_id, w.member_ticket_ids)
    row = session.get_one(tables.ClusterWarning, new_id)
    row.member_count = len(members)
    _note(session, engine, _lock_members(session, current, members), row, members, now, org, joined=False)
    _notify_supervisors(session, row, members, current, now, org)
    return row


def _insert_new(session: Session, w: ClusterWarning, now: datetime) -> int | None:
    """Store ``w`` as a new cluster without members; None when another transaction stored its key first."""
    ins = (
        dialect.insert(session)(tables.ClusterWarning)
        .values(
            key=w.key,
            category_code=w.category_code,
            area_code=w.area_code,
            member_count=0,
            summary=list(w.summary),
            first_at=w.first_at,
            last_at=w.last_at,
            created_at=now,
            state="open",
        )
        .on_conflict_do_nothing(index_elements=["key"])
    )
    # RETURNING rather than rowcount: drivers disagree on rowcount for INSERT … ON CONFLICT DO NOTHING.
    new_id: int | None = session.scalar(ins.returning(tables.ClusterWarning.id))
    return new_id


def _join(
    session: Session,
    engine: TicketEngine,
    row: tables.ClusterWarning,
    w: ClusterWarning,
    candidates: Sequence[str],
    current: Ticket,
    now: datetime,
    org: OrgSnapshot,
) -> tables.ClusterWarning:
    """The candidates the stored cluster lacks join it, each with a note (usually just ``current``; more when
    this process saw tickets the row lacks)."""
    joining = _add_members(session, row.id, candidates)
    if not joining:
        return row
    # Expressions, not values read earlier: another process may be adding members to the same cluster.
    row.member_count = tables.ClusterWarning.member_count + len(joining)
    row.last_at = case(
        (tables.ClusterWarning.last_at < w.last_at, w.last_at), else_=tables.ClusterWarning.last_at
    )
    if w.summary:
        row.summary = list(w.summary)
    session.flush()
    _note(session, engine, _lock_members(session, current, joining), row, joining, now, org, joined=True)
    return row


def _stored_cluster(session: Session, key: str) -> tables.ClusterWarning | None:
    return session.scalar(
        select(tables.ClusterWarning)
        .join(ClusterKey, ClusterKey.cluster_id == tables.ClusterWarning.id)
        .where(ClusterKey.key == key)
    )


def _add_key(session: Session, key: str, cluster_id: int) -> None:
    session.execute(
        dialect.insert(session)(ClusterKey).values(key=key, cluster_id=cluster_id).on_conflict_do_nothing()
    )


def _add_members(session: Session, cluster_id: int, numbers: Iterable[str]) -> list[str]:
    """Add the numbers a cluster lacks; returns those added, sorted."""
    added: list[str] = []
    for chunk in chunks(sorted(set(numbers))):
        rows = [{"cluster_id": cluster_id, "ticket_number": n} for n in chunk]
        ins = dialect.insert(session)(ClusterMember).values(rows).on_conflict_do_nothing()
        added += session.scalars(ins.returning(ClusterMember.ticket_number))
    return sorted(added)


def cluster_members(session: Session, cluster_ids: Sequence[int]) -> dict[int, list[str]]:
    """The member ticket numbers of each cluster, in number order."""
    out: dict[int, list[str]] = {cid: [] for cid in cluster_ids}
    for chunk in chunks(cluster_ids):
        q = (
            select(ClusterMember.cluster_id, ClusterMember.ticket_number)
            .where(ClusterMember.cluster_id.in_(chunk))
            .order_by(ClusterMember.cluster_id, ClusterMember.ticket_number)
        )
        for cid, number in session.execute(q):
            out[cid].append(number)
    return out


def _lock_members(session: Session, current: Ticket, numbers: Sequence[str]) -> list[Ticket]:
    """``current`` (if among ``numbers``) and the other tickets of ``numbers``, the others locked in id order so
    that two intakes that touch the same members cannot deadlock."""
    others = [m for m in numbers if m != current.number]
    tickets = [current] if current.number in numbers else []
    for chunk in chunks(others):
        tickets += list(
            session.scalars(
                select(Ticket).where(Ticket.number.in_(chunk)).order_by(Ticket.id).with_for_update()
            )
        )
    return tickets


def _sharing_members(session: Session, w: ClusterWarning) -> tables.ClusterWarning | None:
    """The earliest stored cluster of the same area, still open to new members, that holds one of ``w``'s members.

    Processes that saw the same tickets in a different order may name one cluster differently (its key comes
    from the first member each saw); a ticket belongs to one cluster only, so a shared member means the same
    cluster. On PostgreSQL an advisory lock per area keeps two processes from both storing it new at once
    (SQLite has one writer at a time anyway).
    """
    dialect.advisory_lock(session, "cluster:" + w.area_code)
    found: list[int] = []
    for chunk in chunks(sorted(set(w.member_ticket_ids))):
        cid = session.scalar(
            select(func.min(ClusterMember.cluster_id))
            .join(tables.ClusterWarning, tables.ClusterWarning.id == ClusterMember.cluster_id)
            .where(
                tables.ClusterWarning.area_code == w.area_code,
                tables.ClusterWarning.last_at >= w.first_at,
                ClusterMember.ticket_number.in_(chunk),
            )
        )
        if cid is not None:
            found.append(cid)
    return session.get(tables.ClusterWarning, min(found)) if found else None


def _describe(row: tables.ClusterWarning, org: OrgSnapshot) -> str:
    area = org.areas[row.area_code].name if row.area_code in org.areas else row.area_code
    cat = org.category_name(row.category_code) or "相似诉求"
    about = "、".join(row.summary or [])
    return f"{area} {row.member_count} 件{cat}" + (f"（{about}）" if about else "")


def _note(
    session: Session,
    engine: TicketEngine,
    tickets: Sequence[Ticket],
    row: tables.ClusterWarning,
    members: Sequence[str],
    now: datetime,
    org: OrgSnapshot,
    *,
    joined: bool,
) -> None:
    """One ``cluster_warning`` event on each of ``tickets``; ``members`` are the tickets it is about (the whole
    new cluster, or those joining it), the count is the cluster's."""
    payload = {
        "cluster_id": row.id,
        "key": row.key,
        "category": row.category_code,
        "area": row.area_code,
        "members": list(members),
        "member_count": row.member_count,
        "summary": list(row.summary or []),
        "text": ("加入一类事预警：" if joined else "一类事预警：") + _describe(row, org),
        "joined": joined,
    }
    actor = Actor.system(SYSTEM_NAME)
    for t in tickets:
        engine.record_note(session, t, actor, "cluster_warning", now, payload)


def _notify_supervisors(
    session: Session,
    row: tables.ClusterWarning,
    members: Sequence[str],
    ticket: Ticket,
    now: datetime,
    org: OrgSnapshot,
) -> None:
    supervisors = session.scalars(
        select(User.id).where(User.role == Role.SUPERVISOR.value, User.active.is_(True))
    )
    shown = "、".join(members[:_NOTIFY_NUMBERS]) + ("等" if len(members) > _NOTIFY_NUMBERS else "")
    text = _describe(row, org) + "：" + shown
    for uid in supervisors:
        add_inbox(
            session,
            kind="cluster_warning",
            title="一类事预警",
            text=text,
            now=now,
            source=f"cluster:{row.key}",
            user_id=uid,
            ticket_id=ticket.id,
        )


#: Ticket numbers listed in a supervisor's notification; the warning's page lists them all.
_NOTIFY_NUMBERS = 20


def clusters_json(session: Session, rows: Sequence[tables.ClusterWarning]) -> list[dict[str, Any]]:
    members = cluster_members(session, [r.id for r in rows])
    return [
        {
            "id": row.id,
            "key": row.key,
            "category_code": row.category_code,
            "area_code": row.area_code,
            "member_count": row.member_count,
            "members": members[row.id],
            "summary": list(row.summary or []),
            "first_at": row.first_at.isoformat(),
            "last_at": row.last_at.isoformat(),
            "created_at": row.created_at.isoformat(),
            "state": row.state,
            "acknowledged_by": row.acknowledged_by,
            "acknowledged_at": row.acknowledged_at.isoformat() if row.acknowledged_at else None,
            "note": row.note,
        }
        for row in rows
    ]


def list_clusters(
    session: Session, *, state: str | None = None, limit: int = 100
) -> list[tables.ClusterWarning]:
    q = select(tables.ClusterWarning).order_by(
        tables.ClusterWarning.last_at.desc(), tables.ClusterWarning.id.desc()
    )
    if state:
        q = q.where(tables.ClusterWarning.state == state)
    return list(session.scalars(q.limit(limit)))


def acknowledge_cluster(
    session: Session, cluster_id: int, by: str, note: str | None, now: datetime
) -> tables.ClusterWarning:
    row = session.scalar(
        select(tables.ClusterWarning).where(tables.ClusterWarning.id == cluster_id).with_for_update()
    )
    if row is None:
        raise NotFound(f"cluster warning {cluster_id} not found")
    if row.state == "acknowledged":
        raise Conflict(f"cluster warning {cluster_id} is already acknowledged")
    row.state, row.acknowledged_by, row.acknowledged_at, row.note = "acknowledged", by, now, note
    return row
