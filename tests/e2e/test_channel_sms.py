"""The SMS channel end to end, on both stores: an upstream SMS from the (fake, loopback) gateway becomes a ticket,
the acceptance SMS with number and query code goes out through the outbox to the gateway, the ticket is
dispatched and closed, the rating SMS goes out, and the citizen's reply "2" rates the right ticket. A message
delivered twice does nothing twice; a bad signature is refused and stores nothing."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import timedelta

from fastapi.testclient import TestClient

from minsheng.domain.clock import FixedClock
from minsheng.storage.db import Database
from tests.e2e.channel_kit import (  # noqa: F401  (fx_*: the fixtures)
    SMS_SECRET,
    FakeSmsGateway,
    close_ticket,
    counts,
    deliver,
    fx_channel_client,
    fx_channel_settings,
    fx_sms_gateway,
    fx_staff,
    signed,
)

URL = "/api/v1/channels/sms/inbound"
PHONE = "13912345678"


def _post(client: TestClient, clock: FixedClock, payload: dict, secret: str = SMS_SECRET):  # type: ignore[no-untyped-def]
    body = json.dumps(payload, ensure_ascii=False).encode()
    return client.post(URL, content=body, headers=signed(secret, body, clock))


def test_sms_from_gateway_to_rated_ticket(
    channel_client: TestClient,
    staff: Callable[[str], TestClient],
    sms_gateway: FakeSmsGateway,
    clock: FixedClock,
    db: Database,
) -> None:
    c = channel_client
    # A bad signature, a missing one, an old timestamp: refused, nothing stored.
    before = counts(db)
    msg = {"message_id": "gw-1", "from": PHONE, "text": "幸福路12号路灯不亮，晚上很黑"}
    assert _post(c, clock, msg, secret="wrong").status_code == 403
    assert c.post(URL, json=msg).status_code == 403
    body = json.dumps(msg).encode()
    stale = signed(SMS_SECRET, body, clock)
    stale["X-Minsheng-Timestamp"] = str(int(clock.now().timestamp()) - 3600)
    assert c.post(URL, content=body, headers=stale).status_code == 403
    assert counts(db) == before

    # Bad input, signed: 422, never a 500, nothing stored.
    for bad in (b"not json", b"{}", json.dumps({**msg, "from": "abc"}).encode(), b"[1,2]"):
        r = c.post(URL, content=bad, headers=signed(SMS_SECRET, bad, clock))
        assert r.status_code == 422, (bad, r.text)
    assert counts(db) == before

    # The message: a ticket on channel sms; the same message again does nothing twice.
    r = _post(c, clock, msg)
    assert r.status_code == 200, r.text
    first = r.json()
    assert first["outcome"] == "intake" and first["duplicate"] is False
    number = first["ticket"]
    again = _post(c, clock, msg)
    assert again.json() == {**first, "duplicate": True}
    assert counts(db)[0] == before[0] + 1

    op = staff("operator1")
    t = op.get(f"/api/v1/tickets/{number}").json()
    assert t["channel"] == "sms" and t["detail"].startswith("幸福路12号")

    # Back out to the citizen: the acceptance SMS with number and query code, through the outbox.
    assert deliver(c, clock) >= 1
    accepted = sms_gateway.texts_to(PHONE)
    assert len(accepted) == 1 and number in accepted[0] and re.search(r"查询码\w{10}", accepted[0])

    # "补充 …" adds to the caller's open ticket, as a public note; the answer SMS says so.
    r = _post(c, clock, {"message_id": "gw-2", "from": PHONE, "text": "补充：灯杆编号是A-17"})
    assert r.json()["outcome"] == "note" and r.json()["ticket"] == number
    timeline = op.get(f"/api/v1/tickets/{number}/timeline").json()
    assert any(
        e["action"] == "citizen_update" and "A-17" in json.dumps(e, ensure_ascii=False) for e in timeline
    )

    # A rating digit before the ticket is closed rates nothing.
    r = _post(c, clock, {"message_id": "gw-3", "from": PHONE, "text": "1"})
    assert r.json()["outcome"] == "unmatched"

    # Dispatched, handled and closed: the closing SMS asks for the rating.
    clock.advance(timedelta(hours=1))
    close_ticket(staff, number)
    deliver(c, clock)
    closing = sms_gateway.texts_to(PHONE)[-1]
    assert number in closing and "1满意" in closing

    # The reply "2" rates that ticket (基本满意); a second reply is not counted twice.
    r = _post(c, clock, {"message_id": "gw-4", "from": PHONE, "text": " 2 "})
    assert r.json() == {"message_id": "gw-4", "outcome": "rating", "ticket": number, "duplicate": False}
    t = op.get(f"/api/v1/tickets/{number}").json()
    assert t["state"] == "rated" and t["rating"] == "basically_satisfied"
    r = _post(c, clock, {"message_id": "gw-5", "from": PHONE, "text": "4"})
    assert r.json()["outcome"] == "unmatched"
    assert op.get(f"/api/v1/tickets/{number}").json()["rating"] == "basically_satisfied"
    deliver(c, clock)
    assert any("感谢您对工单" in x and number in x for x in sms_gateway.texts_to(PHONE))

    # A caller with two closed tickets: the digits rate the latest first, then the one before.
    _latest_closed_is_rated_first(c, staff, clock, "13912340000")


def _latest_closed_is_rated_first(
    c: TestClient, staff: Callable[[str], TestClient], clock: FixedClock, phone: str
) -> None:
    """Two closed tickets of one caller: each digit rates the latest still waiting for the citizen's rating."""
    numbers = []
    for i, text in enumerate(("和平街道噪声扰民，夜里施工", "幸福路井盖缺失，很危险")):
        r = _post(c, clock, {"message_id": f"m-{i}", "from": phone, "text": text})
        numbers.append(r.json()["ticket"])
        clock.advance(timedelta(minutes=5))
    close_ticket(staff, numbers[0])
    clock.advance(timedelta(minutes=5))
    close_ticket(staff, numbers[1])
    # Another caller's digit rates none of them.
    r = _post(c, clock, {"message_id": "other", "from": "13700000000", "text": "1"})
    assert r.json()["outcome"] == "unmatched"
    r = _post(c, clock, {"message_id": "m-r1", "from": phone, "text": "4"})
    assert r.json()["ticket"] == numbers[1]
    r = _post(c, clock, {"message_id": "m-r2", "from": phone, "text": "1"})
    assert r.json()["ticket"] == numbers[0]
    op = staff("operator1")
    assert op.get(f"/api/v1/tickets/{numbers[1]}").json()["rating"] == "dissatisfied"
    assert op.get(f"/api/v1/tickets/{numbers[0]}").json()["rating"] == "satisfied"
