"""A small IMAP4rev1 server on loopback for the e-mail channel's tests (socketserver): what imaplib and
imap-tools send to read a folder (CAPABILITY, LOGIN, SELECT, UID SEARCH, UID FETCH, UID STORE, LOGOUT) over
messages kept in memory, with their \\Seen flags. Nothing more: a stand-in for the city's mail server."""

from __future__ import annotations

import re
import socketserver
import threading
from dataclasses import dataclass, field


@dataclass
class Stored:
    uid: int
    data: bytes
    flags: set[str] = field(default_factory=set)


class FakeImap:
    def __init__(self, user: str = "hotline", password: str = "secret") -> None:
        self.user, self.password = user, password
        self.messages: list[Stored] = []
        self.logins = 0
        fake = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                self.wfile.write(b"* OK [CAPABILITY IMAP4rev1] fake ready\r\n")
                while True:
                    line = self.rfile.readline()
                    if not line:
                        return
                    tag, _, rest = line.decode().rstrip("\r\n").partition(" ")
                    if not fake.command(self, tag, rest):
                        return

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def add(self, data: bytes) -> int:
        uid = len(self.messages) + 1
        self.messages.append(Stored(uid, data))
        return uid

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def seen(self) -> list[int]:
        return [m.uid for m in self.messages if "\\Seen" in m.flags]

    # ------------------------------------------------------------------------------------------ commands
    def command(self, h: socketserver.StreamRequestHandler, tag: str, rest: str) -> bool:
        out = h.wfile
        words = rest.split(" ")
        verb = words[0].upper()
        if verb == "CAPABILITY":
            out.write(b"* CAPABILITY IMAP4rev1\r\n")
        elif verb == "LOGIN":
            user, password = (w.strip('"') for w in words[1:3])
            if (user, password) != (self.user, self.password):
                out.write(f"{tag} NO LOGIN failed\r\n".encode())
                return True
            self.logins += 1
        elif verb in ("SELECT", "EXAMINE"):
            out.write(f"* {len(self.messages)} EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY 7] ok\r\n".encode())
            out.write(f"{tag} OK [READ-WRITE] SELECT completed\r\n".encode())
            return True
        elif verb == "LOGOUT":
            out.write(f"* BYE\r\n{tag} OK LOGOUT completed\r\n".encode())
            return False
        elif verb == "UID" and words[1].upper() == "SEARCH":
            criteria = " ".join(words[2:]).upper()
            hits = [m.uid for m in self.messages if "UNSEEN" not in criteria or "\\Seen" not in m.flags]
            out.write(("* SEARCH " + " ".join(map(str, hits))).rstrip().encode() + b"\r\n")
        elif verb == "UID" and words[1].upper() == "FETCH":
            for m in self._set(words[2]):
                flags = " ".join(sorted(m.flags))
                head = f"* {m.uid} FETCH (UID {m.uid} FLAGS ({flags}) RFC822.SIZE {len(m.data)} BODY[] {{{len(m.data)}}}\r\n"
                out.write(head.encode() + m.data + b")\r\n")
        elif verb == "UID" and words[1].upper() == "STORE":
            named = re.findall(r"\\\w+", " ".join(words[4:]))
            for m in self._set(words[2]):
                if words[3].startswith("+"):
                    m.flags.update(named)
                else:
                    m.flags.difference_update(named)
        elif verb not in ("NOOP", "EXPUNGE", "CLOSE", "CHECK"):
            out.write(f"{tag} BAD unknown command\r\n".encode())
            return True
        out.write(f"{tag} OK {verb} completed\r\n".encode())
        return True

    def _set(self, spec: str) -> list[Stored]:
        wanted = {int(x) for x in spec.split(",") if x.isdigit()}
        return [m for m in self.messages if m.uid in wanted]
