"""Writing a batch of historic tickets in one transaction: claims, tickets, assignments, timelines, facts.

Rows go to the database many at once (`storage.bulk`: COPY on PostgreSQL; ids taken up front, as the intake
writer does), not through the ORM one ticket at a time: an import is millions of rows. The daily measure facts are kept
exact the way the engine's hook keeps them (`services.measures.facts.apply_changes` with the new tickets'
timelines), in the same transaction. Nothing else of the engine runs: imported tickets get no time-limit
deadlines, no notifications and no triage (their category is the source's).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from minsheng.domain.numbering import numbering_day
from minsheng.measures.timeline import (
    AssignmentInfo,
    Event,
    FactKey,
    TicketInfo,
    TicketTimeline,
    merge_into,
)
from minsheng.services.history.org_lookup import OrgLookup
from minsheng.services.history.rows import HistoricTicket, RowError
from minsheng.services.history.timeline import ACTOR_NAME, Plan, actor_role, plan
from minsheng.services.measures.facts import (
    RELEVANT_ACTIONS,
    calendar,
    compute,
    encode,
    expand,
    upsert_facts,
)
from minsheng.services.ticket_ids import RESERVE_KEY, TicketIds, sqlite_take_ids
from minsheng.storage import dialect
from minsheng.storage.bulk import insert_rows
from minsheng.storage.import_tables import TicketImport
from minsheng.storage.measure_tables import MeasureContribution
from minsheng.storage.models import Assignment, Ticket, TimelineEvent

#: Imported tickets have no query code: this is no SHA-256, so no code the citizen types can match it.
NO_QUERY_CODE = "imported:no-query-code"
_RELEVANT = frozenset(RELEVANT_ACTIONS)


@dataclass
class BatchOutcome:
    imported: list[HistoricTicket] = field(default_factory=list)
    already: list[HistoricTicket] = field(default_factory=list)  # claimed by an earlier run (or a rival)
    errors: list[tuple[int, str, str]] = field(default_factory=list)  # (row, source id, reason)
    states: Counter[str] = field(default_factory=Counter)  # final states of the imported tickets


def take_ids(session: Session, table: str, n: int) -> list[int]:
    """``n`` new ids of ``table``: its sequence on PostgreSQL, counted on from max(id) on SQLite."""
    if n == 0:
        return []
    if dialect.is_postgresql(session):
        rows = session.execute(
            text(f"SELECT nextval(pg_get_serial_sequence('{table}', 'id')) FROM generate_series(1, :n)"),
            {"n": n},
        ).scalars()
        return sorted(int(x) for x in rows)
    first = sqlite_take_ids(session, table, n)
    return list(range(first, first + n))


def write_facts(session: Session, timelines: list[TicketTimeline]) -> None:
    """The measure facts of new tickets: each one's contribution (`minsheng.measures.timeline.contribution`, the
    definition the engine's hook and `rebuild_facts` use) stored, and their sum added to the fact rows.

    The same arithmetic as `services.measures.facts.apply_changes` for tickets that contributed nothing before:
    nothing to take away, so the contributions are inserted and their sum added with the hook's own
    `upsert_facts` (through `storage.bulk`, a whole batch at once).
    """
    if not timelines:
        return
    contributions = compute(timelines, calendar(session))
    total: dict[FactKey, dict[str, int]] = {}
    rows = []
    for tid, c in contributions.items():
        if not c:
            continue
        merge_into(total, c)
        rows.append({"ticket_id": tid, "day": next(iter(c))[0], "rows": encode(c)})
    insert_rows(session, MeasureContribution, rows)
    upsert_facts(session, expand(total))


class BatchWriter:
    def __init__(self, source: str, lookup: OrgLookup, now: datetime) -> None:
        self.source = source
        self.lookup = lookup
        self.now = now
        self.ids = TicketIds()

    def write(self, session: Session, batch: list[HistoricTicket]) -> BatchOutcome:
        """Write the batch's new rows (the caller commits); rows refused for their unit or category are listed."""
        out = BatchOutcome()
        fresh = self._not_claimed(session, batch, out)
        planned: list[tuple[HistoricTicket, Plan, tuple[int, str, str] | None, int | None]] = []
        for t in fresh:
            try:
                unit = self.lookup.unit(session, t)
                category = self.lookup.category(session, t)
            except RowError as e:
                out.errors.append((t.row, t.source_id, str(e)))
                continue
            planned.append((t, plan(t, self.source, unit), unit, category))
        if not planned:
            return out
        numbers = self._numbers(session, [t for t, *_ in planned])
        claimed = self._claim(session, [(t.source_id, numbers[t.row][0]) for t, *_ in planned])
        kept = [item for item in planned if item[0].source_id in claimed]
        out.already += [item[0] for item in planned if item[0].source_id not in claimed]
        self._insert(session, kept, numbers)
        out.imported = [t for t, *_ in kept]
        out.states.update(p.state for _, p, *_ in kept)
        return out

    # ------------------------------------------------------------------------------------------ claims
    def _not_claimed(
        self, session: Session, batch: list[HistoricTicket], out: BatchOutcome
    ) -> list[HistoricTicket]:
        ids = [t.source_id for t in batch]
        done = set(
            session.scalars(
                select(TicketImport.source_id).where(
                    TicketImport.source == self.source, TicketImport.source_id.in_(ids)
                )
            )
        )
        fresh: list[HistoricTicket] = []
        for t in batch:
            (out.already if t.source_id in done else fresh).append(t)
        return fresh

    def _claim(self, session: Session, pairs: list[tuple[str, int]]) -> set[str]:
        """Claim the rows; returns the source ids this transaction claimed (the others were taken meanwhile)."""
        stmt = (
            dialect.insert(session)(TicketImport).on_conflict_do_nothing().returning(TicketImport.source_id)
        )
        rows = [
            {"source": self.source, "source_id": sid, "ticket_id": tid, "imported_at": self.now}
            for sid, tid in pairs
        ]
        # Many rows with RETURNING: SQLAlchemy sends them as multi-row INSERTs of a cached statement.
        claimed: set[str] = set(session.connection().execute(stmt, rows).scalars())
        return claimed

    def _numbers(self, session: Session, items: list[HistoricTicket]) -> dict[int, tuple[int, str]]:
        """(ticket id, number) per row; numbers follow the day of the ticket's historic intake."""
        by_day: dict[Any, list[HistoricTicket]] = defaultdict(list)
        for t in items:
            by_day[numbering_day(t.created)].append(t)
        out: dict[int, tuple[int, str]] = {}
        for rows in by_day.values():
            session.info[RESERVE_KEY] = len(rows)
            for t in rows:
                out[t.row] = self.ids.take(session, t.created)
        return out

    # ------------------------------------------------------------------------------------------ inserts
    def _insert(
        self,
        session: Session,
        items: list[tuple[HistoricTicket, Plan, tuple[int, str, str] | None, int | None]],
        numbers: dict[int, tuple[int, str]],
    ) -> None:
        with_unit = [item for item in items if item[1].assignment_state is not None]
        assignment_ids = iter(take_ids(session, "assignments", len(with_unit)))
        n_events = sum(len(p.steps) for _, p, *_ in items)
        event_ids = iter(take_ids(session, "timeline_events", n_events))
        tickets: list[dict[str, Any]] = []
        assignments: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        timelines: list[TicketTimeline] = []
        for t, p, unit, category in items:
            tid, number = numbers[t.row]
            aid = next(assignment_ids) if p.assignment_state is not None else None
            tl_events: list[Event] = []
            for seq, step in enumerate(p.steps, start=1):
                payload = dict(step.payload)
                if "assignment_id" in payload:
                    payload["assignment_id"] = aid
                unit_id = unit[0] if unit is not None and step.unit_step else None
                ev_aid = aid if step.machine == "assignment" else None
                events.append(
                    {
                        "id": next(event_ids),
                        "ticket_id": tid,
                        "seq": seq,
                        "assignment_id": ev_aid,
                        "at": step.at,
                        "machine": step.machine,
                        "action": step.action,
                        "actor_user_id": None,
                        "actor_name": unit[2][:64] if unit is not None and step.unit_step else ACTOR_NAME,
                        "actor_role": actor_role(step),
                        "actor_unit_id": unit_id,
                        "from_state": step.from_state,
                        "to_state": step.to_state,
                        "payload": payload,
                        "public": True,
                    }
                )
                if step.action in _RELEVANT:
                    small: dict[str, Any] = {k: payload[k] for k in ("rating", "step") if k in payload}
                    tl_events.append(Event(seq, step.at, step.action, ev_aid, small))
            tickets.append(self._ticket_row(t, p, tid, number, unit, category))
            infos: list[AssignmentInfo] = []
            if aid is not None and unit is not None:
                assignments.append(self._assignment_row(t, p, aid, tid, unit[0]))
                infos.append(AssignmentInfo(aid, unit[0], "lead", t.times["dispatched"]))
            timelines.append(
                TicketTimeline(
                    TicketInfo(tid, t.created, t.channel, t.kind, None, category), tl_events, infos
                )
            )
        # COPY on PostgreSQL, a plain executemany on SQLite: per-row statements cost more than the rest.
        for model, rows in ((Ticket, tickets), (Assignment, assignments), (TimelineEvent, events)):
            insert_rows(session, model, rows)
        write_facts(session, timelines)

    def _ticket_row(
        self,
        t: HistoricTicket,
        p: Plan,
        tid: int,
        number: str,
        unit: tuple[int, str, str] | None,
        category: int | None,
    ) -> dict[str, Any]:
        last = p.steps[-1].at
        dispatched = t.times.get("dispatched") if p.assignment_state is not None else None
        closed = next((s.at for s in p.steps if s.to_state == "closed" and s.machine == "ticket"), None)
        rated = next((s.at for s in p.steps if s.action == "rate"), None)
        return {
            "id": tid,
            "number": number,
            "query_code_hash": NO_QUERY_CODE,
            "channel": t.channel,
            "external_id": t.source_id,
            "kind": t.kind,
            "urgency": t.urgency,
            "category_id": category,
            "title": t.title,
            "detail": t.detail,
            "address": t.address,
            "lat": t.lat,
            "lon": t.lon,
            "area_id": None,
            "citizen_name": t.citizen_name,
            "citizen_phone": t.citizen_phone,
            "citizen_id_number": None,
            "confidential": False,
            "public_consent": False,
            "state": p.state,
            "lead_unit_id": unit[0] if unit is not None and p.assignment_state is not None else None,
            "idempotency_key": None,
            "idempotency_hash": None,
            "created_by_user_id": None,
            "created_at": t.created,
            "updated_at": last,
            "dispatched_at": dispatched,
            "closed_at": closed,
            "rating": t.rating if rated else None,
            "rated_at": rated,
            "reopen_count": 0,
            "return_count": 0,
            "transfer_target": None,
            "repeat_of_id": None,
            "paused_at": None,
            "resolve_due_at": None,
            "triage": None,
            "event_count": len(p.steps),
        }

    @staticmethod
    def _assignment_row(t: HistoricTicket, p: Plan, aid: int, tid: int, unit_id: int) -> dict[str, Any]:
        assignment_steps = [s.at for s in p.steps if s.machine == "assignment"]
        created = t.times["dispatched"]
        return {
            "id": aid,
            "ticket_id": tid,
            "unit_id": unit_id,
            "role": "lead",
            "state": p.assignment_state,
            "created_at": created,
            "updated_at": max([created, *assignment_steps]),
            "signed_at": p.stamps.get("signed_at"),
            "contacted_at": None,
            "arrived_at": None,
            "reported_at": p.stamps.get("reported_at"),
            "close_requested_at": p.stamps.get("close_requested_at"),
            "closed_at": p.stamps.get("closed_at"),
            "returned_at": None,
            "return_reason": None,
            "first_receiver": False,
            "sign_due_at": None,
            "resolve_due_at": None,
        }
