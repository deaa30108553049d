"""Routing table administration and import, return-history corrections, settings, suggestions and retraining."""

from __future__ import annotations

import csv
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from minsheng.demo.city import DemoCity
from minsheng.domain.roles import Actor, Role
from minsheng.domain.transitions import AssignmentAction
from minsheng.services import schemas as s
from minsheng.services.errors import Invalid, NotFound
from minsheng.services.suggest import earlier_tickets
from minsheng.services.triage.routing_admin import (
    RuleIn,
    create_rule,
    delete_rule,
    get_rule,
    import_routing,
    routing_corrections,
    update_rule,
)
from minsheng.services.triage.settings import write_setting
from minsheng.services.triage.status import model_status
from minsheng.services.triage.training import CURRENT_FILE, TRAINING_FILE, retrain, train_from_db
from minsheng.storage.db import Database
from minsheng.storage.models import Category, Ticket, Unit, User
from minsheng.storage.triage_tables import RoutingRule
from tests.integration.triage.conftest import FakeClassifier, MakeDesk, generated_texts


# ---------------------------------------------------------------------------------------------- rules CRUD
@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"lead_unit": "nobody"}, NotFound),
        ({"lead_unit": "cgj", "category_code": "9999"}, NotFound),
        ({"lead_unit": "cgj", "area_code": "ZZ"}, NotFound),
        ({"lead_unit": "cgj", "assist_units": ["nobody"]}, NotFound),
        ({"lead_unit": "110"}, Invalid),  # external systems take transfers, not dispatches
        ({"lead_unit": "cgj", "assist_units": ["cgj"]}, Invalid),
        ({"lead_unit": "cgj", "assist_units": ["wjw", "wjw"]}, Invalid),
    ],
)
def test_rule_validation(city_db: Database, clock: object, body: dict[str, object], error: type) -> None:
    with city_db.write_sessions() as session, session.begin(), pytest.raises(error):
        create_rule(session, RuleIn(**body), "admin", clock.now())  # type: ignore[attr-defined]


def test_rule_crud_reaches_the_runtime(make_desk: MakeDesk) -> None:
    desk = make_desk(FakeClassifier("060101", 0.99))
    now = desk.clock.now()
    with desk.db.write_sessions() as session, session.begin():
        rule = create_rule(
            session, RuleIn(category_code="060101", lead_unit="dist_d1", priority=5), "admin", now
        )
        rule_id = rule.id
    desk.runtime.reload_org()
    assert desk.runtime.org.table.route("060101", None).lead_unit_id == "dist_d1"
    with desk.db.write_sessions() as session, session.begin():
        update_rule(
            session, rule_id, RuleIn(category_code="060101", lead_unit="wjw", enabled=False), "a", now
        )
    desk.runtime.reload_org()
    assert desk.runtime.org.table.route("060101", None).lead_unit_id == "wjw"  # disabled: the 0601 rule again
    with desk.db.write_sessions() as session, session.begin():
        delete_rule(session, rule_id)
        with pytest.raises(NotFound):
            get_rule(session, rule_id)


def test_deactivated_unit_stops_its_rules(make_desk: MakeDesk) -> None:
    desk = make_desk(FakeClassifier("060101", 0.99))
    with desk.db.write_sessions() as session, session.begin():
        unit = session.scalar(select(Unit).where(Unit.code == "wjw"))
        assert unit is not None
        unit.active = False
    desk.runtime.mark_stale()
    t = desk.intake(title="医院", detail="医生态度不好")
    assert t.state == "accepted" and "no_route" in [r["code"] for r in t.triage["reasons"]]
    assert desk.runtime.org.skipped_rules


# --------------------------------------------------------------------------------------------------- import
def _write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return path


def test_import_routing_csv_and_xlsx(city_db: Database, clock: object, tmp_path: Path) -> None:
    now = clock.now()  # type: ignore[attr-defined]
    path = _write_csv(
        tmp_path / "rules.csv",
        [
            ["分类", "区划", "主办单位", "协办单位", "优先级", "启用", "备注"],
            ["0601", "", "wjw", "", "0", "是", "unchanged"],
            ["0601", "D1", "dist_d1", "wjw", "1", "是", "东湖区本地"],
            ["0201", "", "nobody", "", "", "", ""],
            ["0201", "", "sthjj", "", "x", "", ""],
            ["0201", "", "sthjj", "", "", "maybe", ""],
            ["0101", "S11", "st_s11", "cgj、team_szqx", "", "", "加协办"],
        ],
    )
    with city_db.write_sessions() as session, session.begin():
        report = import_routing(session, path, now)
    assert (report.created, report.updated) == (1, 2)
    assert [n for n, _ in report.errors] == [4, 5, 6]
    assert "nobody" in report.errors[0][1]
    with city_db.read_sessions() as session:
        local = session.scalar(select(RoutingRule).where(RoutingRule.area_code == "S11"))
        assert local is not None and local.assist_units == ["cgj", "team_szqx"]

    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["category_code", "area_code", "lead_unit", "assist_units", "priority"])
    ws.append(["0501", None, "jyj", None, 3])
    wb.save(tmp_path / "rules.xlsx")
    with city_db.write_sessions() as session, session.begin():
        report = import_routing(session, tmp_path / "rules.xlsx", now, replace=True)
    assert report.created == 1 and not report.errors
    with city_db.read_sessions() as session:
        assert len(list(session.scalars(select(RoutingRule)))) == 1


def test_import_routing_refuses_a_file_without_lead_column(
    city_db: Database, clock: object, tmp_path: Path
) -> None:
    from minsheng.services.importing import ImportFileError

    path = _write_csv(tmp_path / "bad.csv", [["category_code", "area_code"], ["0601", ""]])
    with city_db.write_sessions() as session, session.begin(), pytest.raises(ImportFileError):
        import_routing(session, path, clock.now())  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------------------ return history
def _actor(db: Database, username: str) -> Actor:
    with db.read_sessions() as session:
        u = session.scalar(select(User).where(User.username == username))
        assert u is not None
        return Actor(role=Role(u.role), user_id=u.id, unit_id=u.unit_id, name=u.display_name)


def test_returned_routes_get_a_correction(make_desk: MakeDesk) -> None:
    desk = make_desk(FakeClassifier("020101", 0.99))
    h_sthjj, h_wjw, disp = (
        _actor(desk.db, "h_sthjj"),
        _actor(desk.db, "h_wjw"),
        _actor(desk.db, "dispatcher1"),
    )
    for i in range(3):
        t = desk.intake(title=f"医院食堂油烟{i}", detail=f"第{i}家医院的食堂油烟排到病房，病人受不了")
        assert t.state == "dispatched"
        with desk.db.write_sessions() as session, session.begin():
            ticket = session.scalar(select(Ticket).where(Ticket.number == t.number))
            assert ticket is not None
            a = ticket.assignments[0]
            desk.engine.assignment_step(
                session,
                h_sthjj,
                a.id,
                AssignmentAction.RETURN,
                s.WithReason(reason="医院内部事务，归卫健委"),
                desk.clock.now(),
            )
            desk.engine.dispatch(
                session,
                disp,
                t.number,
                s.Redispatch(lead_unit="wjw", reason="按退回意见改派"),
                desk.clock.now(),
            )
            session.refresh(ticket, attribute_names=["assignments"])
            b = next(x for x in ticket.assignments if x.state == "pending")
            desk.engine.assignment_step(
                session, h_wjw, b.id, AssignmentAction.SIGN, s.WithNote(), desk.clock.now()
            )
        desk.clock.advance(timedelta(minutes=5))
    with desk.db.read_sessions() as session:
        found = routing_corrections(session, min_dispatches=2)
    assert len(found) == 1
    c = found[0]
    assert c["unit"] == "sthjj" and c["returns"] == 3 and c["suggested_unit"] == "wjw"
    assert c["rule_id"] is not None and c["top_reasons"][0][0] == "医院内部事务，归卫健委"


# -------------------------------------------------------------------------------------------------- settings
def test_settings_override_and_validation(make_desk: MakeDesk) -> None:
    desk = make_desk(FakeClassifier("060101", 0.8, threshold=0.9))
    assert desk.intake(title="医院", detail="医生态度不好").state == "accepted"
    with desk.db.write_sessions() as session, session.begin():
        write_setting(session, "auto_threshold", 0.75, "admin", desk.clock.now())
        for key, value, error in [
            ("auto_threshold", 1.5, Invalid),
            ("auto_threshold", "high", Invalid),
            ("cluster_min_count", 1, Invalid),
            ("no_such_thing", 1, NotFound),
        ]:
            with pytest.raises(error):
                write_setting(session, key, value, "admin", desk.clock.now())
    desk.runtime.reload_org()
    assert desk.runtime.threshold == 0.75
    assert desk.intake(title="医院护士", detail="护士服务态度差").state == "dispatched"


# ------------------------------------------------------------------------------------------------ suggestions
def test_suggest_for_the_operator_desk(make_desk: MakeDesk) -> None:
    from minsheng.services.suggest import suggest

    desk = make_desk(FakeClassifier("060101", 0.7))
    first = desk.intake(
        title="医院态度差", detail="市一医院挂号窗口态度很差", citizen_phone="13800001111", address="锦绣花园"
    )

    with desk.db.read_sessions() as session:
        out = suggest(
            session,
            desk.runtime,
            title="医院态度差",
            detail="市一医院挂号窗口态度很差",
            address="锦绣花园",
            lat=None,
            lon=None,
            phone="13800001111",
        )
        assert set(out) >= {
            "category",
            "kind",
            "urgency",
            "transfer",
            "area",
            "repeats",
            "earlier",
            "answers",
        }
        assert out["category"][0] == {"code": "060101", "name": "医院服务态度", "confidence": 0.7}
        assert out["area"]["code"] == "K111" and out["area"]["chain"][-1] == "阳光社区"
        assert out["repeats"][0]["number"] == first.number and out["repeats"][0]["title"] == "医院态度差"
        assert [e["number"] for e in out["earlier"]] == [first.number]
        assert isinstance(out["answers"], list)
        for junk in ("", "😀😀", "路" * 100_000, "mixed 路灯 مرحبا"):
            out = suggest(
                session,
                desk.runtime,
                title=junk,
                detail=junk,
                address=junk[:300],
                lat=30.1,
                lon=120.05,
                phone="x",
            )
            assert out["earlier"] == [] and out["area"]["code"] == "K111"
        assert earlier_tickets(session, None) == []


# -------------------------------------------------------------------------------------------------- training
def test_train_from_db_and_retrain(make_desk: MakeDesk, demo_city: DemoCity, tmp_path: Path) -> None:
    texts, labels = generated_texts(demo_city, 25, seed=3)
    desk = make_desk(model_dir=tmp_path / "models")
    with desk.db.write_sessions() as session, session.begin():
        cat_id = {c.code: c.id for c in session.scalars(select(Category))}
        now = desk.clock.now()
        for i, (text, label) in enumerate(zip(texts, labels, strict=True)):
            title, detail = text.split("\n", 1)
            session.add(
                Ticket(
                    number=f"1{i:011d}",
                    query_code_hash="x",
                    channel="phone",
                    kind="complaint",
                    urgency="normal",
                    category_id=cat_id[label],
                    title=title,
                    detail=detail,
                    state="closed",
                    created_at=now,
                    updated_at=now,
                    closed_at=now,
                    reopen_count=0,
                    return_count=0,
                    event_count=0,
                )
            )
    record = train_from_db(desk.db, tmp_path / "demo-model", level=3, now=now)
    assert record["tickets"] == 100 and record["classes"] == 4
    assert (tmp_path / "demo-model" / TRAINING_FILE).is_file()
    level1 = train_from_db(desk.db, tmp_path / "l1", level=1)
    assert level1["classes"] == 4 and "metrics" in level1
    info = retrain(desk.runtime, now)
    assert desk.runtime.model is not None and desk.runtime.model_version == info["version"]
    assert (tmp_path / "models" / CURRENT_FILE).read_text() == info["version"]
    assert model_status(desk.runtime)["training"]["tickets"] == 100


def test_train_from_db_refuses_an_empty_history(make_desk: MakeDesk, tmp_path: Path) -> None:
    desk = make_desk()
    with pytest.raises(Invalid, match="not enough"):
        train_from_db(desk.db, tmp_path / "m")
    desk_without_dir = make_desk()
    with pytest.raises(Invalid, match="model directory"):
        retrain(desk_without_dir.runtime, desk.clock.now())
