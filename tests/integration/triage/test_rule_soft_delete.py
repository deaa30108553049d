"""A deleted routing rule is kept (soft delete, issue 14) and no longer routes; the audit log has the delete."""

from __future__ import annotations

from sqlalchemy import select

from minsheng.services import audit
from minsheng.services.triage.routing_admin import RuleIn, create_rule, delete_rule, list_rules
from minsheng.storage.audit_tables import AuditEntry
from minsheng.storage.triage_tables import RoutingRule
from tests.integration.triage.conftest import FakeClassifier, MakeDesk


def test_a_deleted_rule_is_kept_and_no_longer_routes(make_desk: MakeDesk) -> None:
    desk = make_desk(FakeClassifier("060101", 0.99))
    audit.record_changes(desk.db, desk.clock)
    now = desk.clock.now()
    with desk.db.write_sessions() as session, session.begin():
        session.info[audit.ACTOR_KEY] = "admin-script"
        rule_id = create_rule(
            session, RuleIn(category_code="060101", lead_unit="dist_d1", priority=5), "admin", now
        ).id
    desk.runtime.reload_org()
    assert desk.runtime.org.table.route("060101", None).lead_unit_id == "dist_d1"
    with desk.db.write_sessions() as session, session.begin():
        session.info[audit.ACTOR_KEY] = "admin-script"
        delete_rule(session, rule_id, now)
    desk.runtime.reload_org()
    assert desk.runtime.org.table.route("060101", None).lead_unit_id != "dist_d1"
    with desk.db.read_sessions() as session:
        kept = session.get(RoutingRule, rule_id)
        assert kept is not None and kept.deleted_at == now
        assert rule_id not in [r.id for r in list_rules(session)]
        logged = list(
            session.scalars(
                select(AuditEntry).where(AuditEntry.entity == "routing_rule").order_by(AuditEntry.id)
            )
        )
    assert [(e.action, e.actor_name) for e in logged] == [
        ("create", "admin-script"),
        ("delete", "admin-script"),
    ]
    assert logged[1].before["lead_unit"] == "dist_d1" and logged[1].after["deleted_at"]  # type: ignore[index]
