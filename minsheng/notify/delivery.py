"""Outbox delivery decisions: retries with exponential backoff and jitter, then "dead".

The worker keeps one `OutboxState` per outbox row. For each row that is due it calls `deliver` (or calls the
sender itself and then `after_attempt`) and stores the returned state. All decisions are pure functions of
the state, the result and ``now``; the jitter is derived from the message id, the attempt number and a seed,
so a test (or a second worker re-deciding the same row) gets the same schedule.

Exactly once towards a receiver that fails and then recovers: a row is sent again only while it is
``pending``; a success turns it ``sent`` and `deliver` never sends a ``sent`` or ``dead`` row again. The
message id travels with every attempt (see `channels`), so a receiver that did get an attempt whose answer
was lost can recognise the retry.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from minsheng.notify.channels import DeliveryResult, Message, Sender

OutboxStatus = Literal["pending", "sent", "dead"]

_MESSAGE_NAMESPACE = uuid.UUID("6f1c7a8e-4d2b-5e3f-9a10-2b3c4d5e6f70")


def make_message_id(*parts: object) -> str:
    """A stable id from what identifies the message (outbox row id, or event key + channel + recipient)."""
    return str(uuid.uuid5(_MESSAGE_NAMESPACE, "\x1f".join(str(p) for p in parts)))


@dataclass(frozen=True)
class RetryPolicy:
    """Delay before attempt k+1 = min(base · factor^(k-1), max_delay) · (1 ± jitter)."""

    max_attempts: int = 8
    base_delay: timedelta = timedelta(seconds=30)
    factor: float = 2.0
    max_delay: timedelta = timedelta(hours=1)
    jitter: float = 0.2
    seed: int = 0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1 (got {self.max_attempts})")
        if self.base_delay <= timedelta(0) or self.max_delay < self.base_delay:
            raise ValueError("retry delays must be positive and max_delay >= base_delay")
        if self.factor < 1:
            raise ValueError(f"backoff factor must be >= 1 (got {self.factor})")
        if not 0 <= self.jitter < 1:
            raise ValueError(f"jitter must be in [0, 1) (got {self.jitter})")

    def delay(self, attempts: int, key: str = "") -> timedelta:
        """The wait after ``attempts`` failed attempts (attempts >= 1)."""
        raw = self.base_delay * (self.factor ** max(0, attempts - 1))
        capped = min(raw, self.max_delay)
        # Jitter spreads retries of many messages that failed together (a gateway outage) over time.
        unit = random.Random(f"{self.seed}:{key}:{attempts}").uniform(-1.0, 1.0)
        return capped * (1 + self.jitter * unit)


DEFAULT_RETRY = RetryPolicy()


def next_attempt_at(
    attempts: int, now: datetime, policy: RetryPolicy = DEFAULT_RETRY, key: str = ""
) -> datetime | None:
    """When to try again after ``attempts`` failed attempts, or None when the message is out of attempts."""
    if attempts >= policy.max_attempts:
        return None
    return now + policy.delay(attempts, key)


@dataclass(frozen=True)
class OutboxState:
    """What the worker stores per outbox row (besides the message itself)."""

    message_id: str
    status: OutboxStatus = "pending"
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_error: str = ""
    sent_at: datetime | None = None

    def due(self, now: datetime) -> bool:
        return self.status == "pending" and (self.next_attempt_at is None or self.next_attempt_at <= now)


def after_attempt(
    state: OutboxState, result: DeliveryResult, now: datetime, policy: RetryPolicy = DEFAULT_RETRY
) -> OutboxState:
    """The row's state after one attempt that ended with ``result`` at ``now``."""
    attempts = state.attempts + 1
    if result.ok:
        return replace(
            state, status="sent", attempts=attempts, next_attempt_at=None, sent_at=now, last_error=""
        )
    if result.permanent:
        return replace(
            state, status="dead", attempts=attempts, next_attempt_at=None, last_error=result.detail
        )
    retry_at = next_attempt_at(attempts, now, policy, state.message_id)
    if retry_at is None:
        detail = f"gave up after {attempts} attempts: {result.detail}"
        return replace(state, status="dead", attempts=attempts, next_attempt_at=None, last_error=detail)
    return replace(state, attempts=attempts, next_attempt_at=retry_at, last_error=result.detail)


def deliver(
    state: OutboxState,
    message: Message,
    sender: Sender,
    now: datetime,
    policy: RetryPolicy = DEFAULT_RETRY,
) -> tuple[OutboxState, DeliveryResult | None]:
    """One worker step for one row: send if due, and return the new state and the result (None: not sent)."""
    if message.message_id != state.message_id:
        raise ValueError(f"outbox row {state.message_id} does not hold message {message.message_id}")
    if not state.due(now):
        return state, None
    result = sender.send(message, now)
    return after_attempt(state, result, now, policy), result
