"""A small triage city (areas with polygons, places, four demo categories, units, routing rules), a tiny model
trained on the demo text generator, and runtimes wired to a real TicketEngine."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from minsheng.config import Settings
from minsheng.demo.city import DemoCity, generate_city
from minsheng.demo.texts import generate_request
from minsheng.domain.clock import FixedClock
from minsheng.domain.roles import Actor, Role
from minsheng.services import org
from minsheng.services import schemas as s
from minsheng.services.tickets import TicketEngine, submit
from minsheng.services.triage.clusters import cluster_members
from minsheng.services.triage.runtime import TriageRuntime
from minsheng.services.triage.settings import TriageConfig
from minsheng.storage.db import Database
from minsheng.storage.models import Area, Ticket
from minsheng.storage.triage_tables import Place, RoutingRule

# Leaf categories of the demo tree, one per level-1 branch, so that their texts are easy to tell apart.
LEAVES = {"010101": "道路破损", "020101": "餐饮油烟", "050101": "入学报名", "060101": "医院服务态度"}
PARENTS = {
    "01": ("城乡建设", None),
    "0101": ("市政设施", "01"),
    "02": ("环境保护", None),
    "0201": ("大气污染", "02"),
    "05": ("教育文体", None),
    "0501": ("基础教育", "05"),
    "06": ("卫生健康", None),
    "0601": ("医疗服务", "06"),
}


def _box(x0: float, y0: float, x1: float, y1: float) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}


def build_city(session: Session, now: datetime) -> None:
    """Two districts; a street name (和平街道) used in both, for ambiguity; one named place."""
    org.add_area(session, "C", "民声市", "city", polygon=_box(120.0, 30.0, 120.4, 30.2))
    org.add_area(session, "D1", "东湖区", "district", "C", ["东湖"], _box(120.0, 30.0, 120.2, 30.2))
    org.add_area(session, "D2", "西山区", "district", "C", ["西山"], _box(120.2, 30.0, 120.4, 30.2))
    org.add_area(session, "S11", "幸福路街道", "street", "D1", [], _box(120.0, 30.0, 120.1, 30.2))
    org.add_area(session, "S12", "和平街道", "street", "D1", [], _box(120.1, 30.0, 120.2, 30.2))
    org.add_area(session, "S21", "和平街道", "street", "D2", [], _box(120.2, 30.0, 120.4, 30.2))
    org.add_area(session, "K111", "阳光社区", "community", "S11", [], _box(120.0, 30.0, 120.1, 30.2))
    org.add_area(session, "K121", "春晖社区", "community", "S12", [], _box(120.1, 30.0, 120.2, 30.2))
    org.add_area(session, "K211", "秋实社区", "community", "S21", [], _box(120.2, 30.0, 120.4, 30.2))
    for code, (name, parent) in PARENTS.items():
        org.add_category(session, code, name, parent)
    for code, name in LEAVES.items():
        org.add_category(session, code, name, code[:4])
    for code, name, kind, area in [
        ("centre", "热线中心", "centre", None),
        ("cgj", "市城管局", "department", None),
        ("team_szqx", "市政设施抢修队", "response_team", None),
        ("sthjj", "市生态环境局", "department", None),
        ("jyj", "市教育局", "department", None),
        ("wjw", "市卫健委", "department", None),
        ("dist_d1", "东湖区政府", "district_office", "D1"),
        ("st_s11", "幸福路街道办事处", "street_office", "S11"),
        ("110", "110指挥中心", "external", None),
    ]:
        org.add_unit(session, code, name, kind, area_code=area)
    for username, role, unit in [
        ("operator1", "operator", "centre"),
        ("dispatcher1", "dispatcher", "centre"),
        ("supervisor1", "supervisor", "centre"),
        ("supervisor2", "supervisor", "centre"),
        ("admin", "admin", None),
        ("h_cgj", "handler", "cgj"),
        ("h_wjw", "handler", "wjw"),
        ("h_sthjj", "handler", "sthjj"),
    ]:
        org.add_user(session, username, username, role, None, now, unit, password_hash="x")
    k111 = session.scalar(select(Area.id).where(Area.code == "K111"))
    assert k111 is not None
    session.add(
        Place(name="锦绣花园小区", area_id=k111, kind="小区", aliases=["锦绣花园"], lat=30.1, lon=120.05)
    )
    for cat, area, lead, assists, prio in [
        ("0101", None, "cgj", ["team_szqx"], 0),
        ("0101", "S11", "st_s11", [], 0),  # local matters of 幸福路 go to its street office
        ("0201", None, "sthjj", [], 0),
        ("0501", None, "jyj", [], 0),
        ("0501", None, "dist_d1", [], 0),  # a tie with a different lead: ambiguous on purpose
        ("0601", None, "wjw", [], 0),
    ]:
        session.add(
            RoutingRule(
                category_code=cat,
                area_code=area,
                lead_unit=lead,
                assist_units=assists,
                priority=prio,
                enabled=True,
                updated_by="test",
                updated_at=now,
            )
        )
    session.flush()


@pytest.fixture(scope="session")
def demo_city() -> DemoCity:
    return generate_city(2026)


def generated_texts(city: DemoCity, n_per_leaf: int, seed: int = 11) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    grids = city.grid_codes
    texts: list[str] = []
    labels: list[str] = []
    for leaf in LEAVES:
        for _ in range(n_per_leaf):
            r = generate_request(rng, city, leaf, rng.choice(grids))
            texts.append(f"{r.title}\n{r.detail}")
            labels.append(leaf)
    return texts, labels


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, demo_city: DemoCity) -> Path:
    from minsheng.triage import classifier as clf

    texts, labels = generated_texts(demo_city, 40)
    model = clf.train_classifier(texts, labels, target_precision=0.95, folds=3)
    out = tmp_path_factory.mktemp("model") / "tiny"
    clf.save_model(model, out)
    return out


@pytest.fixture
def city_db(db: Database, clock: FixedClock) -> Database:
    with db.write_sessions() as session, session.begin():
        build_city(session, clock.now())
    return db


@dataclass
class FakePrediction:
    label: str
    confidence: float
    top: list[tuple[str, float]]


class FakeClassifier:
    """Answers with a fixed label and confidence: decision tests need exact scores, not a model's."""

    def __init__(self, label: str, confidence: float, threshold: float = 0.9) -> None:
        self.label, self.confidence, self.threshold = label, confidence, threshold

    def predict(self, texts: list[str]) -> list[FakePrediction]:
        others = [c for c in LEAVES if c != self.label][:2]
        rest = (1.0 - self.confidence) / 2
        top = [(self.label, self.confidence), *[(c, rest) for c in others]]
        return [FakePrediction(self.label, self.confidence, top) for _ in texts]

    def explain(self, text: str, *, label: str | None = None) -> list[tuple[str, float]]:
        return [("假", 0.5)]


@dataclass
class Desk:
    """A runtime plugged into a fresh engine, and a way to take requests through it."""

    db: Database
    runtime: TriageRuntime
    engine: TicketEngine
    clock: FixedClock

    def intake(self, **fields: Any) -> Any:  # Any: tests index ticket.triage freely
        req = s.IntakeRequest(**fields)
        return self.take(req)

    def take(self, req: s.IntakeRequest) -> Any:
        actor = Actor(role=Role.OPERATOR, name="话务员")
        number, _, _ = submit(self.db, self.engine, actor, req, self.clock.now())
        if self.engine.defer_triage:
            from minsheng.services.triage.jobs import run_triage_jobs

            run_triage_jobs(self.db, self.engine, self.clock.now())
        with self.db.read_sessions() as session:
            t = session.scalar(select(Ticket).where(Ticket.number == number))
            assert t is not None
            session.expunge_all()
            return t

    def cluster_members(self, cluster_id: int) -> list[str]:
        with self.db.read_sessions() as session:
            return cluster_members(session, [cluster_id])[cluster_id]

    def events(self, number: str, action: str | None = None) -> list[Any]:
        from minsheng.storage.models import TimelineEvent

        with self.db.read_sessions() as session:
            tid = session.scalar(select(Ticket.id).where(Ticket.number == number))
            q = select(TimelineEvent).where(TimelineEvent.ticket_id == tid).order_by(TimelineEvent.seq)
            if action:
                q = q.where(TimelineEvent.action == action)
            rows = list(session.scalars(q))
            session.expunge_all()
            return rows


MakeDesk = Callable[..., Desk]


@pytest.fixture
def triage_mode() -> str:
    """inline (triage inside the intake transaction) or deferred (a triage job run right after intake)."""
    return "inline"


@pytest.fixture
def make_desk(city_db: Database, clock: FixedClock, tmp_path: Path, triage_mode: str) -> Iterator[MakeDesk]:
    def make(
        classifier: Any = None,
        *,
        auto_dispatch: bool = True,
        model_dir: Path | None = None,
        config: TriageConfig | None = None,
        signals: Any = None,
    ) -> Desk:
        settings = Settings(
            database_url="sqlite://", data_dir=tmp_path, auto_dispatch=auto_dispatch, model_dir=model_dir
        )
        engine = TicketEngine()
        runtime = TriageRuntime(
            city_db, settings, engine, clock, config=config, classifier=classifier, signals=signals
        ).start()
        engine.triage = runtime.hook
        engine.triage_prepare = runtime.prepare
        engine.triage_prepare_many = runtime.prepare_many
        engine.defer_triage = triage_mode == "deferred"
        return Desk(city_db, runtime, engine, clock)

    yield make
