"""A gateway that delivers one SMS twice at the same moment (a retry racing the original) makes one ticket, on
both stores: the second transaction waits on the (channel, external id) claim and answers with the first's
ticket."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from minsheng.domain.clock import FixedClock
from minsheng.services.channels import sms
from minsheng.services.channels.base import Context, GatewayRequest, hmac_signature
from minsheng.services.tickets import TicketEngine
from minsheng.storage.channel_tables import ChannelMessage
from minsheng.storage.db import Database
from minsheng.storage.models import Ticket


def test_one_sms_delivered_twice_at_once_makes_one_ticket(
    db: Database, clock: FixedClock, tmp_path: Path
) -> None:
    ctx = Context(TicketEngine(), clock.now(), "12345", frozenset(), tmp_path, 1 << 20)
    adapter = sms.SmsAdapter("secret", 300)
    body = json.dumps({"message_id": "gw-race", "from": "13800138000", "text": "幸福路井盖缺失"}).encode()
    stamp = str(int(clock.now().timestamp()))
    headers = {"x-minsheng-timestamp": stamp, "x-minsheng-signature": hmac_signature("secret", stamp, body)}
    request = GatewayRequest(headers, {}, body)
    start = threading.Barrier(2)
    answers: list[dict[str, Any]] = []
    errors: list[BaseException] = []

    def deliver() -> None:
        try:
            start.wait()
            with db.write_sessions() as session, session.begin():
                answers.append(sms.inbound(session, ctx, adapter, request))
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert len({a["ticket"] for a in answers}) == 1
    assert sorted(a["duplicate"] for a in answers) == [False, True]
    with db.read_sessions() as s, s.begin():
        assert s.scalar(select(func.count()).select_from(Ticket)) == 1
        assert s.scalar(select(func.count()).select_from(ChannelMessage)) == 1
