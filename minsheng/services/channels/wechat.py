"""The WeChat official account channel (公众号, plaintext mode), with wechatpy.

- Server URL verification: WeChat's GET with ``signature``, ``timestamp``, ``nonce`` and ``echostr`` is
  answered with ``echostr`` when the signature matches `Settings.wechat_token`.
- Messages: WeChat POSTs XML, signed the same way in the query string. A text message opens a ticket (or, as
  "补充…", adds to the sender's open ticket; a ticket number alone asks its state), an image message attaches
  its picture to the sender's open ticket or opens one; the passive reply (XML, within WeChat's 5 seconds)
  carries the ticket number and the query code. A message WeChat delivers again (same MsgId) gets the same
  reply and does nothing twice. Events (subscribe …) get a short guide and store nothing.

Plaintext (明文模式), compatible and safe mode (安全模式, AES with `Settings.wechat_aes_key`, the account's
EncodingAESKey) are all read: an encrypted message (``encrypt_type=aes``) is decrypted and checked against its
``msg_signature`` with wechatpy's `WeChatCrypto`, and its reply is encrypted the same way.
"""

from __future__ import annotations

from datetime import datetime

import httpx
from sqlalchemy.orm import Session
from wechatpy import create_reply, parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.utils import check_signature

from minsheng.domain.digits import whole_number
from minsheng.domain.states import Channel
from minsheng.services.channels.base import (
    Context,
    GatewayRequest,
    InboundMessage,
    Photo,
    SignatureRefused,
    intent,
    prepare,
    receive,
    save_photos,
)
from minsheng.services.errors import Invalid

GUIDE = "您好，这里是{hotline}热线。请直接发送文字描述您的诉求（可附图片），我们将受理并回复工单编号；发送工单编号可查询办理进度。"
IMAGE_ONLY = "群众通过微信发送图片反映问题（未附文字说明）。"
MAX_PICTURE_BYTES = 10 * 1024 * 1024


class WeChatAdapter:
    channel = Channel.WECHAT

    def __init__(
        self,
        token: str | None,
        max_age: int,
        fetch_timeout: float = 3.0,
        *,
        aes_key: str | None = None,
        app_id: str = "",
    ) -> None:
        self.token, self.max_age, self.fetch_timeout = token, max_age, fetch_timeout
        self.aes_key, self.app_id = aes_key, app_id

    @staticmethod
    def encrypted(request: GatewayRequest) -> bool:
        return request.query.get("encrypt_type", "raw") == "aes"

    def _crypto(self) -> WeChatCrypto:
        return WeChatCrypto(self.token, self.aes_key, self.app_id)

    def open(self, request: GatewayRequest) -> bytes:
        """The message's XML: the body itself, or in safe mode the body decrypted (after its msg_signature)."""
        body = request.body
        head = body[:2048].lower()
        if b"<!doctype" in head or b"<!entity" in head:
            raise Invalid("XML with a document type is refused", field="body")
        if not self.encrypted(request):
            return body
        if not self.aes_key:
            raise SignatureRefused("an encrypted message, but no EncodingAESKey is configured")
        q = request.query
        try:
            plain = self._crypto().decrypt_message(
                body.decode("utf-8"), q.get("msg_signature", ""), q.get("timestamp", ""), q.get("nonce", "")
            )
        except (InvalidSignatureException, InvalidAppIdException):
            raise SignatureRefused("the encrypted message's signature or AppID does not match") from None
        except Exception:  # not XML, no Encrypt element, bad padding: not a message WeChat encrypted
            raise Invalid("the body is not an encrypted WeChat message", field="body") from None
        return str(plain).encode("utf-8")

    def seal(self, request: GatewayRequest, xml: str) -> str:
        """The reply as WeChat expects it: encrypted when the message was."""
        if not self.encrypted(request):
            return xml
        q = request.query
        return str(self._crypto().encrypt_message(xml, q.get("nonce", ""), q.get("timestamp", "")))

    def verify(self, request: GatewayRequest, now: datetime) -> None:
        """WeChat's signature: SHA-1 of the sorted token, timestamp and nonce (wechatpy checks it)."""
        query = request.query
        if not self.token:
            raise SignatureRefused("the WeChat token is not configured: messages are refused")
        stamp = query.get("timestamp", "")
        seconds = whole_number(stamp, 0, 10**12 - 1)
        if seconds is None or abs(now.timestamp() - seconds) > self.max_age:
            raise SignatureRefused("the timestamp is missing, too old or in the future")
        try:
            check_signature(self.token, query.get("signature", ""), stamp, query.get("nonce", ""))
        except InvalidSignatureException:
            raise SignatureRefused("the signature does not match") from None

    def parse(self, request: GatewayRequest, now: datetime) -> InboundMessage | None:
        """The message, or None for what is not a citizen's text or picture (events, voice …)."""
        body = self.open(request)
        try:
            msg = parse_message(body.decode("utf-8"))
        except Exception:  # expat's and xmltodict's errors alike: not a WeChat message
            raise Invalid("the body is not a WeChat XML message", field="body") from None
        if msg.type not in ("text", "image") or not msg.id or not msg.source:
            return None
        sender = str(msg.source)[:128]
        if msg.type == "text":
            text = str(msg.content or "").strip()
            if not text:
                raise Invalid("an empty text message", field="Content")
            # A digit rates the sender's ticket last closed (the closing message asks for it).
            return InboundMessage(
                Channel.WECHAT, f"msg:{msg.id}", sender, text[:5000], now, reply_to=sender, ratings=True
            )
        picture = self._picture(str(msg.image or ""))
        photos = (Photo(f"wechat-{msg.id}.jpg", picture),) if picture else ()
        return InboundMessage(
            Channel.WECHAT,
            f"msg:{msg.id}",
            sender,
            "补充：" + IMAGE_ONLY,
            now,
            photos=photos,
            reply_to=sender,
        )

    def _picture(self, url: str) -> bytes | None:
        """The picture WeChat keeps at PicUrl; a failed download leaves the message without it."""
        if not url.startswith(("http://", "https://")):
            return None
        try:
            with httpx.Client(timeout=self.fetch_timeout, follow_redirects=False) as client:
                r = client.get(url)
        except httpx.HTTPError:
            return None
        if r.status_code != 200 or len(r.content) > MAX_PICTURE_BYTES:
            return None
        return r.content


def reply_xml(body: bytes, text: str) -> str:
    """The passive reply to the message in ``body`` (already parsed once, so it parses)."""
    return str(create_reply(text, parse_message(body.decode("utf-8"))).render())


def inbound(session: Session, ctx: Context, adapter: WeChatAdapter, request: GatewayRequest) -> str:
    """WeChat's POST: verified and read before the transaction's first query; the passive reply's XML."""
    adapter.verify(request, ctx.now)
    message = adapter.parse(request, ctx.now)
    body = adapter.open(request)
    if message is None:
        return adapter.seal(request, reply_xml(body, GUIDE.format(hotline=ctx.hotline_name)))
    photos = save_photos(ctx.attachments_dir, message.photos, ctx.max_attachment_bytes)
    out = receive(
        session, ctx.engine, message, ctx.now, prepared=prepare(ctx.engine, message, ctx.now), photos=photos
    )
    if out.outcome == "unmatched" and intent(message).kind == "supplement" and message.photos:
        # A picture with no open ticket of the sender's: it opens one (under an id of its own, so that WeChat's
        # repeat of the message finds both answers).
        fresh = InboundMessage(
            Channel.WECHAT,
            message.external_id + ":new",
            message.sender,
            IMAGE_ONLY,
            ctx.now,
            reply_to=message.sender,
        )
        out = receive(session, ctx.engine, fresh, ctx.now, photos=photos)
    return adapter.seal(request, reply_xml(body, out.reply))


def verify_url(adapter: WeChatAdapter, request: GatewayRequest, now: datetime) -> str:
    """The server URL check (公众号 → 服务器配置): echo ``echostr`` when the signature matches."""
    adapter.verify(request, now)
    echo = request.query.get("echostr", "")
    if not echo or len(echo) > 200:
        raise Invalid("echostr is required", field="echostr")
    return echo
