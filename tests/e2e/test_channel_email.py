"""The e-mail channel end to end, on both stores: mails in a (fake, loopback) IMAP mailbox read with imap-tools
become tickets with their photos, a mail to a leader's mailbox is dispatched to that leader's unit, the answers
and the closing notice go out by SMTP through the outbox to an aiosmtpd server on loopback. A mail read twice
(same Message-ID) does nothing twice; a mailbox whose credentials are wrong is refused and nothing is stored."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from imap_tools.errors import MailboxLoginError
from sqlalchemy import func, select

from minsheng.domain.clock import FixedClock
from minsheng.services.channels.email import MailPoller
from minsheng.storage.db import Database
from minsheng.storage.models import Attachment
from tests.e2e.channel_kit import (  # noqa: F401  (fx_*: the fixtures)
    close_ticket,
    counts,
    deliver,
    fx_channel_client,
    fx_sms_gateway,
    fx_staff,
)
from tests.e2e.fake_imap import FakeImap
from tests.factories import png

HOTLINE = "hotline@12345.example.gov.cn"
MAYOR = "mayor@12345.example.gov.cn"
CITIZEN = "li.si@example.com"


class Sink:
    def __init__(self) -> None:
        self.mails: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mails.append(BytesParser(policy=default).parsebytes(envelope.content))  # type: ignore[arg-type]
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def imap() -> Iterator[FakeImap]:
    server = FakeImap()
    yield server
    server.close()


@pytest.fixture
def smtp() -> Iterator[tuple[Sink, int]]:
    sink, port = Sink(), _free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    yield sink, port
    controller.stop()


@pytest.fixture
def channel_settings(imap: FakeImap, smtp: tuple[Sink, int]) -> dict[str, Any]:
    return {
        "imap_host": "127.0.0.1",
        "imap_port": imap.port,
        "imap_ssl": False,
        "imap_user": imap.user,
        "imap_password": imap.password,
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp[1],
        "smtp_from": HOTLINE,
    }


def _mail(to: str, subject: str, text: str, message_id: str, photo: bytes | None = None) -> bytes:
    m = EmailMessage()
    m["From"] = f"李四 <{CITIZEN}>"
    m["To"] = to
    m["Subject"] = subject
    m["Message-ID"] = f"<{message_id}>"
    m.set_content(text)
    if photo is not None:
        m.add_attachment(photo, maintype="image", subtype="png", filename="现场.png")
    m.add_attachment(b"%PDF-1.4 not a photo", maintype="application", subtype="pdf", filename="a.pdf")
    return m.as_bytes()


def _poller(client: TestClient) -> MailPoller:
    p = client.app.state.minsheng  # type: ignore[attr-defined]
    return MailPoller(p.db, p.engine, p.clock, p.settings, p.senders)


def test_mail_from_mailbox_to_closed_ticket_and_back(
    channel_client: TestClient,
    staff: Callable[[str], TestClient],
    clock: FixedClock,
    db: Database,
    imap: FakeImap,
    smtp: tuple[Sink, int],
) -> None:
    sink = smtp[0]
    admin = staff("admin")
    r = admin.put(
        "/api/v1/channels/mailboxes", json={"address": MAYOR, "leader_name": "街道书记", "unit_code": "XFL"}
    )
    assert r.status_code == 200, r.text
    assert staff("operator1").get("/api/v1/channels/mailboxes").status_code == 403

    imap.add(
        _mail(
            HOTLINE,
            "小区垃圾无人清运",
            "和平街道某小区垃圾堆了一周没人清运，臭气熏天。",
            "m1@example.com",
            png(),
        )
    )
    imap.add(
        _mail(MAYOR, "给书记的信", "幸福路路口红绿灯坏了三天，早高峰非常拥堵，请书记关注。", "m2@example.com")
    )
    imap.add(
        _mail(
            HOTLINE,
            "小区垃圾无人清运",
            "和平街道某小区垃圾堆了一周没人清运，臭气熏天。",
            "m1@example.com",
            png(),
        )
    )
    imap.add(_mail(HOTLINE, "", "   ", "m3@example.com"))

    # Wrong credentials: the mailbox refuses the login, nothing is read or stored.
    before = counts(db)
    poller = _poller(channel_client)
    poller.settings = poller.settings.model_copy(update={"imap_password": "wrong"})
    with pytest.raises(MailboxLoginError):
        poller.once()
    assert counts(db) == before and imap.seen() == []

    stats = _poller(channel_client).once()
    assert (stats.read, stats.taken, stats.duplicates, stats.refused) == (4, 2, 1, 1)
    assert imap.seen() == [1, 2, 3, 4]
    assert _poller(channel_client).once().read == 0
    assert counts(db)[0] == before[0] + 2

    op = staff("operator1")
    listing = op.get("/api/v1/tickets", params={"channel": "email"}).json()["items"]
    assert len(listing) == 1
    plain = op.get(f"/api/v1/tickets/{listing[0]['number']}").json()
    assert plain["title"] == "小区垃圾无人清运" and "垃圾" in plain["detail"]
    with db.read_sessions() as s, s.begin():
        assert s.scalar(select(func.count()).select_from(Attachment)) == 1  # the photo, not the PDF
    letter = op.get("/api/v1/tickets", params={"channel": "mailbox"}).json()["items"][0]
    letter = op.get(f"/api/v1/tickets/{letter['number']}").json()
    assert letter["state"] == "dispatched" and letter["assignments"][0]["unit_code"] == "XFL"

    # Back out by SMTP: one answer per new ticket, with its number and query code.
    deliver(channel_client, clock)
    assert len(sink.mails) == 2
    assert {m["To"] for m in sink.mails} == {CITIZEN}
    bodies = [m.get_content() for m in sink.mails]
    assert any(plain["number"] in b and "查询码" in b for b in bodies)
    assert any(letter["number"] in b for b in bodies)

    # The leader's unit handles it; the closing notice is mailed back.
    close_ticket(staff, letter["number"], unit="XFL")
    deliver(channel_client, clock)
    assert letter["number"] in sink.mails[-1]["Subject"] and "已办结" in sink.mails[-1].get_content()
