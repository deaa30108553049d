"""Cluster warnings (一类事预警) stored once per cluster, on SQLite and PostgreSQL, also across two processes."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from minsheng.services.triage.clusters import acknowledge_cluster, clusters_json, list_clusters
from minsheng.storage.triage_tables import ClusterWarning
from tests.integration.triage.conftest import FakeClassifier, MakeDesk

TEXTS = [
    "春晖社区农贸市场的超市在卖过期的酸奶，买回家才发现",
    "春晖社区超市货架上的面包已经过期三天还在卖",
    "和平街道春晖社区一家超市出售过期食品，孩子吃了拉肚子",
    "春晖社区旁边的超市过期牛奶还在打折卖",
    "春晖社区超市又卖过期零食",
]
ADDRESS = "东湖区和平街道春晖社区"


def _warnings(desk_db: object) -> list[ClusterWarning]:
    with desk_db.read_sessions() as session:  # type: ignore[attr-defined]
        rows = list(session.scalars(select(ClusterWarning)))
        session.expunge_all()
        return rows


def test_cluster_warning_raised_once_for_n_and_not_again(make_desk: MakeDesk) -> None:
    # Same category in the same street within the window: three make a cluster (min_count=3).
    desk = make_desk(FakeClassifier("020101", 0.99))
    tickets = []
    for i, text in enumerate(TEXTS[:3]):
        desk.clock.advance(timedelta(hours=5))
        tickets.append(desk.intake(title=f"超市卖过期食品{i}", detail=text, address=ADDRESS))
    rows = _warnings(desk.db)
    assert len(rows) == 1
    row = rows[0]
    assert row.state == "open" and row.area_code == "S12" and row.category_code == "020101"
    assert desk.cluster_members(row.id) == sorted(t.number for t in tickets) and row.member_count == 3
    for t in tickets:
        events = desk.events(t.number, "cluster_warning")
        assert len(events) == 1, t.number
        assert events[0].actor_role == "system" and events[0].payload["key"] == row.key
        assert events[0].payload["joined"] is False
    fourth = desk.intake(title="超市卖过期食品3", detail=TEXTS[3], address=ADDRESS)
    rows = _warnings(desk.db)
    assert len(rows) == 1 and rows[0].member_count == 4
    assert desk.cluster_members(row.id) == sorted(t.number for t in [*tickets, fourth])
    (joined,) = desk.events(fourth.number, "cluster_warning")
    assert joined.payload["joined"] is True and joined.payload["members"] == [fourth.number]
    assert joined.payload["member_count"] == 4 and " 4 件" in joined.payload["text"]
    for t in tickets:
        assert len(desk.events(t.number, "cluster_warning")) == 1  # not re-announced on old members


def test_supervisors_are_told_once(make_desk: MakeDesk) -> None:
    from minsheng.storage.timelimit_tables import Notification

    desk = make_desk(FakeClassifier("020101", 0.99))
    for i, text in enumerate(TEXTS):
        desk.intake(title=f"超市卖过期食品{i}", detail=text, address=ADDRESS)
    with desk.db.read_sessions() as session:
        n = session.scalar(
            select(func.count()).select_from(Notification).where(Notification.kind == "cluster_warning")
        )
    assert n == 2  # two supervisors, one cluster


def test_two_processes_store_one_warning(make_desk: MakeDesk) -> None:
    a = make_desk(FakeClassifier("020101", 0.99))
    first = [a.intake(title=f"超市卖过期食品{i}", detail=t, address=ADDRESS) for i, t in enumerate(TEXTS[:2])]
    b = make_desk(FakeClassifier("020101", 0.99))  # starts later: replays the two tickets from the database
    third = a.intake(title="超市卖过期食品2", detail=TEXTS[2], address=ADDRESS)
    fourth = b.intake(title="超市卖过期食品3", detail=TEXTS[3], address=ADDRESS)  # b never saw `third`
    rows = _warnings(a.db)
    assert len(rows) == 1
    members = set(a.cluster_members(rows[0].id))
    assert rows[0].member_count == len(members)
    assert {t.number for t in [*first, third, fourth]} <= members
    assert len(b.events(fourth.number, "cluster_warning")) == 1
    assert all(len(a.events(t.number, "cluster_warning")) == 1 for t in first)


def test_unrelated_tickets_raise_nothing(make_desk: MakeDesk) -> None:
    desk = make_desk(FakeClassifier("020101", 0.2))  # no confident category: only text similarity links
    for i, (text, addr) in enumerate(
        [
            ("路灯不亮", ADDRESS),
            ("孩子上学报名", ADDRESS),
            ("医院排队太久", ADDRESS),
            ("超市过期食品", "西山区秋实社区"),
        ]
    ):
        desk.intake(title=f"事项{i}", detail=text, address=addr)
    assert _warnings(desk.db) == []


def test_acknowledge(make_desk: MakeDesk) -> None:
    desk = make_desk(FakeClassifier("020101", 0.99))
    for i, text in enumerate(TEXTS[:3]):
        desk.intake(title=f"超市卖过期食品{i}", detail=text, address=ADDRESS)
    with desk.db.write_sessions() as session, session.begin():
        (row,) = list_clusters(session, state="open")
        acknowledge_cluster(session, row.id, "supervisor1", "已交市场监管局专项检查", desk.clock.now())
    with desk.db.read_sessions() as session:
        assert list_clusters(session, state="open") == []
        assert clusters_json(session, list_clusters(session))[0]["acknowledged_by"] == "supervisor1"
