"""Hot topics of the platform's own tickets (`services.hotspots`), on SQLite and PostgreSQL: the period and the one
before it, areas, what each viewer may see, and confidential tickets never quoted."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from minsheng.domain.clock import FixedClock
from minsheng.domain.roles import Actor, Role
from minsheng.services import schemas as s
from minsheng.services.auth import Principal
from minsheng.services.errors import Invalid, NotFound
from minsheng.services.hotspots import hotspots
from minsheng.services.tickets import TicketEngine
from minsheng.services.uow import reading, writing
from minsheng.storage.db import Database, open_database
from minsheng.storage.migrate import upgrade
from minsheng.storage.models import Area, User
from tests.conftest import create_pg_database, drop_pg_database, pg_skip_reason
from tests.factories import small_city

NOW = datetime(2026, 11, 21, 1, 0, tzinfo=UTC)
SECRET_TITLE = "幸福里小区机械厂老板行贿内幕举报"
NOISE = [
    "幸福里小区旁边的机械厂晚上开机，冲床噪音吵得睡不着",
    "幸福里小区居民投诉机械厂夜间生产噪音扰民",
    "投诉幸福里小区附近机械厂半夜噪音",
    "幸福里小区东边机械厂夜里机器轰鸣，噪音太大",
    "机械厂夜间噪音影响幸福里小区居民休息",
]
BUS = [
    "K58路公交突然停运，和平街道居民出行困难",
    "希望恢复K58路公交，停运后上班很不方便",
    "反映K58路公交线路取消的问题，老人出行困难",
]
OTHER = ["东城区人民路路灯坏了一个月", "咨询新生儿医保办理需要什么材料", "菜市场门口占道经营很乱"]


@dataclass
class Planted:
    """Numbers of the tickets a test made, by what they are about."""

    noise: list[str]
    noise_before: str
    secret: str
    bus: list[str]
    other: list[str]


def _actor(session: object, username: str) -> Actor:
    u = session.scalars(select(User).where(User.username == username)).one()  # type: ignore[attr-defined]
    return Actor(Role(u.role), user_id=u.id, unit_id=u.unit_id, name=u.display_name)


def principal(db: Database, username: str) -> Principal:
    with reading(db) as session:
        u = session.scalars(select(User).where(User.username == username)).one()
        return Principal(u.id, u.username, u.display_name, Role(u.role), u.unit_id, None)


def plant(db: Database, now: datetime) -> Planted:
    """A noise topic by one estate (five citizens, one more the month before, one confidential ticket), all
    handled by the environment bureau; a bus line cut in the other district; three unrelated tickets."""
    engine = TicketEngine()

    def intake(
        title: str, detail: str, area: str, phone: str, at: datetime, unit: str, secret: bool = False
    ) -> str:
        with writing(db) as session:
            req = s.IntakeRequest(
                title=title,
                detail=detail,
                category_code="0201",
                area_code=area,
                citizen_phone=phone,
                confidential=secret,
            )
            t, _, _ = engine.intake(session, _actor(session, "operator1"), req, at)
            engine.dispatch(session, _actor(session, "dispatcher1"), t.number, s.Dispatch(lead_unit=unit), at)
            return t.number

    noise = [
        intake(
            text[:30], text + "，请尽快处理。", "C0101", f"1380000000{i}", now - timedelta(days=9 - i), "HBJ"
        )
        for i, text in enumerate(NOISE)
    ]
    before = intake(NOISE[0][:30], NOISE[0], "C0101", "13900000009", now - timedelta(days=40), "HBJ")
    secret = intake(
        SECRET_TITLE, "幸福里小区机械厂夜间噪音一直没人查，老板说上面有人", "C0101", "13700000007",
        now - timedelta(days=5), "HBJ", secret=True,
    )  # fmt: skip
    bus = [
        intake(text[:30], text, "C0201", f"1360000000{i}", now - timedelta(days=6 - i), "CGJ")
        for i, text in enumerate(BUS)
    ]
    other = [
        intake(text, text, "C0101", f"1350000000{i}", now - timedelta(days=3 + i), "CGJ")
        for i, text in enumerate(OTHER)
    ]
    return Planted(noise, before, secret, bus, other)


def city(db: Database, now: datetime) -> None:
    """The small city, its two streets placed on the map."""
    with writing(db) as session:
        small_city(session, now)
        for code, lat, lon in (("C0101", 30.25, 120.15), ("C0201", 30.3, 120.2)):
            session.execute(update(Area).where(Area.code == code).values(lat=lat, lon=lon))


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Database, Planted]]:
    """One planted database per store for the module: every test here only reads."""
    name = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('hotspots') / 'minsheng.db'}"
    else:
        reason = pg_skip_reason()
        if reason:
            pytest.skip(reason)
        url, name = create_pg_database()
    try:
        upgrade(url)
        database = open_database(url)
        city(database, NOW)
        yield database, plant(database, NOW)
        database.dispose()
    finally:
        if name:
            drop_pg_database(name)


@pytest.fixture
def db(world: tuple[Database, Planted]) -> Database:
    return world[0]


@pytest.fixture
def planted(world: tuple[Database, Planted]) -> Planted:
    return world[1]


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


def _period(clock: FixedClock) -> tuple[datetime, datetime]:
    return clock.now() - timedelta(days=30), clock.now()


def test_supervisor_sees_the_hot_topics_of_the_period(
    db: Database, clock: FixedClock, planted: Planted
) -> None:
    start, end = _period(clock)
    with reading(db) as session:
        report = hotspots(session, start, end, who=principal(db, "supervisor1"))
    assert report.tickets == 12 and report.previous_tickets == 1 and not report.truncated
    first, second = report.topics[:2]
    assert set(t["number"] for t in first["tickets"]) == {*planted.noise, planted.secret}
    assert "幸福里小区" in first["place"] and first["count"] == 6 and first["citizens"] == 6
    assert first["trend"]["previous"] == 1 and [t["number"] for t in first["previous_tickets"]] == [
        planted.noise_before
    ]
    assert first["trend"]["label"] == "↑500%"
    assert {t["number"] for t in second["tickets"]} == set(planted.bus)
    assert second["place"] == "K58路" and second["trend"]["label"] == "新"
    assert first["heat"] > second["heat"]
    assert len(report.topics) == 2  # the unrelated tickets make none
    # The areas of the topics are the map's hot places.
    assert [(p["code"], p["lat"], p["lon"], p["count"]) for p in report.places] == [
        ("C0101", 30.25, 120.15, 6),
        ("C0201", 30.3, 120.2, 3),
    ]


def test_a_confidential_ticket_counts_but_is_never_quoted(
    db: Database, clock: FixedClock, planted: Planted
) -> None:
    start, end = _period(clock)
    with reading(db) as session:
        report = hotspots(session, start, end, who=principal(db, "leader1"))
    assert SECRET_TITLE not in repr(report) and "行贿" not in repr(report) and "上面有人" not in repr(report)
    (listed,) = [t for t in report.topics[0]["tickets"] if t["number"] == planted.secret]
    assert listed["title"] == "保密件" and listed["confidential"] is True


def test_a_handling_unit_sees_the_topics_of_its_own_tickets(
    db: Database, clock: FixedClock, planted: Planted
) -> None:
    start, end = _period(clock)
    with reading(db) as session:
        env = hotspots(session, start, end, who=principal(db, "h_hbj"))
        city = hotspots(session, start, end, who=principal(db, "h_cgj"))
    (topic,) = env.topics
    assert {t["number"] for t in topic["tickets"]} == {*planted.noise, planted.secret}
    assert SECRET_TITLE not in repr(env)
    assert [{t["number"] for t in x["tickets"]} for x in city.topics] == [set(planted.bus)]
    assert planted.secret not in repr(city) and SECRET_TITLE not in repr(city)


def test_an_area_narrows_the_analysis(db: Database, clock: FixedClock, planted: Planted) -> None:
    start, end = _period(clock)
    who = principal(db, "supervisor1")
    with reading(db) as session:
        west = hotspots(session, start, end, area_code="C02", who=who)
        with pytest.raises(NotFound):
            hotspots(session, start, end, area_code="NOWHERE", who=who)
        with pytest.raises(Invalid):
            hotspots(session, end, start, who=who)
        with pytest.raises(Invalid):
            hotspots(session, end - timedelta(days=400), end, who=who)
        with pytest.raises(Invalid):
            hotspots(session, start, end, top=0, who=who)
    assert [t["place"] for t in west.topics] == ["K58路"] and west.tickets == 3
