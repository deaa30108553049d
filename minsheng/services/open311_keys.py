"""Open311 API keys (issue 16): one per integration, issued by `minsheng open311 key --name NAME`, stored as
their SHA-256, listed and revoked on the admin page (the revocation is an audited change, `services.audit`),
checked on every POST and rate-limited per key (`Settings.open311_key_limit`).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from minsheng.config import Settings
from minsheng.domain.clock import Clock
from minsheng.services.errors import Invalid, NotFound, ServiceError
from minsheng.services.limits import Limits, RateLimited
from minsheng.storage.db import Database
from minsheng.storage.open311_tables import Open311Key

KEY_PREFIX = "o311_"
_SHOWN = len(KEY_PREFIX) + 6  # what the admin page shows of a key: o311_ and six characters


class Open311Error(ServiceError):
    """An answer in GeoReport's error format (`[{"code": 403, "description": "…"}]`) with its HTTP status:
    404 unknown service, jurisdiction, request or token; 403 missing or bad api_key; 400 anything else;
    429 over a rate limit (with `retry_after`)."""

    code = "open311"

    def __init__(self, status: int, description: str, *, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after


@dataclass(frozen=True)
class Integration:
    """The caller behind a valid key."""

    key_id: int
    name: str


@dataclass(frozen=True)
class KeyRow:
    id: int
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def issue(session: Session, name: str, now: datetime) -> str:
    """A new key for the integration `name`; returns the key (shown once, stored only as its hash)."""
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise Invalid("the integration's name must have 1 to 100 characters", field="name")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    session.add(Open311Key(name=name, key_hash=_hash(key), key_prefix=key[:_SHOWN], created_at=now))
    session.flush()
    return key


def listed(session: Session) -> list[KeyRow]:
    """Every key, newest first (revoked ones too: the page shows when they were revoked)."""
    rows = session.scalars(select(Open311Key).order_by(Open311Key.id.desc()))
    return [KeyRow(k.id, k.name, k.key_prefix, k.created_at, k.revoked_at) for k in rows]


def revoke(session: Session, key_id: int, now: datetime) -> KeyRow:
    """Revoke a key (kept, with the time): an integration using it gets 403 from then on."""
    k = session.get(Open311Key, key_id)
    if k is None:
        raise NotFound(f"Open311 key {key_id} not found")
    if k.revoked_at is None:
        k.revoked_at = now
    return KeyRow(k.id, k.name, k.key_prefix, k.created_at, k.revoked_at)


def _lookup(session: Session, key: str) -> Integration | None:
    if not key.startswith(KEY_PREFIX) or len(key) > 200:
        return None
    row = session.scalar(
        select(Open311Key).where(Open311Key.key_hash == _hash(key), Open311Key.revoked_at.is_(None))
    )
    return Integration(row.id, row.name) if row is not None else None


def authorise(db: Database, settings: Settings, clock: Clock, key: str | None) -> Integration:
    """The integration behind `key`, its POST counted against `open311_key_limit`; Open311Error 403 for a
    missing, unknown or revoked key, 429 over the limit. Two short transactions of its own (the caller holds
    none): the look-up, then the limit's counter."""
    if not key:
        raise Open311Error(403, "api_key was not provided")
    with db.read_sessions() as session, session.begin():
        who = _lookup(session, key)
    if who is None:
        raise Open311Error(403, "api_key is not valid (unknown or revoked)")
    try:
        Limits(db, settings, clock).hit("open311-key", settings.open311_key_limit, str(who.key_id))
    except RateLimited as e:
        raise Open311Error(
            429,
            f"too many requests with this api_key; retry after {e.retry_after} s",
            retry_after=e.retry_after,
        ) from None
    return who


def count_read(db: Database, settings: Settings, clock: Clock, address: str) -> None:
    """Count one GET from a client address against `open311_read_limit` (Open311Error 429 over it)."""
    try:
        Limits(db, settings, clock).hit("open311-read", settings.open311_read_limit, address)
    except RateLimited as e:
        raise Open311Error(
            429,
            f"too many requests from this address; retry after {e.retry_after} s",
            retry_after=e.retry_after,
        ) from None
