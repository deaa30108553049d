"""People and integrations: argon2 password hashes, login sessions with CSRF tokens, bearer tokens; the record of
failed logins as the admin page shows it, and its pruning by the worker."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import ipaddress
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from minsheng.domain.roles import Actor, Role
from minsheng.services.errors import Invalid, Unauthenticated
from minsheng.services.limits import Limits
from minsheng.storage import dialect
from minsheng.storage.db import Database
from minsheng.storage.limit_tables import LoginFailure
from minsheng.storage.models import ApiToken, LoginSession, User

_hasher = PasswordHasher()
# Verifying against this keeps unknown usernames as slow as wrong passwords (no user enumeration by timing).
_DUMMY_HASH = _hasher.hash("minsheng-dummy-password")


def hash_password(password: str) -> str:
    if len(password) < 8:
        raise Invalid("password must have at least 8 characters")
    return _hasher.hash(password)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    """An authenticated user as the entry points see it."""

    user_id: int
    username: str
    display_name: str
    role: Role
    unit_id: int | None
    unit_name: str | None
    csrf_token: str | None = None
    via_token: bool = False

    @property
    def actor(self) -> Actor:
        return Actor(role=self.role, user_id=self.user_id, unit_id=self.unit_id, name=self.display_name)


def _principal(user: User, csrf: str | None = None, via_token: bool = False) -> Principal:
    return Principal(
        user_id=user.id,
        username=user.username,
        display_name=user.display_name,
        role=Role(user.role),
        unit_id=user.unit_id,
        unit_name=user.unit.name if user.unit else None,
        csrf_token=csrf,
        via_token=via_token,
    )


def authenticate(session: Session, username: str, password: str) -> User:
    user, _ = _check(session, username, password)
    if user is None:
        raise Unauthenticated("wrong username or password")
    return user


def _check(session: Session, username: str, password: str) -> tuple[User | None, str]:
    """The user whose password this is, or None and why not: unknown_user, inactive or wrong_password."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.active or not user.password_hash:
        # Unknown users cost a verification too: no user enumeration by timing.
        with contextlib.suppress(VerificationError):
            _hasher.verify(_DUMMY_HASH, password + "x")
        return None, "unknown_user" if user is None else "inactive"
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None, "wrong_password"
    return user, ""


def login(
    db: Database,
    username: str,
    password: str,
    now: datetime,
    hours: float,
    *,
    limits: Limits,
    address: str | None,
) -> tuple[str, Principal]:
    """Check the password and open a session; returns (cookie value, principal).

    Every login goes through `limits` first: a locked username or a throttled address gets RateLimited (429)
    before the password is looked at, even the right one. A wrong password is recorded (`login_failures`) and
    counted; the Nth within the window locks the username (`Settings.login_*`).

    The password is checked in a read transaction: argon2 costs tens of milliseconds, and on SQLite a write
    transaction holds the process's write lock, so a shift's worth of logins would queue every writer.
    """
    limits.login_allowed(username, address)
    with db.read_sessions() as session, session.begin():
        user, why = _check(session, username, password)
        principal = _principal(user) if user is not None else None
    if principal is None:
        limits.login_failed(username, address, why)
        raise Unauthenticated("wrong username or password")
    limits.login_succeeded(username)
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(24)
    with db.write_sessions() as session, session.begin():
        session.add(
            LoginSession(
                id=_digest(token),
                user_id=principal.user_id,
                csrf_token=csrf,
                created_at=now,
                expires_at=now + timedelta(hours=hours),
            )
        )
    return token, dataclasses.replace(principal, csrf_token=csrf)


def logout(session: Session, token: str) -> None:
    session.execute(delete(LoginSession).where(LoginSession.id == _digest(token)))


def principal_from_session(session: Session, token: str, now: datetime) -> Principal | None:
    row = session.get(LoginSession, _digest(token))
    if row is None or row.expires_at <= now:
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        return None
    return _principal(user, row.csrf_token)


def issue_token(session: Session, user: User, name: str, now: datetime) -> str:
    token = "msk_" + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, name=name, token_hash=_digest(token), created_at=now))
    return token


def principal_from_token(session: Session, token: str) -> Principal | None:
    row = session.scalar(
        select(ApiToken).where(ApiToken.token_hash == _digest(token), ApiToken.revoked_at.is_(None))
    )
    if row is None:
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        return None
    return _principal(user, via_token=True)


# ------------------------------------------------------------------------------------------ failed logins
@dataclass(frozen=True)
class FailureGroup:
    """Failed logins of one username from one address within the period the admin page shows."""

    username: str
    address: str  # masked (`mask_ip`)
    count: int
    first_at: datetime
    last_at: datetime
    reasons: dict[str, int]


def mask_ip(address: str | None) -> str:
    """A client address as the admin page shows it: the network, not the host (203.0.113.*, 2001:db8:1:2::/64).

    Enough to see that failures come from one place; the full address stays in the API for an investigation."""
    if not address:
        return "—"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:3] + "***"
    if ip.version == 4:
        return ".".join(str(ip).split(".")[:3]) + ".*"
    return str(ipaddress.ip_network(f"{ip}/64", strict=False))


def failure_groups(session: Session, since: datetime, *, limit: int = 200) -> list[FailureGroup]:
    """Failed logins since ``since`` per username and address, the most failures first (at most ``limit``)."""
    n = func.count(LoginFailure.id)
    q = (
        select(
            LoginFailure.username,
            LoginFailure.address,
            LoginFailure.reason,
            n,
            func.min(LoginFailure.at),
            func.max(LoginFailure.at),
        )
        .where(LoginFailure.at >= since)
        .group_by(LoginFailure.username, LoginFailure.address, LoginFailure.reason)
    )
    groups: dict[tuple[str, str | None], list[Any]] = {}
    for username, address, reason, count, first, last in session.execute(q):
        g = groups.setdefault((username, address), [0, first, last, {}])
        g[0] += count
        g[1], g[2] = min(g[1], first), max(g[2], last)
        g[3][reason] = count
    out = [
        FailureGroup(username, mask_ip(address), count, first, last, reasons)
        for (username, address), (count, first, last, reasons) in groups.items()
    ]
    out.sort(key=lambda g: (-g.count, -g.last_at.timestamp(), g.username))
    return out[:limit]


def prune_login_failures(db: Database, now: datetime, keep_days: int, *, batch: int = 5000) -> int:
    """Delete the failed logins older than ``keep_days``, ``batch`` rows per short transaction; returns how many.

    Idempotent, and safe for several workers at once on PostgreSQL: each claims its rows with
    ``FOR UPDATE SKIP LOCKED``, so two never wait for (or deadlock on) each other's rows; on SQLite the write
    lock takes them one after the other, and the second finds nothing left."""
    cutoff = now - timedelta(days=keep_days)
    total = 0
    while True:
        with db.write_sessions() as session, session.begin():
            q = select(LoginFailure.id).where(LoginFailure.at < cutoff).order_by(LoginFailure.id).limit(batch)
            ids = list(session.scalars(dialect.lock_rows(session, q, skip_locked=True)))
            if ids:
                session.execute(delete(LoginFailure).where(LoginFailure.id.in_(ids)))
        total += len(ids)
        if len(ids) < batch:
            return total
