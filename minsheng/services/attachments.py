"""Photos attached to tickets: type- and size-checked, decoded and re-encoded (metadata stripped), stored once by
content hash; none once the ticket is closed or rated."""

from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from PIL import Image, ImageOps, ImageSequence
from sqlalchemy import select
from sqlalchemy.orm import Session

from minsheng.domain.roles import Actor
from minsheng.domain.states import TicketState
from minsheng.services import queries
from minsheng.services.auth import Principal
from minsheng.services.errors import Conflict, Invalid
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
_PIL_FORMAT = {"image/jpeg": "JPEG", "image/png": "PNG", "image/gif": "GIF", "image/webp": "WEBP"}
# Markup that a browser would run if it ever took the file for a page (an image/HTML polyglot). Camera
# metadata (EXIF, XMP's <x:xmpmeta>, ICC) contains none of these.
_MARKUP = re.compile(
    rb"<(?:script|html|body|head|iframe|svg|object|embed|meta|img|a\s|!doctype|\?php)|javascript:", re.I
)
MAX_PIXELS = 40_000_000  # per frame: a 40-megapixel photo is the largest a phone takes
MAX_FRAMES = 200
# A ticket in these states takes no more photos: its record is final (closed, rated, handed to another
# hotline, merged into another ticket).
CLOSED_STATES = frozenset(
    {
        TicketState.CLOSED.value,
        TicketState.RATED.value,
        TicketState.TRANSFERRED.value,
        TicketState.MERGED.value,
    }
)


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


def clean_image(data: bytes) -> tuple[bytes, str]:
    """Decode an image and encode its pixels again, without its metadata (EXIF with GPS, XMP, comments, text
    chunks, anything after its end): `(clean bytes, content type)`. Anything that is not an image Pillow
    decodes in the format its first bytes claim, or that carries markup (a GIF/HTML polyglot), is Invalid."""
    ctype = sniff_image(data)
    if ctype is None:
        raise Invalid("only JPEG, PNG, GIF or WebP images are accepted", field="file")
    if _MARKUP.search(data):
        raise Invalid("the image carries HTML or script (a polyglot file) and is refused", field="file")
    fmt = _PIL_FORMAT[ctype]
    try:
        with Image.open(io.BytesIO(data), formats=[fmt]) as im:
            frames = getattr(im, "n_frames", 1)
            if im.width * im.height > MAX_PIXELS or frames > MAX_FRAMES:
                raise Invalid(
                    f"the image is too large (at most {MAX_PIXELS // 1_000_000} megapixels, "
                    f"{MAX_FRAMES} frames)",
                    field="file",
                )
            out = io.BytesIO()
            if frames > 1 and fmt in ("GIF", "WEBP"):
                _save_animation(im, out, fmt)
            else:
                _save_still(im, out, fmt)
    except Invalid:
        raise
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as e:
        raise Invalid(f"the file is not a readable {fmt} image ({e.__class__.__name__})", field="file") from e
    return out.getvalue(), ctype


def _kept(im: Image.Image) -> Image.Image:
    """The pixels with no metadata but what drawing them needs (palette transparency)."""
    frame = im.copy()
    frame.info = {k: v for k, v in im.info.items() if k in ("transparency", "duration", "loop", "background")}
    return frame


def _save_still(im: Image.Image, out: io.BytesIO, fmt: str) -> None:
    if fmt == "JPEG":
        # EXIF goes, so its orientation is applied to the pixels first: the photo stays upright.
        frame = ImageOps.exif_transpose(im)
        frame.info = {}
        if frame.mode not in ("L", "RGB", "CMYK"):
            frame = frame.convert("RGB")
        frame.save(out, "JPEG", quality=90)
    elif fmt == "WEBP":
        _kept(im).save(out, "WEBP", quality=90)
    else:
        im.load()
        _kept(im).save(out, fmt)


def _save_animation(im: Image.Image, out: io.BytesIO, fmt: str) -> None:
    frames = [_kept(f) for f in ImageSequence.Iterator(im)]
    durations = [f.info.get("duration", 100) for f in frames]
    extra = {"quality": 90} if fmt == "WEBP" else {}
    frames[0].save(
        out,
        fmt,
        save_all=True,
        append_images=frames[1:],
        duration=durations,
        loop=im.info.get("loop", 0),
        **extra,
    )


def save_blob(root: Path, filename: str, data: bytes, max_bytes: int) -> Blob:
    """Check an upload, clean it (`clean_image`) and store the clean bytes once (no database: callers do this
    outside any transaction; decoding a photo takes tens of milliseconds)."""
    name = check_filename(filename)
    if not data:
        raise Invalid("the file is empty", field="file")
    if len(data) > max_bytes:
        raise Invalid(f"the file is larger than {max_bytes // (1024 * 1024)} MB", field="file")
    data, ctype = clean_image(data)
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


def check_open(ticket: Ticket) -> None:
    """The one rule for every path that adds a photo (API, a unit's feedback, the portal): not once the ticket
    is closed or rated."""
    if ticket.state in CLOSED_STATES or ticket.rated_at is not None:
        raise Conflict(
            f"ticket {ticket.number} is {ticket.state}: photos cannot be added after it is closed or rated",
            state=ticket.state,
        )


def record_attachment(
    session: Session,
    engine: TicketEngine,
    ticket: Ticket,
    actor: Actor,
    blob: Blob,
    now: datetime,
    *,
    public: bool = False,
) -> Attachment:
    """The attachment row and its timeline note, in the caller's transaction. The note is public (the citizen
    sees it on the timeline) for the photo of a unit's feedback and the citizen's own; a staff upload on its
    own is an internal note."""
    # The note takes the ticket's next timeline number: lock the row first, or a step taken at the same moment
    # on another connection (PostgreSQL) would take the same number and one of the two would fail.
    ticket = session.scalars(locked(select(Ticket).where(Ticket.id == ticket.id))).one()
    check_open(ticket)
    ev = engine.record_note(
        session,
        ticket,
        actor,
        "attachment",
        now,
        {"filename": blob.name, "sha256": blob.sha256},
        public=public,
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
        check_open(queries.ticket_for(session, who, number))
    blob = save_blob(root, filename, data, max_bytes)
    with db.write_sessions() as session, session.begin():
        ticket = queries.ticket_for(session, who, number)
        return record_attachment(session, engine, ticket, who.actor, blob, now)
