"""Fill a migrated database with N tickets fast, for benchmarks at city scale (1,000,000 tickets and more).

Rows are written with Core bulk inserts (SQLite executemany, PostgreSQL COPY), not through the engine: this is
test data for measuring queries, shaped like the engine's output (states, assignments, timeline) but not a
substitute for it. Usage: `python bench/bulkload.py --url sqlite:///var/bench.db --tickets 1000000`.
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select

from minsheng.domain.numbering import format_ticket_number, hash_query_code, numbering_day
from minsheng.services import org
from minsheng.storage.db import Database, open_database
from minsheng.storage.migrate import upgrade
from minsheng.storage.models import (
    Area,
    Assignment,
    Category,
    Ticket,
    TicketCounter,
    TimelineEvent,
    Unit,
    User,
)

STATES = [
    ("rated", 40),
    ("closed", 20),
    ("in_progress", 12),
    ("dispatched", 6),
    ("close_requested", 4),
    ("accepted", 4),
    ("returned", 2),
    ("paused", 1),
    ("transferred", 4),
    ("merged", 3),
]
CHANNELS = ["phone"] * 6 + ["app", "wechat", "web", "sms", "grid", "open311"]
KINDS = ["complaint", "help", "consultation", "report", "suggestion", "praise"]
WORDS = [
    "路灯",
    "噪音",
    "垃圾",
    "占道",
    "漏水",
    "停车",
    "欠薪",
    "油烟",
    "井盖",
    "施工",
    "绿化",
    "公交",
    "学校",
    "医保",
]
BENCH_PASSWORD = "bench-password"


def ensure_org(db: Database, now: datetime) -> None:
    """A small city (5 districts × 8 streets, 10 × 3 categories, 45 units with one handler each)."""
    with db.write_sessions() as s, s.begin():
        if s.scalar(select(func.count()).select_from(Area)):
            return
        org.add_area(s, "B", "基准市", "city")
        for d in range(5):
            dc = f"B{d}"
            org.add_area(s, dc, f"第{d}区", "district", "B")
            for st in range(8):
                org.add_area(s, f"{dc}{st}", f"第{d}区第{st}街道", "street", dc)
        for c in range(10):
            org.add_category(s, f"K{c}", f"大类{c}")
            for c2 in range(3):
                org.add_category(s, f"K{c}{c2}", f"小类{c}{c2}", f"K{c}")
        from minsheng.services.auth import hash_password

        pw = hash_password(BENCH_PASSWORD)
        for role in ("operator", "dispatcher", "supervisor", "followup", "leader", "admin"):
            org.add_user(s, f"bench_{role}", role, role, None, now, password_hash=pw)
        for u in range(45):
            org.add_unit(s, f"U{u:02d}", f"单位{u:02d}", "department")
            org.add_user(
                s, f"bench_h{u:02d}", f"承办{u:02d}", "handler", None, now, f"U{u:02d}", password_hash=pw
            )


def bulk_load(
    url: str,
    n: int,
    seed: int = 0,
    *,
    batch: int = 20_000,
    now: datetime | None = None,
    span: timedelta = timedelta(days=365),
) -> None:
    """Add ``n`` tickets created within ``span`` before ``now``; may be called again on the same database."""
    upgrade(url)
    db = open_database(url)
    now = now or datetime.now(UTC)
    ensure_org(db, now)
    rng = random.Random(seed)
    with db.read_sessions() as s:
        areas = list(s.scalars(select(Area.id).where(Area.level == "street")))
        cats = list(s.scalars(select(Category.id).where(Category.level == 2)))
        units = list(s.scalars(select(Unit.id)))
        start_id = (s.scalar(select(func.max(Ticket.id))) or 0) + 1
        start_a = (s.scalar(select(func.max(Assignment.id))) or 0) + 1
        user_id = s.scalar(select(User.id).where(User.username == "bench_operator"))
        counters = {c.day: c.last for c in s.scalars(select(TicketCounter))}
    state_pop = [st for st, w in STATES for _ in range(w)]
    # Creation times in ascending order, so numbers follow the calendar like real ones.
    times = sorted(now - span * rng.random() for _ in range(n))
    qhash = hash_query_code("BENCH1")
    tid, aid = start_id, start_a
    for lo in range(0, n, batch):
        tickets: list[dict[str, Any]] = []
        assigns: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        for created in times[lo : lo + batch]:
            day = numbering_day(created)
            key = f"{day:%Y%m%d}"
            counters[key] = counters.get(key, 0) + 1
            state = rng.choice(state_pop)
            lead = rng.choice(units) if state not in ("accepted", "transferred") else None
            w = rng.choice(WORDS)
            closed = created + timedelta(hours=rng.uniform(2, 200)) if state in ("closed", "rated") else None
            tickets.append(
                {
                    "id": tid,
                    "number": format_ticket_number(day, counters[key]),
                    "query_code_hash": qhash,
                    "channel": rng.choice(CHANNELS),
                    "kind": rng.choice(KINDS),
                    "urgency": "normal" if rng.random() < 0.93 else "urgent",
                    "category_id": rng.choice(cats),
                    "title": f"{w}问题反映{tid}",
                    "detail": f"市民反映{w}问题，已经持续{rng.randint(1, 30)}天，请尽快处理。",
                    "address": f"第{rng.randint(0, 4)}区某小区{rng.randint(1, 30)}幢",
                    "area_id": rng.choice(areas),
                    "citizen_name": "测试",
                    "citizen_phone": f"139{rng.randint(0, 99_999_999):08d}",
                    "confidential": False,
                    "public_consent": rng.random() < 0.3,
                    "state": state,
                    "lead_unit_id": lead,
                    "created_by_user_id": user_id,
                    "created_at": created,
                    "updated_at": closed or created,
                    "closed_at": closed,
                    "rating": rng.choice(["satisfied", "satisfied", "basically_satisfied", "dissatisfied"])
                    if state == "rated"
                    else None,
                    "reopen_count": 0,
                    "return_count": 0,
                    "event_count": 2 if lead else 1,
                }
            )
            events.append(
                {
                    "ticket_id": tid,
                    "seq": 1,
                    "at": created,
                    "machine": "ticket",
                    "action": "intake",
                    "actor_role": "operator",
                    "actor_name": "话务员",
                    "from_state": None,
                    "to_state": "accepted",
                    "payload": {},
                    "public": True,
                }
            )
            if lead:
                a_state = {
                    "dispatched": "pending",
                    "in_progress": "signed",
                    "paused": "signed",
                    "close_requested": "close_requested",
                    "returned": "returned",
                    "merged": "cancelled",
                }.get(state, "closed")
                due = created + timedelta(days=rng.uniform(1, 15))
                assigns.append(
                    {
                        "id": aid,
                        "ticket_id": tid,
                        "unit_id": lead,
                        "role": "lead",
                        "state": a_state,
                        "created_at": created,
                        "updated_at": created,
                        "first_receiver": False,
                        "signed_at": None if a_state == "pending" else created + timedelta(minutes=20),
                        "sign_due_at": created + timedelta(minutes=30),
                        "resolve_due_at": due,
                    }
                )
                events.append(
                    {
                        "ticket_id": tid,
                        "seq": 2,
                        "at": created + timedelta(minutes=5),
                        "machine": "ticket",
                        "action": "dispatch",
                        "actor_role": "dispatcher",
                        "actor_name": "派单员",
                        "from_state": "accepted",
                        "to_state": "dispatched",
                        "payload": {},
                        "public": True,
                    }
                )
                aid += 1
            tid += 1
        _insert(db, Ticket, tickets)
        _insert(db, Assignment, assigns)
        _insert(db, TimelineEvent, events)
    with db.write_sessions() as s, s.begin():
        for key, last in counters.items():
            row = s.get(TicketCounter, key)
            if row is None:
                s.add(TicketCounter(day=key, last=last))
            else:
                row.last = max(row.last, last)
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect() as c:
            c.exec_driver_sql("ANALYZE")
            c.exec_driver_sql(
                "SELECT setval(pg_get_serial_sequence('tickets','id'), (SELECT max(id) FROM tickets))"
            )
            c.exec_driver_sql(
                "SELECT setval(pg_get_serial_sequence('assignments','id'), (SELECT max(id) FROM assignments))"
            )
            c.commit()
    else:
        with db.engine.connect() as c:
            c.exec_driver_sql("ANALYZE")
            c.commit()
    db.dispose()


def _insert(db: Database, model: Any, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    with db.write_sessions() as s, s.begin():
        s.execute(insert(model.__table__), rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--url", required=True)
    ap.add_argument("--tickets", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    t0 = time.perf_counter()
    bulk_load(args.url, args.tickets, args.seed)
    print(f"loaded {args.tickets} tickets in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
