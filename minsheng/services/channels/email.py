"""The e-mail channel: the hotline's mailbox, read over IMAP (imap-tools), and the leaders' mailboxes
(领导信箱). Replies go out by SMTP through the outbox (`notify.channels.SmtpSender`).

A poll (`poll`, run by the worker every `Settings.imap_poll_seconds`, see `MailPoller`) reads the unseen mails of
`Settings.imap_folder`, at most `imap_batch`, each in a transaction of its own:
- the mail's Message-ID is the channel's message id: a mail read twice (a crash before it was flagged \\Seen)
  does nothing twice;
- a mail to a leader's mailbox (an address in `leader_mailboxes`, among To and Cc) becomes a ticket on channel
  `mailbox`, dispatched at once to the mailbox's unit; any other mail a ticket on channel `email`, triaged as
  usual. "补充 …" in the body adds to the sender's open ticket; a ticket number alone asks its state;
- image attachments become the ticket's photos (other files are left out: a mail is not an archive);
- the answer (number and query code, or the state) is mailed back to Reply-To or From through the outbox,
  and the mail is flagged \\Seen once its transaction has committed.

The mailbox's own authentication is the channel's sender check: only what reached the hotline's mailbox is
read (SPF/DKIM are the mail server's business).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from imap_tools import AND, MailBox, MailBoxUnencrypted, MailMessage, MailMessageFlags

from minsheng.config import Settings
from minsheng.domain.clock import Clock
from minsheng.domain.states import Channel
from minsheng.notify.channels import EMAIL
from minsheng.services.channels.base import (
    Context,
    InboundMessage,
    Outcome,
    Photo,
    prepare,
    receive,
    save_photos,
)
from minsheng.services.channels.mailboxes import unit_for
from minsheng.services.errors import ServiceError
from minsheng.services.notifications import enqueue
from minsheng.services.schemas import MAX_DETAIL
from minsheng.services.tickets import TicketEngine
from minsheng.storage.db import Database

log = logging.getLogger("minsheng.channels.email")
_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_TAGS = re.compile(r"<[^>]{0,2000}>")
IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")


@dataclass
class PollStats:
    read: int = 0
    taken: int = 0
    duplicates: int = 0
    refused: int = 0
    errors: list[str] = field(default_factory=list)


def _clean(text: str, limit: int) -> str:
    return _CONTROLS.sub("", text.replace("\r\n", "\n").replace("\r", "\n")).strip()[:limit]


def read_mail(msg: MailMessage, folder: str, now: datetime) -> InboundMessage | None:
    """The message of a mail, or None for one with no sender or no words."""
    sender = (msg.from_ or "").strip().lower()
    if not sender or len(sender) > 200:
        return None
    body = msg.text or _TAGS.sub(" ", msg.html or "")
    subject = _clean(msg.subject or "", 200)
    text = _clean(body, MAX_DETAIL) or subject
    if not text:
        return None
    message_id = "".join(msg.headers.get("message-id", ())).strip().strip("<>")
    external = message_id[:128] if message_id else f"uid:{folder}:{msg.uid}"
    photos = tuple(
        Photo(_clean(a.filename or "photo", 150) or "photo", a.payload)
        for a in msg.attachments
        if a.content_type in IMAGE_TYPES
    )
    reply_to = (msg.reply_to[0] if msg.reply_to else sender)[:200]
    name = _clean(msg.from_values.name if msg.from_values else "", 64) or None
    return InboundMessage(
        channel=Channel.EMAIL,
        external_id=external,
        sender=sender,
        text=text,
        received_at=now,
        title=_clean(subject.replace("\n", " "), 200) or None,
        photos=photos,
        citizen_name=name,
        reply_to=reply_to,
    )


def take(db: Database, ctx: Context, mail: MailMessage, folder: str) -> Outcome | None:
    """One mail, in a transaction of its own; None when it holds nothing to take in."""
    message = read_mail(mail, folder, ctx.now)
    if message is None:
        return None
    recipients = [*mail.to, *mail.cc]
    with db.read_sessions() as session, session.begin():
        routed = unit_for(session, recipients)
    if routed is not None:
        unit_code, leader = routed
        message = replace(message, channel=Channel.MAILBOX, unit_code=unit_code)
        log.info("mail %s to %s's mailbox: unit %s", message.external_id, leader, unit_code)
    photos = save_photos(ctx.attachments_dir, message.photos, ctx.max_attachment_bytes)
    prepared = prepare(ctx.engine, message, ctx.now)
    with db.write_sessions() as session, session.begin():
        out = receive(session, ctx.engine, message, ctx.now, prepared=prepared, photos=photos)
        if not out.duplicate and EMAIL in ctx.outbound and message.reply_to:
            subject = f"Re: {message.title}" if message.title else f"{ctx.hotline_name}热线回复"
            enqueue(
                session,
                kind="channel_reply",
                channel=EMAIL,
                title=subject[:200],
                text=f"{out.reply}\n\n—— {ctx.hotline_name}热线",
                now=ctx.now,
                source=f"channel:email:{message.external_id}",
                recipient=message.reply_to,
                ticket_id=out.ticket.id if out.ticket is not None else None,
            )
    return out


def open_mailbox(settings: Settings) -> Any:
    """A logged-in imap-tools mailbox on the configured folder."""
    assert settings.imap_host
    cls = MailBox if settings.imap_ssl else MailBoxUnencrypted
    box = cls(settings.imap_host, settings.imap_port, timeout=30)
    return box.login(settings.imap_user, settings.imap_password, initial_folder=settings.imap_folder)


def poll(
    db: Database,
    ctx: Context,
    settings: Settings,
    *,
    connect: Callable[[Settings], Any] = open_mailbox,
) -> PollStats:
    """Read the unseen mails once (see the module docstring). A mail that cannot be taken in (no words, a
    field refused) is flagged \\Seen and counted as refused, so it does not come back at every poll."""
    stats = PollStats()
    with connect(settings) as box:
        mails = list(box.fetch(AND(seen=False), mark_seen=False, limit=settings.imap_batch, bulk=True))
        for mail in mails:
            stats.read += 1
            try:
                out = take(db, ctx, mail, settings.imap_folder)
            except ServiceError as e:
                out = None
                stats.errors.append(f"{mail.uid}: {e.message}")
            if out is None:
                stats.refused += 1
            elif out.duplicate:
                stats.duplicates += 1
            else:
                stats.taken += 1
            box.flag(mail.uid, MailMessageFlags.SEEN, True)
    return stats


class MailPoller:
    """The worker's mail job: a thread that polls the mailbox every `imap_poll_seconds` until stopped."""

    def __init__(
        self,
        db: Database,
        engine: TicketEngine,
        clock: Clock,
        settings: Settings,
        senders: Mapping[str, object],
    ) -> None:
        self.db, self.engine, self.clock, self.settings = db, engine, clock, settings
        self.outbound = frozenset(senders)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="minsheng-mail", daemon=True)

    def context(self) -> Context:
        s = self.settings
        return Context(
            self.engine,
            self.clock.now(),
            s.hotline_name,
            self.outbound,
            s.attachments_dir,
            s.max_attachment_bytes,
        )

    def once(self) -> PollStats:
        return poll(self.db, self.context(), self.settings)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                stats = self.once()
                if stats.read:
                    log.info("mail poll: %s", stats)
            except Exception as e:  # an unreachable server must never end the job
                log.warning("mail poll failed: %s: %s", type(e).__name__, e)
            self._stop.wait(self.settings.imap_poll_seconds)

    def start(self) -> Callable[[], None]:
        """Start polling; returns the stop function (for `Platform._stops`)."""
        self._thread.start()
        return self.stop

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
