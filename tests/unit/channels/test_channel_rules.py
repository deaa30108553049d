"""The channel adapters' pure rules: signatures, what a text means, and reading each gateway's message."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest
from imap_tools import MailMessage
from wechatpy.utils import WeChatSigner

from minsheng.domain.states import Channel, Rating
from minsheng.services.channels.base import (
    GatewayRequest,
    InboundMessage,
    SignatureRefused,
    hmac_signature,
    intent,
    verify_hmac,
)
from minsheng.services.channels.email import read_mail
from minsheng.services.channels.sms import SmsAdapter
from minsheng.services.channels.wechat import WeChatAdapter
from minsheng.services.errors import Invalid
from tests.factories import png

NOW = datetime(2026, 11, 21, 1, 0, tzinfo=UTC)
STAMP = str(int(NOW.timestamp()))


def _headers(secret: str, body: bytes, stamp: str = STAMP) -> dict[str, str]:
    return {"x-minsheng-timestamp": stamp, "x-minsheng-signature": hmac_signature(secret, stamp, body)}


def test_hmac_signature_accepts_only_the_right_secret_body_and_time() -> None:
    body = b'{"a": 1}'
    verify_hmac("s3cret", _headers("s3cret", body), body, NOW, 300)
    with pytest.raises(SignatureRefused):
        verify_hmac("s3cret", _headers("other", body), body, NOW, 300)
    with pytest.raises(SignatureRefused):
        verify_hmac("s3cret", _headers("s3cret", body), body + b" ", NOW, 300)
    old = str(int((NOW - timedelta(minutes=6)).timestamp()))
    with pytest.raises(SignatureRefused):
        verify_hmac("s3cret", _headers("s3cret", body, old), body, NOW, 300)
    with pytest.raises(SignatureRefused):
        verify_hmac(None, _headers("s3cret", body), body, NOW, 300)  # no secret configured: refuse all
    with pytest.raises(SignatureRefused):
        verify_hmac("s3cret", {"x-minsheng-timestamp": "abc", "x-minsheng-signature": "00"}, body, NOW, 300)


def _msg(text: str, ratings: bool = True) -> InboundMessage:
    return InboundMessage(Channel.SMS, "m", "13800138000", text, NOW, ratings=ratings)


@pytest.mark.parametrize(
    ("text", "kind", "detail"),
    [
        ("1", "rating", Rating.SATISFIED),
        (" 4 ", "rating", Rating.DISSATISFIED),
        ("5", "intake", None),
        ("2026112100001", "track", "2026112100001"),
        ("补充：灯杆编号A-17", "supplement", "灯杆编号A-17"),
        ("补充 2026112100001 还是不亮", "supplement", "2026112100001"),
        ("追加，另外门口也有积水", "supplement", "另外门口也有积水"),
        ("补充", "intake", None),
        ("路灯不亮，补充一下位置在幸福路", "intake", None),
    ],
)
def test_what_a_text_means(text: str, kind: str, detail: object) -> None:
    what = intent(_msg(text))
    assert what.kind == kind
    if kind == "rating":
        assert what.rating is detail
    elif kind == "track":
        assert what.number == detail
    elif kind == "supplement":
        assert detail in (what.number, what.text)


def test_a_digit_is_a_rating_only_where_the_channel_asks_for_ratings() -> None:
    assert intent(_msg("1", ratings=False)).kind == "intake"


def test_sms_gateway_message_is_read_and_checked() -> None:
    adapter = SmsAdapter("k", 300)
    body = json.dumps({"message_id": "gw-1", "from": "+86 138-0013-8000", "text": "路灯坏了"}).encode()
    m = adapter.parse(GatewayRequest({}, {}, body), NOW)
    assert (m.sender, m.citizen_phone, m.external_id, m.ratings) == (
        "13800138000",
        "13800138000",
        "gw-1",
        True,
    )
    for bad in (b"[]", b"{", json.dumps({"message_id": "a b", "from": "1380013", "text": "x"}).encode()):
        with pytest.raises(Invalid):
            adapter.parse(GatewayRequest({}, {}, bad), NOW)


def _wechat_query(token: str) -> dict[str, str]:
    signer = WeChatSigner()
    signer.add_data(token, STAMP, "abc")
    return {"signature": signer.signature, "timestamp": STAMP, "nonce": "abc"}


def test_wechat_signature_and_messages() -> None:
    adapter = WeChatAdapter("tok", 300)
    adapter.verify(GatewayRequest({}, _wechat_query("tok"), b""), NOW)
    with pytest.raises(SignatureRefused):
        adapter.verify(GatewayRequest({}, _wechat_query("other"), b""), NOW)
    with pytest.raises(SignatureRefused):
        WeChatAdapter(None, 300).verify(GatewayRequest({}, _wechat_query("tok"), b""), NOW)
    text = (
        b"<xml><ToUserName>gh</ToUserName><FromUserName>oU1</FromUserName><CreateTime>1</CreateTime>"
        b"<MsgType>text</MsgType><Content><![CDATA[\xe4\xbd\xa0\xe5\xa5\xbd]]></Content><MsgId>42</MsgId></xml>"
    )
    m = adapter.parse(GatewayRequest({}, {}, text), NOW)
    assert m is not None and (m.external_id, m.sender, m.text, m.reply_to) == ("msg:42", "oU1", "你好", "oU1")
    event = b"<xml><FromUserName>oU1</FromUserName><MsgType>event</MsgType><Event>subscribe</Event></xml>"
    assert adapter.parse(GatewayRequest({}, {}, event), NOW) is None
    with pytest.raises(Invalid):
        adapter.parse(GatewayRequest({}, {}, b'<!DOCTYPE xml [<!ENTITY e "x">]><xml>&e;</xml>'), NOW)


def test_a_mail_is_read_with_its_images_only() -> None:
    m = EmailMessage()
    m["From"] = "张三 <Zhang.San@Example.com>"
    m["To"] = "hotline@city.gov.cn"
    m["Subject"] = "路灯\u202e坏了"
    m["Message-ID"] = "<abc@example.com>"
    m.set_content("幸福路路灯坏了\r\n请尽快修理\x07")
    m.add_attachment(png(), maintype="image", subtype="png", filename="a.png")
    m.add_attachment(b"%PDF", maintype="application", subtype="pdf", filename="b.pdf")
    msg = read_mail(MailMessage.from_bytes(m.as_bytes()), "INBOX", NOW)
    assert msg is not None
    assert msg.external_id == "abc@example.com" and msg.sender == "zhang.san@example.com"
    assert msg.title == "路灯坏了" and msg.text == "幸福路路灯坏了\n请尽快修理"
    assert [p.filename for p in msg.photos] == ["a.png"] and msg.citizen_name == "张三"
    blank = EmailMessage()
    blank["From"] = "x@example.com"
    blank.set_content("   ")
    assert read_mail(MailMessage.from_bytes(blank.as_bytes()), "INBOX", NOW) is None


def test_wechat_safe_mode_decrypts_the_message_and_encrypts_the_reply() -> None:
    import xmltodict
    from wechatpy.crypto import WeChatCrypto

    from minsheng.services.channels.wechat import reply_xml

    key, app_id = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "wx0123456789"
    plain = (
        "<xml><ToUserName>gh</ToUserName><FromUserName>oU1</FromUserName><CreateTime>1</CreateTime>"
        "<MsgType>text</MsgType><Content><![CDATA[路灯不亮]]></Content><MsgId>77</MsgId></xml>"
    )
    crypto = WeChatCrypto("tok", key, app_id)  # WeChat's side
    sealed = crypto.encrypt_message(plain, "n1", STAMP)
    signature = xmltodict.parse(sealed)["xml"]["MsgSignature"]
    query = {**_wechat_query("tok"), "encrypt_type": "aes", "msg_signature": signature, "nonce": "n1"}
    query["signature"] = _wechat_query_nonce("tok", "n1")
    request = GatewayRequest({}, query, sealed.encode())
    adapter = WeChatAdapter("tok", 300, aes_key=key, app_id=app_id)
    adapter.verify(request, NOW)
    m = adapter.parse(request, NOW)
    assert m is not None and (m.external_id, m.text) == ("msg:77", "路灯不亮")
    reply = adapter.seal(request, reply_xml(adapter.open(request), "已受理"))
    fields = xmltodict.parse(reply)["xml"]
    opened = crypto.decrypt_message(reply, fields["MsgSignature"], fields["TimeStamp"], fields["Nonce"])
    assert "已受理" in opened and "oU1" in opened
    # A tampered msg_signature, a wrong key, or no key at all: refused.
    for bad in (
        WeChatAdapter("tok", 300, aes_key=key, app_id=app_id),
        WeChatAdapter("tok", 300, aes_key=None),
    ):
        with pytest.raises(SignatureRefused):
            bad.parse(GatewayRequest({}, {**query, "msg_signature": "0" * 40}, sealed.encode()), NOW)
    other = WeChatAdapter("tok", 300, aes_key="B" * 43, app_id=app_id)
    with pytest.raises((SignatureRefused, Invalid)):
        other.parse(request, NOW)


def _wechat_query_nonce(token: str, nonce: str) -> str:
    signer = WeChatSigner()
    signer.add_data(token, STAMP, nonce)
    return str(signer.signature)
