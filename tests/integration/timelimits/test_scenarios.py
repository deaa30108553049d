"""The real limits of PRODUCT.md as frozen-time scenarios through the engine and the worker (no sleeps).

Each scenario dispatches through `TicketEngine`, moves the injected clock, runs one worker pass and checks which
timeline events and notifications exist, each exactly once. Runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from minsheng.domain.clock import FixedClock
from minsheng.domain.roles import Role
from minsheng.services import org
from minsheng.services import schemas as s
from minsheng.services.timelimits.config import TimeLimitConfig
from minsheng.services.uow import reading, writing
from minsheng.storage.db import Database
from minsheng.storage.models import Area, Ticket, TimelineEvent, User
from minsheng.storage.timelimit_tables import DutyShift, StepDeadline, TimeLimitZoneArea
from minsheng.timelimits import presets
from minsheng.timelimits.escalation import EscalationLadder, EscalationStep
from minsheng.timelimits.policy import PolicySet, TimeLimit, TimeLimitPolicy, limits_of
from tests.factories import small_city
from tests.integration.timelimits.helpers import Harness

MIN = timedelta(minutes=1)
SMS = frozenset({"sms"})
TZ = ZoneInfo("Asia/Shanghai")


def _city(db: Database, clock: FixedClock) -> None:
    with writing(db) as session:
        small_city(session, clock.now())
        org.add_user(session, "l_xfl", "街道主任", "leader", None, clock.now(), "XFL", phone="13900000001")
        org.add_user(session, "l_dc", "区长", "leader", None, clock.now(), "DC", phone="13900000002")


def test_qiannan_sign_15_leader_30_county_60(db: Database, clock: FixedClock) -> None:
    _city(db, clock)
    h = Harness.build(db, clock, TimeLimitConfig.from_preset("qiannan", channels=SMS))
    t0 = clock.now()
    number = h.intake_and_dispatch(lead="XFL")
    signed = h.intake_and_dispatch(lead="XFL")
    with reading(db) as session:
        a = h.assignment(session, number, "XFL")
        assert a.sign_due_at == t0 + 15 * MIN

    clock.advance(5 * MIN)
    h.step(signed, "XFL", "sign")  # signed in time: nothing ever fires for it
    clock.set(t0 + 11 * MIN)
    assert h.run().fired == 0 and h.clock_events(number) == []
    clock.set(t0 + 12 * MIN)  # 80 % of 15 minutes
    h.run()
    assert h.clock_events(number) == [("warning", "sign", "unit")]
    clock.set(t0 + 15 * MIN)
    h.run()
    h.run()  # a second pass at the same instant fires nothing again
    assert h.clock_events(number) == [
        ("warning", "sign", "unit"),
        ("overdue", "sign", "unit"),
        ("press", "sign", "unit"),
    ]
    assert h.inbox_of("l_xfl") == [] and h.inbox_of("l_dc") == []
    clock.set(t0 + 30 * MIN)
    h.run()
    assert h.clock_events(number)[-1] == ("escalation", "sign", "unit_leader")
    assert h.inbox_of("l_xfl") == ["escalation"]
    clock.set(t0 + 60 * MIN)
    h.run()
    clock.set(t0 + 5 * 60 * MIN)
    assert h.run().fired == 0
    assert h.clock_events(number) == [
        ("warning", "sign", "unit"),
        ("overdue", "sign", "unit"),
        ("press", "sign", "unit"),
        ("escalation", "sign", "unit_leader"),
        ("escalation", "sign", "district_leader"),
    ]
    assert h.inbox_of("l_dc") == ["escalation"]
    assert h.clock_events(signed) == []
    # the unit's handler: the new orders, then the warning, overdue and press of the unsigned one
    assert h.inbox_of("h_xfl") == ["assignment_new", "assignment_new", "warning", "overdue", "escalation"]
    # SMS: the leaders' phones, once each; the citizen's intake SMS carries number and query code
    leader_sms = [m for m in h.outbox("sms") if m.kind == "escalation"]
    assert sorted(m.recipient for m in leader_sms) == ["13900000001", "13900000002"]
    accepted = [m for m in h.outbox("sms") if m.kind == "ticket_accepted_sms"]
    assert len(accepted) == 2 and number in accepted[0].text and "查询码" in accepted[0].text
    with reading(db) as session:
        payloads = [e.payload for e in session.scalars(select(TimelineEvent))]
    assert all("query_code" not in p for p in payloads)


def test_jiaxing_1_2_3_minutes_and_on_site_10_or_30(db: Database, clock: FixedClock) -> None:
    _city(db, clock)
    with writing(db) as session:
        area = session.scalar(select(Area.id).where(Area.code == "C0101"))
        session.add(TimeLimitZoneArea(zone="urban", area_id=area))
    h = Harness.build(db, clock, TimeLimitConfig.from_preset("jiaxing"))
    t0 = clock.now()
    urban = h.intake_and_dispatch(lead="CGJ", area_code="C0101")
    elsewhere = h.intake_and_dispatch(lead="CGJ", area_code="C0201")
    with reading(db) as session:
        due = {(r.assignment_id, r.step): r.due_at for r in session.scalars(select(StepDeadline))}
        a_urban = h.assignment(session, urban, "CGJ").id
        a_else = h.assignment(session, elsewhere, "CGJ").id
    assert due[(a_urban, "sign")] == t0 + MIN
    assert due[(a_urban, "contact")] == t0 + 2 * MIN
    assert due[(a_urban, "instruct")] == t0 + 3 * MIN
    assert due[(a_urban, "arrive")] == t0 + 10 * MIN
    assert due[(a_else, "arrive")] == t0 + 30 * MIN

    clock.set(t0 + 30 * timedelta(seconds=1))
    h.step(urban, "CGJ", "sign")
    clock.set(t0 + 90 * timedelta(seconds=1))
    h.step(urban, "CGJ", "contact", s.Contact())
    clock.set(t0 + 3 * MIN)
    h.run()
    assert h.clock_events(urban) == [
        ("warning", "instruct", "unit"),
        ("overdue", "instruct", "unit"),
        ("press", "instruct", "unit"),
    ]
    clock.set(t0 + 11 * MIN)
    h.run()
    h.step(urban, "CGJ", "arrive")
    h.step(urban, "CGJ", "feedback", s.Feedback(text="已到场处置"))
    clock.set(t0 + 2 * 60 * MIN)
    h.run()
    assert h.clock_events(urban) == [
        ("warning", "instruct", "unit"),
        ("overdue", "instruct", "unit"),
        ("press", "instruct", "unit"),
        ("warning", "arrive", "unit"),
        ("overdue", "arrive", "unit"),
        ("press", "arrive", "unit"),
    ]
    # the other ticket was never signed: every step's warning, overdue and press, each once
    events = h.clock_events(elsewhere)
    assert len(events) == len(set(events)) == 12


def test_chengdu_working_days_across_national_day(db: Database) -> None:
    # Monday 29 September 2025, 10:00 in Chengdu; 1-8 October are holidays, Saturday 11 October is worked.
    clock = FixedClock(datetime(2025, 9, 29, 2, 0, tzinfo=UTC))
    _city(db, clock)
    config = TimeLimitConfig(fallback=presets.chengdu(complex_categories=["0101"]).policies)
    h = Harness.build(db, clock, config)
    simple = h.intake_and_dispatch(category_code="0201")
    complex_ = h.intake_and_dispatch(category_code="010101")  # a child of the complex category 0101
    with reading(db) as session:
        due = {r.ticket_id: r.due_at for r in session.scalars(select(StepDeadline))}
        ids = {n: session.scalar(select(Ticket.id).where(Ticket.number == n)) for n in (simple, complex_)}
    # 30 Sep (1), 9 Oct (2), 10 Oct (3), Saturday 11 Oct (4), 13 Oct (5): 18:00 in Chengdu is 10:00 UTC
    assert due[ids[simple]] == datetime(2025, 10, 13, 10, 0, tzinfo=UTC)
    # … 14-17 (6-9), 20-24 (10-14), 27 Oct (15)
    assert due[ids[complex_]] == datetime(2025, 10, 27, 10, 0, tzinfo=UTC)
    clock.set(datetime(2025, 10, 13, 10, 0, tzinfo=UTC))
    h.run()
    assert h.clock_events(simple) == [
        ("warning", "feedback", "unit"),
        ("overdue", "feedback", "unit"),
        ("press", "feedback", "unit"),
    ]
    assert h.clock_events(complex_) == []


def test_qianxi_three_repeated_failures_climb_to_the_mayor(db: Database, clock: FixedClock) -> None:
    _city(db, clock)
    t0 = clock.now()
    with writing(db) as session:
        org.add_user(session, "l_zjj", "住建局局长", "leader", None, t0, "ZJJ")
        dm = org.add_user(session, "deputy", "分管副市长", "leader", None, t0)
        mayor = org.add_user(session, "mayor", "市长", "leader", None, t0)
        for user, role in ((dm, "deputy_mayor"), (mayor, "mayor")):
            session.add(
                DutyShift(
                    user_id=user.id,
                    person_name=user.display_name,
                    duty_role=role,
                    tier=1,
                    starts_at=t0 - timedelta(days=1),
                    ends_at=t0 + timedelta(days=10),
                )
            )
    h = Harness.build(db, clock, TimeLimitConfig.from_preset("qianxi"))
    numbers = []
    for day in range(3):
        clock.set(t0 + timedelta(days=day))
        number = h.intake_and_dispatch(lead="ZJJ")
        numbers.append(number)
        clock.advance(30 * MIN)  # the demo city's sign limit: the unit ignored the order
        h.run()
        clock.advance(MIN)
        h.step(number, "ZJJ", "sign")  # signed late: the rest of its sign ladder is dropped
    with reading(db) as session:
        repeated = [
            (e.payload["repeated_failure"], e.payload["target"])
            for e in session.scalars(select(TimelineEvent).order_by(TimelineEvent.id))
            if e.payload.get("kind") == "repeated_failure"
        ]
    assert repeated == [(1, "unit_leader"), (2, "deputy_mayor"), (3, "mayor")]
    assert h.inbox_of("l_zjj") == ["escalation"]
    assert h.inbox_of("deputy") == ["escalation"]
    assert h.inbox_of("mayor") == ["escalation"]
    for number in numbers:
        # the failure climbs its ladder right when the deadline passes, before the press of the sign ladder
        assert [e[0] for e in h.clock_events(number)] == ["warning", "overdue", "escalation", "press"]


def test_pause_extension_and_reopen_move_deadlines(db: Database, clock: FixedClock) -> None:
    _city(db, clock)
    press = EscalationLadder((EscalationStep(timedelta(0), "press", "unit", "催办"),))
    policy = TimeLimitPolicy(
        None,
        None,
        limits_of(TimeLimit("sign", 30, "minutes"), TimeLimit("resolve", 24, "hours")),
        escalation={"resolve": press},
    )
    h = Harness.build(db, clock, TimeLimitConfig(fallback=PolicySet([policy]), channels=SMS))
    t0 = clock.now()
    hour = timedelta(hours=1)
    number = h.intake_and_dispatch(lead="CGJ")
    assert h.ticket(number).resolve_due_at == t0 + 24 * hour
    clock.set(t0 + 5 * MIN)
    h.step(number, "CGJ", "sign")
    assert [k for k, *_ in h.pending_timers(number)] == ["warning", "overdue", "escalation"]

    clock.set(t0 + 2 * hour)
    h.ticket_step("pause", number, s.WithReason(reason="等待群众在家"), role=Role.HANDLER, unit="CGJ")
    assert h.pending_timers(number) == []
    clock.set(t0 + 5 * hour)
    h.ticket_step("resume", number, s.WithNote(), role=Role.HANDLER, unit="CGJ")
    assert h.ticket(number).resolve_due_at == t0 + 27 * hour
    assert h.pending_timers(number) == [
        ("warning", "resolve", t0 + 24 * hour * 0.8 + 3 * hour),
        ("overdue", "resolve", t0 + 27 * hour),
        ("escalation", "resolve", t0 + 27 * hour),
    ]

    clock.set(t0 + 6 * hour)
    h.ticket_step(
        "request_extension",
        number,
        s.RequestExtension(hours=24, reason="需采购灯具"),
        role=Role.HANDLER,
        unit="CGJ",
    )
    h.ticket_step("decide_extension", number, s.DecideExtension(approve=True))
    t = h.ticket(number)
    assert t.resolve_due_at == t0 + 51 * hour
    with reading(db) as session:
        assert h.assignment(session, number, "CGJ").resolve_due_at == t0 + 51 * hour
    assert [(k, due) for k, _, due in h.pending_timers(number)][1:] == [
        ("overdue", t0 + 51 * hour),
        ("escalation", t0 + 51 * hour),
    ]
    clock.set(t0 + 52 * hour)
    h.run()
    h.run()
    assert h.clock_events(number) == [
        ("warning", "resolve", "unit"),
        ("overdue", "resolve", "unit"),
        ("press", "resolve", "unit"),
    ]

    h.step(number, "CGJ", "feedback", s.Feedback(text="已修复"))
    h.step(number, "CGJ", "request_close", s.RequestClose(summary="路灯已修复"))
    h.ticket_step("review", number, True, None)
    closed_sms = [m for m in h.outbox("sms") if m.kind == "ticket_closed_sms"]
    assert len(closed_sms) == 1 and "评价" in closed_sms[0].text
    assert h.pending_timers(number) == []

    clock.set(t0 + 60 * hour)
    h.ticket_step("reopen", number, s.WithReason(reason="群众反映未修好"))
    assert h.ticket(number).resolve_due_at == t0 + 84 * hour
    clock.set(t0 + 84 * hour)
    h.run()
    assert [e[0] for e in h.clock_events(number)] == [
        "warning",
        "overdue",
        "press",
        "warning",
        "overdue",
        "press",
    ]


def test_returned_and_redispatched_orders_drop_their_timers(db: Database, clock: FixedClock) -> None:
    _city(db, clock)
    h = Harness.build(db, clock, TimeLimitConfig.from_preset("qiannan"))
    number = h.intake_and_dispatch(lead="ZJJ")
    clock.advance(2 * MIN)
    h.step(number, "ZJJ", "return", s.WithReason(reason="非我局职责"))
    assert h.pending_timers(number) == []
    h.ticket_step(
        "dispatch", number, s.Redispatch(lead_unit="CGJ", reason="改派城管局"), role=Role.DISPATCHER
    )
    assert [k for k, *_ in h.pending_timers(number)] == [
        "warning",
        "overdue",
        "escalation",
        "escalation",
        "escalation",
    ]
    with reading(db) as session:
        assert session.scalar(select(User.id).where(User.username == "h_cgj")) is not None


def test_extension_counts_in_the_policys_working_days(db: Database, clock: FixedClock) -> None:
    """Under a working-day policy a 72-hour extension is three working days: it never ends on a rest day."""
    _city(db, clock)
    policy = TimeLimitPolicy(
        None, None, limits_of(TimeLimit("sign", 2, "hours"), TimeLimit("resolve", 2, "working_days"))
    )
    h = Harness.build(db, clock, TimeLimitConfig(fallback=PolicySet([policy]), channels=SMS))
    clock.set(datetime(2026, 11, 24, 2, 0, tzinfo=UTC))  # Tuesday 10:00 in Beijing
    number = h.intake_and_dispatch(lead="CGJ")
    due = h.ticket(number).resolve_due_at
    assert due is not None and due.astimezone(TZ).weekday() == 3  # Thursday
    h.step(number, "CGJ", "sign")
    h.ticket_step(
        "request_extension",
        number,
        s.RequestExtension(hours=72, reason="需协调施工队"),
        role=Role.HANDLER,
        unit="CGJ",
    )
    h.ticket_step("decide_extension", number, s.DecideExtension(approve=True))
    extended = h.ticket(number).resolve_due_at
    assert extended is not None
    local = extended.astimezone(TZ)
    # Thursday + 72 natural hours would be Sunday; three working days later is the next Tuesday.
    assert local.weekday() == 1 and (local.date() - due.astimezone(TZ).date()).days == 5
    with reading(db) as session:
        assert h.assignment(session, number, "CGJ").resolve_due_at == extended
    assert [(k, d) for k, _, d in h.pending_timers(number) if k == "overdue"] == [("overdue", extended)]
