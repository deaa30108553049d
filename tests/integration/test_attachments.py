"""Issue 14, finding 8 at the service level (SQLite and PostgreSQL): an upload is decoded and re-encoded without
its metadata (EXIF with GPS), a polyglot or an undecodable file is refused, and no photo joins a ticket once it is
closed or rated, whichever path adds it (`record_attachment`, which the API, the console's feedback and the
portal all go through; `upload` refuses before writing the file)."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select

from minsheng.domain.clock import FixedClock
from minsheng.domain.roles import Actor, Role
from minsheng.services import schemas as s
from minsheng.services.attachments import Blob, blob_path, record_attachment, save_blob, upload
from minsheng.services.auth import Principal
from minsheng.services.errors import Conflict, Invalid
from minsheng.services.tickets import TicketEngine
from minsheng.services.uow import reading, writing
from minsheng.storage.db import Database
from minsheng.storage.models import Attachment, Ticket, TimelineEvent, User
from tests.factories import small_city

GPS_IFD = 0x8825


def jpeg_with_gps() -> bytes:
    """A 40×30 photo taken 'rotated' (orientation 6) with a camera name and a GPS position."""
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"
    exif[0x0112] = 6
    exif[GPS_IFD] = {1: "N", 2: (39.0, 54.0, 27.0), 3: "E", 4: (116.0, 23.0, 17.0)}
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(out, "JPEG", exif=exif.tobytes(), comment=b"home")
    return out.getvalue()


def png(text: str | None = None) -> bytes:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    if text:
        info.add_text("Comment", text)
    out = io.BytesIO()
    Image.new("RGBA", (5, 5), (0, 0, 0, 0)).save(out, "PNG", pnginfo=info)
    return out.getvalue()


GIF_HTML = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00"
    b"!\xfe\x1a<script>alert(1)</script>\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)


def test_uploads_are_re_encoded_without_metadata(tmp_path: Path) -> None:
    data = jpeg_with_gps()
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(GPS_IFD)  # the original has a position
    blob = save_blob(tmp_path, "现场.jpg", data, 10 * 2**20)
    stored = blob_path(tmp_path, blob.sha256).read_bytes()
    assert blob.content_type == "image/jpeg" and blob.size == len(stored) and stored != data
    im = Image.open(io.BytesIO(stored))
    assert not im.getexif() and b"SecretCam" not in stored and b"home" not in stored
    assert "exif" not in im.info and "comment" not in im.info
    assert im.size == (30, 40)  # the orientation is applied to the pixels before EXIF goes

    blob = save_blob(tmp_path, "a.png", png(text="home address"), 10 * 2**20)
    stored = blob_path(tmp_path, blob.sha256).read_bytes()
    assert b"home address" not in stored and Image.open(io.BytesIO(stored)).mode == "RGBA"


@pytest.mark.parametrize(
    "data",
    [
        GIF_HTML,
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 64,
        b"GIF89a<html><body>hello</body></html>",
        b"\xff\xd8\xff\xe0 not a jpeg at all",
        png() + b"<svg onload=alert(1)>",
    ],
    ids=["gif-html-polyglot", "png-signature-only", "gif-header-html", "jpeg-signature-only", "png-svg-tail"],
)
def test_polyglots_and_undecodable_files_are_refused(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(Invalid) as e:
        save_blob(tmp_path, "x.gif", data, 10 * 2**20)
    assert e.value.detail == {"field": "file"}
    assert not any(tmp_path.rglob("*"))  # nothing written


def _principal(db: Database, username: str) -> Principal:
    with reading(db) as session:
        u = session.scalars(select(User).where(User.username == username)).one()
        return Principal(
            user_id=u.id,
            username=u.username,
            display_name=u.display_name,
            role=Role(u.role),
            unit_id=u.unit_id,
            unit_name=None,
        )


def test_no_photo_once_closed_or_rated(db: Database, clock: FixedClock, tmp_path: Path) -> None:
    with writing(db) as session:
        small_city(session, clock.now())
    engine, op = TicketEngine(), _principal(db, "operator1")
    with writing(db) as session:
        req = s.IntakeRequest(detail="和平街道菜市场门口垃圾堆积", area_code="C0201")
        number = engine.intake(session, op.actor, req, clock.now())[0].number
    photo = png()
    att = upload(db, engine, tmp_path, op, number, "a.png", photo, 2**20, clock.now())
    blob = save_blob(tmp_path, "b.png", photo, 2**20)
    with writing(db) as session:
        engine.answer_directly(session, op.actor, number, s.AnswerDirectly(answer="已告知"), clock.now())
    _refused(db, engine, tmp_path, op, number, blob, "closed")
    with writing(db) as session:
        fu = _principal(db, "followup1").actor
        engine.follow_up(session, fu, number, s.FollowUp(rating="satisfied"), clock.now())
    _refused(db, engine, tmp_path, op, number, blob, "rated")
    with reading(db) as session:
        t = session.scalars(select(Ticket).where(Ticket.number == number)).one()
        assert t.state == "rated"
        assert [a.id for a in session.scalars(select(Attachment))] == [att.id]


def _refused(
    db: Database, engine: TicketEngine, root: Path, who: Principal, number: str, blob: Blob, state: str
) -> None:
    with pytest.raises(Conflict, match=state):
        upload(db, engine, root, who, number, "c.png", png(), 2**20, datetime.now(UTC))
    with writing(db) as session, pytest.raises(Conflict, match=state):
        t = session.scalars(select(Ticket).where(Ticket.number == number)).one()
        record_attachment(session, engine, t, Actor.citizen(), blob, datetime.now(UTC), public=True)


def test_the_note_is_public_only_when_asked(db: Database, clock: FixedClock, tmp_path: Path) -> None:
    """A staff upload alone is an internal note; the feedback's photo and the citizen's own are public."""
    with writing(db) as session:
        small_city(session, clock.now())
    engine, op = TicketEngine(), _principal(db, "operator1")
    with writing(db) as session:
        t = engine.intake(
            session, op.actor, s.IntakeRequest(detail="路灯坏了", area_code="C0201"), clock.now()
        )[0]
        number = t.number
    blob = save_blob(tmp_path, "a.png", png(), 2**20)
    internal = upload(db, engine, tmp_path, op, number, "a.png", png(), 2**20, clock.now())
    with writing(db) as session:
        t = session.scalars(select(Ticket).where(Ticket.number == number)).one()
        public = record_attachment(session, engine, t, Actor.citizen(), blob, clock.now(), public=True)
    with reading(db) as session:
        flags = {
            a.id: session.get(TimelineEvent, a.event_id).public  # type: ignore[union-attr]
            for a in session.scalars(select(Attachment))
        }
    assert flags == {internal.id: False, public.id: True}
