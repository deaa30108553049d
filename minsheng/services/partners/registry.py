"""The partner registry: add, read, edit and disable the peer systems we exchange transfers with.

Changes go through the ORM in the caller's write transaction, so the audit log (`services.audit`) records each
with its actor; the secret is recorded as changed, never by value. What pages and the API show of a partner is
`partner_json`: the secret only as its last characters.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from minsheng.domain.states import TransferTarget
from minsheng.notify.partner import PartnerEndpoint
from minsheng.services.errors import Conflict, Invalid, NotFound
from minsheng.storage.db import Database
from minsheng.storage.models import Category
from minsheng.storage.partner_tables import Partner

CODE_RE = re.compile(r"^[0-9A-Za-z_-]{2,16}$")
CODE_PATTERN = CODE_RE.pattern


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def _check_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or len(url) > 500:
        raise Invalid("endpoint must be an http(s) URL of at most 500 characters", field="endpoint_url")
    return url.strip()


def _check_codes(session: Session, codes: Iterable[str], field: str) -> list[str]:
    wanted = sorted({c.strip() for c in codes if c.strip()})
    if not wanted:
        return []
    known = set(session.scalars(select(Category.code).where(Category.code.in_(wanted))))
    missing = [c for c in wanted if c not in known]
    if missing:
        raise Invalid(f"unknown category code(s): {', '.join(missing)}", field=field)
    return wanted


def _check_minutes(warn: int, escalate: int) -> None:
    if not 1 <= warn <= 7 * 24 * 60 or not warn < escalate <= 7 * 24 * 60:
        raise Invalid("ack minutes: 1 <= warn < escalate <= 10080", field="ack_warn_minutes")


def add_partner(
    session: Session,
    *,
    code: str,
    name: str,
    endpoint_url: str,
    now: datetime,
    secret: str | None = None,
    takes: Iterable[str] = (),
    sends: Iterable[str] = (),
    ack_warn_minutes: int = 15,
    ack_escalate_minutes: int = 30,
) -> tuple[Partner, str]:
    """A new partner and its secret (generated unless given): the only time the secret is returned."""
    if not CODE_RE.match(code):
        raise Invalid("code: 2-16 letters, digits, '-' or '_'", field="code")
    if not name.strip() or len(name) > 100:
        raise Invalid("name: 1-100 characters", field="name")
    if session.scalar(select(Partner.id).where(Partner.code == code)) is not None:
        raise Conflict(f"partner {code!r} exists already", field="code")
    secret = secret or new_secret()
    if not 16 <= len(secret) <= 128:
        raise Invalid("secret: 16-128 characters", field="secret")
    _check_minutes(ack_warn_minutes, ack_escalate_minutes)
    p = Partner(
        code=code,
        name=name.strip(),
        endpoint_url=_check_url(endpoint_url),
        secret=secret,
        secret_hint=secret[-4:],
        takes=_check_codes(session, takes, "takes"),
        sends=_check_codes(session, sends, "sends"),
        ack_warn_minutes=ack_warn_minutes,
        ack_escalate_minutes=ack_escalate_minutes,
        active=True,
        created_at=now,
        updated_at=now,
    )
    session.add(p)
    session.flush()
    return p, secret


def get_partner(session: Session, code: str, *, active_only: bool = False) -> Partner:
    p = session.scalar(select(Partner).where(Partner.code == code))
    if p is None or (active_only and not p.active):
        raise NotFound(f"partner {code!r} not found")
    return p


def list_partners(session: Session) -> list[Partner]:
    return list(session.scalars(select(Partner).order_by(Partner.code)))


def update_partner(session: Session, code: str, now: datetime, **changes: Any) -> Partner:
    """Edit the fields given (name, endpoint_url, takes, sends, ack minutes, active); the secret stays.

    Everything is checked before anything is set: one edit is one audited change, and a refused edit none."""
    p = get_partner(session, code)
    values: dict[str, Any] = {}
    if "name" in changes:
        name = str(changes["name"]).strip()
        if not name or len(name) > 100:
            raise Invalid("name: 1-100 characters", field="name")
        values["name"] = name
    if "endpoint_url" in changes:
        values["endpoint_url"] = _check_url(str(changes["endpoint_url"]))
    for key in ("takes", "sends"):
        if key in changes:
            values[key] = _check_codes(session, changes[key], key)
    warn = int(changes.get("ack_warn_minutes", p.ack_warn_minutes))
    escalate = int(changes.get("ack_escalate_minutes", p.ack_escalate_minutes))
    _check_minutes(warn, escalate)
    values["ack_warn_minutes"], values["ack_escalate_minutes"] = warn, escalate
    if "active" in changes:
        values["active"] = bool(changes["active"])
    for key, value in values.items():
        setattr(p, key, value)
    p.updated_at = now
    return p


def rotate_secret(session: Session, code: str, now: datetime) -> str:
    p = get_partner(session, code)
    p.secret = new_secret()
    p.secret_hint = p.secret[-4:]
    p.updated_at = now
    return p.secret


def partner_json(p: Partner) -> dict[str, Any]:
    """What pages and the API show: everything but the secret, of which only the last characters."""
    return {
        "code": p.code,
        "name": p.name,
        "endpoint_url": p.endpoint_url,
        "secret": "…" + p.secret_hint,
        "takes": list(p.takes or []),
        "sends": list(p.sends or []),
        "ack_warn_minutes": p.ack_warn_minutes,
        "ack_escalate_minutes": p.ack_escalate_minutes,
        "active": p.active,
        "updated_at": p.updated_at.isoformat(),
    }


def partner_for_transfer(session: Session, target: str, category_id: int | None) -> Partner | None:
    """Where a transfer goes: the active partner whose code is the target (110, 119 …); for target "other",
    the active partner that takes the ticket's category (or one of its ancestors)."""
    if target != TransferTarget.OTHER.value:
        return session.scalar(select(Partner).where(Partner.code == target, Partner.active.is_(True)))
    codes: list[str] = []
    cid = category_id
    while cid is not None and len(codes) < 10:
        row = session.execute(select(Category.code, Category.parent_id).where(Category.id == cid)).first()
        if row is None:
            break
        codes.append(row[0])
        cid = row[1]
    if not codes:
        return None
    for p in session.scalars(select(Partner).where(Partner.active.is_(True)).order_by(Partner.code)):
        if set(p.takes or []) & set(codes):
            return p
    return None


def resolver(db: Database) -> Callable[[str], PartnerEndpoint | None]:
    """For the outbox sender: a partner's endpoint and secret at send time (None when unknown or disabled)."""

    def resolve(code: str) -> PartnerEndpoint | None:
        with db.read_sessions() as session, session.begin():
            row = session.execute(
                select(Partner.endpoint_url, Partner.secret).where(
                    Partner.code == code, Partner.active.is_(True)
                )
            ).first()
        return PartnerEndpoint(row[0], row[1]) if row is not None else None

    return resolve
