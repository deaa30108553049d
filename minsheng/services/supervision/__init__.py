"""Supervision by people (issue 17, section 1): supervision orders (督办, `orders`), reminders (催办,
`reminders`), leaders' watches (提级盯办, `watch`), leaders' instructions (批示, `instructions`) and the checks of
dissatisfied ratings (不满意核查, `checks`).

Each step is a non-state timeline event recorded through `EngineCore.record_note` (so the daily measure facts
see it), notified through the inbox and the outbox, and allowed to the roles `rules` names. The engine's
subscribers of this package (`subscribers`) notify watching leaders and open a check for every dissatisfied
rating; `orders.check_overdue_answers` runs in the worker's pass.
"""

from __future__ import annotations

from collections.abc import Iterable

from minsheng.services.supervision.checks import CheckOpener
from minsheng.services.supervision.watch import WatchNotices
from minsheng.services.ticket_core import EngineCore, Subscriber


def subscribers(engine: EngineCore, channels: Iterable[str] = ()) -> list[Subscriber]:
    """The engine subscribers of supervision: watch notices, and a check opened per dissatisfied rating."""
    return [WatchNotices(frozenset(channels)), CheckOpener(engine)]
