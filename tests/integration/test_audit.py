"""The audit log (issue 14, finding 6) on both stores: an import through the CLI's import service is recorded
with its actor and the values before and after; the log's rows cannot be updated or deleted."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from minsheng.services import audit, importing
from minsheng.services.uow import writing
from minsheng.storage.audit_tables import AuditEntry
from minsheng.storage.db import Database
from tests.factories import small_city


def _import_units(db: Database, tmp_path: Path, now: datetime) -> None:
    """What `minsheng import units` runs, as the CLI's actor."""
    path = tmp_path / "units.csv"
    path.write_text("code,name,kind\nZJJ,市住房和城乡建设局,department\nSWJ,市水务局,department\n", "utf-8")
    with writing(db) as session:
        session.info[audit.ACTOR_KEY] = audit.CLI
        report = importing.import_units(session, path, now)
    assert (report.created, report.updated) == (1, 1)


def test_an_import_is_audited_with_its_actor(db: Database, clock: object, tmp_path: Path) -> None:
    now = clock.now()  # type: ignore[attr-defined]
    audit.record_changes(db, clock)  # type: ignore[arg-type]
    with writing(db) as session:
        small_city(session, now)  # no actor: recorded as the system
    _import_units(db, tmp_path, now)
    with db.read_sessions() as session:
        rows = list(session.scalars(select(AuditEntry).where(AuditEntry.actor_name == "cli")))
        users = list(session.scalars(select(AuditEntry).where(AuditEntry.entity == "user")))
    assert users and all(e.actor_name == "system" and e.action == "create" for e in users)
    # Password hashes are never copied into the log.
    assert all(e.after["password_hash"] == "******" for e in users)  # type: ignore[index]
    by_action = {e.action: e for e in rows if e.entity == "unit"}
    assert set(by_action) == {"create", "update"}
    update = by_action["update"]
    assert update.actor_role == "cli" and update.actor_id is None and update.at == now
    assert update.before["name"] == "市住建局" and update.after["name"] == "市住房和城乡建设局"  # type: ignore[index]
    assert by_action["create"].before is None and by_action["create"].after["code"] == "SWJ"  # type: ignore[index]


def test_audit_rows_cannot_be_updated_or_deleted(db: Database, clock: object, tmp_path: Path) -> None:
    audit.record_changes(db, clock)  # type: ignore[arg-type]
    with writing(db) as session:
        small_city(session, clock.now())  # type: ignore[attr-defined]
    _import_units(db, tmp_path, clock.now())  # type: ignore[attr-defined]
    for statement in ("UPDATE audit_log SET actor_name = 'someone'", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError, match="append-only"), db.engine.begin() as conn:
            conn.execute(text(statement))
    with db.engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM audit_log WHERE actor_name = 'cli'")) == 2
