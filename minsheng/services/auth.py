"""People and integrations: argon2 password hashes, login sessions with CSRF tokens, bearer tokens."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from minsheng.domain.roles import Actor, Role
from minsheng.services.errors import Invalid, Unauthenticated
from minsheng.services.limits import Limits
from minsheng.storage.db import Database
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
