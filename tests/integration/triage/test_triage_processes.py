"""Repeats and cluster warnings across processes and within one transaction, on SQLite and PostgreSQL.

Each `Desk` is one process: its own triage runtime (repeat index, cluster detector) over the shared database.
A process reads what the others took (`TriageRuntime.catch_up`); tickets triaged in one transaction, or after a
request's analysis was prepared, are still compared with each other.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from minsheng.domain.roles import Actor, Role
from minsheng.services import schemas as s
from minsheng.services.tickets import submit
from minsheng.services.triage.clusters import record_cluster
from minsheng.services.triage.jobs import run_triage_jobs
from minsheng.services.triage.recent import RecentTickets
from minsheng.services.triage.settings import TriageConfig
from minsheng.services.triage.status import model_status
from minsheng.storage import triage_tables as tables
from minsheng.storage.models import Ticket
from minsheng.triage.clusters import ClusterWarning
from tests.integration.triage.conftest import Desk, FakeClassifier, MakeDesk

OPERATOR = Actor(role=Role.OPERATOR, name="话务员")
SMOKE = "锦绣花园小区楼下的烧烤店每天晚上油烟直排，熏得整栋楼没法开窗，请尽快处理"
SMOKE_AT = "幸福路街道锦绣花园小区"
EXPIRED = [
    "春晖社区农贸市场的超市在卖过期的酸奶，买回家才发现",
    "春晖社区超市货架上的面包已经过期三天还在卖",
    "和平街道春晖社区一家超市出售过期食品，孩子吃了拉肚子",
]
EXPIRED_AT = "东湖区和平街道春晖社区"
# Every call reads the others' tickets (the default waits `recent_sync_seconds` between looks).
EAGER = TriageConfig(recent_sync_seconds=0.0)
# Only intake's own look at the others' newest tickets, at every call (the default: at most every 0.1 s).
LOOKING = TriageConfig(recent_sync_seconds=3600.0, fresh_look_seconds=0.0)


def _reasons(t: Any) -> list[str]:
    return [r["code"] for r in t.triage["reasons"]]


def _warnings(desk: Desk) -> list[tables.ClusterWarning]:
    with desk.db.read_sessions() as session:
        rows = list(session.scalars(select(tables.ClusterWarning).order_by(tables.ClusterWarning.id)))
        session.expunge_all()
        return rows


def _ticket(desk: Desk, number: str) -> Any:
    with desk.db.read_sessions() as session:
        t = session.scalar(select(Ticket).where(Ticket.number == number))
        session.expunge_all()
        return t


def test_a_repeat_taken_by_another_process_is_found(make_desk: MakeDesk) -> None:
    a = make_desk(FakeClassifier("020101", 0.99), config=EAGER)
    b = make_desk(FakeClassifier("020101", 0.99), config=EAGER)
    first = a.intake(title="烧烤店油烟扰民", detail=SMOKE, address=SMOKE_AT)
    assert first.state == "dispatched"
    again = b.intake(title="烧烤店油烟扰民", detail=SMOKE + "！", address=SMOKE_AT)
    assert [r["number"] for r in again.triage["repeats"]] == [first.number]
    assert again.state == "accepted" and "strong_repeat" in _reasons(again)


def test_other_processes_are_read_at_most_every_recent_sync_seconds(make_desk: MakeDesk) -> None:
    a = make_desk(FakeClassifier("020101", 0.99), config=EAGER)
    b = make_desk(FakeClassifier("020101", 0.99), config=LOOKING)
    first = a.intake(title="烧烤店油烟扰民", detail=SMOKE, address=SMOKE_AT)
    second = b.intake(title="烧烤店油烟扰民", detail=SMOKE + "！", address=SMOKE_AT)
    # b looked at start-up, before `first`, and not since: its index does not hold `first`, but intake's own
    # look at the newest tickets finds it.
    assert [r["number"] for r in second.triage["repeats"]] == [first.number]
    assert first.number not in b.runtime.recent.repeats and first.number in b.runtime.recent.fresh
    assert model_status(b.runtime)["recent"]["seen_at_intake"] == 1
    assert b.runtime.catch_up() == 0  # not yet
    assert b.runtime.catch_up(force=True) == 1  # as when the hour has passed
    assert first.number in b.runtime.recent.repeats and len(b.runtime.recent.fresh) == 0
    assert model_status(b.runtime)["recent"]["seen_at_intake"] == 0
    third = b.intake(title="烧烤店油烟扰民", detail=SMOKE + "。", address=SMOKE_AT)
    assert {r["number"] for r in third.triage["repeats"]} == {first.number, second.number}


def test_a_flood_over_processes_that_have_not_read_each_other_links_every_call(make_desk: MakeDesk) -> None:
    # Calls seconds apart, taken in turn by three processes none of which reads the others in that time.
    desks = [make_desk(FakeClassifier("020101", 0.99), config=LOOKING) for _ in range(3)]
    taken: list[Any] = []
    for i in range(6):
        desks[i % 3].clock.advance(timedelta(seconds=1))
        t = desks[i % 3].intake(title="烧烤店油烟扰民", detail=SMOKE + "！" * i, address=SMOKE_AT)
        # Up to five repeats are listed: here every earlier call.
        assert {r["number"] for r in t.triage["repeats"]} == {p.number for p in taken}, i
        assert (t.state == "accepted") == bool(taken), i
        taken.append(t)
    assert all(d.runtime.catch_up() == 0 for d in desks)  # none of them read the others' tickets meanwhile


def test_the_look_at_intake_leaves_a_ticket_waiting_for_deferred_triage_to_the_next_read(
    make_desk: MakeDesk,
) -> None:
    a = make_desk(FakeClassifier("020101", 0.99))
    a.engine.defer_triage = True
    b = make_desk(FakeClassifier("020101", 0.99), config=LOOKING)
    text = "楼下烧烤店每天晚上油烟直排，熏得整栋楼没法开窗，请尽快处理"  # no place: no area before or after
    number, _, _ = submit(a.db, a.engine, OPERATOR, s.IntakeRequest(title="油烟", detail=text), a.clock.now())
    # Its area may come with triage: until then it is nobody's repeat (as in `catch_up`).
    early = b.intake(title="油烟", detail=text + "！")
    assert early.triage["repeats"] == [] and number not in b.runtime.recent.fresh
    run_triage_jobs(a.db, a.engine, a.clock.now())
    assert b.runtime.catch_up(force=True) == 1  # read once triaged
    late = b.intake(title="油烟", detail=text + "。")
    assert {r["number"] for r in late.triage["repeats"]} == {early.number, number}


def test_the_look_at_intake_is_made_at_most_every_fresh_look_seconds(make_desk: MakeDesk) -> None:
    a = make_desk(FakeClassifier("020101", 0.99), config=EAGER)
    b = make_desk(FakeClassifier("020101", 0.99), config=replace(LOOKING, fresh_look_seconds=3600.0))
    b.intake(
        title="路灯不亮", detail="幸福路三号的路灯坏了一周", address=SMOKE_AT
    )  # b looks, then not for an hour
    first = a.intake(title="烧烤店油烟扰民", detail=SMOKE, address=SMOKE_AT)
    blind = b.intake(title="烧烤店油烟扰民", detail=SMOKE + "！", address=SMOKE_AT)
    assert blind.triage["repeats"] == []
    b.runtime.config = replace(b.runtime.config, fresh_look_seconds=0.0)  # as when the hour has passed
    seen = b.intake(title="烧烤店油烟扰民", detail=SMOKE + "。", address=SMOKE_AT)
    assert {r["number"] for r in seen.triage["repeats"]} == {first.number, blind.number}


def test_the_look_at_intake_skips_what_the_index_holds(make_desk: MakeDesk) -> None:
    a = make_desk(FakeClassifier("020101", 0.99), config=EAGER)
    b = make_desk(FakeClassifier("020101", 0.99), config=EAGER)
    first = a.intake(title="烧烤店油烟扰民", detail=SMOKE, address=SMOKE_AT)
    assert b.runtime.catch_up(force=True) == 1
    again = b.intake(title="烧烤店油烟扰民", detail=SMOKE + "！", address=SMOKE_AT)
    assert [r["number"] for r in again.triage["repeats"]] == [first.number]  # listed once, not twice


def test_a_ticket_stored_with_an_earlier_time_is_read_too(make_desk: MakeDesk) -> None:
    # An import of older tickets, or a ticket entered after the fact: created_at is long before the look.
    a = make_desk(FakeClassifier("020101", 0.99), config=EAGER)
    b = make_desk(FakeClassifier("020101", 0.99), config=EAGER)
    req = s.IntakeRequest(title="烧烤店油烟扰民", detail=SMOKE, address=SMOKE_AT)
    number, _, _ = submit(a.db, a.engine, OPERATOR, req, a.clock.now() - timedelta(hours=3))
    assert b.runtime.catch_up() == 1
    again = b.intake(title="烧烤店油烟扰民", detail=SMOKE + "！", address=SMOKE_AT)
    assert [r["number"] for r in again.triage["repeats"]] == [number]


def test_a_ticket_waiting_for_deferred_triage_is_read_once_triaged(make_desk: MakeDesk) -> None:
    a = make_desk(FakeClassifier("020101", 0.99), config=EAGER)
    a.engine.defer_triage = True
    b = make_desk(FakeClassifier("020101", 0.99), config=EAGER)
    number, _, _ = submit(
        a.db, a.engine, OPERATOR, s.IntakeRequest(title="烧烤店油烟", detail=SMOKE), a.clock.now()
    )
    assert b.runtime.catch_up() == 0  # its area comes with triage: not indexed under "no area"
    status = model_status(b.runtime)["recent"]
    assert status["indexed"] == 0 and status["waiting_for_triage_since"] is not None
    a.clock.advance(timedelta(minutes=10))  # long past the margin: still looked for while it waits
    assert b.runtime.catch_up() == 0
    run_triage_jobs(a.db, a.engine, a.clock.now())
    assert b.runtime.catch_up() == 1
    assert b.runtime.catch_up() == 0  # once
    status = model_status(b.runtime)["recent"]
    assert status["indexed"] == 1 and status["waiting_for_triage_since"] is None
    again = b.intake(title="烧烤店油烟", detail=SMOKE + "！")
    assert [r["number"] for r in again.triage["repeats"]] == [number]


def test_a_cluster_spread_over_two_processes_is_raised_once(make_desk: MakeDesk) -> None:
    a = make_desk(FakeClassifier("020101", 0.99), config=EAGER)
    b = make_desk(FakeClassifier("020101", 0.99), config=EAGER)
    tickets = []
    for desk, (i, text) in zip([a, b, a], enumerate(EXPIRED), strict=True):
        desk.clock.advance(timedelta(minutes=20))
        tickets.append(desk.intake(title=f"超市卖过期食品{i}", detail=text, address=EXPIRED_AT))
    rows = _warnings(a)
    assert len(rows) == 1
    assert a.cluster_members(rows[0].id) == sorted(t.number for t in tickets)
    for t in tickets:
        assert len(a.events(t.number, "cluster_warning")) == 1, t.number


def test_a_cluster_completed_by_other_processes_tickets_is_stored(make_desk: MakeDesk) -> None:
    # `a` took none of the three: it stores the warning when it reads them (b never saw the first).
    a = make_desk(FakeClassifier("020101", 0.99), config=EAGER)
    c = make_desk(FakeClassifier("020101", 0.99), config=EAGER)
    first = c.intake(title="超市卖过期食品0", detail=EXPIRED[0], address=EXPIRED_AT)
    b = make_desk(FakeClassifier("020101", 0.99), config=TriageConfig(recent_sync_seconds=3600.0))
    b.runtime.recent.clusters = RecentTickets(b.runtime.config, b.runtime.org).clusters  # b forgot `first`
    rest = [
        b.intake(title=f"超市卖过期食品{i}", detail=t, address=EXPIRED_AT) for i, t in enumerate(EXPIRED[1:])
    ]
    assert _warnings(a) == []
    assert a.runtime.catch_up() == 3  # a started before all three
    rows = _warnings(a)
    assert len(rows) == 1 and a.cluster_members(rows[0].id) == sorted(t.number for t in [first, *rest])
    assert all(len(a.events(t.number, "cluster_warning")) == 1 for t in [first, *rest])


def test_one_cluster_under_two_keys_is_stored_once(make_desk: MakeDesk) -> None:
    desk = make_desk(FakeClassifier("020101", 0.2))  # unlike texts, no category: no cluster of their own
    tickets = [
        desk.intake(title=f"事项{i}", detail=text, address=EXPIRED_AT)
        for i, text in enumerate(["路灯不亮", "孩子上学报名", "医院排队太久", "井盖丢了"])
    ]
    assert _warnings(desk) == []
    numbers = [t.number for t in tickets]
    now = desk.clock.now()

    def warning(key: str, members: list[str]) -> ClusterWarning:
        return ClusterWarning(key, "new", "020101", "S12", tuple(members), now, now, ("路灯",))

    with desk.db.write_sessions() as session, session.begin():
        t = session.scalar(select(Ticket).where(Ticket.number == numbers[1]))
        record_cluster(session, desk.engine, warning("S12/x", numbers[:2]), t, now, desk.runtime.org)
    with desk.db.write_sessions() as session, session.begin():
        # Another process, which saw the tickets in another order, names the same cluster after another member.
        t = session.scalar(select(Ticket).where(Ticket.number == numbers[3]))
        record_cluster(session, desk.engine, warning("S12/y", numbers[1:]), t, now, desk.runtime.org)
    rows = _warnings(desk)
    assert len(rows) == 1 and rows[0].key == "S12/x" and desk.cluster_members(rows[0].id) == sorted(numbers)
    # Each member the stored cluster lacked joins it with its own note; the others are not told again.
    assert [e.payload["joined"] for e in desk.events(numbers[0], "cluster_warning")] == [False]
    assert [e.payload["joined"] for e in desk.events(numbers[1], "cluster_warning")] == [False]
    assert [e.payload["joined"] for e in desk.events(numbers[2], "cluster_warning")] == [True]
    assert [e.payload["joined"] for e in desk.events(numbers[3], "cluster_warning")] == [True]
    # From then on the other name leads to the stored cluster: a ticket joining brings only itself.
    fifth = desk.intake(title="事项4", detail="垃圾桶满了没人清", address=EXPIRED_AT)
    grown = replace(warning("S12/y", [*numbers[1:], fifth.number]), kind="grown", joined=(fifth.number,))
    with desk.db.write_sessions() as session, session.begin():
        t = session.scalar(select(Ticket).where(Ticket.number == fifth.number))
        record_cluster(session, desk.engine, grown, t, now, desk.runtime.org)
    rows = _warnings(desk)
    assert len(rows) == 1 and rows[0].member_count == 5
    assert desk.cluster_members(rows[0].id) == sorted([*numbers, fifth.number])
    assert [e.payload["members"] for e in desk.events(fifth.number, "cluster_warning")] == [[fifth.number]]


@pytest.mark.parametrize("triage_mode", ["deferred"])
def test_a_flood_triaged_in_one_transaction_is_linked_within_it(make_desk: MakeDesk) -> None:
    desk = make_desk(FakeClassifier("020101", 0.99))
    numbers = []
    for mark in ["", "！", "。"]:
        number, _, _ = submit(
            desk.db,
            desk.engine,
            OPERATOR,
            s.IntakeRequest(title="烧烤店油烟扰民", detail=SMOKE + mark, address=SMOKE_AT),
            desk.clock.now(),
        )
        numbers.append(number)
    stats = run_triage_jobs(desk.db, desk.engine, desk.clock.now())
    assert stats.triaged == 3
    first, second, third = (_ticket(desk, n) for n in numbers)
    assert first.state == "dispatched" and first.triage["repeats"] == []
    assert [r["number"] for r in second.triage["repeats"]] == [first.number]
    assert {r["number"] for r in third.triage["repeats"]} == {first.number, second.number}
    assert second.state == third.state == "accepted"
    assert "strong_repeat" in _reasons(second) and "strong_repeat" in _reasons(third)


def test_an_analysis_made_before_a_repeat_committed_is_made_again(make_desk: MakeDesk) -> None:
    # Inline intake analyses a request before its transaction; a repeat may commit in between.
    desk = make_desk(FakeClassifier("020101", 0.99))
    req = s.IntakeRequest(title="烧烤店油烟扰民", detail=SMOKE + "！", address=SMOKE_AT)
    early = desk.runtime.prepare(req, desk.clock.now())
    assert early is not None and early.repeats == [] and early.dispatch is not None
    first = desk.intake(title="烧烤店油烟扰民", detail=SMOKE, address=SMOKE_AT)
    calls = []

    def stale(r: s.IntakeRequest, now: Any) -> Any:
        calls.append(r)
        return early if r is req else desk.runtime.prepare(r, now)

    desk.engine.triage_prepare = stale
    again = desk.take(req)
    assert calls == [req]
    assert [r["number"] for r in again.triage["repeats"]] == [first.number]
    assert again.state == "accepted" and "strong_repeat" in _reasons(again)
    assert again.triage["category"]["cues"] == early.classification.cues  # classification kept
