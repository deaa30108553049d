"""The audit log of administrative changes (issue 14): who changed which row of the configuration, when, and its
values before and after.

One mechanism records every change, whatever its entry point (the API, the admin pages, the CLI's imports, a
script): `record_changes(db, clock)` listens on the database's write sessions.

- `after_flush`: every new, changed or deleted row of an administrative model (`AUDITED`) that the flush wrote,
  with its column values before and after (from the attributes' history, still there in `after_flush`).
  Setting `deleted_at` (the soft delete of policies and rules) is recorded as a delete.
- `do_orm_execute`: a bulk `update(...)`/`delete(...)` of an administrative model (the rows it matches are read
  before, and after for an update), since those statements bypass the flush.

The actor is `session.info["actor"]`: a `Principal` (the API sets it in `http.uow`, the pages in
`web.core.write_tx`), or a name such as `"cli"`; a change made without one is recorded as `"system"`.
The rows are written with the change, in its transaction: a change rolled back leaves no audit row.

The log is append-only: nothing here or elsewhere updates or deletes its rows, and the database refuses both
(triggers of migration 0006).
"""

from __future__ import annotations

import base64
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import Table, event, insert, select
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction, sessionmaker
from sqlalchemy.orm.attributes import instance_state

from minsheng.domain.clock import Clock
from minsheng.services.errors import Invalid
from minsheng.storage.audit_tables import AuditEntry
from minsheng.storage.config_tables import CitySetting
from minsheng.storage.db import Database
from minsheng.storage.kb_tables import KbEntry
from minsheng.storage.models import Area, Category, Unit, User
from minsheng.storage.open311_tables import Open311Key, Open311Service
from minsheng.storage.partner_tables import Partner
from minsheng.storage.timelimit_tables import (
    CalendarDay,
    DutyShift,
    MessageTemplate,
    TimeLimitPolicy,
    TimeLimitZoneArea,
)
from minsheng.storage.triage_tables import Place, RoutingRule, TriageSetting

ACTOR_KEY = "actor"
CLI = "cli"
SYSTEM = "system"

# The administrative models: what decides who counts as overdue, where tickets go and how units are ranked.
AUDITED: dict[type[Any], str] = {
    Area: "area",
    Category: "category",
    Unit: "unit",
    User: "user",
    TimeLimitPolicy: "timelimit_policy",
    TimeLimitZoneArea: "timelimit_zone",
    CalendarDay: "calendar_day",
    DutyShift: "duty_shift",
    MessageTemplate: "message_template",
    RoutingRule: "routing_rule",
    Place: "place",
    TriageSetting: "triage_setting",
    KbEntry: "kb_entry",
    Partner: "partner",
    Open311Key: "open311_key",
    Open311Service: "open311_service",
    CitySetting: "city_setting",
}
# How the admin page names them.
ENTITY_LABELS = {
    "area": "区划",
    "category": "事项分类",
    "unit": "承办单位",
    "user": "用户",
    "timelimit_policy": "办理时限",
    "timelimit_zone": "时限分区",
    "calendar_day": "工作日历",
    "duty_shift": "值班排班",
    "message_template": "消息模板",
    "routing_rule": "派单规则",
    "place": "地名",
    "triage_setting": "分拣设置",
    "kb_entry": "知识库条目",
    "partner": "联动单位",
    "open311_key": "Open311 接口密钥",
    "open311_service": "Open311 服务定义",
    "city_setting": "城市配置",
}
ACTION_LABELS = {"create": "新增", "update": "修改", "delete": "删除"}
# Columns never copied into the log: a secret (shown as changed, not as its value), or derived bulk.
_SECRET = {(User, "password_hash"), (Open311Key, "key_hash"), (Partner, "secret")}
_SKIPPED = {(KbEntry, "tokens")}
_HIDDEN = "******"
_BY_TABLE: dict[Any, type[Any]] = {cls.__table__: cls for cls in AUDITED}
_RECORDING: weakref.WeakSet[sessionmaker[Session]] = weakref.WeakSet()


# ------------------------------------------------------------------------------------------------ recording
def record_changes(db: Database, clock: Clock | None = None) -> None:
    """Record every change of an administrative row made through `db`'s write sessions (once per database)."""
    maker = db.write_sessions
    if maker in _RECORDING:
        return
    _RECORDING.add(maker)

    def now() -> datetime:
        return clock.now() if clock is not None else datetime.now(UTC)

    @event.listens_for(maker, "after_flush")
    def _flushed(session: Session, _flush: UOWTransaction) -> None:
        rows = [*_flush_rows(session)]
        if rows:
            _write(session, rows, now())

    @event.listens_for(maker, "do_orm_execute")
    def _bulk(state: ORMExecuteState) -> Any:
        if not (state.is_update or state.is_delete):
            return None
        cls = _BY_TABLE.get(getattr(state.statement, "table", None))
        if cls is None:
            return None
        return _bulk_statement(state, cls, now())


def _actor(session: Session) -> tuple[int | None, str, str]:
    """(user id, name, role) of whoever the session works for."""
    actor = session.info.get(ACTOR_KEY)
    if actor is None:
        return None, SYSTEM, SYSTEM
    if isinstance(actor, str):
        return None, actor[:64], actor[:16]
    role = getattr(actor, "role", SYSTEM)
    return (
        getattr(actor, "user_id", None),
        str(getattr(actor, "username", SYSTEM))[:64],
        str(getattr(role, "value", role))[:16],
    )


def _write(session: Session, changes: list[dict[str, Any]], at: datetime) -> None:
    actor_id, name, role = _actor(session)
    table: Table = AuditEntry.__table__  # type: ignore[assignment]
    session.connection().execute(
        insert(table),
        [{"at": at, "actor_id": actor_id, "actor_name": name, "actor_role": role, **c} for c in changes],
    )


def _plain(value: Any) -> Any:
    """A column value as JSON keeps it."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return value


def _columns(cls: type[Any]) -> list[str]:
    return [
        a.key
        for a in cls.__mapper__.column_attrs  # type: ignore[attr-defined]
        if (cls, a.key) not in _SKIPPED
    ]


def _shown(cls: type[Any], key: str, value: Any) -> Any:
    if (cls, key) in _SECRET:
        return _HIDDEN if value else None
    return _plain(value)


def _change(cls: type[Any], key: Iterable[Any], action: str, before: Any, after: Any) -> dict[str, Any]:
    return {
        "entity": AUDITED[cls],
        "entity_id": "/".join(str(k) for k in key)[:100],
        "action": action,
        "before": before,
        "after": after,
    }


def _flush_rows(session: Session) -> Iterable[dict[str, Any]]:
    """What this flush wrote to administrative rows (in after_flush the history is still there)."""
    for obj in session.new:
        cls = type(obj)
        if cls in AUDITED:
            created = {k: _shown(cls, k, getattr(obj, k)) for k in _columns(cls)}
            yield _change(cls, _key(obj), "create", None, created)
    for obj in session.dirty:
        cls = type(obj)
        if cls not in AUDITED:
            continue
        state = instance_state(obj)
        before: dict[str, Any] = {}
        after: dict[str, Any] = {}
        for k in _columns(cls):
            if k not in state.dict and not state.attrs[k].history.deleted:
                continue  # never loaded and not set: its value is not known here
            h = state.attrs[k].history
            old = h.deleted[0] if h.deleted else (h.unchanged[0] if h.unchanged else None)
            new = h.added[0] if h.added else (h.unchanged[0] if h.unchanged else None)
            before[k], after[k] = _shown(cls, k, old), _shown(cls, k, new)
        if before == after:
            continue
        soft_deleted = before.get("deleted_at") is None and after.get("deleted_at") is not None
        yield _change(cls, _key(obj), "delete" if soft_deleted else "update", before, after)
    for obj in session.deleted:
        cls = type(obj)
        if cls in AUDITED:
            state = instance_state(obj)
            gone: dict[str, Any] = {}
            for k in _columns(cls):
                h = state.attrs[k].history
                known = [*h.deleted, *h.unchanged]
                if known:
                    gone[k] = _shown(cls, k, known[0])
            yield _change(cls, _key(obj), "delete", gone, None)


def _key(obj: Any) -> tuple[Any, ...]:
    return tuple(instance_state(obj).mapper.primary_key_from_instance(obj))


def _bulk_statement(state: ORMExecuteState, cls: type[Any], at: datetime) -> Any:
    """Run a bulk update/delete of an administrative model, recording each row it changes."""
    session = state.session
    table = cls.__table__
    where = state.statement.whereclause  # type: ignore[attr-defined]
    pk = list(table.primary_key.columns)
    keys = _columns(cls)

    def read(criteria: Any) -> dict[tuple[Any, ...], dict[str, Any]]:
        q = select(*(table.c[k] for k in keys))
        if criteria is not None:
            q = q.where(criteria)
        rows = session.connection().execute(q).mappings()
        return {tuple(r[c.key] for c in pk): {k: _shown(cls, k, r[k]) for k in keys} for r in rows}

    before = read(where)
    result = state.invoke_statement()
    changes: list[dict[str, Any]] = []
    if state.is_delete:
        changes = [_change(cls, key, "delete", row, None) for key, row in before.items()]
    elif before:
        after = read(pk[0].in_([k[0] for k in before])) if len(pk) == 1 else read(where)
        for key, old in before.items():
            new = after.get(key)
            if new is not None and new != old:
                soft = old.get("deleted_at") is None and new.get("deleted_at") is not None
                changes.append(_change(cls, key, "delete" if soft else "update", old, new))
    if changes:
        _write(session, changes, at)
    return result


# ------------------------------------------------------------------------------------------------- reading
@dataclass(frozen=True)
class AuditFilter:
    actor: str | None = None
    entity: str | None = None
    entity_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def encode_cursor(entry_id: int) -> str:
    return base64.urlsafe_b64encode(f"a{entry_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not raw.startswith("a"):
            raise ValueError(raw)
        value = int(raw[1:])
        if not 0 < value < 2**63:
            raise ValueError(raw)
        return value
    except ValueError as e:  # binascii.Error and UnicodeDecodeError are ValueErrors
        raise Invalid("bad cursor") from e


def entries(
    session: Session, f: AuditFilter, *, limit: int = 50, cursor: str | None = None
) -> tuple[list[AuditEntry], str | None]:
    """The audit rows that match, newest first, one keyset page, and the cursor of the next page (or None)."""
    q = select(AuditEntry).order_by(AuditEntry.id.desc())
    if f.actor:
        q = q.where(AuditEntry.actor_name == f.actor)
    if f.entity:
        q = q.where(AuditEntry.entity == f.entity)
    if f.entity_id:
        q = q.where(AuditEntry.entity_id == f.entity_id)
    if f.since:
        q = q.where(AuditEntry.at >= f.since)
    if f.until:
        q = q.where(AuditEntry.at < f.until)
    if cursor:
        q = q.where(AuditEntry.id < decode_cursor(cursor))
    rows = list(session.scalars(q.limit(limit + 1)))
    nxt = encode_cursor(rows[limit - 1].id) if len(rows) > limit else None
    return rows[:limit], nxt


def entry_json(e: AuditEntry) -> dict[str, Any]:
    return {
        "id": e.id,
        "at": e.at.isoformat(),
        "actor": {"id": e.actor_id, "name": e.actor_name, "role": e.actor_role},
        "entity": e.entity,
        "entity_id": e.entity_id,
        "action": e.action,
        "before": e.before,
        "after": e.after,
    }


def changed_fields(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> list[str]:
    """The columns whose value differs (every column of a create or delete)."""
    if before is None or after is None:
        return sorted((before or after or {}).keys())
    return sorted(k for k in after.keys() | before.keys() if before.get(k) != after.get(k))
