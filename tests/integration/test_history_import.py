"""Importing a city's ticket history (issue 16 §4), on SQLite and PostgreSQL: a mapping of an old system's
export with every state, ratings and bad rows; idempotency (a re-run, two importers at once); timelines equal to
what the ticket engine writes for the same loop; measure facts equal to a recomputation; imported tickets as
the classifier's training data. The shipped samples (message board, NYC 311) are in test_history_samples.py.
"""

from __future__ import annotations

import csv
import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from minsheng.domain.roles import Actor, Role
from minsheng.domain.states import Rating
from minsheng.domain.transitions import AssignmentAction
from minsheng.services import schemas as s
from minsheng.services.history import import_tickets, load_mapping, write_error_report
from minsheng.services.history.writer import BatchWriter
from minsheng.services.measures import facts_of, recompute_all
from minsheng.services.tickets import TicketEngine
from minsheng.services.triage.training import training_data
from minsheng.services.uow import reading, writing
from minsheng.storage.db import Database
from minsheng.storage.import_tables import TicketImport
from minsheng.storage.models import Assignment, Category, Ticket, TimelineEvent, Unit
from tests.factories import small_city

NOW = datetime(2026, 11, 21, 1, 0, tzinfo=UTC)
SH = ZoneInfo("Asia/Shanghai")

MAPPING = """
[source]
name = "oldsys"
id = "{编号}"
timezone = "Asia/Shanghai"
time_formats = ["%Y/%m/%d %H:%M"]

[ticket]
title = "{标题}"
detail = "{内容}"
citizen_phone = "{电话}"
channel = { value = "{来源}", map = { "电话" = "phone", "微信" = "wechat" }, default = "phone" }

[times]
created = "{受理时间}"
dispatched = "{派单时间}"
signed = "{签收时间}"
replied = "{答复时间}"
closed = "{办结时间}"
rated = "{评价时间}"

[state]
value = "{状态}"
map = { "已办结" = "closed", "办理中" = "in_progress", "待签收" = "dispatched", "待派单" = "accepted" }

[reply]
text = "{答复}"

[rating]
value = "{评价}"
map = { "满意" = "satisfied", "基本满意" = "basically_satisfied", "不满意" = "dissatisfied" }

[unit]
code = "{承办单位编码}"

[category]
code = "{分类编码}"
"""
HEADER = [
    "编号", "标题", "内容", "电话", "来源", "受理时间", "派单时间", "签收时间", "答复时间", "办结时间",
    "评价时间", "状态", "答复", "评价", "承办单位编码", "分类编码",
]  # fmt: skip
ROWS = [
    ["A1", "路灯坏了", "幸福路路灯不亮", "13800138000", "电话", "2024/3/1 09:00", "2024/3/1 09:20",
     "2024/3/1 10:00", "2024/3/2 15:00", "2024/3/2 16:00", "2024/3/3 10:00", "已办结", "已更换灯泡", "满意",
     "CGJ", "010101"],
    ["A2", "噪音", "夜间施工噪音", "", "微信", "2024/3/1 22:00", "2024/3/1 22:10", "2024/3/2 08:00", "", "",
     "", "办理中", "", "", "ZJJ", "0201"],
    ["A3", "坏时间", "受理时间写错了", "", "电话", "昨天", "", "", "", "", "", "已办结", "", "", "CGJ", ""],
    ["A4", "倒序", "办结早于受理", "", "电话", "2024/3/5 09:00", "", "", "", "2024/3/4 09:00", "", "已办结",
     "答复", "", "CGJ", ""],
    ["A5", "无此单位", "单位编码不存在", "", "电话", "2024/3/5 09:00", "", "", "", "2024/3/6 09:00", "",
     "已办结", "答复", "", "NOPE", ""],
    ["A1", "重复", "同一编号又出现", "", "电话", "2024/3/1 09:00", "", "", "", "", "", "待派单", "", "", "",
     ""],
    ["A6", "待派", "还没派单", "", "电话", "2024/3/6 09:00", "", "", "", "", "", "待派单", "", "", "", ""],
    ["A7", "咨询", "直接答复的咨询", "", "电话", "2024/3/6 10:00", "", "", "", "2024/3/6 10:05", "",
     "已办结", "政策是这样的", "", "", ""],
    ["A8", "待签", "派了未签", "", "电话", "2024/3/7 09:00", "2024/3/7 09:30", "", "", "", "", "待签收", "",
     "", "HBJ", "02"],
    ["A9", "怪评价", "评价值不认识", "", "电话", "2024/3/7 09:00", "", "", "", "2024/3/8 09:00",
     "2024/3/8 10:00", "已办结", "答复", "很差", "CGJ", ""],
]  # fmt: skip


def local(text: str) -> datetime:
    return datetime.strptime(text, "%Y/%m/%d %H:%M").replace(tzinfo=SH).astimezone(UTC)


@pytest.fixture
def city(db: Database) -> Database:
    with writing(db) as session:
        small_city(session, NOW)
    return db


def write_files(tmp_path: Path, rows: list[list[str]] = ROWS) -> tuple[Path, Path]:
    data = tmp_path / "old.csv"
    with data.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        w.writerows(rows)
    mapping = tmp_path / "oldsys.toml"
    mapping.write_text(MAPPING, encoding="utf-8")
    return data, mapping


def events_of(db: Database, external_id: str) -> tuple[Ticket, list[TimelineEvent], list[Assignment]]:
    with reading(db) as session:
        t = session.scalars(select(Ticket).where(Ticket.external_id == external_id)).one()
        evs = list(
            session.scalars(
                select(TimelineEvent).where(TimelineEvent.ticket_id == t.id).order_by(TimelineEvent.seq)
            )
        )
        assignments = list(t.assignments)
        session.expunge_all()
    return t, evs, assignments


def test_every_state_bad_rows_reported_and_a_rerun_makes_nothing(city: Database, tmp_path: Path) -> None:
    data, mapping_path = write_files(tmp_path)
    m = load_mapping(mapping_path)
    # Batches of 3: the bad rows sit in the middle of batches, next to good ones.
    r = import_tickets(city, data, m, NOW, batch_size=3)
    assert (r.rows_read, r.imported, r.already, r.refused) == (10, 5, 0, 5)
    reasons = {row: reason for row, _, reason in r.errors}
    assert "created time" in reasons[4] and "'昨天'" in reasons[4]
    assert "closed time 2024-03-04" in reasons[5] and "before" in reasons[5]
    assert reasons[6] == "unit 'NOPE' does not exist"
    assert reasons[7] == "same source id as row 2"
    assert reasons[11] == "rating '很差' is not in the mapping"
    assert dict(r.states) == {"rated": 1, "in_progress": 1, "accepted": 1, "closed": 1, "dispatched": 1}

    with reading(city) as session:
        states = dict(session.execute(select(Ticket.external_id, Ticket.state)).tuples().all())
        assert session.scalar(select(func.count()).select_from(TicketImport)) == 5
        # The facts the measures read equal a recomputation from the raw timelines.
        assert facts_of(session) == recompute_all(session)
    assert states == {
        "A1": "rated",
        "A2": "in_progress",
        "A6": "accepted",
        "A7": "closed",
        "A8": "dispatched",
    }

    again = import_tickets(city, data, m, NOW, batch_size=4)
    assert (again.rows_read, again.imported, again.already, again.refused) == (10, 0, 5, 5)
    # The same export saved as XLSX reads the same: the same rows refused, the others already there.
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    for row in [HEADER, *ROWS]:
        ws.append(row)
    wb.save(tmp_path / "old.xlsx")
    xlsx = import_tickets(city, tmp_path / "old.xlsx", m, NOW)
    assert (xlsx.rows_read, xlsx.imported, xlsx.already, xlsx.errors) == (10, 0, 5, again.errors)
    with reading(city) as session:
        assert session.scalar(select(func.count()).select_from(Ticket)) == 5

    report = tmp_path / "errors.csv"
    write_error_report(again, report)
    lines = list(csv.reader(report.open(encoding="utf-8-sig")))
    assert lines[0] == ["row", "source_id", "error"] and [x[:2] for x in lines[1:]] == [
        ["4", "A3"], ["5", "A4"], ["6", "A5"], ["7", "A1"], ["11", "A9"],
    ]  # fmt: skip
    write_error_report(again, tmp_path / "errors.json")
    data_json = json.loads((tmp_path / "errors.json").read_text(encoding="utf-8"))
    assert data_json["refused"] == 5 and data_json["errors"][0] == {
        "row": 4, "source_id": "A3", "error": reasons[4],
    }  # fmt: skip
    default_time_and_estimated_steps(city, tmp_path)


def test_timeline_times_fields_and_units_follow_the_source(city: Database, tmp_path: Path) -> None:
    data, mapping_path = write_files(tmp_path)
    import_tickets(city, data, load_mapping(mapping_path), NOW)
    t, evs, (a,) = events_of(city, "A1")
    assert [(e.action, e.at) for e in evs] == [
        ("intake", local("2024/3/1 09:00")),
        ("dispatch", local("2024/3/1 09:20")),
        ("sign", local("2024/3/1 10:00")),
        ("lead_signed", local("2024/3/1 10:00")),
        ("feedback", local("2024/3/2 15:00")),
        ("request_close", local("2024/3/2 16:00")),
        ("lead_requested_close", local("2024/3/2 16:00")),
        ("review_accept", local("2024/3/2 16:00")),
        ("close", local("2024/3/2 16:00")),
        ("rate", local("2024/3/3 10:00")),
    ]
    assert evs[4].payload["text"] == "已更换灯泡" and evs[-1].payload == {"rating": "satisfied"}
    assert evs[0].payload["imported"] == {"source": "oldsys", "id": "A1"}
    assert (t.created_at, t.dispatched_at, t.closed_at, t.rated_at) == (
        local("2024/3/1 09:00"), local("2024/3/1 09:20"), local("2024/3/2 16:00"), local("2024/3/3 10:00"),
    )  # fmt: skip
    assert (t.rating, t.channel, t.citizen_phone, t.event_count) == ("satisfied", "phone", "13800138000", 10)
    assert t.number.startswith("20240301")  # numbered by the day of its historic intake
    assert (a.state, a.signed_at, a.reported_at, a.closed_at) == (
        "closed", local("2024/3/1 10:00"), local("2024/3/2 15:00"), local("2024/3/2 16:00"),
    )  # fmt: skip
    with reading(city) as session:
        assert session.get(Unit, a.unit_id).code == "CGJ"  # type: ignore[union-attr]
        assert session.get(Category, t.category_id).code == "010101"  # type: ignore[arg-type,union-attr]
        assert t.lead_unit_id == a.unit_id

    t2, evs2, (a2,) = events_of(city, "A2")  # open, signed: in progress at the unit, no close
    assert (t2.state, a2.state, t2.closed_at, t2.channel) == ("in_progress", "signed", None, "wechat")
    assert [e.action for e in evs2] == ["intake", "dispatch", "sign", "lead_signed"]
    t7, evs7, as7 = events_of(city, "A7")  # closed without a unit: answered by the centre
    assert as7 == [] and [e.action for e in evs7] == ["intake", "answer_directly"]
    assert evs7[1].payload == {"answer": "政策是这样的"} and t7.closed_at == local("2024/3/6 10:05")
    t8, evs8, (a8,) = events_of(city, "A8")
    assert (t8.state, a8.state, [e.action for e in evs8]) == ("dispatched", "pending", ["intake", "dispatch"])
    t6, evs6, as6 = events_of(city, "A6")
    assert (t6.state, t6.lead_unit_id, as6, len(evs6)) == ("accepted", None, [], 1)

    # Imported history is the classifier's training data: A1 is closed with a level-3 category; A2 (open) and
    # A7 (closed, no category) teach nothing.
    with reading(city) as session:
        assert training_data(session, level=3) == (["路灯坏了\n幸福路路灯不亮"], ["010101"])
        assert training_data(session, level=2)[1] == ["0101"]


def test_the_engine_writes_the_same_timeline_for_the_same_loop(city: Database, tmp_path: Path) -> None:
    """Machines, actions and states of an imported ticket equal what the ticket engine writes for its loop."""
    data, mapping_path = write_files(tmp_path, ROWS[:1])
    import_tickets(city, data, load_mapping(mapping_path), NOW)
    _, imported, _ = events_of(city, "A1")

    engine = TicketEngine()
    with reading(city) as session:
        cgj = session.scalar(select(Unit.id).where(Unit.code == "CGJ"))
    handler = Actor(Role.HANDLER, unit_id=cgj, name="城管局")
    with writing(city) as session:
        req = s.IntakeRequest(detail="幸福路路灯不亮", category_code="010101", external_id="native")
        t, _, _ = engine.intake(session, Actor(Role.OPERATOR, name="话务员"), req, local("2024/3/1 09:00"))
        number = t.number
    steps = [
        (AssignmentAction.SIGN, s.WithNote(), "2024/3/1 10:00"),
        (AssignmentAction.FEEDBACK, s.Feedback(text="已更换灯泡"), "2024/3/2 15:00"),
        (AssignmentAction.REQUEST_CLOSE, s.RequestClose(summary="已更换灯泡"), "2024/3/2 16:00"),
    ]
    with writing(city) as session:
        dispatcher = Actor(Role.DISPATCHER, name="派单员")
        engine.dispatch(session, dispatcher, number, s.Dispatch(lead_unit="CGJ"), local("2024/3/1 09:20"))
    for action, params, at in steps:
        with writing(city) as session:
            aid = session.scalar(
                select(Assignment.id).join(Ticket).where(Ticket.number == number, Assignment.unit_id == cgj)
            )
            assert aid is not None
            engine.assignment_step(session, handler, aid, action, params, local(at))
    with writing(city) as session:
        engine.review(
            session, Actor(Role.SUPERVISOR, name="督办"), number, True, None, local("2024/3/2 16:00")
        )
    with writing(city) as session:
        engine.rate(
            session, Actor.citizen(), number, s.Rate(rating=Rating.SATISFIED), local("2024/3/3 10:00")
        )
    _, native, _ = events_of(city, "native")

    def shape(evs: list[TimelineEvent]) -> list[tuple[object, ...]]:
        return [
            (e.seq, e.machine, e.action, e.from_state, e.to_state, e.at, e.assignment_id is None) for e in evs
        ]

    assert shape(imported) == shape(native)
    # The unit's steps are the unit's (a handler of CGJ); the centre's are the import's, where native ones
    # name the operator, dispatcher and supervisor who took them.
    assert {e.action: (e.actor_role, e.actor_unit_id) for e in imported if e.actor_role == "handler"} == {
        "sign": ("handler", cgj), "feedback": ("handler", cgj), "request_close": ("handler", cgj),
    }  # fmt: skip
    # Payload keys too (values differ where the import has no person: the actor, the source).
    assert [set(e.payload) - {"imported", "note"} for e in imported] == [
        set(e.payload) - {"note"} for e in native
    ]
    with reading(city) as session:
        assert facts_of(session) == recompute_all(session)


def test_a_batch_the_database_refuses_is_written_again_row_by_row(
    city: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, mapping_path = write_files(tmp_path)
    real = BatchWriter._insert

    def failing(self, session, items, numbers):  # type: ignore[no-untyped-def]
        if any(t.source_id == "A2" for t, *_ in items):
            raise IntegrityError("INSERT", {}, Exception("value too long (simulated)"))
        return real(self, session, items, numbers)

    monkeypatch.setattr(BatchWriter, "_insert", failing)
    r = import_tickets(city, data, load_mapping(mapping_path), NOW, batch_size=100)
    assert (r.imported, r.refused) == (4, 6)
    assert (3, "A2", "database refused the row: value too long (simulated)") in r.errors
    with reading(city) as session:
        assert session.scalar(select(func.count()).select_from(Ticket)) == 4
        assert facts_of(session) == recompute_all(session)


def test_two_importers_at_once_make_each_ticket_once(city: Database, tmp_path: Path) -> None:
    rows = [
        [f"B{i}", "标题", f"内容{i}", "", "电话", "2024/3/1 09:00", "", "", "", "2024/3/1 12:00", "", "已办结",
         "答复", "", "CGJ", "010101"]
        for i in range(120)
    ]  # fmt: skip
    data, mapping_path = write_files(tmp_path, rows)
    m = load_mapping(mapping_path)
    results = []

    def run() -> None:
        results.append(import_tickets(city, data, m, NOW, batch_size=15))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert len(results) == 2 and all(r.refused == 0 for r in results)
    assert sum(r.imported for r in results) == 120 and sum(r.already for r in results) == 120
    with reading(city) as session:
        assert session.scalar(select(func.count()).select_from(Ticket)) == 120
        assert session.scalar(select(func.count(func.distinct(Ticket.external_id)))) == 120
        assert facts_of(session) == recompute_all(session)


def default_time_and_estimated_steps(city: Database, tmp_path: Path) -> None:
    rows = [["C1", "t", "无时间", "", "电话", "", "", "", "", "", "", "已办结", "答复", "", "CGJ", ""]]
    (tmp_path / "c").mkdir()
    data, mapping_path = write_files(tmp_path / "c", rows)
    m = load_mapping(mapping_path)
    r = import_tickets(city, data, m, NOW)
    assert r.errors == [(2, "C1", "created time is empty")]
    at = datetime(2013, 12, 25, 4, 0, tzinfo=UTC)
    r = import_tickets(city, data, m, NOW, default_created=at)
    assert r.imported == 1
    t, evs, _ = events_of(city, "C1")
    assert t.created_at == at and t.closed_at == at and all(e.at == at for e in evs)
    assert evs[0].payload["imported"]["estimated"] == ["dispatched", "signed", "replied", "closed"]
    assert NOW - t.created_at > timedelta(days=365)
