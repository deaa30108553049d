"""The WeChat official account as an outbox channel: a customer-service text message (客服消息) to a citizen's
openid, sent with wechatpy. WeChat allows it within 48 hours of the citizen's last message to the account; later
it answers errcode 45015, which is final (the citizen still sees the result by sending the ticket number)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import requests
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException

from minsheng.notify.channels import DeliveryResult, Message

WECHAT = "wechat"
DEFAULT_API_BASE = "https://api.weixin.qq.com/cgi-bin/"
# Errors no retry can mend: a wrong openid, outside the 48-hour window, the user refused messages, bad appid.
FINAL_ERRORS = frozenset({40003, 40013, 43004, 45015, 45047, 48001})


class _Client(WeChatClient):  # type: ignore[misc]
    """wechatpy's client with the token fetched under the same API base (a city's egress proxy, a test)."""

    def fetch_access_token(self) -> Any:
        return self._fetch_access_token(
            url=self.API_BASE_URL + "token",
            params={"grant_type": "client_credential", "appid": self.appid, "secret": self.secret},
        )


class WeChatServiceSender:
    channel = WECHAT

    def __init__(self, app_id: str, secret: str, *, api_base: str = DEFAULT_API_BASE, timeout: float = 10.0):
        self.client = _Client(app_id, secret, timeout=timeout)
        self.client.API_BASE_URL = api_base

    def send(self, message: Message, now: datetime) -> DeliveryResult:
        if not message.to:
            return DeliveryResult(False, True, "WeChat message without an openid")
        text = f"{message.title}\n{message.text}" if message.title else message.text
        try:
            self.client.message.send_text(message.to, text[:600])
        except WeChatClientException as e:
            return DeliveryResult(False, e.errcode in FINAL_ERRORS, f"errcode {e.errcode}: {e.errmsg}"[:300])
        except requests.RequestException as e:
            return DeliveryResult(False, False, f"{type(e).__name__}: {e}"[:300])
        return DeliveryResult(True)
