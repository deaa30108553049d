"""热点分析 over HTTP (`/stats/hotspots`), on SQLite and PostgreSQL: who may open it and what each sees, the
confidential ticket's title never on the page, and bad parameters answered with a page, never a 500."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from minsheng.domain.clock import FixedClock
from minsheng.storage.db import Database
from minsheng.storage.models import Area
from minsheng.web import hotspots as page
from tests.integration.test_hotspots_service import BUS, NOISE, SECRET_TITLE, Planted, plant

Login = Callable[[str], TestClient]


@pytest.fixture(autouse=True)
def fresh_results() -> Iterator[None]:
    page.clear_cache()  # results are kept per platform object, and a new test may reuse its address
    yield
    page.clear_cache()


@pytest.fixture
def planted(app_client: TestClient, db: Database, clock: FixedClock) -> Planted:
    with db.write_sessions() as session, session.begin():
        session.execute(update(Area).where(Area.code == "C0101").values(lat=30.25, lon=120.15))
    return plant(db, clock.now())


def _topics(html: str) -> list[str]:
    return re.findall(r'<tr id="topic-\d+">', html)


def test_who_sees_what(login: Login, app_client: TestClient, planted: Planted) -> None:
    r = login("supervisor1").get("/stats/hotspots")
    assert r.status_code == 200, r.text
    html = r.text
    assert "热点分析" in html and len(_topics(html)) == 2
    assert "幸福里小区" in html and "K58路" in html and "↑500%" in html and "新" in html
    for number in [*planted.noise, *planted.bus, planted.secret, planted.noise_before]:
        assert f'href="/tickets/{number}"' in html
    assert "保密件" in html and SECRET_TITLE not in html and "行贿" not in html
    assert '"value": [120.15, 30.25' in html  # the hot place on the map, at its area's point
    assert any(text[:12] in html for text in NOISE)

    leader = login("leader1").get("/stats/hotspots?days=7")
    assert leader.status_code == 200 and SECRET_TITLE not in leader.text
    assert "K58路" in leader.text

    own = login("h_hbj").get("/stats/hotspots")  # the environment bureau holds the noise tickets
    assert own.status_code == 200 and len(_topics(own.text)) == 1
    assert "幸福里小区" in own.text and "K58路" not in own.text and SECRET_TITLE not in own.text
    other = login("h_cgj").get("/stats/hotspots")  # the city management bureau holds the bus tickets
    assert other.status_code == 200 and len(_topics(other.text)) == 1
    assert "K58路" in other.text and planted.secret not in other.text and SECRET_TITLE not in other.text
    assert all(text[:12] not in other.text for text in NOISE)
    assert any(text[:10] in other.text for text in BUS)

    for username in ("operator1", "dispatcher1", "followup1"):
        denied = login(username).get("/stats/hotspots")
        assert denied.status_code == 403 and "无权访问" in denied.text
    anonymous = TestClient(app_client.app).get("/stats/hotspots", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login?next=")


BAD = [
    ("period=2026-13", 422, "统计期无效"),
    ("from=2026-11-20&to=2026-11-01", 422, "统计期无效"),
    ("days=5", 422, "统计天数"),
    ("top=0", 422, "显示条数"),
    ("top=abc", 422, "显示条数"),
    ("area=%3Cscript%3E", 422, "区划代码无效"),
    ("area=C09", 404, "未找到"),
]


def test_bad_parameters_answer_with_a_page(login: Login) -> None:
    client = login("supervisor1")
    for query, status, message in BAD:
        r = client.get(f"/stats/hotspots?{query}")
        assert r.status_code == status and message in r.text and "<script>" not in r.text, query


def test_periods_and_areas_as_the_stats_page_links_them(login: Login, planted: Planted) -> None:
    client = login("admin")
    month = client.get("/stats/hotspots?period=2026-11")
    assert month.status_code == 200 and "2026年11月" in month.text and len(_topics(month.text)) == 2
    west = client.get("/stats/hotspots?from=2026-10-22&to=2026-11-21&area=C02")
    assert west.status_code == 200 and len(_topics(west.text)) == 1 and "K58路" in west.text
    earlier = client.get("/stats/hotspots?period=2026-09")
    assert earlier.status_code == 200 and _topics(earlier.text) == [] and "没有发现热点" in earlier.text
