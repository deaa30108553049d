"""A partner system on loopback for the linkage tests: a real HTTP server (http.server in a thread) that receives
our signed posts, checks each signature with the shared secret against the injected clock, and answers as told:
2xx, or a 5xx for the first ``fail_first`` posts (or for every post with ``fail_always``).

It also plays the partner's side of the callbacks: a transfer it accepts is acknowledged ``acks`` times (0: it
never answers, as a late partner; 2: it answers twice) through ``answer`` before the simulator's own reply, and
`signed` builds the headers a partner sends with its acknowledgement and results (the same HMAC scheme).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from minsheng.domain.clock import Clock
from minsheng.notify.partner import MESSAGE_ID_HEADER, signed_headers, verify


@dataclass
class Received:
    message_id: str
    body: dict[str, Any]
    signature_ok: bool
    status: int


class Answer(Protocol):
    """Posts a signed callback to minsheng (path, raw body, headers) and returns the HTTP answer."""

    def __call__(self, path: str, raw: bytes, headers: dict[str, str]) -> Any: ...


@dataclass
class PartnerSimulator:
    secret: str
    clock: Clock
    fail_first: int = 0
    fail_always: bool = False
    acks: int = 0
    answer: Answer | None = None
    received: list[Received] = field(default_factory=list)
    #: What minsheng answered to each acknowledgement sent: (status code, its "status").
    answered: list[tuple[int, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        sim = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                ok = verify(sim.secret, dict(self.headers.items()), raw, sim.clock.now()) is None
                failing = sim.fail_always or len(sim.received) < sim.fail_first
                status = 401 if not ok else (503 if failing else 200)
                body = json.loads(raw or b"{}")
                sim.received.append(Received(self.headers.get(MESSAGE_ID_HEADER, ""), body, ok, status))
                if status == 200 and body.get("type") == "transfer":
                    sim.acknowledge(body)
                answer = json.dumps({"ok": status == 200}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/minsheng"

    def __enter__(self) -> PartnerSimulator:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def delivered(self) -> list[dict[str, Any]]:
        """The bodies answered with 200, in arrival order."""
        return [r.body for r in self.received if r.status == 200]

    def acknowledge(self, transfer: dict[str, Any]) -> None:
        """Acknowledge a transfer ``acks`` times, with an incident id of the partner's own."""
        incident = f"SIM-{len(self.received)}"
        for _ in range(self.acks):
            assert self.answer is not None
            raw, headers = self.signed({"ticket": transfer["ticket"], "incident_id": incident})
            r = self.answer(transfer["acks"], raw, headers)
            self.answered.append((r.status_code, r.json().get("status", "")))

    def signed(self, body: dict[str, Any], at: datetime | None = None) -> tuple[bytes, dict[str, str]]:
        """A callback as the partner posts it: the raw body and its signed headers."""
        raw = json.dumps(body, ensure_ascii=False).encode()
        headers = {
            "Content-Type": "application/json",
            **signed_headers(self.secret, raw, at or self.clock.now()),
        }
        return raw, headers
