"""Limits on abuse that hold across processes: rate limits per client address and login lockouts.

The counting is the `limits` library's (its fixed-window strategy and its notation, "10/minute;100/hour");
the counters live in our own database (`DatabaseStorage`), so every API process on one PostgreSQL sees the
same counts. Each call here opens its own short transaction in the calling thread: callers run in a worker
thread (a plain `def` handler or dependency), never on the event loop.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass
from datetime import datetime

from limits import RateLimitItem, RateLimitItemPerSecond, parse_many
from limits.storage import Storage
from limits.strategies import FixedWindowRateLimiter
from sqlalchemy import Table, case, delete, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from minsheng.config import Settings
from minsheng.domain.clock import Clock
from minsheng.services.errors import ServiceError
from minsheng.storage import dialect
from minsheng.storage.db import Database
from minsheng.storage.limit_tables import LoginFailure, RateLimitCounter

_COUNTERS: Table = RateLimitCounter.__table__  # type: ignore[assignment]
_KEY_MAX = 200
_SWEEP_CHANCE = 0.01  # about one hit in a hundred also deletes windows that ended a while ago
_SWEEP_AFTER_SECONDS = 60.0


class RateLimited(ServiceError):
    """Too many requests: the entry point answers 429 with `Retry-After: retry_after` (seconds)."""

    status = 429
    code = "rate_limited"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message, retry_after=retry_after)
        self.retry_after = retry_after


class DatabaseStorage(Storage):
    """A `limits` storage over the table `rate_limit_counters`: one row per window (key, start, end, count).

    Written here because `limits` ships storages for memory (one process), Redis, Memcached, MongoDB and
    Valkey only, and this platform runs on PostgreSQL or SQLite alone: a second server just for counters would
    be one more thing to run, back up and watch. It supports the fixed-window strategy (`incr`/`get`/
    `get_expiry`), which is all `Limits` uses.

    `incr` is one statement: `INSERT … ON CONFLICT (key) DO UPDATE … RETURNING count`, which restarts a window
    that has ended and otherwise adds to it. On PostgreSQL the conflicting row is locked for the statement, so
    hits from several processes at once are counted one after the other and each gets its own count; on SQLite
    the write transaction holds the database's single write lock. Times are the platform clock's, in epoch
    seconds (what `limits` reads back as a window's reset time).
    """

    STORAGE_SCHEME = None

    def __init__(self, db: Database, clock: Clock) -> None:
        super().__init__()
        self.db = db
        self.clock = clock

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return SQLAlchemyError

    def _now(self) -> float:
        return self.clock.now().timestamp()

    @staticmethod
    def _key(key: str) -> str:
        # Usernames and addresses are bounded, but a key must fit its column whatever it holds.
        if len(key) <= _KEY_MAX:
            return key
        return key[:100] + "#" + hashlib.sha256(key.encode()).hexdigest()

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = self._now()
        t = _COUNTERS
        ended = t.c.expires_at <= now
        with self.db.write_sessions() as session, session.begin():
            stmt = dialect.insert(session)(t).values(
                key=self._key(key), window_start=now, expires_at=now + expiry, count=amount
            )
            stmt = stmt.on_conflict_do_update(
                index_elements=[t.c.key],
                set_={
                    "count": case((ended, amount), else_=t.c.count + amount),
                    "window_start": case((ended, now), else_=t.c.window_start),
                    "expires_at": case((ended, now + expiry), else_=t.c.expires_at),
                },
            ).returning(t.c.count)
            count = int(session.execute(stmt).scalar_one())
            if random.random() < _SWEEP_CHANCE:
                session.execute(delete(t).where(t.c.expires_at < now - _SWEEP_AFTER_SECONDS))
        return count

    def _row(self, key: str) -> tuple[int, float] | None:
        now = self._now()
        t = _COUNTERS
        with self.db.read_sessions() as session, session.begin():
            row = session.execute(
                select(t.c.count, t.c.expires_at).where(t.c.key == self._key(key), t.c.expires_at > now)
            ).first()
        return (int(row[0]), float(row[1])) if row else None

    def get(self, key: str) -> int:
        row = self._row(key)
        return row[0] if row else 0

    def get_expiry(self, key: str) -> float:
        row = self._row(key)
        return row[1] if row else self._now()

    def check(self) -> bool:
        try:
            with self.db.read_sessions() as session, session.begin():
                session.execute(select(func.count()).select_from(_COUNTERS))
        except SQLAlchemyError:
            return False
        return True

    def reset(self) -> int | None:
        with self.db.write_sessions() as session, session.begin():
            return int(session.execute(delete(_COUNTERS)).rowcount or 0)  # type: ignore[attr-defined]

    def clear(self, key: str) -> None:
        t = _COUNTERS
        with self.db.write_sessions() as session, session.begin():
            session.execute(delete(t).where(t.c.key == self._key(key)))


class Limits:
    """The platform's limits over one database: built per use (cheap; every count is in the database)."""

    def __init__(self, db: Database, settings: Settings, clock: Clock) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.limiter = FixedWindowRateLimiter(DatabaseStorage(db, clock))

    def _retry_after(self, item: RateLimitItem, *identifiers: str) -> int:
        reset = self.limiter.get_window_stats(item, *identifiers).reset_time
        return max(1, math.ceil(reset - self.clock.now().timestamp()))

    # ------------------------------------------------------------------------------------ rate limits
    def hit(self, what: str, spec: str, address: str) -> None:
        """Count one request of kind `what` from `address` against `spec` ("10/minute;100/hour").

        Raises RateLimited (with the seconds until the fullest window ends) when any part is exceeded."""
        refused = [item for item in parse_many(spec) if not self.limiter.hit(item, what, address)]
        if refused:
            wait = max(self._retry_after(item, what, address) for item in refused)
            raise RateLimited("too many requests from this address; retry later", retry_after=wait)

    def public_submit(self, address: str) -> None:
        self.hit("public-submit", self.settings.public_submit_limit, address)

    def public_track(self, address: str) -> None:
        self.hit("public-track", self.settings.public_track_limit, address)

    # ------------------------------------------------------------------------------------------ logins
    def _failures(self) -> RateLimitItem:
        s = self.settings
        return RateLimitItemPerSecond(s.login_max_failures, s.login_failure_window_seconds)

    def _address_failures(self) -> RateLimitItem:
        s = self.settings
        return RateLimitItemPerSecond(s.login_address_max_failures, s.login_failure_window_seconds)

    def _lock(self) -> RateLimitItem:
        return RateLimitItemPerSecond(1, self.settings.login_lockout_seconds)

    def login_allowed(self, username: str, address: str | None) -> None:
        """Raise RateLimited (and record the attempt) if the username is locked or the address throttled."""
        user = _username_key(username)
        if not self.limiter.test(self._lock(), "login-lock", user):
            self._refuse(username, address, "locked", self._retry_after(self._lock(), "login-lock", user))
        if address and not self.limiter.test(self._address_failures(), "login-address", address):
            wait = self._retry_after(self._address_failures(), "login-address", address)
            self._refuse(username, address, "throttled", wait)

    def _refuse(self, username: str, address: str | None, reason: str, wait: int) -> None:
        # The same words for a locked name and a throttled address; unknown names lock like known ones, so
        # neither answer says whether a name exists.
        self.record_failure(username, address, reason)
        raise RateLimited("too many failed logins; try again later", retry_after=wait)

    def login_failed(self, username: str, address: str | None, reason: str) -> None:
        """Record a failed login and count it; the Nth failure for a username within the window locks it."""
        self.record_failure(username, address, reason)
        user = _username_key(username)
        failures = self._failures()
        if address:
            self.limiter.hit(self._address_failures(), "login-address", address)
        self.limiter.hit(failures, "login-user", user)
        if self.limiter.get_window_stats(failures, "login-user", user).remaining <= 0:
            self.limiter.hit(self._lock(), "login-lock", user)
            self.limiter.clear(failures, "login-user", user)

    def login_succeeded(self, username: str) -> None:
        """A right password (outside a lock) forgives the username's earlier failures."""
        user, failures = _username_key(username), self._failures()
        if self.limiter.get_window_stats(failures, "login-user", user).remaining < failures.amount:
            self.limiter.clear(
                failures, "login-user", user
            )  # a write only when there is something to forgive

    def record_failure(self, username: str, address: str | None, reason: str) -> None:
        with self.db.write_sessions() as session, session.begin():
            session.add(
                LoginFailure(
                    username=username[:64],
                    at=self.clock.now(),
                    address=(address or None) and address[:64],
                    reason=reason,
                )
            )


def _username_key(username: str) -> str:
    return username.strip().lower()[:64]


@dataclass(frozen=True)
class FailedLogin:
    id: int
    username: str
    at: datetime
    address: str | None
    reason: str


def failed_logins(
    session: Session,
    *,
    username: str | None = None,
    address: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
) -> list[FailedLogin]:
    """The record of failed logins, newest first."""
    q = select(LoginFailure).order_by(LoginFailure.at.desc(), LoginFailure.id.desc()).limit(limit)
    if username:
        q = q.where(LoginFailure.username == username)
    if address:
        q = q.where(LoginFailure.address == address)
    if since:
        q = q.where(LoginFailure.at >= since)
    if until:
        q = q.where(LoginFailure.at < until)
    return [FailedLogin(r.id, r.username, r.at, r.address, r.reason) for r in session.scalars(q)]
