"""Photos attached to tickets: type- and size-checked, stored once by content hash."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from minsheng.domain.roles import Actor
from minsheng.services import queries
from minsheng.services.auth import Principal
from minsheng.services.errors import Invalid
from minsheng.services.ticket_core import locked
from minsheng.services.tickets import TicketEngine
from minsheng.storage.db import Database
from minsheng.storage.models import Attachment, Ticket

# Sniffed from the bytes, never trusted from the client's Content-Type or file name.
_SIGNATURES: list[tuple[bytes, int, str]] = [
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"WEBP", 8, "image/webp"),
]
_SAFE_NAME = re.compile(r"^[^\x00-\x1f/\\]{1,150}$")


def sniff_image(data: bytes) -> str | None:
    for sig, offset, ctype in _SIGNATURES:
        if data[offset : offset + len(sig)] == sig and (ctype != "image/webp" or data[:4] == b"RIFF"):
            return ctype
    return None


def check_filename(name: str) -> str:
    name = name.strip()
    if not name or not _SAFE_NAME.match(name) or name in (".", "..") or ".." in name.split("."):
        raise Invalid(
            "file name must be a plain name without folders, '..' or control characters", field="file"
        )
    return name


def blob_path(root: Path, sha256: str) -> Path:
    return root / sha256[:2] / sha256[2:4] / sha256


@dataclass(frozen=True)
class Blob:
    """An image checked and stored on disk by its content hash, not yet attached to any ticket."""

    name: str
    sha256: str
    content_type: str
    size: int


def save_blob(root: Path, filename: str, data: bytes, max_bytes: int) -> Blob:
    """Check an upload and store its bytes once (no database: callers do this outside any transaction)."""
    name = check_filename(filename)
    if not data:
        raise Invalid("the file is empty", field="file")
    if len(data) > max_bytes:
        raise Invalid(f"the file is larger than {max_bytes // (1024 * 1024)} MB", field="file")
    ctype = sniff_image(data)
    if ctype is None:
        raise Invalid("only JPEG, PNG, GIF or WebP images are accepted", field="file")
    digest = hashlib.sha256(data).hexdigest()
    path = blob_path(root, digest)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename, so a crash never leaves a half-written blob under its final name.
        fd, tmp = tempfile.mkstemp(dir=path.parent)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    return Blob(name, digest, ctype, len(data))


def record_attachment(
    session: Session, engine: TicketEngine, ticket: Ticket, actor: Actor, blob: Blob, now: datetime
) -> Attachment:
    """The attachment row and its timeline note, in the caller's transaction."""
    # The note takes the ticket's next timeline number: lock the row first, or a step taken at the same moment
    # on another connection (PostgreSQL) would take the same number and one of the two would fail.
    ticket = session.scalars(locked(select(Ticket).where(Ticket.id == ticket.id))).one()
    ev = engine.record_note(
        session,
        ticket,
        actor,
        "attachment",
        now,
        {"filename": blob.name, "sha256": blob.sha256},
        public=False,
    )
    session.flush()
    att = Attachment(
        ticket_id=ticket.id,
        event_id=ev.id,
        sha256=blob.sha256,
        content_type=blob.content_type,
        size=blob.size,
        filename=blob.name,
        uploaded_by_user_id=actor.user_id,
        created_at=now,
    )
    session.add(att)
    session.flush()
    return att


def store_attachment(
    session: Session,
    engine: TicketEngine,
    root: Path,
    ticket: Ticket,
    actor: Actor,
    filename: str,
    data: bytes,
    max_bytes: int,
    now: datetime,
) -> Attachment:
    """Check, store and attach in the caller's (write) transaction."""
    return record_attachment(session, engine, ticket, actor, save_blob(root, filename, data, max_bytes), now)


def upload(
    db: Database,
    engine: TicketEngine,
    root: Path,
    who: Principal,
    number: str,
    filename: str,
    data: bytes,
    max_bytes: int,
    now: datetime,
) -> Attachment:
    """A staff upload: access is checked in a read transaction and the file written before the short write
    transaction that attaches it, so a refused or slow upload never holds the write lock."""
    with db.read_sessions() as session, session.begin():
        queries.ticket_for(session, who, number)
    blob = save_blob(root, filename, data, max_bytes)
    with db.write_sessions() as session, session.begin():
        ticket = queries.ticket_for(session, who, number)
        return record_attachment(session, engine, ticket, who.actor, blob, now)
