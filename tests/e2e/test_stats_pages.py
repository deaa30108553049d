"""统计分析, 本单位, the tickets behind a figure, the exports and the public rankings over HTTP (SQLite and
PostgreSQL): who may open what, the figures the pages and their XLSX show (those of `services.measures`), a
handler who sees only its own unit's tickets, no confidential title anywhere, personal data masked on the
public page, and bad parameters answered with a message, never a 500."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from minsheng.domain.clock import FixedClock
from minsheng.measures.periods import Period
from minsheng.services.background import run_once
from minsheng.services.measures import Scope, measure_table
from minsheng.storage.db import Database
from tests.e2e.test_loop_http import _assignment, _intake

SECRET_TITLE = "举报某局领导违规收受礼品"
PHONE = "13912345678"
PERIOD = "2026-11"
STATS_ROLES = {"supervisor1", "leader1", "admin"}
OTHERS = {"operator1", "dispatcher1", "followup1", "h_cgj"}


def _xlsx_text(data: bytes) -> str:
    wb = load_workbook(io.BytesIO(data))
    return "\n".join(str(c.value) for ws in wb for row in ws.iter_rows() for c in row if c.value is not None)


def _city(login: Callable[[str], TestClient], clock: FixedClock) -> dict[str, str]:
    """Four tickets of November 2026: closed and praised (CGJ, consent, a phone number in the reply), confidential
    (ZJJ), returned by CGJ and redispatched to HBJ, and one HBJ lets run overdue."""
    op, disp, sup, fu = login("operator1"), login("dispatcher1"), login("supervisor1"), login("followup1")
    cgj, zjj = login("h_cgj"), login("h_zjj")
    good = _intake(
        op,
        detail=f"幸福路3号路灯坏了一个星期，电话{PHONE}",
        category_code="010101",
        area_code="C0101",
        public_consent=True,
    )["number"]
    assert disp.post(f"/api/v1/tickets/{good}/dispatch", json={"lead_unit": "CGJ"}).status_code == 200
    a = _assignment(cgj, good, "CGJ")
    cgj.post(f"/api/v1/assignments/{a}/sign", json={})
    assert cgj.post(f"/api/v1/assignments/{a}/feedback", json={"text": "已现场查看"}).status_code == 200
    reply = f"已更换路灯，张三如有问题请拨打{PHONE}"
    assert cgj.post(f"/api/v1/assignments/{a}/request_close", json={"summary": reply}).status_code == 200
    assert sup.post(f"/api/v1/tickets/{good}/review_accept", json={}).status_code == 200
    assert fu.post(f"/api/v1/tickets/{good}/follow_up", json={"rating": "satisfied"}).status_code == 200

    secret = _intake(
        op,
        detail="某局领导收受礼品，请核查",
        title=SECRET_TITLE,
        confidential=True,
        category_code="01",
        area_code="C0201",
    )["number"]
    assert disp.post(f"/api/v1/tickets/{secret}/dispatch", json={"lead_unit": "ZJJ"}).status_code == 200
    zjj.post(f"/api/v1/assignments/{_assignment(zjj, secret, 'ZJJ')}/sign", json={})

    moved = _intake(op, detail="和平街道垃圾堆积发臭", category_code="02", area_code="C0201")["number"]
    disp.post(f"/api/v1/tickets/{moved}/dispatch", json={"lead_unit": "CGJ"})
    r = cgj.post(
        f"/api/v1/assignments/{_assignment(cgj, moved, 'CGJ')}/return", json={"reason": "非我局职责"}
    )
    assert r.status_code == 200, r.text
    r = disp.post(f"/api/v1/tickets/{moved}/redispatch", json={"lead_unit": "HBJ", "reason": "改派环境局"})
    assert r.status_code == 200, r.text

    late = _intake(op, detail="工地夜间施工噪音扰民", category_code="0201", area_code="C0101")["number"]
    disp.post(f"/api/v1/tickets/{late}/dispatch", json={"lead_unit": "HBJ"})
    clock.advance(timedelta(days=5))
    return {"good": good, "secret": secret, "moved": moved, "late": late}


def test_stats_pages_exports_and_public_rankings(
    app_client: TestClient, login: Callable[[str], TestClient], clock: FixedClock, db: Database, db_url: str
) -> None:
    """One city, every page: one app per store keeps the test short (each check is a function below)."""
    city = _city(login, clock)
    run_once(db, clock.now())  # the timers: "overdue" events for the late tickets
    _check_stats_page_roles_figures_and_export(city, login, app_client, db)
    _check_tickets_behind_a_figure(city, login)
    _check_unit_page_shows_only_its_own_tickets(city, login)
    _check_public_rankings_mask_and_hide(city, app_client)
    _check_report_downloads(city, login, db_url)


def _check_stats_page_roles_figures_and_export(
    city: dict[str, str], login: Callable[[str], TestClient], app_client: TestClient, db: Database
) -> None:
    anon = TestClient(app_client.app)
    r = anon.get("/stats", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    for user in OTHERS:
        assert login(user).get(f"/stats?period={PERIOD}").status_code == 403, user
    seen: list[str] = []
    for user in STATS_ROLES:
        r = login(user).get(f"/stats?period={PERIOD}")
        assert r.status_code == 200, (user, r.text[:300])
        seen.append(r.text)
    page = seen[0]
    with db.read_sessions() as session:
        total = measure_table(session, Period.parse(PERIOD), Scope(), None, None).total
    assert total.values["volume"] == 4
    assert 'data-measure="volume"' in page and "<b>4</b>" in page
    assert "/stats/tickets?" in page and "2026年11月" in page
    # drill down: the city's districts, then a district's streets
    assert "东城区" in page and "西城区" in page
    r = login("supervisor1").get(f"/stats?period={PERIOD}&area=C01")
    assert r.status_code == 200 and "幸福路街道" in r.text
    # the table exported holds the figures the page shows
    sup = login("supervisor1")
    x = sup.get(f"/stats/export.xlsx?period={PERIOD}&by=unit")
    assert x.status_code == 200 and x.headers["content-type"].startswith("application/vnd.openxml")
    assert "filename*=UTF-8''" in x.headers["content-disposition"]
    wb = load_workbook(io.BytesIO(x.content))
    ws = wb.worksheets[0]
    header = [c.value for c in ws[2]]
    rows = {r[0].value: [c.value for c in r] for r in ws.iter_rows(min_row=3)}
    vol = header.index("受理量")
    total_row = next(v for k, v in rows.items() if str(k).startswith("合计"))
    assert total_row[vol] == total.values["volume"]
    done = header.index("办结率")
    assert total_row[done] == pytest.approx(total.values["completion_rate"])
    shown = re.search(r'data-measure="completion_rate".*?<b>([^<]+)</b>', page, re.S)
    assert shown and shown.group(1) == f"{total.values['completion_rate'] * 100:.1f}%"
    for text in [*seen, _xlsx_text(x.content)]:
        assert SECRET_TITLE not in text
    # the big screen shows the period chosen, from the same service
    screen = sup.get(f"/screen?period={PERIOD}")
    assert screen.status_code == 200 and "单位办结率排名（2026年11月，受理 4 件）" in screen.text
    data = sup.get(f"/screen/data?period={PERIOD}").json()
    assert data["period"]["key"] == PERIOD and data["window_total"] == 4
    assert data["rates"]["completion_rate"] == pytest.approx(total.values["completion_rate"] * 100, abs=0.05)
    assert SECRET_TITLE not in screen.text


def _check_tickets_behind_a_figure(city: dict[str, str], login: Callable[[str], TestClient]) -> None:
    sup = login("supervisor1")
    r = sup.get(f"/stats/tickets?period={PERIOD}&measure=volume&key=total")
    assert r.status_code == 200
    for n in city.values():
        assert n in r.text
    assert SECRET_TITLE not in r.text and "保密件" in r.text
    r = sup.get(f"/stats/tickets?period={PERIOD}&measure=volume&key=area:C01")
    assert city["good"] in r.text and city["late"] in r.text and city["moved"] not in r.text
    x = sup.get(f"/stats/tickets.xlsx?period={PERIOD}&measure=volume&key=total")
    text = _xlsx_text(x.content)
    assert all(n in text for n in city.values()) and SECRET_TITLE not in text
    # a handler asking for the whole city gets its own unit's tickets only
    hbj = login("h_hbj")
    r = hbj.get(f"/stats/tickets?period={PERIOD}&measure=volume&key=total")
    assert r.status_code == 200
    assert city["late"] in r.text and city["moved"] in r.text
    assert city["good"] not in r.text and city["secret"] not in r.text
    assert login("operator1").get(f"/stats/tickets?period={PERIOD}").status_code == 403


def _check_unit_page_shows_only_its_own_tickets(
    city: dict[str, str], login: Callable[[str], TestClient]
) -> None:
    cgj, hbj, zjj = login("h_cgj"), login("h_hbj"), login("h_zjj")
    r = cgj.get(f"/stats/unit?period={PERIOD}")
    assert r.status_code == 200 and "市城管局" in r.text
    assert city["moved"] in r.text and "非我局职责" in r.text  # its own return
    assert city["late"] not in r.text and city["secret"] not in r.text and SECRET_TITLE not in r.text
    # asking for another unit changes nothing for a handler
    r2 = cgj.get(f"/stats/unit?period={PERIOD}&unit=ZJJ")
    assert "市城管局" in r2.text and "市住建局" not in r2.text.split("<main", 1)[1]
    r = hbj.get(f"/stats/unit?period={PERIOD}")
    assert city["late"] in r.text and city["good"] not in r.text and SECRET_TITLE not in r.text
    assert 'id="overdue"' in r.text
    # the unit that holds the confidential ticket sees its own ticket
    assert zjj.get(f"/stats/unit?period={PERIOD}").status_code == 200
    x = cgj.get(f"/stats/unit/export.xlsx?period={PERIOD}")
    text = _xlsx_text(x.content)
    assert city["moved"] in text and city["late"] not in text and SECRET_TITLE not in text
    # the centre's roles choose a unit; others are refused
    sup = login("supervisor1")
    assert "按单位" in sup.get("/stats/unit").text or '<select name="unit">' in sup.get("/stats/unit").text
    assert city["late"] in sup.get(f"/stats/unit?period={PERIOD}&unit=HBJ").text
    for user in ("operator1", "dispatcher1", "followup1"):
        assert login(user).get("/stats/unit").status_code == 403


def _check_public_rankings_mask_and_hide(city: dict[str, str], app_client: TestClient) -> None:
    anon = TestClient(app_client.app)
    r = anon.get(f"/public/rankings?month={PERIOD}")
    assert r.status_code == 200
    assert "已更换路灯" in r.text  # the reply the citizen agreed to publish
    assert PHONE not in r.text and "139****5678" in r.text and "张三" not in r.text
    assert SECRET_TITLE not in r.text and city["secret"] not in r.text
    assert anon.get("/public/rankings").status_code == 200
    assert anon.get("/public/rankings?month=2026-Q4").status_code == 422
    assert anon.get("/public/rankings?month=nonsense").status_code == 422


def _check_report_downloads(city: dict[str, str], login: Callable[[str], TestClient], db_url: str) -> None:
    sup = login("leader1")
    x = sup.get(f"/stats/report?period={PERIOD}&format=xlsx")
    assert x.status_code == 200
    text = _xlsx_text(x.content)
    assert "市城管局" in text and city["late"] in text and SECRET_TITLE not in text and PHONE not in text
    if db_url.startswith("sqlite"):  # the PDF once: it is the same document on both stores
        p = sup.get(f"/stats/report?period={PERIOD}&format=pdf")
        assert p.status_code == 200 and p.content.startswith(b"%PDF")
    assert login("h_cgj").get(f"/stats/report?period={PERIOD}").status_code == 403
    assert sup.get(f"/stats/report?period={PERIOD}&format=doc").status_code == 422


BAD = [
    "/stats?period=2026-13",
    "/stats?period=x" + "9" * 100,
    "/stats?from=2026-11-05&to=2026-11-01",
    "/stats?area=NOPE",
    "/stats?unit=%00",
    "/stats?by=hour",
    "/stats?measure=bogus",
    "/stats?level=galaxy",
    "/stats/tickets?measure=bogus",
    "/stats/tickets?part=half",
    "/stats/tickets?offset=abc",
    "/stats/tickets?key=unit:NOPE",
    "/stats/unit?unit=NOPE",
    "/stats/export.xlsx?period=1999-99",
    "/screen?period=2026-13",
    "/screen/data?period=zz",
]


def test_bad_parameters_get_a_message(app_client: TestClient, login: Callable[[str], TestClient]) -> None:
    sup = login("supervisor1")
    for path in BAD:
        r = sup.get(path)
        assert 400 <= r.status_code < 500, (path, r.status_code, r.text[:300])
        assert "<html" in r.text, path
