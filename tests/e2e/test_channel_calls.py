"""Hotline call records end to end, on both stores: the operator registers a ticket during a call, the (fake)
telephony system posts the call record, signed; it is linked to that ticket and shows on the ticket's page and
on the operator's desk, the caller masked for a leader; the ticket goes through dispatch to close and the SMS
go back out to the caller. A record posted twice is stored once; a bad signature is refused and stores nothing.
The CSV and XLSX import (`minsheng import calls`), in the same test, links the same way and lists the refused
rows."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from openpyxl import Workbook
from sqlalchemy import func, select
from typer.testing import CliRunner

from minsheng.cli.main import app as cli
from minsheng.domain.clock import FixedClock
from minsheng.storage.channel_tables import CallRecord
from minsheng.storage.db import Database
from tests.e2e.channel_kit import (  # noqa: F401  (fx_*: the fixtures)
    CALLS_SECRET,
    FakeSmsGateway,
    close_ticket,
    deliver,
    fx_channel_client,
    fx_channel_settings,
    fx_sms_gateway,
    fx_staff,
    signed,
)

URL = "/api/v1/channels/calls"
CALLER = "13655556666"


def _calls(db: Database) -> list[tuple[str, int | None]]:
    with db.read_sessions() as s, s.begin():
        rows = s.execute(select(CallRecord.call_id, CallRecord.ticket_id).order_by(CallRecord.id))
        return [(call_id, ticket_id) for call_id, ticket_id in rows]


def test_call_record_links_to_the_ticket_made_during_the_call(
    channel_client: TestClient,
    staff: Callable[[str], TestClient],
    clock: FixedClock,
    db: Database,
    db_url: str,
    tmp_path: Path,
    sms_gateway: FakeSmsGateway,
) -> None:
    c = channel_client
    op = staff("operator1")
    started = clock.now()
    clock.advance(timedelta(minutes=2))
    r = op.post(
        "/api/v1/tickets",
        json={
            "channel": "phone",
            "detail": "幸福路小区电梯坏了三天",
            "citizen_phone": CALLER,
            "citizen_name": "王五",
        },
    )
    assert r.status_code == 201, r.text
    number = r.json()["number"]

    record = {
        "call_id": "CALL-0001",
        "caller": CALLER,
        "started_at": started.isoformat(),
        "duration_seconds": 185,
        "agent": "operator1",
        "recording_ref": "rec/2026/11/21/0001.wav",
    }
    other = {**record, "call_id": "CALL-0002", "caller": "13000000000"}
    body = json.dumps({"records": [record, other]}).encode()
    assert c.post(URL, content=body, headers=signed("wrong", body, clock)).status_code == 403
    assert c.post(URL, content=body).status_code == 403
    for bad in (b"{}", json.dumps({**record, "started_at": "2026-11-21 09:00"}).encode(), b"nope"):
        assert c.post(URL, content=bad, headers=signed(CALLS_SECRET, bad, clock)).status_code == 422, bad
    assert _calls(db) == []

    r = c.post(URL, content=body, headers=signed(CALLS_SECRET, body, clock))
    assert r.status_code == 200, r.text
    assert r.json() == {"added": 2, "skipped": 0, "linked": 1}
    r = c.post(URL, content=body, headers=signed(CALLS_SECRET, body, clock))
    assert r.json() == {"added": 0, "skipped": 2, "linked": 0}
    assert [cid for cid, tid in _calls(db) if tid is not None] == ["CALL-0001"]

    # On the ticket (API and page) and on the operator's desk; masked for a leader; no handler reads calls.
    seen = op.get(f"/api/v1/channels/calls/ticket/{number}").json()
    assert [(x["call_id"], x["caller"], x["recording_ref"]) for x in seen] == [
        ("CALL-0001", CALLER, "rec/2026/11/21/0001.wav")
    ]
    leader = staff("leader1").get(f"/api/v1/channels/calls/ticket/{number}").json()
    assert leader[0]["caller"] != CALLER and leader[0]["caller"].endswith(CALLER[-4:])
    assert staff("h_cgj").get(f"/api/v1/channels/calls/ticket/{number}").status_code == 403
    mine = {x["call_id"]: x["ticket"] for x in op.get("/api/v1/channels/calls/mine").json()}
    assert mine == {"CALL-0001": number, "CALL-0002": None}
    page = op.get(f"/calls/ticket/{number}")
    assert page.status_code == 200 and "CALL" not in page.text and "0001.wav" in page.text
    assert f'hx-get="/calls/ticket/{number}"' in op.get(f"/tickets/{number}").text
    desk = op.get("/calls/mine")
    assert desk.status_code == 200 and number in desk.text

    # Dispatched and closed: the caller hears back by SMS (acceptance, then the closing notice).
    close_ticket(staff, number)
    deliver(c, clock)
    texts = sms_gateway.texts_to(CALLER)
    assert len(texts) == 2 and number in texts[0] and "已办结" in texts[1]

    # A record that comes before its ticket (posted when the call ends) is linked when the ticket is made.
    early = {**record, "call_id": "CALL-0003", "caller": "13655558888", "started_at": clock.now().isoformat()}
    body = json.dumps(early).encode()
    assert c.post(URL, content=body, headers=signed(CALLS_SECRET, body, clock)).json()["linked"] == 0
    clock.advance(timedelta(minutes=4))
    late = op.post(
        "/api/v1/tickets", json={"channel": "phone", "detail": "楼道灯坏了", "citizen_phone": "13655558888"}
    ).json()["number"]
    assert [x["call_id"] for x in op.get(f"/api/v1/channels/calls/ticket/{late}").json()] == ["CALL-0003"]

    _import_files(op, db, db_url, tmp_path)


def _import_files(op: TestClient, db: Database, db_url: str, tmp_path: Path) -> None:
    """`minsheng import calls` from CSV then XLSX: linked the same way, refused rows listed, nothing twice."""
    caller = "13655557777"
    number = op.post(
        "/api/v1/tickets", json={"channel": "phone", "detail": "噪声扰民", "citizen_phone": caller}
    ).json()["number"]
    csv = tmp_path / "calls.csv"
    csv.write_text(
        "话单编号,主叫号码,开始时间,通话时长,坐席,录音,工单编号\n"
        f"C-1,{caller},2026-11-21 09:01:00,60,operator1,rec/1.wav,\n"  # Beijing time: 01:01 UTC, ticket 01:06
        "C-2,13900000000,2026-11-21 09:30:00,30,operator1,,\n"
        "C-3,not-a-phone,2026-11-21 09:31:00,30,operator1,,\n"
        "C-4,13900000001,yesterday,30,operator1,,\n",
        encoding="utf-8",
    )
    runner = CliRunner()
    result = runner.invoke(cli, ["import", "calls", str(csv), "--database-url", db_url])
    assert result.exit_code == 1, result.output  # two refused rows
    assert (
        "added 2" in result.output
        and "linked to a ticket 1" in result.output
        and "refused 2" in result.output
    )
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["call_id", "caller", "started_at", "duration_seconds", "agent", "ticket_number"])
    ws.append(["C-1", caller, "2026-11-21T09:01:00+08:00", 60, "operator1", None])
    ws.append(["X-9", "13900000002", "2026-11-21T10:00:00+08:00", 10, "operator1", number])
    xlsx = tmp_path / "calls.xlsx"
    wb.save(xlsx)
    result = runner.invoke(cli, ["import", "calls", str(xlsx), "--database-url", db_url])
    assert result.exit_code == 0, result.output
    assert "added 1, already there 1, linked to a ticket 1" in result.output
    with db.read_sessions() as s, s.begin():
        assert s.scalar(select(func.count()).select_from(CallRecord)) == 6  # with the webhook's three
    assert {x["call_id"] for x in op.get(f"/api/v1/channels/calls/ticket/{number}").json()} == {"C-1", "X-9"}
