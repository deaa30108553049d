"""Grid patrol reports end to end, on both stores: a grid worker reports from the mobile page with a photo and
the phone's position; the report is a ticket on channel grid in the worker's grid, dispatched and closed like any
other, and the worker's page shows what became of it. The same form sent twice makes one ticket; a report
without a login or without the session's CSRF token is refused and stores nothing."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from minsheng.domain.clock import FixedClock
from minsheng.storage.db import Database
from minsheng.storage.models import Attachment
from tests.e2e.channel_kit import (  # noqa: F401  (fx_*: the fixtures)
    close_ticket,
    counts,
    fx_channel_client,
    fx_channel_settings,
    fx_sms_gateway,
    fx_staff,
)
from tests.factories import png


def test_grid_report_from_the_mobile_page_to_a_closed_ticket(
    channel_client: TestClient, staff: Callable[[str], TestClient], clock: FixedClock, db: Database
) -> None:
    worker = staff("h_xfl")
    token = worker.headers["X-CSRF-Token"]
    page = worker.get("/grid")
    assert page.status_code == 200 and "网格员上报" in page.text and "/static/grid.js" in page.text
    form = {
        "csrf_token": token,
        "key": "grid-report-0001",
        "detail": "幸福路12号门前窨井盖破损，有行人绊倒风险",
        "address": "幸福路12号",
        "lat": "39.91",
        "lon": "116.40",
    }
    files = {"photo": ("井盖.png", png(), "image/png")}

    # Refused: no login, no CSRF token; bad input answered on the page, never a 500. Nothing stored.
    before = counts(db)
    anonymous = TestClient(channel_client.app)
    assert anonymous.post("/grid", data=form, files=files, follow_redirects=False).status_code in (
        302,
        303,
        403,
    )
    bare = TestClient(channel_client.app, cookies=worker.cookies)
    assert bare.post("/grid", data={**form, "csrf_token": "x"}, files=files).status_code == 403
    r = worker.post("/grid", data={**form, "lon": ""}, files=files)
    assert r.status_code == 422
    assert worker.post("/grid", data={**form, "detail": " "}).status_code == 422
    assert counts(db) == before

    r = worker.post("/grid", data=form, files=files, follow_redirects=False)
    assert r.status_code in (302, 303), r.text
    # Sent again (a retry on a weak signal): the same ticket.
    again = worker.post("/grid", data=form, files=files, follow_redirects=False)
    assert "重复提交" in again.headers["location"] or "%E9%87%8D%E5%A4%8D" in again.headers["location"]
    assert counts(db)[0] == before[0] + 1

    op = staff("operator1")
    t = op.get("/api/v1/tickets", params={"channel": "grid"}).json()["items"]
    assert len(t) == 1
    ticket = op.get(f"/api/v1/tickets/{t[0]['number']}").json()
    assert ticket["channel"] == "grid" and ticket["lat"] == 39.91 and ticket["lon"] == 116.40
    with db.read_sessions() as s, s.begin():
        assert s.scalar(select(func.count()).select_from(Attachment)) == 1

    close_ticket(staff, ticket["number"], unit="XFL")
    page = worker.get("/grid").text
    assert ticket["number"] in page and "已办结" in page
