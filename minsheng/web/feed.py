"""The big screen's live feed of new tickets: one query per poll interval for every open stream.

Streams are async: an open stream holds no worker thread, only a coroutine that sleeps between polls. However
many wallboards are open, one poll at a time reads the database (in a worker thread) and they all share it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import anyio

from minsheng.services import queries

if TYPE_CHECKING:
    from minsheng.storage.db import Database

KEEP = 100  # newest tickets kept for streams that are a poll behind


class TicketFeed:
    def __init__(
        self, db: Database, describe: Callable[[tuple[Any, ...]], dict[str, Any]], poll: float
    ) -> None:
        self.db = db
        self.describe = describe
        self.poll_seconds = poll
        self._items: list[dict[str, Any]] = []
        self._polled_at = float("-inf")
        self._pending: asyncio.Task[None] | None = None

    def _fetch(self, after: int | None) -> list[dict[str, Any]]:
        with self.db.read_sessions() as session, session.begin():
            return [self.describe(row) for row in queries.newest_tickets(session, after, KEEP)]

    async def _poll(self) -> None:
        try:
            after = self._items[-1]["id"] if self._items else None
            fresh = await anyio.to_thread.run_sync(self._fetch, after)
            self._items = (self._items + fresh)[-KEEP:]
            self._polled_at = time.monotonic()
        finally:
            self._pending = None

    async def _refresh(self) -> None:
        if time.monotonic() - self._polled_at < self.poll_seconds:
            return
        # One poll in flight for all streams; each waits for it without cancelling it for the others.
        if self._pending is None:
            self._pending = asyncio.ensure_future(self._poll())
        await asyncio.shield(self._pending)

    async def latest(self, n: int) -> list[dict[str, Any]]:
        await self._refresh()
        return self._items[-n:]

    async def after(self, last_id: int) -> list[dict[str, Any]]:
        await self._refresh()
        return [item for item in self._items if item["id"] > last_id]

    async def stream(self, *, once: bool, seconds: float, stopped: Callable[[], bool]) -> AsyncIterator[str]:
        """Server-sent events: `ticket` events, a keep-alive per poll; ends after `seconds` (the browser's
        EventSource reconnects) or when the server stops."""
        yield "retry: 3000\n\n"
        latest = await self.latest(5 if once else 1)
        if once:
            for item in latest:
                yield _event(item)
            return
        last = latest[-1]["id"] if latest else 0
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not stopped():
            await anyio.sleep(self.poll_seconds)
            for item in await self.after(last):
                last = item["id"]
                yield _event(item)
            yield ": keep-alive\n\n"


def _event(item: dict[str, Any]) -> str:
    return f"event: ticket\ndata: {json.dumps(item, ensure_ascii=False)}\n\n"
