"""Hotline call records (话单) from the telephony system: caller, time, duration, agent, recording reference.

They arrive by a signed webhook (POST /api/v1/channels/calls, the SMS gateway's HMAC scheme with
`Settings.channel_calls_secret`) or by `minsheng import calls FILE` (CSV/XLSX). Each record is stored once per
`call_id` and linked to the ticket the agent registered during the call: the ticket the telephony system names
(`ticket_number`), else the caller's phone-channel ticket created between the start of the call and
`LINK_AFTER` after its end. A record that arrives before its ticket (the telephony system posts it when the
call ends, the agent finishes the form afterwards) is linked when that ticket is registered (`link_new_ticket`,
called by the engine's intake through `channels.notices.ChannelNotices`).

Example record::

    {"call_id": "CALL-20261121-0001", "caller": "13800138000", "started_at": "2026-11-21T09:00:05+08:00",
     "duration_seconds": 184, "agent": "operator1", "recording_ref": "rec/2026/11/21/0001.wav"}
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from minsheng.domain.masking import mask_phone, pii_view
from minsheng.domain.states import Channel
from minsheng.services import queries
from minsheng.services.auth import Principal
from minsheng.services.channels.base import verify_hmac
from minsheng.services.errors import Invalid
from minsheng.services.importing import ImportFileError, read_table
from minsheng.services.schemas import PHONE_RE
from minsheng.storage import dialect
from minsheng.storage.channel_tables import CallRecord
from minsheng.storage.models import Ticket

#: A ticket registered this long after the call ended still belongs to it (the agent finishes the form).
LINK_AFTER = timedelta(minutes=15)
MAX_RECORDS = 1000


class CallIn(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    call_id: str = Field(min_length=1, max_length=100)
    caller: str = Field(min_length=3, max_length=32)
    started_at: datetime
    duration_seconds: int = Field(ge=0, le=86400)
    agent: str = Field(min_length=1, max_length=64)
    recording_ref: str | None = Field(default=None, max_length=500)
    ticket_number: str | None = Field(default=None, pattern=r"^\d{8,20}$")

    @field_validator("caller")
    @classmethod
    def _phone(cls, v: str) -> str:
        if not PHONE_RE.match(v):
            raise ValueError("caller must be a phone number")
        return v.replace(" ", "").replace("-", "")

    @field_validator("started_at")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        if v.tzinfo is None:
            raise ValueError("started_at needs a time zone (e.g. +08:00)")
        return v

    @field_validator("call_id", "agent", "recording_ref")
    @classmethod
    def _no_controls(cls, v: str | None) -> str | None:
        if v is not None and any(ord(c) < 32 for c in v):
            raise ValueError("control characters are not allowed")
        return v


def parse_records(data: Any) -> list[CallIn]:
    """A record or {"records": [...]}; `Invalid` naming the first bad record."""
    items = data.get("records") if isinstance(data, dict) and "records" in data else [data]
    if not isinstance(items, list) or not items or len(items) > MAX_RECORDS:
        raise Invalid(f"send one record or 1 to {MAX_RECORDS} records under 'records'", field="records")
    out = []
    for i, item in enumerate(items):
        try:
            out.append(CallIn.model_validate(item))
        except ValidationError as e:
            err = e.errors()[0]
            where = ".".join(str(p) for p in err.get("loc", ()))
            raise Invalid(f"record {i}: {where}: {err.get('msg')}", field=f"records.{i}.{where}") from None
    return out


def inbound(
    session: Session,
    now: datetime,
    secret: str | None,
    max_age: int,
    headers: Mapping[str, str],
    body: bytes,
) -> dict[str, Any]:
    verify_hmac(secret, headers, body, now, max_age)
    try:
        data = json.loads(body)
    except ValueError:
        raise Invalid("the body is not JSON", field="body") from None
    return store(session, parse_records(data), now)


def store(session: Session, records: Iterable[CallIn], now: datetime) -> dict[str, Any]:
    """Store new records (a call_id seen before is skipped) and link each to its ticket."""
    added = skipped = linked = 0
    for r in records:
        ticket_id = _ticket_of(session, r)
        new = session.scalar(
            dialect.insert(session)(CallRecord)
            .values(
                call_id=r.call_id,
                caller=r.caller,
                started_at=r.started_at,
                duration_seconds=r.duration_seconds,
                agent=r.agent,
                recording_ref=r.recording_ref,
                ticket_id=ticket_id,
                created_at=now,
            )
            .on_conflict_do_nothing(index_elements=["call_id"])
            .returning(CallRecord.id)
        )
        if new is None:
            skipped += 1
            continue
        added += 1
        linked += ticket_id is not None
    return {"added": added, "skipped": skipped, "linked": linked}


#: Column names a telephony export may use, Chinese or English.
COLUMNS = {
    "call_id": ("call_id", "话单编号", "呼叫编号"),
    "caller": ("caller", "主叫号码", "来电号码"),
    "started_at": ("started_at", "开始时间", "来电时间"),
    "duration_seconds": ("duration_seconds", "通话时长", "时长"),
    "agent": ("agent", "坐席", "坐席工号"),
    "recording_ref": ("recording_ref", "录音", "录音文件"),
    "ticket_number": ("ticket_number", "工单编号"),
}
LOCAL = timezone(timedelta(hours=8), "Asia/Shanghai")


@dataclass
class ImportResult:
    added: int = 0
    skipped: int = 0
    linked: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)


def read_file(path: Path) -> tuple[list[tuple[int, CallIn]], list[tuple[int, str]]]:
    """The records of a CSV or XLSX export (times without a zone are Beijing time), and the refused rows."""
    header, rows = read_table(path)
    names = {key: next((h for h in header if h in aliases), None) for key, aliases in COLUMNS.items()}
    missing = [k for k in ("call_id", "caller", "started_at", "duration_seconds", "agent") if not names[k]]
    if missing:
        raise ImportFileError(f"{path.name}: missing column(s): {', '.join(missing)}")
    good: list[tuple[int, CallIn]] = []
    bad: list[tuple[int, str]] = []
    for number, row in rows:
        item = {k: row.get(h) or None for k, h in names.items() if h}
        try:
            started = datetime.fromisoformat(str(item.get("started_at") or "").replace("/", "-"))
            item["started_at"] = started if started.tzinfo else started.replace(tzinfo=LOCAL)  # type: ignore[assignment]
            good.append((number, CallIn.model_validate(item)))
        except ValueError as e:  # a bad date, or pydantic's ValidationError (a ValueError)
            bad.append(
                (number, str(e).splitlines()[0][:200] if not isinstance(e, ValidationError) else _first(e))
            )
    return good, bad


def _first(e: ValidationError) -> str:
    err = e.errors()[0]
    return f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg')}"


def import_batch(session: Session, records: list[CallIn], now: datetime) -> dict[str, Any]:
    """One batch of an import, in the caller's transaction (the CLI commits batch by batch)."""
    return store(session, records, now)


def _ticket_of(session: Session, r: CallIn) -> int | None:
    if r.ticket_number:
        return session.scalar(select(Ticket.id).where(Ticket.number == r.ticket_number))
    end = r.started_at + timedelta(seconds=r.duration_seconds) + LINK_AFTER
    return session.scalar(
        select(Ticket.id)
        .where(
            Ticket.citizen_phone == r.caller,
            Ticket.channel == Channel.PHONE.value,
            Ticket.created_at >= r.started_at,
            Ticket.created_at <= end,
        )
        .order_by(Ticket.created_at)
        .limit(1)
    )


def link_new_ticket(session: Session, t: Ticket) -> None:
    """Link a new phone ticket to the unlinked call of its caller it was registered during (or up to
    `LINK_AFTER` after); in the intake's transaction."""
    if t.channel != Channel.PHONE.value or not t.citizen_phone:
        return
    recent = session.scalars(
        select(CallRecord)
        .where(
            CallRecord.caller == t.citizen_phone,
            CallRecord.ticket_id.is_(None),
            CallRecord.started_at <= t.created_at,
            CallRecord.started_at >= t.created_at - timedelta(hours=4),
        )
        .order_by(CallRecord.started_at.desc())
        .limit(5)
    )
    for call in recent:
        if call.started_at + timedelta(seconds=call.duration_seconds) + LINK_AFTER >= t.created_at:
            call.ticket_id = t.id
            return


def for_ticket(session: Session, who: Principal, number: str) -> list[dict[str, Any]]:
    """The calls of a ticket the caller may see, as its page shows them: the caller's number masked unless the
    role needs it (`domain.masking.pii_view`)."""
    t = queries.ticket_for(session, who, number, past=True)
    full = pii_view(
        who.role,
        viewer_unit_id=who.unit_id,
        assigned_unit_ids=queries.current_unit_ids(t),
        confidential=t.confidential,
    ).full
    rows = session.scalars(
        select(CallRecord).where(CallRecord.ticket_id == t.id).order_by(CallRecord.started_at)
    )
    return [_view(c, full) for c in rows]


def recent(session: Session, agent: str, *, limit: int = 20) -> list[dict[str, Any]]:
    """An agent's latest calls (the operator desk), with the ticket each is linked to."""
    rows = session.execute(
        select(CallRecord, Ticket.number)
        .outerjoin(Ticket, Ticket.id == CallRecord.ticket_id)
        .where(CallRecord.agent == agent)
        .order_by(CallRecord.started_at.desc())
        .limit(limit)
    )
    return [{**_view(c, False), "ticket": number} for c, number in rows]


def _view(c: CallRecord, full: bool) -> dict[str, Any]:
    return {
        "call_id": c.call_id,
        "caller": c.caller if full else mask_phone(c.caller),
        "started_at": c.started_at.isoformat(),
        "duration_seconds": c.duration_seconds,
        "agent": c.agent,
        "recording_ref": c.recording_ref,
    }
