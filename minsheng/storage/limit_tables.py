"""Rate-limit counters shared by every process on one database, and the record of failed logins."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Double, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from minsheng.storage.models import Base, BigId


class RateLimitCounter(Base):
    """One fixed window of one limit (`services.limits.DatabaseStorage`): `count` hits since `window_start`.

    Times are epoch seconds (what the `limits` library reads back as a window's reset time). A row whose
    `expires_at` has passed is a window that is over: the next hit starts a new one in place (an upsert), and
    old rows are swept now and then.
    """

    __tablename__ = "rate_limit_counters"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    window_start: Mapped[float] = mapped_column(Double)
    expires_at: Mapped[float] = mapped_column(Double, index=True)
    count: Mapped[int] = mapped_column(Integer)


class LoginFailure(Base):
    """A login that did not open a session: who was tried, when, from which address, and why.

    `reason`: wrong_password, unknown_user, inactive, locked (the account was locked), throttled (the address
    had too many failures). Append-only; admins read it at `GET /api/v1/auth/failures`.
    """

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_username_at", "username", "at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(index=True)
    address: Mapped[str | None] = mapped_column(String(64), index=True)
    reason: Mapped[str] = mapped_column(String(32))


__all__ = ["LoginFailure", "RateLimitCounter"]
