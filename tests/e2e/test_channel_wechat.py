"""The WeChat official account end to end, on both stores: server URL verification, a signed text message
becomes a ticket and the passive reply carries its number and query code, a picture (served by the fake
WeChat on loopback) joins the ticket, the citizen tracks it by sending the number, through dispatch to close; the
closing notice goes back through the outbox as a customer-service message (the fake WeChat API on loopback, called
by wechatpy) and the citizen's reply "2" rates the ticket.
The same MsgId twice does nothing twice; a bad signature is refused and stores nothing."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import xmltodict
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from wechatpy.utils import WeChatSigner

from minsheng.domain.clock import FixedClock
from minsheng.storage.db import Database
from minsheng.storage.models import Attachment
from tests.e2e.channel_kit import (  # noqa: F401  (fx_*: the fixtures)
    WECHAT_TOKEN,
    close_ticket,
    counts,
    deliver,
    fx_channel_client,
    fx_sms_gateway,
    fx_staff,
)
from tests.factories import png

URL = "/api/v1/channels/wechat"
OPENID = "oCitizen_abcdefghijklmnop"


class FakeWeChat:
    """WeChat's side on loopback: the picture store (PicUrl) and the API the outbox sends 客服消息 through
    (token, message/custom/send), as wechatpy's client calls them."""

    def __init__(self) -> None:
        data = png(8, 6)
        sent: list[dict[str, Any]] = []
        self.sent = sent

        class Handler(BaseHTTPRequestHandler):
            def _json(self, payload: dict[str, Any]) -> None:
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(json.dumps(payload).encode())

            def do_GET(self) -> None:
                if self.path.startswith("/cgi-bin/token?"):
                    self._json({"access_token": "ACCESS", "expires_in": 7200})
                    return
                self.send_response(200 if self.path == "/pic/1.png" else 404)
                self.send_header("content-type", "image/png")
                self.end_headers()
                if self.path == "/pic/1.png":
                    self.wfile.write(data)

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", "0"))))
                if (
                    self.path.startswith("/cgi-bin/message/custom/send?")
                    and "access_token=ACCESS" in self.path
                ):
                    sent.append(body)
                    self._json({"errcode": 0, "errmsg": "ok"})
                else:
                    self._json({"errcode": 40001, "errmsg": "invalid credential"})

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_wechat() -> Iterator[FakeWeChat]:
    server = FakeWeChat()
    yield server
    server.close()


@pytest.fixture
def channel_settings(fake_wechat: FakeWeChat) -> dict[str, Any]:
    return {
        "wechat_app_id": "wx0123456789",
        "wechat_app_secret": "app-secret",
        "wechat_api_base": f"{fake_wechat.base}/cgi-bin/",
    }


def _query(clock: FixedClock, token: str = WECHAT_TOKEN, nonce: str = "n0nce") -> dict[str, str]:
    stamp = str(int(clock.now().timestamp()))
    signer = WeChatSigner()
    signer.add_data(token, stamp, nonce)
    return {"signature": signer.signature, "timestamp": stamp, "nonce": nonce, "openid": OPENID}


def _xml(kind: str, msg_id: int | None, sender: str = OPENID, **fields: str) -> bytes:
    parts = "".join(f"<{k}><![CDATA[{v}]]></{k}>" for k, v in fields.items())
    mid = f"<MsgId>{msg_id}</MsgId>" if msg_id is not None else ""
    return (
        f"<xml><ToUserName><![CDATA[gh_12345]]></ToUserName><FromUserName><![CDATA[{sender}]]></FromUserName>"
        f"<CreateTime>1795000000</CreateTime><MsgType><![CDATA[{kind}]]></MsgType>{parts}{mid}</xml>"
    ).encode()


def _send(c: TestClient, clock: FixedClock, body: bytes, token: str = WECHAT_TOKEN) -> Any:
    return c.post(URL, params=_query(clock, token), content=body, headers={"content-type": "text/xml"})


def _reply(r: Any) -> dict[str, str]:
    assert r.status_code == 200, r.text
    reply = xmltodict.parse(r.text)["xml"]
    assert reply["ToUserName"] == OPENID and reply["MsgType"] == "text"
    return reply  # type: ignore[no-any-return]


def test_wechat_from_message_to_closed_ticket(
    channel_client: TestClient,
    staff: Callable[[str], TestClient],
    clock: FixedClock,
    db: Database,
    fake_wechat: FakeWeChat,
) -> None:
    c = channel_client
    picture_server = fake_wechat.base
    # Server URL verification.
    r = c.get(URL, params={**_query(clock), "echostr": "echo-123"})
    assert r.status_code == 200 and r.text == "echo-123"
    assert c.get(URL, params={**_query(clock, token="wrong"), "echostr": "x"}).status_code == 403
    assert c.get(URL, params={"echostr": "x"}).status_code == 403

    # Refused: bad signature, no signature. Nothing stored.
    before = counts(db)
    text = _xml("text", 6001, Content="和平街道菜市场门口污水横流，臭味很大")
    assert _send(c, clock, text, token="wrong").status_code == 403
    assert c.post(URL, content=text).status_code == 403
    # Signed but unreadable: 422, never a 500.
    for bad in (b"not xml", b'<!DOCTYPE x [<!ENTITY a "b">]><xml>&a;</xml>', _xml("text", 6009, Content=" ")):
        assert _send(c, clock, bad).status_code == 422, bad
    assert counts(db) == before

    # A text message: a ticket; the passive reply names it with its query code.
    reply = _reply(_send(c, clock, text))
    content = reply["Content"]
    assert "工单编号" in content and "查询码" in content
    number = content.split("工单编号")[1][:13]
    # WeChat delivers it again: same ticket, nothing twice, no query code repeated.
    again = _reply(_send(c, clock, text))["Content"]
    assert number in again and "查询码" not in again
    assert counts(db)[0] == before[0] + 1
    op = staff("operator1")
    t = op.get(f"/api/v1/tickets/{number}").json()
    assert t["channel"] == "wechat" and "污水" in t["detail"]

    # A picture joins the sender's open ticket.
    pic = _xml("image", 6002, PicUrl=f"{picture_server}/pic/1.png", MediaId="media-1")
    assert number in _reply(_send(c, clock, pic))["Content"]
    with db.read_sessions() as s, s.begin():
        assert s.scalar(select(func.count()).select_from(Attachment)) == 1

    # Events are answered with a guide and store nothing.
    event = _xml("event", None, Event="subscribe")
    assert "热线" in _reply(_send(c, clock, event))["Content"]

    # Tracking by number: the sender sees the state; another WeChat user learns nothing.
    assert "当前状态：待派单" in _reply(_send(c, clock, _xml("text", 6003, Content=number)))["Content"]
    stranger = _xml("text", 6004, sender="oStranger", Content=number)
    r = _send(c, clock, stranger)
    assert "未找到" in xmltodict.parse(r.text)["xml"]["Content"]

    # Dispatched and closed: the closing notice goes out through the outbox as a 客服消息 to the citizen's
    # openid, asking for the rating; the reply "2" rates the ticket; sending the number shows it closed.
    close_ticket(staff, number, unit="HBJ")
    assert deliver(c, clock) >= 1
    assert [m["touser"] for m in fake_wechat.sent] == [OPENID]
    assert fake_wechat.sent[0]["msgtype"] == "text" and number in fake_wechat.sent[0]["text"]["content"]
    assert "感谢您对工单" in _reply(_send(c, clock, _xml("text", 6006, Content="2")))["Content"]
    assert staff("operator1").get(f"/api/v1/tickets/{number}").json()["rating"] == "basically_satisfied"
    assert "已评价" in _reply(_send(c, clock, _xml("text", 6005, Content=number)))["Content"]
