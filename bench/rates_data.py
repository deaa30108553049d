"""A city's year of tickets for bench/rates.py, written fast: tickets, assignments and timeline rows by bulk
insert (SQLite) or COPY (PostgreSQL), and the daily facts computed from the same timelines with the real rule
(`minsheng.measures.timeline.contribution`), so that the facts are what the engine would have kept.

The city: 12 districts × 10 streets × 6 communities, 50 departments (each with 2 response teams), a district
office per district and a street office per street, 15 × 6 × 4 categories. A ticket is answered at the desk
(8 %), transferred (3 %), a repeat (3 %), still waiting (1 %) or dispatched (85 %) to the department of its
category or the street office of its area; some are returned and redispatched, some have an assisting unit,
most are signed, handled, closed and rated, some reopened; tickets of the last two weeks are partly still open.
Deadlines (sign 30 min, resolve 5 days) are part of the timelines but not written as clock rows, and the facts
are computed without a working calendar (working seconds equal natural seconds): the queries read the same rows
and columns either way, and the fact rows equal a recomputation from the written timeline in every other counter.
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select

from minsheng.measures.periods import local_day
from minsheng.measures.timeline import (
    COUNTERS,
    AssignmentInfo,
    Event,
    StepLimit,
    TicketInfo,
    TicketTimeline,
    contribution,
)
from minsheng.services.measures.facts import cube_keys
from minsheng.storage.db import Database
from minsheng.storage.models import Area, Category, Unit

CHANNELS = ["phone"] * 6 + ["app", "wechat", "web", "sms", "grid", "mailbox"]
KINDS = ["complaint"] * 4 + ["help"] * 3 + ["consultation"] * 2 + ["report", "suggestion", "praise"]
RATINGS = (
    ["satisfied"] * 85 + ["basically_satisfied"] * 8 + ["basically_dissatisfied"] * 4 + ["dissatisfied"] * 3
)
M = timedelta(minutes=1)


@dataclass
class Org:
    communities: list[tuple[int, int]]  # (area id, street office unit id)
    categories: list[tuple[int, int]]  # (leaf category id, department unit id)
    departments: list[int]
    streets: list[int]


def ensure_org(db: Database) -> Org:
    """The bench city (created once; read back when present)."""
    with db.write_sessions() as s, s.begin():
        if not s.scalar(select(func.count()).select_from(Area)):
            _create_org(s)
    with db.read_sessions() as s:
        street_office = dict(
            s.execute(select(Unit.area_id, Unit.id).where(Unit.kind == "street_office")).all()
        )
        area_parent = dict(s.execute(select(Area.id, Area.parent_id)).all())
        communities = [
            (a, street_office[area_parent[a]])
            for a in s.scalars(select(Area.id).where(Area.level == "community").order_by(Area.id))
        ]
        departments = list(s.scalars(select(Unit.id).where(Unit.kind == "department").order_by(Unit.id)))
        cats = list(
            s.execute(select(Category.id, Category.path).where(Category.level == 3).order_by(Category.id))
        )
        categories = [
            (cid, departments[int(path.strip("/").split("/")[0][1:]) * 3 % len(departments)])
            for cid, path in cats
        ]
        return Org(communities, categories, departments, sorted(set(street_office.values())))


def _create_org(s: Any) -> None:
    areas = [{"id": 1, "code": "R", "name": "基准市", "level": "city", "parent_id": None, "path": "/R/"}]
    units: list[dict[str, Any]] = []
    nid = 2
    for d in range(12):
        dcode = f"R{d:02d}"
        did = nid
        nid += 1
        areas.append(
            {
                "id": did,
                "code": dcode,
                "name": f"第{d}区",
                "level": "district",
                "parent_id": 1,
                "path": f"/R/{dcode}/",
            }
        )
        units.append({"code": f"D{d:02d}", "name": f"第{d}区政府", "kind": "district_office", "area_id": did})
        for st in range(10):
            scode = f"{dcode}{st}"
            sid = nid
            nid += 1
            areas.append(
                {
                    "id": sid,
                    "code": scode,
                    "name": f"第{d}区第{st}街道",
                    "level": "street",
                    "parent_id": did,
                    "path": f"/R/{dcode}/{scode}/",
                }
            )
            units.append(
                {
                    "code": f"S{scode}",
                    "name": f"第{d}区第{st}街道办",
                    "kind": "street_office",
                    "area_id": sid,
                    "parent": f"D{d:02d}",
                }
            )
            for c in range(6):
                ccode = f"{scode}{c}"
                areas.append(
                    {
                        "id": nid,
                        "code": ccode,
                        "name": f"{scode}社区{c}",
                        "level": "community",
                        "parent_id": sid,
                        "path": f"/R/{dcode}/{scode}/{ccode}/",
                    }
                )
                nid += 1
    for a in areas:
        a.update(aliases=[], polygon=None, lat=None, lon=None)
    s.execute(insert(Area), areas)
    for u in range(50):
        units.append({"code": f"U{u:02d}", "name": f"职能部门{u:02d}", "kind": "department", "area_id": None})
        for t in range(2):
            units.append(
                {
                    "code": f"U{u:02d}T{t}",
                    "name": f"部门{u:02d}队{t}",
                    "kind": "response_team",
                    "area_id": None,
                    "parent": f"U{u:02d}",
                }
            )
    ids: dict[str, int] = {}
    for i, u in enumerate(units, start=1):
        ids[u["code"]] = i
    s.execute(
        insert(Unit),
        [
            {
                "id": ids[u["code"]],
                "code": u["code"],
                "name": u["name"],
                "kind": u["kind"],
                "area_id": u["area_id"],
                "parent_id": ids.get(u.get("parent", "")),
                "duty_tier": 3,
                "active": True,
            }
            for u in units
        ],
    )
    cats = []
    cid = 1
    for a in range(15):
        top = cid
        cats.append(
            {
                "id": cid,
                "code": f"K{a:02d}",
                "name": f"大类{a}",
                "level": 1,
                "parent_id": None,
                "path": f"/K{a:02d}/",
            }
        )
        cid += 1
        for b in range(6):
            mid = cid
            cats.append(
                {
                    "id": cid,
                    "code": f"K{a:02d}{b}",
                    "name": f"中类{a}{b}",
                    "level": 2,
                    "parent_id": top,
                    "path": f"/K{a:02d}/K{a:02d}{b}/",
                }
            )
            cid += 1
            for c in range(4):
                cats.append(
                    {
                        "id": cid,
                        "code": f"K{a:02d}{b}{c}",
                        "name": f"小类{a}{b}{c}",
                        "level": 3,
                        "parent_id": mid,
                        "path": f"/K{a:02d}/K{a:02d}{b}/K{a:02d}{b}{c}/",
                    }
                )
                cid += 1
    s.execute(insert(Category), [{**c, "active": True} for c in cats])


# ---------------------------------------------------------------------------------------------- one ticket
@dataclass
class Generated:
    """One ticket's rows and its timeline."""

    ticket: dict[str, Any]
    assignments: list[dict[str, Any]] = field(default_factory=list)
    events: list[tuple[int, datetime, str, int | None, dict[str, Any]]] = field(default_factory=list)
    limits: list[StepLimit] = field(default_factory=list)


class TicketMaker:
    """Draws tickets; ids continue from the given ones."""

    def __init__(self, org: Org, rng: random.Random, now: datetime, tid: int, aid: int) -> None:
        self.org, self.rng, self.now, self.tid, self.aid = org, rng, now, tid, aid

    def make(self, created: datetime) -> Generated:
        rng = self.rng
        area, street_unit = rng.choice(self.org.communities)
        category, dept = rng.choice(self.org.categories)
        tid = self.tid
        self.tid += 1
        t = {
            "id": tid,
            "number": f"{created:%Y%m%d}{tid:08d}",
            "channel": rng.choice(CHANNELS),
            "kind": rng.choice(KINDS),
            "category_id": category,
            "area_id": area,
            "created_at": created,
            "state": "accepted",
            "lead_unit_id": None,
            "dispatched_at": None,
            "closed_at": None,
            "rating": None,
            "reopen_count": 0,
            "return_count": 0,
        }
        g = Generated(t)
        g.events.append((1, created, "intake", None, {}))
        fate = rng.random()
        at = created + rng.uniform(2, 30) * M
        if fate < 0.08:
            self._event(g, at, "answer_directly")
            t.update(state="closed", closed_at=at)
        elif fate < 0.11:
            self._event(g, at, "transfer", target="110")
            t["state"] = "transferred"
        elif fate < 0.14:
            self._event(g, at, "mark_repeat")
            t["state"] = "merged"
        elif fate < 0.15:
            pass
        else:
            self._dispatched(g, at, dept if rng.random() < 0.6 else street_unit, street_unit)
        return g

    def _event(self, g: Generated, at: datetime, action: str, aid: int | None = None, **payload: Any) -> None:
        g.events.append((len(g.events) + 1, at, action, aid, payload))

    def _assign(self, g: Generated, unit: int, role: str, at: datetime) -> dict[str, Any]:
        a = {
            "id": self.aid,
            "ticket_id": g.ticket["id"],
            "unit_id": unit,
            "role": role,
            "state": "pending",
            "created_at": at,
            "signed_at": None,
            "reported_at": None,
            "returned_at": None,
            "closed_at": None,
            "sign_due_at": at + 30 * M,
            "resolve_due_at": at + timedelta(days=5),
        }
        self.aid += 1
        g.assignments.append(a)
        g.limits.append(StepLimit(a["id"], "sign", at, at + 30 * M))
        if role == "lead":
            g.limits.append(StepLimit(a["id"], "resolve", at, at + timedelta(days=5)))
        return a

    def _dispatched(self, g: Generated, at: datetime, lead_unit: int, street_unit: int) -> None:
        rng, t = self.rng, g.ticket
        t.update(dispatched_at=at, state="dispatched", lead_unit_id=lead_unit)
        self._event(g, at, "dispatch")
        lead = self._assign(g, lead_unit, "lead", at)
        if rng.random() < 0.05:  # "not ours": returned, then redispatched to the street office
            back = at + rng.expovariate(1 / 120) * M
            if back > self.now:
                return
            self._event(g, back, "return", lead["id"])
            self._event(g, back, "lead_returned")
            lead.update(state="returned", returned_at=back)
            t["return_count"] = 1
            at = back + rng.uniform(5, 60) * M
            t.update(state="dispatched", lead_unit_id=street_unit)
            self._event(g, at, "redispatch")
            lead = self._assign(g, street_unit, "lead", at)
        assist = (
            self._assign(g, street_unit, "assist", at)
            if rng.random() < 0.1 and lead["unit_id"] != street_unit
            else None
        )
        self._handle(g, lead, assist, at)

    def _handle(
        self, g: Generated, lead: dict[str, Any], assist: dict[str, Any] | None, at: datetime
    ) -> None:
        rng, t, now = self.rng, g.ticket, self.now
        sign = at + rng.lognormvariate(3.0, 1.0) * M
        if sign > now or rng.random() < 0.01:
            return
        self._event(g, sign, "sign", lead["id"])
        self._event(g, sign, "lead_signed")
        lead.update(state="signed", signed_at=sign)
        t["state"] = "in_progress"
        if assist is not None:
            self._event(g, sign + 5 * M, "sign", assist["id"])
            assist.update(state="signed", signed_at=sign + 5 * M)
        if rng.random() < 0.7:
            self._event(g, sign + rng.uniform(1, 60) * M, "contact", lead["id"])
        done = sign + rng.lognormvariate(7.5, 1.0) * M
        if done > now:
            return
        if assist is not None:
            self._event(g, done - 10 * M, "feedback", assist["id"])
            assist.update(state="reported", reported_at=done - 10 * M)
        self._event(g, done, "feedback", lead["id"])
        self._event(g, done, "request_close", lead["id"])
        self._event(g, done, "lead_requested_close")
        lead.update(state="close_requested", reported_at=done)
        t["state"] = "close_requested"
        closed = done + rng.uniform(30, 600) * M
        if closed > now:
            return
        self._close(g, lead, assist, closed)

    def _close(
        self, g: Generated, lead: dict[str, Any], assist: dict[str, Any] | None, closed: datetime
    ) -> None:
        rng, t = self.rng, g.ticket
        self._event(g, closed, "review_accept")
        for a in (lead, assist):
            if a is not None:
                self._event(g, closed, "close", a["id"])
                a.update(state="closed", closed_at=closed)
        t.update(state="closed", closed_at=closed)
        rated = closed + rng.uniform(60, 2880) * M
        if rng.random() < 0.7 and rated < self.now:
            rating = rng.choice(RATINGS)
            self._event(g, rated, "follow_up", rating=rating)
            t.update(state="rated", rating=rating)
            if rating in ("basically_dissatisfied", "dissatisfied") and rng.random() < 0.5:
                self._event(g, rated + 60 * M, "reopen")
                self._event(g, rated + 60 * M, "reopen", lead["id"])
                t.update(state="in_progress", rating=None, closed_at=None, reopen_count=1)
                lead["state"] = "signed"


def timeline_of(g: Generated) -> TicketTimeline:
    t = g.ticket
    return TicketTimeline(
        TicketInfo(t["id"], t["created_at"], t["channel"], t["kind"], t["area_id"], t["category_id"]),
        [Event(seq, at, action, aid, payload) for seq, at, action, aid, payload in g.events],
        [AssignmentInfo(a["id"], a["unit_id"], a["role"], a["created_at"]) for a in g.assignments],
        g.limits,
    )


def created_times(n: int, year: int, rng: random.Random) -> Iterator[datetime]:
    """``n`` intake times over the local year, in order (more on weekdays and by day than by night)."""
    start = datetime(year - 1, 12, 31, 16, 0, tzinfo=UTC)  # 1 January 00:00 in Shanghai
    span = (datetime(year, 12, 31, 16, 0, tzinfo=UTC) - start).total_seconds()
    per_chunk = 100_000
    for lo in range(0, n, per_chunk):
        k = min(per_chunk, n - lo)
        a, b = lo / n * span, (lo + k) / n * span
        for x in sorted(rng.uniform(a, b) for _ in range(k)):
            yield start + timedelta(seconds=x)


# ---------------------------------------------------------------------------------------------- facts
_INDEX = {c: i for i, c in enumerate(COUNTERS)}


class FactSink:
    """Sums contributions per cube key and hands over the rows of each finished day (and month), as tuples of
    the key columns and then every counter."""

    def __init__(self) -> None:
        self.daily: dict[tuple[Any, ...], list[int]] = {}
        self.monthly: dict[tuple[Any, ...], list[int]] = {}
        self.open_day: date | None = None

    def add(self, tl: TicketTimeline) -> list[tuple[Any, ...]]:
        """Add a ticket (tickets come in time order); returns the rows of days (months) now complete."""
        out: list[tuple[Any, ...]] = []
        day = local_day(tl.ticket.created_at)
        if self.open_day is not None and day != self.open_day:
            out = _rows(self.daily)
            self.daily = {}
            if day.month != self.open_day.month:
                out += _rows(self.monthly)
                self.monthly = {}
        self.open_day = day
        n = len(COUNTERS)
        for k, counters in contribution(tl).items():
            pairs = [(_INDEX[name], v) for name, v in counters.items()]
            for ck in cube_keys(k):
                target = self.monthly if ck[0] >= 10 else self.daily
                row = target.get(ck)
                if row is None:
                    row = target[ck] = [0] * n
                for i, v in pairs:
                    row[i] += v
        return out

    def flush(self) -> list[tuple[Any, ...]]:
        out = _rows(self.daily) + _rows(self.monthly)
        self.daily, self.monthly = {}, {}
        return out


def _rows(rows: dict[tuple[Any, ...], list[int]]) -> list[tuple[Any, ...]]:
    return [(*k, *v) for k, v in rows.items()]


def payload_json(p: dict[str, Any]) -> str:
    return json.dumps(p, ensure_ascii=False, separators=(",", ":")) if p else "{}"


def copy_text(rows: list[tuple[Any, ...]]) -> io.StringIO:
    """Rows as PostgreSQL COPY text (tab-separated, \\N for NULL)."""
    buf = io.StringIO()
    for row in rows:
        buf.write("\t".join("\\N" if v is None else _copy_value(v) for v in row))
        buf.write("\n")
    buf.seek(0)
    return buf


def _copy_value(v: Any) -> str:
    if isinstance(v, bool):
        return "t" if v else "f"
    if isinstance(v, datetime | date):
        return v.isoformat()
    s = str(v)
    return s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
