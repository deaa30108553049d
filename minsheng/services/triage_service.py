"""Triage at intake (issue 3): classify, locate, route, find repeats and clusters, and auto-dispatch when sure.

:class:`TriageRuntime` is built at start-up by :func:`install` (never at import) from the database and the model
directory of the settings. Its :meth:`TriageRuntime.hook` is the engine's ``triage`` hook: it runs inside the
intake transaction and returns a :class:`~minsheng.services.tickets.TriageDecision` whose ``explanation`` lands
in ``ticket.triage`` (which rule, which model score, which cues, why the ticket was or was not auto-dispatched).
A ticket is auto-dispatched only when every one of these holds: auto-dispatch is on, the category is certain
(given by the operator, or predicted with confidence ≥ the threshold), the area is known where the routing table
cares about it, the route names one lead unit that can take a dispatch, no transfer (110/119/120/122) or
emergency signal, and no strong repeat. Otherwise the ticket waits in the dispatchers' queue with the top
suggestions. A missing or broken model never stops intake: everything then simply goes to the queue.

Also here: the admin side of the routing table (CRUD and CSV/XLSX import), named places, triage settings,
cluster warnings, return-history corrections and retraining from closed tickets (:func:`train_from_db`).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from sqlalchemy import case, event, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from minsheng.domain.roles import Actor, Role
from minsheng.domain.states import TicketState, UnitKind
from minsheng.services import org
from minsheng.services import schemas as s
from minsheng.services.errors import Conflict, Invalid, NotFound
from minsheng.services.tickets import CLAIMED_KEY, PREPARED_KEY, TicketEngine, TriageDecision
from minsheng.storage.db import Database
from minsheng.storage.models import Area, Category, Ticket, TimelineEvent, Unit, User
from minsheng.storage.triage_tables import (
    ClusterKey,
    ClusterMember,
    ClusterWarningRow,
    Place,
    RoutingRuleRow,
    TriageJob,
    TriageSetting,
)
from minsheng.triage.clusters import ClusterDetector, ClusterWarning
from minsheng.triage.jurisdiction import AreaRecord, Jurisdiction, JurisdictionResult, PlaceRecord
from minsheng.triage.repeats import RepeatIndex, signature
from minsheng.triage.routing import (
    DispatchRecord,
    ReturnRecord,
    RouteDecision,
    RoutingRule,
    RoutingTable,
    suggest_corrections,
)

if TYPE_CHECKING:
    from fastapi import FastAPI

    from minsheng.api.deps import AppState
    from minsheng.config import Settings
    from minsheng.domain.clock import Clock

log = logging.getLogger("minsheng.triage")

SYSTEM_NAME = "智能分拨"
CURRENT_FILE = "CURRENT"
TRAINING_FILE = "training.json"
_T = TypeVar("_T")
NO_AREA = "?"
# session.info key: a small repeat index of the tickets triaged in the session's open transaction.
BATCH_KEY = "triage_batch"
# Text beyond this carries no extra signal for any of the detectors (the subject is stated early), and cutting it
# keeps a pasted 100,000-character detail from costing more than an ordinary request.
MAX_TEXT = 3000


# ============================================================================================== configuration
@dataclass
class TriageConfig:
    """Tunable triage settings; every field may be overridden by an admin through ``triage_settings``."""

    auto_threshold: float | None = None  # None: the model's own threshold (chosen for a target precision)
    default_threshold: float = 0.9  # used when a model states no threshold
    jurisdiction_min_confidence: float = 0.5
    repeat_window_days: float = 30.0
    repeat_threshold: float = 0.6  # proposed as a repeat
    repeat_strong: float = 0.85  # a strong repeat keeps the ticket for a dispatcher to link
    repeat_area_level: str = "community"
    cluster_min_count: int = 3
    cluster_window_days: float = 3.0
    cluster_similarity: float = 0.5
    cluster_area_level: str = "street"
    cluster_match: str = "either"
    stale_check_seconds: float = 30.0
    # Tickets other processes took (API processes, workers on other hosts) are read from the database at most
    # this often, so that each process's repeat index and cluster detector see the whole city's intake.
    recent_sync_seconds: float = 2.0
    # How far before the last read to look again: a ticket's created_at is stamped before its transaction
    # commits. (A ticket waiting for deferred triage is looked for again until it has been triaged.)
    recent_sync_margin_seconds: float = 30.0
    # Between those reads, intake looks at the newest tickets of other processes at most this often (a flood over
    # two processes lost a third of its throughput when every call looked).
    fresh_look_seconds: float = 0.1
    model_level: int = 3

    def updated(self, overrides: dict[str, Any]) -> TriageConfig:
        out = TriageConfig(**asdict(self))
        for key, value in overrides.items():
            if key in _CONFIG_TYPES:
                setattr(out, key, value)
        return out


_CONFIG_TYPES: dict[str, str] = {f.name: str(f.type) for f in fields(TriageConfig)}
_AREA_LEVELS = ("city", "district", "street", "community", "grid")


# Beyond these, windows and periods leave what dates and timers can hold (a window of 1e300 days overflows the
# runtime's reload after the setting is stored) and no hotline means them: ten years of history, one day of
# waiting.
_UPPER_BOUNDS: dict[str, float] = {
    "repeat_window_days": 3650.0,
    "cluster_window_days": 3650.0,
    "stale_check_seconds": 86_400.0,
    "recent_sync_seconds": 86_400.0,
    "recent_sync_margin_seconds": 86_400.0,
    "fresh_look_seconds": 86_400.0,
}


def check_setting(key: str, value: Any) -> Any:
    """Validate one admin override; raises Invalid with the reason."""
    if key not in _CONFIG_TYPES:
        raise NotFound(f"unknown triage setting '{key}'", known=sorted(_CONFIG_TYPES))
    kind = _CONFIG_TYPES[key]
    if value is None:
        if "None" not in kind:
            raise Invalid(f"{key} cannot be empty")
        return None
    if kind.startswith("float"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise Invalid(f"{key} must be a number")
        value = float(value)
        if (
            key
            in (
                "auto_threshold",
                "default_threshold",
                "repeat_threshold",
                "repeat_strong",
                "cluster_similarity",
                "jurisdiction_min_confidence",
            )
            and not 0.0 <= value <= 1.0
        ):
            raise Invalid(f"{key} must be within 0..1")
        if value < 0:
            raise Invalid(f"{key} must not be negative")
        if key in ("repeat_window_days", "cluster_window_days") and value <= 0:
            raise Invalid(f"{key} must be positive")
        top = _UPPER_BOUNDS.get(key)
        if top is not None and value > top:
            raise Invalid(f"{key} must be at most {top:g}")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise Invalid(f"{key} must be a whole number")
        if key == "cluster_min_count" and not 2 <= value <= 10_000:
            raise Invalid("cluster_min_count must be within 2..10000")
        if key == "model_level" and value not in (1, 2, 3):
            raise Invalid("model_level must be 1, 2 or 3")
        return value
    if not isinstance(value, str):
        raise Invalid(f"{key} must be text")
    if key.endswith("area_level") and value not in _AREA_LEVELS:
        raise Invalid(f"{key} must be one of {', '.join(_AREA_LEVELS)}")
    if key == "cluster_match" and value not in ("either", "category", "text", "both"):
        raise Invalid("cluster_match must be either, category, text or both")
    return value


# ============================================================================================ model adapters
class ClassifierLike(Protocol):
    """What triage needs from a text classifier (``minsheng.triage.classifier.TextClassifier``)."""

    threshold: float

    def predict(self, text: str) -> Any: ...


@dataclass(frozen=True)
class Guess:
    label: str
    confidence: float


@dataclass(frozen=True)
class Classification:
    top: list[Guess]
    cues: list[str]
    error: str | None = None

    @property
    def best(self) -> Guess | None:
        return self.top[0] if self.top else None


def _as_guesses(top: Any, limit: int = 3) -> list[Guess]:
    out: list[Guess] = []
    for item in top or ():
        if isinstance(item, tuple | list) and len(item) >= 2:
            out.append(Guess(str(item[0]), float(item[1])))
        elif hasattr(item, "label"):
            out.append(
                Guess(str(item.label), float(getattr(item, "confidence", getattr(item, "score", 0.0))))
            )
    return out[:limit]


def _explain_cues(model: Any, text: str, label: str | None = None) -> list[str]:
    explain = getattr(model, "explain", None)
    if explain is None:
        return []
    try:
        # With the label already predicted, the model need not predict it again (half the cost of explaining).
        try:
            raw = explain(text, label=label) if label is not None else explain(text)
        except TypeError:
            raw = explain(text)
    except Exception:  # an explanation is a courtesy: never let it fail a triage
        log.debug("classifier explain failed", exc_info=True)
        return []
    items = raw.get("cues", raw.get("terms", [])) if isinstance(raw, dict) else getattr(raw, "cues", raw)
    cues: list[str] = []
    for item in items or ():
        if isinstance(item, str):
            cues.append(item)
        elif isinstance(item, tuple | list) and item:
            cues.append(str(item[0]))
        elif isinstance(item, dict) and ("term" in item or "feature" in item):
            cues.append(str(item.get("term", item.get("feature"))))
    return cues[:8]


def classify(model: Any, text: str, pred: Any = None) -> Classification:
    """The model's guesses for a text, with the cues; ``pred`` is its prediction when already made (in a batch)."""
    if model is None or not text:
        return Classification([], [])
    try:
        if pred is None:
            pred = model.predict([text])[0]
    except Exception as e:  # a broken model degrades to "no suggestion", it never fails intake
        log.warning("classifier failed on a text of %d characters: %s", len(text), e)
        return Classification([], [], error=f"{type(e).__name__}: {e}")
    top = _as_guesses(getattr(pred, "top", None))
    label = getattr(pred, "label", None)
    if label is not None and (not top or top[0].label != str(label)):
        top = [Guess(str(label), float(getattr(pred, "confidence", 0.0))), *top][:3]
    return Classification(top, _explain_cues(model, text, str(label) if label is not None else None))


@dataclass(frozen=True)
class SignalsView:
    kind: str | None = None
    urgency: str | None = None
    transfer: str | None = None
    cues: dict[str, list[str]] = field(default_factory=dict)
    note: str | None = None


def _signals_module() -> Any:
    import importlib

    try:
        # Looked up at call time: the signals part may be installed after this one.
        return importlib.import_module("minsheng.triage.signals")
    except ModuleNotFoundError:
        return None


def detect_signals(text: str) -> SignalsView:
    """Kind, urgency and transfer suggestion of the text, with the cues that decided them."""
    mod = _signals_module()
    if mod is None:
        return SignalsView(note="signals module not available")
    if not text:
        return SignalsView()
    try:
        raw = mod.detect(text)
    except Exception as e:
        log.warning("signal detection failed: %s", e)
        return SignalsView(note=f"{type(e).__name__}: {e}")
    return _signals_view(raw)


def _signals_view(raw: Any) -> SignalsView:
    def value(x: Any) -> str | None:
        if x is None:
            return None
        for attr in ("value", "label", "target", "kind", "level"):
            v = getattr(x, attr, None)
            if isinstance(v, str):
                return str(v)  # a StrEnum member becomes its plain value, for JSON
        return str(x) if isinstance(x, str) else None

    cues: dict[str, list[str]] = {}
    for name in ("kind", "urgency", "transfer"):
        item = getattr(raw, name, None)
        found = getattr(item, "cues", None) or getattr(raw, f"{name}_cues", None)
        if found:
            cues[name] = [str(c) for c in found][:8]
    return SignalsView(
        kind=value(getattr(raw, "kind", None)),
        urgency=value(getattr(raw, "urgency", None)),
        transfer=value(getattr(raw, "transfer", None)),
        cues=cues,
    )


# ================================================================================================ org snapshot
@dataclass(frozen=True)
class _Node:
    code: str
    name: str
    level: str
    parent: str | None


@dataclass(frozen=True)
class _UnitInfo:
    code: str
    name: str
    kind: str
    active: bool


@dataclass
class OrgSnapshot:
    """Everything triage reads from the organisation, built once per change and swapped in whole."""

    areas: dict[str, _Node]
    categories: dict[str, _Node]
    units: dict[str, _UnitInfo]
    jurisdiction: Jurisdiction | None
    table: RoutingTable
    area_specific: set[str | None]  # categories (None: any) that have at least one area-specific rule
    fingerprint: tuple[Any, ...]
    skipped_rules: list[str] = field(default_factory=list)

    def area_chain(self, code: str) -> list[str]:
        out: list[str] = []
        cur: str | None = code
        while cur is not None and cur in self.areas and cur not in out:
            out.append(cur)
            cur = self.areas[cur].parent
        return out[::-1]

    def category_chain(self, code: str) -> list[str]:
        out: list[str] = []
        cur: str | None = code
        while cur is not None and cur in self.categories and cur not in out:
            out.append(cur)
            cur = self.categories[cur].parent
        return out[::-1]

    def area_at(self, code: str, level: str) -> str:
        """The ancestor of ``code`` at ``level`` (the area itself when it lies above that level)."""
        for c in self.area_chain(code):
            if self.areas[c].level == level:
                return c
        return code

    def area_matters(self, category_code: str | None) -> bool:
        cats: list[str | None] = [*self.category_chain(category_code), None] if category_code else [None]
        return any(c in self.area_specific for c in cats)

    def category_name(self, code: str | None) -> str | None:
        node = self.categories.get(code) if code else None
        return node.name if node else None

    def unit_name(self, code: str | None) -> str | None:
        unit = self.units.get(code) if code else None
        return unit.name if unit else None


def _fingerprint(session: Session) -> tuple[Any, ...]:
    """Cheap aggregates that change whenever anything triage depends on changes."""
    return (
        session.execute(select(func.count(), func.max(Area.id)).select_from(Area)).one(),
        session.execute(select(func.count(), func.max(Category.id)).select_from(Category)).one(),
        session.execute(select(func.count(), func.max(Unit.id)).select_from(Unit)).one(),
        session.scalar(select(func.count()).select_from(Unit).where(Unit.active.is_(True))),
        session.execute(select(func.count(), func.max(Place.id)).select_from(Place)).one(),
        session.execute(
            select(func.count(), func.max(RoutingRuleRow.updated_at)).select_from(RoutingRuleRow)
        ).one(),
        session.execute(
            select(func.count(), func.max(TriageSetting.updated_at)).select_from(TriageSetting)
        ).one(),
    )


def load_org(session: Session) -> OrgSnapshot:
    """Build the gazetteer, polygon index and routing table from the database."""
    area_rows = list(
        session.execute(
            select(Area.id, Area.code, Area.name, Area.level, Area.parent_id, Area.aliases, Area.polygon)
        )
    )
    code_of = {r.id: r.code for r in area_rows}
    areas = {r.code: _Node(r.code, r.name, r.level, code_of.get(r.parent_id)) for r in area_rows}
    cat_rows = list(
        session.execute(select(Category.id, Category.code, Category.name, Category.level, Category.parent_id))
    )
    cat_code = {r.id: r.code for r in cat_rows}
    categories = {r.code: _Node(r.code, r.name, str(r.level), cat_code.get(r.parent_id)) for r in cat_rows}
    units = {
        u.code: _UnitInfo(u.code, u.name, u.kind, u.active)
        for u in session.execute(select(Unit.code, Unit.name, Unit.kind, Unit.active))
    }
    jurisdiction = None
    if area_rows:
        records = [
            AreaRecord(
                code=r.code,
                name=r.name,
                level=r.level,
                parent_code=code_of.get(r.parent_id),
                aliases=tuple(str(a) for a in (r.aliases or ()) if a),
                polygon=r.polygon or None,
            )
            for r in area_rows
        ]
        places = [
            PlaceRecord(str(p.id), p.name, code_of[p.area_id], p.kind or "", tuple(p.aliases or ()))
            for p in session.scalars(select(Place))
            if p.area_id in code_of
        ]
        try:
            jurisdiction = Jurisdiction(records, places)
        except ValueError as e:
            log.warning("jurisdiction disabled: the area data is inconsistent: %s", e)
    rules: list[RoutingRule] = []
    skipped: list[str] = []
    area_specific: set[str | None] = set()
    for row in session.scalars(select(RoutingRuleRow).order_by(RoutingRuleRow.id)):
        lead = units.get(row.lead_unit)
        if not row.enabled:
            continue
        if lead is None or not lead.active or lead.kind == UnitKind.EXTERNAL.value:
            # A unit that was deactivated after the rule was written: the rule stops applying rather than
            # sending tickets to a unit nobody reads.
            skipped.append(str(row.id))
            log.warning(
                "routing rule %s skipped: lead unit %s is unknown, inactive or external",
                row.id,
                row.lead_unit,
            )
            continue
        assists = tuple(u for u in row.assist_units or () if u in units and units[u].active)
        rules.append(
            RoutingRule(
                str(row.id), row.category_code, row.area_code, row.lead_unit, assists, row.priority, True
            )
        )
        if row.area_code is not None:
            area_specific.add(row.category_code)
    table = RoutingTable(
        rules,
        {c: n.parent for c, n in categories.items()},
        {c: n.parent for c, n in areas.items()},
    )
    return OrgSnapshot(
        areas, categories, units, jurisdiction, table, area_specific, _fingerprint(session), skipped
    )


# ================================================================================================== analysis
@dataclass
class Analysis:
    """Everything triage found out about one request; ``explanation()`` is what lands in ``ticket.triage``."""

    text: str
    classification: Classification
    signals: SignalsView
    jurisdiction: JurisdictionResult | None
    jurisdiction_error: str | None
    category_code: str | None
    category_source: str  # operator | model | none
    area_code: str | None
    area_source: str  # operator | jurisdiction | none
    route: RouteDecision | None
    repeats: list[tuple[str, float, datetime]]
    threshold: float
    suggestions: list[dict[str, Any]]
    reasons: list[dict[str, str]]
    dispatch: s.Dispatch | None
    model_version: str | None
    org: OrgSnapshot
    # The recent-ticket state the repeats were looked up in, and its generation then (see `TriageRuntime.hook`).
    seen: tuple[Any, int] | None = None
    signature: Any = None  # of `text`, for the repeat index (computed once per request)

    def explanation(self) -> dict[str, Any]:
        org = self.org
        best = self.classification.best
        area = self.jurisdiction
        out: dict[str, Any] = {
            "version": 1,
            "decision": "auto_dispatch" if self.dispatch is not None else "queue",
            "reasons": self.reasons,
            "category": {
                "code": self.category_code,
                "name": org.category_name(self.category_code),
                "source": self.category_source,
                "confidence": round(best.confidence, 4) if best and self.category_source == "model" else None,
                "threshold": round(self.threshold, 4),
                "model_version": self.model_version,
                "top": [
                    {
                        "code": g.label,
                        "name": org.category_name(g.label),
                        "confidence": round(g.confidence, 4),
                    }
                    for g in self.classification.top
                ],
                "cues": self.classification.cues,
            },
            "signals": {
                "kind": self.signals.kind,
                "urgency": self.signals.urgency,
                "transfer": self.signals.transfer,
                "cues": self.signals.cues,
            },
            "area": {
                "code": self.area_code,
                "name": org.areas[self.area_code].name if self.area_code in org.areas else None,
                "source": self.area_source,
                "chain": [org.areas[c].name for c in org.area_chain(self.area_code)]
                if self.area_code
                else [],
                "method": area.method if area else None,
                "confidence": area.confidence if area else None,
                "ambiguous": area.ambiguous if area else None,
                "explanation": area.explanation if area else self.jurisdiction_error,
            },
            "route": _route_json(self.route, org),
            "repeats": [
                {"number": n, "score": round(sc, 3), "at": at.isoformat()} for n, sc, at in self.repeats
            ],
            "suggestions": self.suggestions,
        }
        notes = [x for x in (self.classification.error, self.signals.note) if x]
        if notes:
            out["notes"] = notes
        return out


def _route_json(route: RouteDecision | None, org: OrgSnapshot) -> dict[str, Any] | None:
    if route is None:
        return None
    return {
        "rule_id": route.rule_id,
        "lead_unit": route.lead_unit_id,
        "lead_unit_name": org.unit_name(route.lead_unit_id),
        "assist_units": list(route.assist_unit_ids),
        "ambiguous": route.ambiguous,
        "candidates": [
            {
                "rule_id": c.rule_id,
                "lead_unit": c.lead_unit_id,
                "lead_unit_name": org.unit_name(c.lead_unit_id),
                "assist_units": list(c.assist_unit_ids),
            }
            for c in route.candidates
        ],
        "explanation": route.explanation,
    }


def request_text(title: str | None, detail: str | None) -> str:
    """The text every detector reads: title and detail, normalised and cut to a bounded length."""
    from minsheng.triage.textnorm import normalize

    joined = "\n".join(x for x in (title, detail) if x)
    return normalize(joined, max_chars=MAX_TEXT, lower=False)


def _reason(code: str, text: str) -> dict[str, str]:
    return {"code": code, "text": text}


# =================================================================================================== runtime
class _Recent:
    """Recent tickets in memory: the repeat index and the cluster detector (one lock guards both)."""

    def __init__(self, config: TriageConfig, org: OrgSnapshot) -> None:
        self.repeats = RepeatIndex(
            window_days=config.repeat_window_days,
            threshold=config.repeat_threshold,
            area_key=lambda code: org.area_at(code, config.repeat_area_level) if code != NO_AREA else code,
        )
        self.clusters = ClusterDetector(
            min_count=config.cluster_min_count,
            window=timedelta(days=config.cluster_window_days),
            similarity=config.cluster_similarity,
            area_level=lambda code: org.area_at(code, config.cluster_area_level),
            match=config.cluster_match,  # type: ignore[arg-type]
        )
        #: Other processes' tickets seen at intake since the last `catch_up` (see `TriageRuntime._read_fresh`),
        #: kept so that each one's text is read and its signature computed once, not at every intake.
        self.fresh = self.repeats.empty_like()
        self.lock = threading.Lock()

    def index(self, row: Any, cluster_since: datetime) -> list[ClusterWarning]:
        """Take a stored ticket (a `_recent_rows` row) into both; returns the cluster warnings it raises."""
        number, title, detail, at, area_code, cat_code = row
        text = request_text(title, detail)
        self.repeats.add(number, area_code or NO_AREA, text, at)
        if area_code and at >= cluster_since:
            return self.clusters.observe(number, cat_code, area_code, text, at)
        return []


class TriageRuntime:
    """The live triage state of one process: model, org snapshot, recent tickets; reloadable."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        engine: TicketEngine,
        clock: Clock,
        *,
        config: TriageConfig | None = None,
        classifier: ClassifierLike | None = None,
        signals: Callable[[str], SignalsView] | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.engine = engine
        self.clock = clock
        self.base_config = config or TriageConfig()
        self.config = self.base_config
        self.model: Any = classifier
        self.model_path: Path | None = None
        self.model_error: str | None = None
        self.model_info: dict[str, Any] = {}
        self._fixed_model = classifier is not None
        self.detect_signals = signals or detect_signals
        self._reload_lock = threading.Lock()
        self._checked_at = 0.0
        self._sync_lock = threading.Lock()
        self._synced_check = time.monotonic()
        self._synced_at = clock.now()
        self._awaiting_since: datetime | None = None
        self._max_id_seen = 0
        # The highest id intake's look at other processes' newest tickets has listed, and when it last looked.
        self._fresh_floor = 0
        self._fresh_checked = 0.0
        self.org: OrgSnapshot
        self.recent: _Recent

    # ---------------------------------------------------------------------------------------------- loading
    def start(self) -> TriageRuntime:
        if not self._fixed_model:
            self.load_model()
        self.reload()
        return self

    def load_model(self, path: Path | None = None) -> bool:
        """Load the classifier from ``path`` or the configured model dir; on failure keep running without one."""
        target = path or (resolve_model_path(self.settings.model_dir) if self.settings.model_dir else None)
        if target is None:
            self.model, self.model_path, self.model_error, self.model_info = (
                None,
                None,
                "no model configured",
                {},
            )
            return False
        try:
            from minsheng.triage import classifier as clf
        except ImportError as e:
            self.model, self.model_error = None, f"the classifier module is not available: {e}"
            log.warning("triage: %s; every ticket goes to the dispatchers' queue", self.model_error)
            return False
        try:
            model = clf.load_model(target)
        except clf.ModelLoadError as e:
            self.model, self.model_path = None, target
            self.model_error = f"model at {target} cannot be loaded: {e}"
            log.warning(
                "triage: %s; every ticket goes to the dispatchers' queue until a model is loaded",
                self.model_error,
            )
            return False
        self.model, self.model_path, self.model_error = model, target, None
        self.model_info = read_training_info(target)
        log.info("triage: model loaded from %s", target)
        return True

    def reload(self) -> None:
        """Re-read the organisation, rules and settings, and rebuild the recent-ticket indexes."""
        with self._reload_lock:
            with self.db.read_sessions() as session:
                org = load_org(session)
                config = self.base_config.updated(read_settings(session))
                recent = _Recent(config, org)
                self._fill_recent(session, recent, config, org)
            self.org, self.config, self.recent = org, config, recent
            self._checked_at = time.monotonic()

    def reload_org(self) -> None:
        """Re-read the organisation, rules and settings only (the recent tickets stay as they are)."""
        with self._reload_lock, self.db.read_sessions() as session:
            org = load_org(session)
            config = self.base_config.updated(read_settings(session))
            rebuild = config != self.config
            if rebuild:
                recent = _Recent(config, org)
                self._fill_recent(session, recent, config, org)
                self.recent = recent
            self.org, self.config = org, config
            self._checked_at = time.monotonic()

    def _fill_recent(self, session: Session, recent: _Recent, config: TriageConfig, org: OrgSnapshot) -> None:
        now = self.clock.now()
        since = now - timedelta(days=max(config.repeat_window_days, config.cluster_window_days))
        cluster_since = now - timedelta(days=config.cluster_window_days)
        q = (
            _recent_rows()
            .where(Ticket.created_at >= since)
            .order_by(Ticket.created_at, Ticket.id)
            .execution_options(yield_per=2000)
        )
        n = 0
        self._synced_at = now
        self._max_id_seen = session.scalar(select(func.max(Ticket.id))) or 0
        for row in session.execute(q):
            # Replaying marks clusters that history already warned about, so the next member is "grown".
            recent.index(row, cluster_since)
            n += 1
        log.info("triage: %d recent tickets indexed for repeats and clusters", n)

    def refresh_if_stale(self, session: Session) -> None:
        """Reload when another process (or the org API) changed areas, units, rules or settings."""
        if time.monotonic() - self._checked_at < self.config.stale_check_seconds:
            return
        self._checked_at = time.monotonic()
        if _fingerprint(session) != self.org.fingerprint:
            self.reload_org()

    def mark_stale(self) -> None:
        self._checked_at = 0.0

    @property
    def threshold(self) -> float:
        if self.config.auto_threshold is not None:
            return self.config.auto_threshold
        value = getattr(self.model, "threshold", None) if self.model is not None else None
        return float(value) if isinstance(value, int | float) else self.config.default_threshold

    @property
    def model_version(self) -> str | None:
        if self.model is None:
            return None
        v = self.model_info.get("version") or getattr(self.model, "version", None)
        return str(v) if v else (self.model_path.name if self.model_path else None)

    # ------------------------------------------------------------------------------------------- analysis
    def analyse(
        self,
        *,
        title: str | None,
        detail: str | None,
        address: str | None = None,
        lat: float | None = None,
        lon: float | None = None,
        category_code: str | None = None,
        area_code: str | None = None,
        at: datetime,
        auto_dispatch: bool = False,
        prediction: Any = None,
        classification: Classification | None = None,
        batch: RepeatIndex | None = None,
    ) -> Analysis:
        """``classification``: reuse one already made; ``batch``: the tickets of the current transaction, not yet
        in the repeat index, which are repeat candidates too."""
        org, config, model = self.org, self.config, self.model
        text = request_text(title, detail)
        if classification is None:
            classification = classify(model, text, prediction)
        signals = self.detect_signals(text)
        threshold = self.threshold

        jres: JurisdictionResult | None = None
        jerr: str | None = None
        # Callers often say where only in their own words ("幸福路街道阳光社区门口…"): title and detail are read
        # too, one per line, but they may only fill a gap or refine the address or point, never overrule them.
        words = "\n".join(x for x in (request_text(title, None), request_text(None, detail)) if x)
        if org.jurisdiction is not None and (address or lat is not None or words):
            try:
                jres = org.jurisdiction.resolve(address, lat, lon, detail_text=words)
            except ValueError as e:
                jerr = str(e)
        if area_code:
            area_source = "operator"
        elif jres is not None and jres.confidence >= config.jurisdiction_min_confidence:
            area_code, area_source = jres.area_code, "jurisdiction"
        else:
            area_source = "none"

        best = classification.best
        if category_code:
            source = "operator"
        elif best is not None and best.confidence >= threshold and best.label in org.categories:
            category_code, source = best.label, "model"
        else:
            source = "none"

        route = org.table.route(category_code, area_code) if category_code else None
        suggestions = []
        for g in classification.top:
            if g.label not in org.categories:
                continue
            r = org.table.route(g.label, area_code)
            suggestions.append(
                {
                    "category": g.label,
                    "category_name": org.category_name(g.label),
                    "confidence": round(g.confidence, 4),
                    "lead_unit": r.lead_unit_id,
                    "lead_unit_name": org.unit_name(r.lead_unit_id),
                    "assist_units": list(r.assist_unit_ids),
                    "rule_id": r.rule_id,
                    "ambiguous": r.ambiguous,
                }
            )

        recent = self.recent
        sig = signature(text) if text else None
        with recent.lock:
            seen = (recent, recent.repeats.generation)
            found = recent.repeats.query(text, area_code or NO_AREA, at, limit=5, sig=sig) if text else []
        if batch is not None and text:
            found = _best_repeats([*found, *batch.query_since(text, area_code or NO_AREA, at, 0, sig=sig)])
        repeats = [(str(c.ticket_id), c.score, c.at) for c in found]

        reasons: list[dict[str, str]] = []
        if not auto_dispatch:
            reasons.append(_reason("auto_dispatch_off", "自动派单未开启"))
        if source == "none":
            if model is None:
                reasons.append(
                    _reason(
                        "no_model", "未加载分类模型" + (f"：{self.model_error}" if self.model_error else "")
                    )
                )
            elif not text:
                reasons.append(_reason("no_text", "诉求内容为空（规范化后），无法分类"))
            elif best is None:
                reasons.append(_reason("no_prediction", "模型未给出分类"))
            else:
                reasons.append(
                    _reason("low_confidence", f"分类置信度 {best.confidence:.2f} 低于阈值 {threshold:.2f}")
                )
        if category_code and area_code is None and org.area_matters(category_code):
            why = jres.explanation if jres is not None else (jerr or "地址未能识别属地")
            reasons.append(_reason("area_unknown", f"该分类按属地派单，但属地不明确：{why}"))
        elif area_code and area_source == "jurisdiction" and jres is not None and jres.ambiguous:
            reasons.append(_reason("area_ambiguous", f"属地判定有歧义：{jres.explanation}"))
        lead: str | None = None
        if route is not None:
            if route.ambiguous:
                reasons.append(_reason("route_ambiguous", route.explanation))
            elif route.lead_unit_id is None:
                reasons.append(_reason("no_route", route.explanation))
            else:
                unit = org.units.get(route.lead_unit_id)
                if unit is None or not unit.active or unit.kind == UnitKind.EXTERNAL.value:
                    reasons.append(_reason("unit_unavailable", f"主办单位 {route.lead_unit_id} 不可派"))
                else:
                    lead = route.lead_unit_id
        if signals.transfer:
            cues = "、".join(signals.cues.get("transfer", []))
            reasons.append(
                _reason("transfer", f"建议转 {signals.transfer}" + (f"（{cues}）" if cues else ""))
            )
        if signals.urgency == "emergency":
            reasons.append(_reason("emergency", "紧急情形，需人工确认"))
        strong = _strong_repeat_reason(repeats, config)
        if strong is not None:
            reasons.append(strong)
        dispatch = None
        if not reasons and lead is not None and route is not None:
            assists = [u for u in route.assist_unit_ids if u != lead]
            dispatch = s.Dispatch(
                lead_unit=lead, assist_units=assists, note=f"自动派单：{route.explanation}"[:2000]
            )
        return Analysis(
            text=text,
            classification=classification,
            signals=signals,
            jurisdiction=jres,
            jurisdiction_error=jerr,
            category_code=category_code,
            category_source=source,
            area_code=area_code,
            area_source=area_source,
            route=route,
            repeats=repeats,
            threshold=threshold,
            suggestions=suggestions,
            reasons=reasons,
            dispatch=dispatch,
            model_version=self.model_version,
            org=org,
            seen=seen,
            signature=sig,
        )

    def analyse_request(
        self,
        req: s.IntakeRequest,
        now: datetime,
        prediction: Any = None,
        *,
        classification: Classification | None = None,
        batch: RepeatIndex | None = None,
    ) -> Analysis:
        return self.analyse(
            title=req.title,
            detail=req.detail,
            address=req.address,
            lat=req.lat,
            lon=req.lon,
            category_code=req.category_code,
            area_code=req.area_code,
            at=now,
            auto_dispatch=self.settings.auto_dispatch,
            prediction=prediction,
            classification=classification,
            batch=batch,
        )

    def prepare_many(self, reqs: list[s.IntakeRequest], at: list[datetime]) -> list[Analysis | None]:
        """`prepare` for a batch (deferred triage): the classifier reads all texts in one call, which costs
        about a twentieth of reading them one by one."""
        self.catch_up()
        model = self.model
        preds: list[Any] = [None] * len(reqs)
        if model is not None:
            texts = [request_text(r.title, r.detail) for r in reqs]
            todo = [i for i, t in enumerate(texts) if t]
            try:
                for i, p in zip(todo, model.predict([texts[i] for i in todo]), strict=True):
                    preds[i] = p
            except Exception:  # one by one instead, where a failing text fails alone
                log.warning("batch classification failed; classifying one by one", exc_info=True)
        out: list[Analysis | None] = []
        for req, when, pred in zip(reqs, at, preds, strict=True):
            try:
                out.append(self.analyse_request(req, when, pred))
            except Exception:
                log.exception("triage preparation failed; the hook will analyse inside the transaction")
                out.append(None)
        return out

    def prepare(self, req: s.IntakeRequest, now: datetime) -> Analysis | None:
        """The analysis of a request before its intake transaction opens (see `TicketEngine.triage_prepare`)."""
        self.catch_up()
        try:
            return self.analyse_request(req, now)
        except Exception:
            log.exception("triage preparation failed; the hook will analyse inside the transaction")
            return None

    # ----------------------------------------------------------------------------------------------- hook
    def hook(self, session: Session, ticket: Ticket, req: s.IntakeRequest) -> TriageDecision | None:
        """The engine's triage hook, inside the intake transaction."""
        now = ticket.created_at
        try:
            self.refresh_if_stale(session)
            prepared = session.info.pop(PREPARED_KEY, None)
            batch: RepeatIndex | None = session.info.get(BATCH_KEY)
            # An analysis made before an org change (the snapshot was just reloaded) may route to a unit that
            # no longer takes tickets: it is made again.
            if (
                prepared is not None
                and prepared[0] is req
                and prepared[1] is not None
                and prepared[1].org is self.org
            ):
                a = prepared[1]
                # Tickets indexed since that analysis, or taken earlier in this transaction (a flood arrives in
                # one batch), may be repeats it could not see.
                if a.seen is not None and a.seen[0] is not self.recent:
                    a = self.analyse_request(req, now, classification=a.classification, batch=batch)
                else:
                    a = self._with_repeats(a, self._missed_repeats(a, now, batch))
            else:
                a = self.analyse_request(req, now, batch=batch)
            if a.text:
                self._read_fresh(session, ticket, batch)
                a = self._with_repeats(a, self._fresh_repeats(a, now, ticket.number))
        except Exception as e:
            # Triage is advice: if it breaks, the ticket is still taken and waits for a dispatcher.
            log.exception("triage failed for ticket %s", ticket.number)
            return TriageDecision(
                explanation={
                    "version": 1,
                    "decision": "queue",
                    "reasons": [_reason("error", f"{type(e).__name__}: {e}")],
                }
            )
        kind = a.signals.kind if a.signals.kind in _KINDS else None
        urgency = a.signals.urgency if a.signals.urgency in _URGENCIES else None
        decision = TriageDecision(
            category_code=a.category_code if a.category_source == "model" else None,
            area_code=a.area_code if a.area_source == "jurisdiction" else None,
            kind=kind,
            urgency=urgency,
            dispatch=a.dispatch,
            explanation=a.explanation(),
            after=lambda: self._after_intake(session, ticket, a, now),
        )
        return decision

    def _after_intake(self, session: Session, ticket: Ticket, a: Analysis, now: datetime) -> None:
        """Index the new ticket for repeats (after commit) and for clusters (now, so warnings share the commit)."""
        pending: list[tuple[str, str, str, datetime, Any]] = session.info.setdefault("triage_pending", [])
        if not session.info.get("triage_listening"):
            session.info["triage_listening"] = True
            event.listen(session, "after_commit", self._on_commit)
            event.listen(session, "after_rollback", _forget_pending)
        pending.append((ticket.number, a.area_code or NO_AREA, a.text, now, a.signature))
        batch = session.info.get(BATCH_KEY)
        if batch is None:
            batch = session.info[BATCH_KEY] = self.recent.repeats.empty_like()
        batch.add(ticket.number, a.area_code or NO_AREA, a.text, now, sig=a.signature)
        if not a.area_code or not a.text:
            return
        with self.recent.lock:
            warnings = self.recent.clusters.observe(ticket.number, a.category_code, a.area_code, a.text, now)
        for w in warnings:
            record_cluster(session, self.engine, w, ticket, now, self.org)

    def _on_commit(self, session: Session) -> None:
        session.info.pop(BATCH_KEY, None)
        pending = session.info.pop("triage_pending", None)
        if not pending:
            return
        with self.recent.lock:
            for number, area, text, at, sig in pending:
                self.recent.repeats.add(number, area, text, at, sig=sig)

    def _missed_repeats(self, a: Analysis, now: datetime, batch: RepeatIndex | None) -> list[Any]:
        """Repeat candidates that appeared after ``a`` looked (in the index or in this transaction)."""
        if not a.text or a.seen is None:
            return []
        area = a.area_code or NO_AREA
        recent = self.recent
        with recent.lock:
            found = recent.repeats.query_since(a.text, area, now, a.seen[1], sig=a.signature)
        if batch is not None:
            found += batch.query_since(a.text, area, now, 0, sig=a.signature)
        known = {n for n, _, _ in a.repeats}
        return [c for c in found if str(c.ticket_id) not in known]

    def _read_fresh(self, session: Session, ticket: Ticket, batch: RepeatIndex | None) -> None:
        """Take the tickets other processes stored since this one last read theirs into ``recent.fresh``.

        `catch_up` reads them only every ``recent_sync_seconds``, but a burst main or a power cut brings calls
        seconds apart, spread over every API process: without this look, each process would miss the calls the
        others took in the last two seconds. Ids come from a sequence, so the newest ids are the unseen ones; the
        look reads at most `_FRESH_LIMIT` of them (after a bulk import the next `catch_up` reads the rest), at most
        every ``fresh_look_seconds``, and computes the signature of those it meets for the first time only; in one
        process there are none.
        """
        # In the intake transaction: a session of its own cost three times as much on PostgreSQL (a checkout
        # with its ping, BEGIN, ROLLBACK). So what this transaction holds uncommitted is left out by name: the
        # ticket itself, tickets earlier in the batch, and tickets whose deferred-triage jobs it has claimed; a
        # ticket another process leaves waiting for deferred triage is compared after the next `catch_up`. The
        # list is ids and numbers only, a range of the primary key; in one process that is all there is to read.
        # It starts above the highest id the last look listed: relisting the last two seconds at every intake
        # was much of what a flood over two processes lost (BENCHMARKS.md). A ticket whose id was given before
        # that look but which committed after it is left to the next `catch_up`, as is the middle of a burst of
        # more than `_FRESH_LIMIT`.
        if time.monotonic() - self._fresh_checked < self.config.fresh_look_seconds:
            return
        self._fresh_checked = time.monotonic()
        claimed: set[int] = session.info.get(CLAIMED_KEY) or set()
        with session.no_autoflush:  # nothing of this transaction is wanted, so nothing needs flushing first
            listed = session.execute(
                select(Ticket.id, Ticket.number)
                .where(Ticket.id > max(self._max_id_seen, self._fresh_floor))
                .order_by(Ticket.id.desc())
                .limit(_FRESH_LIMIT)
            ).all()
            if not listed:
                return
            self._fresh_floor = max(self._fresh_floor, listed[0][0])
            recent = self.recent
            with recent.lock:
                unseen = [
                    tid
                    for tid, number in listed
                    if number not in recent.repeats
                    and number not in recent.fresh
                    and number != ticket.number
                    and tid not in claimed
                    and (batch is None or number not in batch)
                ]
            if not unseen:
                return
            # A ticket waiting for deferred triage is left out, as `catch_up` leaves it: its area is not known.
            found = session.execute(
                _recent_rows()
                .outerjoin(TriageJob, TriageJob.ticket_id == Ticket.id)
                .where(Ticket.id.in_(unseen), TriageJob.ticket_id.is_(None))
            ).all()
        rows = [
            (number, area_code or NO_AREA, text, at, signature(text))
            for number, title, detail, at, area_code, _ in found
            for text in [request_text(title, detail)]
        ]
        with recent.lock:
            for number, area, text, at, sig in rows:
                if number not in recent.fresh and number not in recent.repeats:
                    recent.fresh.add(number, area, text, at, sig=sig)

    def _fresh_repeats(self, a: Analysis, now: datetime, number: str | None = None) -> list[Any]:
        """Repeat candidates among the other processes' tickets `_read_fresh` took (``number``: the ticket's own,
        which another transaction's look may have taken after it was stored, in a re-triage)."""
        if not a.text:
            return []
        with self.recent.lock:
            found = self.recent.fresh.query_since(
                a.text, a.area_code or NO_AREA, now, 0, limit=6, sig=a.signature
            )
        return [c for c in found if c.ticket_id != number][:5]

    def _with_repeats(self, a: Analysis, found: list[Any]) -> Analysis:
        """``a`` with more repeat candidates: only the repeats, the strong-repeat reason and so whether the ticket
        is dispatched depend on them (see `analyse`), so the rest of the analysis stands."""
        if not found:
            return a
        merged = {n: (n, sc, at) for n, sc, at in a.repeats}
        for c in found:
            n = str(c.ticket_id)
            if n not in merged or c.score > merged[n][1]:
                merged[n] = (n, c.score, c.at)
        repeats = sorted(merged.values(), key=lambda r: (-r[1], -r[2].timestamp()))[:5]
        reasons = [r for r in a.reasons if r["code"] != "strong_repeat"]
        reason = _strong_repeat_reason(repeats, self.config)
        if reason is not None:
            reasons.append(reason)
        return replace(a, repeats=repeats, reasons=reasons, dispatch=a.dispatch if not reasons else None)

    # ------------------------------------------------------------------------------------------ other processes
    def catch_up(self, *, force: bool = False) -> int:
        """Index the tickets other processes took since the last look; returns how many.

        Throttled to once per ``recent_sync_seconds`` (unless ``force``), and skipped while another thread of this process is at it.
        Tickets whose deferred triage is still pending are left for a later look: their area is not known yet.
        A cluster that the new tickets complete is stored at once (once per cluster: `record_cluster`).
        """
        config = self.config
        if not force and time.monotonic() - self._synced_check < config.recent_sync_seconds:
            return 0
        if not self._sync_lock.acquire(blocking=False):
            return 0
        try:
            self._synced_check = time.monotonic()
            return self._catch_up(config)
        except Exception:
            # Repeats and clusters are advice: a failed look is tried again next time, intake goes on.
            log.warning("triage: reading other processes' tickets failed", exc_info=True)
            return 0
        finally:
            self._sync_lock.release()

    def _catch_up(self, config: TriageConfig) -> int:
        recent = self.recent
        started = self.clock.now()
        since = self._synced_at - timedelta(seconds=config.recent_sync_margin_seconds)
        if self._awaiting_since is not None:
            since = min(since, self._awaiting_since)
        with self.db.read_sessions() as session:
            # Also every ticket stored since the last look whatever its created_at (an import of older tickets,
            # a ticket entered after the fact): ids come from a sequence, so those are above the highest seen.
            listed = session.execute(
                select(Ticket.id, Ticket.number, Ticket.created_at, TriageJob.ticket_id)
                .outerjoin(TriageJob, TriageJob.ticket_id == Ticket.id)
                .where(or_(Ticket.created_at >= since, Ticket.id > self._max_id_seen))
            ).all()
            waiting = [at for _, _, at, job in listed if job is not None]
            with recent.lock:
                new_ids = [
                    tid for tid, number, _, job in listed if job is None and number not in recent.repeats
                ]
            rows: list[Any] = []
            for chunk in _chunks(new_ids):
                rows += session.execute(_recent_rows().where(Ticket.id.in_(chunk))).all()
        rows.sort(key=lambda r: (r[3], r[0]))
        cluster_since = started - timedelta(days=config.cluster_window_days)
        warnings: list[ClusterWarning] = []
        with recent.lock:
            for row in rows:
                warnings += recent.index(row, cluster_since)
            # What intake saw of other processes' tickets is in the index now, or will be read again.
            recent.fresh = recent.repeats.empty_like()
        self._synced_at = started
        self._awaiting_since = min(waiting) if waiting else None
        self._max_id_seen = max([self._max_id_seen, *(tid for tid, _, _, _ in listed)])
        if warnings:
            # A flood of similar tickets grows one cluster with each: its last warning holds every member.
            self._store_clusters(_merge_warnings(warnings), started)
        if rows:
            log.debug("triage: %d tickets of other processes indexed", len(rows))
        return len(rows)

    def recent_status(self) -> dict[str, Any]:
        """What this process's repeat index holds, and when it last read other processes' tickets."""
        return {
            "indexed": len(self.recent.repeats),
            # Other processes' tickets intake compared since the last read (`_read_fresh`), indexed at the next.
            "seen_at_intake": len(self.recent.fresh),
            "read_up_to": self._synced_at,
            "waiting_for_triage_since": self._awaiting_since,
            "look_every_seconds": self.config.recent_sync_seconds,
        }

    def _store_clusters(self, warnings: list[ClusterWarning], now: datetime) -> None:
        with self.db.write_sessions() as session, session.begin():
            for w in warnings:
                member = session.scalar(select(Ticket).where(Ticket.number == w.member_ticket_ids[-1]))
                if member is not None:
                    record_cluster(session, self.engine, w, member, now, self.org)

    def forget(self, number: str) -> None:
        with self.recent.lock:
            self.recent.repeats.remove(number)


#: At most this many of the newest unseen tickets are compared at intake (see `TriageRuntime._read_fresh`).
_FRESH_LIMIT = 256


def _merge_warnings(warnings: list[ClusterWarning]) -> list[ClusterWarning]:
    """One warning per cluster: a flood read in one look grows a cluster with each ticket, and its last warning
    holds every member; the members that joined are those any of them brought in (all, if one is new)."""
    merged: dict[str, ClusterWarning] = {}
    for w in warnings:
        prev = merged.get(w.key)
        if prev is None:
            merged[w.key] = w
            continue
        everyone = not prev.joined or not w.joined
        merged[w.key] = replace(w, joined=() if everyone else tuple(sorted({*prev.joined, *w.joined})))
    return list(merged.values())


def _recent_rows() -> Any:
    """What the recent-ticket state is built from: number, title, detail, created_at, area and category codes."""
    return (
        select(Ticket.number, Ticket.title, Ticket.detail, Ticket.created_at, Area.code, Category.code)
        .outerjoin(Area, Area.id == Ticket.area_id)
        .outerjoin(Category, Category.id == Ticket.category_id)
    )


def _forget_pending(session: Session) -> None:
    session.info.pop("triage_pending", None)
    session.info.pop(BATCH_KEY, None)


def _strong_repeat_reason(
    repeats: list[tuple[str, float, datetime]], config: TriageConfig
) -> dict[str, str] | None:
    """A strong repeat keeps the ticket for a dispatcher to link (the best one is named)."""
    strong = [r for r in repeats if r[1] >= config.repeat_strong]
    if not strong:
        return None
    return _reason("strong_repeat", f"疑似重复件：{strong[0][0]}（相似度 {strong[0][1]:.2f}），请派单员判断")


def _best_repeats(found: list[Any], limit: int = 5) -> list[Any]:
    best: dict[Any, Any] = {}
    for c in found:
        if c.ticket_id not in best or c.score > best[c.ticket_id].score:
            best[c.ticket_id] = c
    return sorted(best.values(), key=lambda c: (-c.score, -c.at.timestamp()))[:limit]


_KINDS = {"consultation", "help", "complaint", "report", "suggestion", "praise"}
_URGENCIES = {"normal", "urgent", "emergency"}


# ============================================================================================ cluster warnings
def _insert(session: Session) -> Any:
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def record_cluster(
    session: Session,
    engine: TicketEngine,
    w: ClusterWarning,
    current: Ticket,
    now: datetime,
    org: OrgSnapshot,
) -> ClusterWarningRow | None:
    """Store a cluster warning once and put it on the member tickets' timelines.

    A new cluster puts one ``cluster_warning`` event on every member and tells the supervisors; a ticket joining
    a stored cluster gets its own event, and the cluster's count and time span grow. A warning under another key
    that shares a member with a stored cluster of its area (another process named it after a different first
    member) joins that one, and its key leads there from then on.
    """
    row = _stored_cluster(session, w.key)
    if row is not None:
        return _join(session, engine, row, w, w.joined or w.member_ticket_ids, current, now, org)
    row = _sharing_members(session, w)
    if row is not None:
        _add_key(session, w.key, row.id)
        return _join(session, engine, row, w, w.member_ticket_ids, current, now, org)
    ins = (
        _insert(session)(ClusterWarningRow)
        .values(
            key=w.key,
            category_code=w.category_code,
            area_code=w.area_code,
            member_count=0,
            summary=list(w.summary),
            first_at=w.first_at,
            last_at=w.last_at,
            created_at=now,
            state="open",
        )
        .on_conflict_do_nothing(index_elements=["key"])
    )
    # RETURNING rather than rowcount: drivers disagree on rowcount for INSERT … ON CONFLICT DO NOTHING.
    new_id = session.scalar(ins.returning(ClusterWarningRow.id))
    if new_id is None:
        # Another transaction stored it between our look and our insert: the members it lacks join it.
        row = session.scalar(select(ClusterWarningRow).where(ClusterWarningRow.key == w.key))
        return None if row is None else _join(session, engine, row, w, w.member_ticket_ids, current, now, org)
    _add_key(session, w.key, new_id)
    members = _add_members(session, new_id, w.member_ticket_ids)
    row = session.get_one(ClusterWarningRow, new_id)
    row.member_count = len(members)
    _note(session, engine, _lock_members(session, current, members), row, members, now, org, joined=False)
    _notify_supervisors(session, row, members, current, now, org)
    return row


def _join(
    session: Session,
    engine: TicketEngine,
    row: ClusterWarningRow,
    w: ClusterWarning,
    candidates: Sequence[str],
    current: Ticket,
    now: datetime,
    org: OrgSnapshot,
) -> ClusterWarningRow:
    """The candidates the stored cluster lacks join it, each with a note (usually just ``current``; more when
    this process saw tickets the row lacks)."""
    joining = _add_members(session, row.id, candidates)
    if not joining:
        return row
    # Expressions, not values read earlier: another process may be adding members to the same cluster.
    row.member_count = ClusterWarningRow.member_count + len(joining)
    row.last_at = case((ClusterWarningRow.last_at < w.last_at, w.last_at), else_=ClusterWarningRow.last_at)
    if w.summary:
        row.summary = list(w.summary)
    session.flush()
    _note(session, engine, _lock_members(session, current, joining), row, joining, now, org, joined=True)
    return row


def _stored_cluster(session: Session, key: str) -> ClusterWarningRow | None:
    return session.scalar(
        select(ClusterWarningRow)
        .join(ClusterKey, ClusterKey.cluster_id == ClusterWarningRow.id)
        .where(ClusterKey.key == key)
    )


def _add_key(session: Session, key: str, cluster_id: int) -> None:
    session.execute(
        _insert(session)(ClusterKey).values(key=key, cluster_id=cluster_id).on_conflict_do_nothing()
    )


def _add_members(session: Session, cluster_id: int, numbers: Iterable[str]) -> list[str]:
    """Add the numbers a cluster lacks; returns those added, sorted."""
    added: list[str] = []
    for chunk in _chunks(sorted(set(numbers))):
        rows = [{"cluster_id": cluster_id, "ticket_number": n} for n in chunk]
        ins = _insert(session)(ClusterMember).values(rows).on_conflict_do_nothing()
        added += session.scalars(ins.returning(ClusterMember.ticket_number))
    return sorted(added)


def cluster_members(session: Session, cluster_ids: Sequence[int]) -> dict[int, list[str]]:
    """The member ticket numbers of each cluster, in number order."""
    out: dict[int, list[str]] = {cid: [] for cid in cluster_ids}
    for chunk in _chunks(cluster_ids):
        q = (
            select(ClusterMember.cluster_id, ClusterMember.ticket_number)
            .where(ClusterMember.cluster_id.in_(chunk))
            .order_by(ClusterMember.cluster_id, ClusterMember.ticket_number)
        )
        for cid, number in session.execute(q):
            out[cid].append(number)
    return out


def _lock_members(session: Session, current: Ticket, numbers: Sequence[str]) -> list[Ticket]:
    """``current`` (if among ``numbers``) and the other tickets of ``numbers``, the others locked in id order so
    that two intakes that touch the same members cannot deadlock."""
    others = [m for m in numbers if m != current.number]
    tickets = [current] if current.number in numbers else []
    for chunk in _chunks(others):
        tickets += list(
            session.scalars(
                select(Ticket).where(Ticket.number.in_(chunk)).order_by(Ticket.id).with_for_update()
            )
        )
    return tickets


def _sharing_members(session: Session, w: ClusterWarning) -> ClusterWarningRow | None:
    """The earliest stored cluster of the same area, still open to new members, that holds one of ``w``'s members.

    Processes that saw the same tickets in a different order may name one cluster differently (its key comes
    from the first member each saw); a ticket belongs to one cluster only, so a shared member means the same
    cluster. On PostgreSQL an advisory lock per area keeps two processes from both storing it new at once
    (SQLite has one writer at a time anyway).
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(func.hashtext("cluster:" + w.area_code))))
    found: list[int] = []
    for chunk in _chunks(sorted(set(w.member_ticket_ids))):
        cid = session.scalar(
            select(func.min(ClusterMember.cluster_id))
            .join(ClusterWarningRow, ClusterWarningRow.id == ClusterMember.cluster_id)
            .where(
                ClusterWarningRow.area_code == w.area_code,
                ClusterWarningRow.last_at >= w.first_at,
                ClusterMember.ticket_number.in_(chunk),
            )
        )
        if cid is not None:
            found.append(cid)
    return session.get(ClusterWarningRow, min(found)) if found else None


def _describe(row: ClusterWarningRow, org: OrgSnapshot) -> str:
    area = org.areas[row.area_code].name if row.area_code in org.areas else row.area_code
    cat = org.category_name(row.category_code) or "相似诉求"
    about = "、".join(row.summary or [])
    return f"{area} {row.member_count} 件{cat}" + (f"（{about}）" if about else "")


def _note(
    session: Session,
    engine: TicketEngine,
    tickets: Sequence[Ticket],
    row: ClusterWarningRow,
    members: Sequence[str],
    now: datetime,
    org: OrgSnapshot,
    *,
    joined: bool,
) -> None:
    """One ``cluster_warning`` event on each of ``tickets``; ``members`` are the tickets it is about (the whole
    new cluster, or those joining it), the count is the cluster's."""
    payload = {
        "cluster_id": row.id,
        "key": row.key,
        "category": row.category_code,
        "area": row.area_code,
        "members": list(members),
        "member_count": row.member_count,
        "summary": list(row.summary or []),
        "text": ("加入一类事预警：" if joined else "一类事预警：") + _describe(row, org),
        "joined": joined,
    }
    actor = Actor.system(SYSTEM_NAME)
    for t in tickets:
        engine.record_note(session, t, actor, "cluster_warning", now, payload)


def _notify_supervisors(
    session: Session,
    row: ClusterWarningRow,
    members: Sequence[str],
    ticket: Ticket,
    now: datetime,
    org: OrgSnapshot,
) -> None:
    try:
        from minsheng.services.notifications import add_inbox
    except ImportError:  # the notification part is optional
        return
    supervisors = session.scalars(
        select(User.id).where(User.role == Role.SUPERVISOR.value, User.active.is_(True))
    )
    shown = "、".join(members[:_NOTIFY_NUMBERS]) + ("等" if len(members) > _NOTIFY_NUMBERS else "")
    text = _describe(row, org) + "：" + shown
    for uid in supervisors:
        add_inbox(
            session,
            kind="cluster_warning",
            title="一类事预警",
            text=text,
            now=now,
            source=f"cluster:{row.key}",
            user_id=uid,
            ticket_id=ticket.id,
        )


#: Ticket numbers listed in a supervisor's notification; the warning's page lists them all.
_NOTIFY_NUMBERS = 20


def clusters_json(session: Session, rows: Sequence[ClusterWarningRow]) -> list[dict[str, Any]]:
    members = cluster_members(session, [r.id for r in rows])
    return [
        {
            "id": row.id,
            "key": row.key,
            "category_code": row.category_code,
            "area_code": row.area_code,
            "member_count": row.member_count,
            "members": members[row.id],
            "summary": list(row.summary or []),
            "first_at": row.first_at.isoformat(),
            "last_at": row.last_at.isoformat(),
            "created_at": row.created_at.isoformat(),
            "state": row.state,
            "acknowledged_by": row.acknowledged_by,
            "acknowledged_at": row.acknowledged_at.isoformat() if row.acknowledged_at else None,
            "note": row.note,
        }
        for row in rows
    ]


def list_clusters(session: Session, *, state: str | None = None, limit: int = 100) -> list[ClusterWarningRow]:
    q = select(ClusterWarningRow).order_by(ClusterWarningRow.last_at.desc(), ClusterWarningRow.id.desc())
    if state:
        q = q.where(ClusterWarningRow.state == state)
    return list(session.scalars(q.limit(limit)))


def acknowledge_cluster(
    session: Session, cluster_id: int, by: str, note: str | None, now: datetime
) -> ClusterWarningRow:
    row = session.scalar(
        select(ClusterWarningRow).where(ClusterWarningRow.id == cluster_id).with_for_update()
    )
    if row is None:
        raise NotFound(f"cluster warning {cluster_id} not found")
    if row.state == "acknowledged":
        raise Conflict(f"cluster warning {cluster_id} is already acknowledged")
    row.state, row.acknowledged_by, row.acknowledged_at, row.note = "acknowledged", by, now, note
    return row


# ================================================================================================ routing table
class RuleIn(s.Strict):
    """One routing rule as an admin writes it (codes; None means "any")."""

    category_code: str | None = s.Field(default=None, pattern=s.CODE_RE)
    area_code: str | None = s.Field(default=None, pattern=s.CODE_RE)
    lead_unit: s.UnitCode
    assist_units: list[s.UnitCode] = s.Field(default_factory=list, max_length=20)
    priority: int = s.Field(default=0, ge=-1000, le=1000)
    enabled: bool = True
    note: str | None = s.Field(default=None, max_length=500)


def _check_rule(session: Session, body: RuleIn) -> None:
    if (
        body.category_code
        and session.scalar(select(Category.id).where(Category.code == body.category_code)) is None
    ):
        raise NotFound(f"unknown category '{body.category_code}'", field="category_code")
    if body.area_code and session.scalar(select(Area.id).where(Area.code == body.area_code)) is None:
        raise NotFound(f"unknown area '{body.area_code}'", field="area_code")
    if body.lead_unit in body.assist_units:
        raise Invalid("the lead unit cannot also assist", field="assist_units")
    if len(set(body.assist_units)) != len(body.assist_units):
        raise Invalid("assist units must be distinct", field="assist_units")
    org.dispatchable_units(session, body.lead_unit, body.assist_units)


def rule_json(row: RoutingRuleRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "category_code": row.category_code,
        "area_code": row.area_code,
        "lead_unit": row.lead_unit,
        "assist_units": list(row.assist_units or []),
        "priority": row.priority,
        "enabled": row.enabled,
        "note": row.note,
        "updated_by": row.updated_by,
        "updated_at": row.updated_at.isoformat(),
    }


def list_rules(
    session: Session,
    *,
    category: str | None = None,
    area: str | None = None,
    unit: str | None = None,
    limit: int = 1000,
    offset: int = 0,
) -> list[RoutingRuleRow]:
    q = select(RoutingRuleRow).order_by(RoutingRuleRow.id)
    if category:
        q = q.where(RoutingRuleRow.category_code == category)
    if area:
        q = q.where(RoutingRuleRow.area_code == area)
    if unit:
        q = q.where(RoutingRuleRow.lead_unit == unit)
    return list(session.scalars(q.limit(limit).offset(offset)))


def get_rule(session: Session, rule_id: int) -> RoutingRuleRow:
    row = session.get(RoutingRuleRow, rule_id)
    if row is None:
        raise NotFound(f"routing rule {rule_id} not found")
    return row


def create_rule(session: Session, body: RuleIn, by: str, now: datetime) -> RoutingRuleRow:
    _check_rule(session, body)
    row = RoutingRuleRow(**body.model_dump(), updated_by=by, updated_at=now)
    session.add(row)
    session.flush()
    return row


def update_rule(session: Session, rule_id: int, body: RuleIn, by: str, now: datetime) -> RoutingRuleRow:
    row = get_rule(session, rule_id)
    _check_rule(session, body)
    for k, v in body.model_dump().items():
        setattr(row, k, v)
    row.updated_by, row.updated_at = by, now
    session.flush()
    return row


def delete_rule(session: Session, rule_id: int) -> None:
    session.delete(get_rule(session, rule_id))
    session.flush()


_SPLIT = re.compile(r"[;,，；、|\s]+")
_TRUE = {"1", "true", "yes", "y", "是", "启用", "on"}
_FALSE = {"0", "false", "no", "n", "否", "停用", "off"}
# Column names as admins write them, English or Chinese.
_RULE_COLUMNS = {
    "category_code": ("category_code", "category", "分类", "分类编码"),
    "area_code": ("area_code", "area", "区划", "区划编码", "属地"),
    "lead_unit": ("lead_unit", "lead", "主办单位", "主办"),
    "assist_units": ("assist_units", "assists", "协办单位", "协办"),
    "priority": ("priority", "优先级"),
    "enabled": ("enabled", "启用"),
    "note": ("note", "备注"),
}


def import_routing(
    session: Session, path: Path, now: datetime, *, replace: bool = False, by: str = "import"
) -> Any:
    """Import routing rules from CSV or XLSX (columns: category_code, area_code, lead_unit, assist_units,
    priority, enabled, note; Chinese headers 分类/区划/主办单位/协办单位/优先级/启用/备注 also work).

    A row matching an existing rule on (category, area, lead unit) updates it, others are added; with
    ``replace`` the table is emptied first. Bad rows are reported by row number and the others imported
    (the caller commits once). Returns an ``ImportReport`` (kind "routing").
    """
    from minsheng.services.importing import ImportFileError, ImportReport, read_table

    header, rows = read_table(path)
    col = {
        key: next((c for c in names if c.lower() in header or c in header), None)
        for key, names in _RULE_COLUMNS.items()
    }
    col = {k: (v.lower() if v and v.lower() in header else v) for k, v in col.items()}
    if col["lead_unit"] is None:
        raise ImportFileError(
            f"{Path(path).name}: missing required column lead_unit (主办单位); found: {', '.join(header)}"
        )
    report = ImportReport(kind="routing")
    if replace:
        for old in session.scalars(select(RoutingRuleRow)):
            session.delete(old)
        session.flush()
    for number, row in rows:

        def cell(key: str, row: dict[str, str] = row) -> str:
            name = col.get(key)
            return row.get(name, "").strip() if name else ""

        try:
            prio_text = cell("priority")
            enabled_text = cell("enabled").lower()
            if enabled_text and enabled_text not in _TRUE | _FALSE:
                raise Invalid(f"enabled '{enabled_text}' is not yes/no")
            body = RuleIn(
                category_code=cell("category_code") or None,
                area_code=cell("area_code") or None,
                lead_unit=cell("lead_unit"),
                assist_units=[u for u in _SPLIT.split(cell("assist_units")) if u],
                priority=int(prio_text) if prio_text else 0,
                enabled=enabled_text not in _FALSE,
                note=cell("note") or None,
            )
            with session.begin_nested():
                _check_rule(session, body)
                existing = session.scalar(
                    select(RoutingRuleRow).where(
                        _eq(RoutingRuleRow.category_code, body.category_code),
                        _eq(RoutingRuleRow.area_code, body.area_code),
                        RoutingRuleRow.lead_unit == body.lead_unit,
                    )
                )
                if existing is None:
                    session.add(RoutingRuleRow(**body.model_dump(), updated_by=by, updated_at=now))
                    report.count("created")
                else:
                    same = all(getattr(existing, k) == v for k, v in body.model_dump().items())
                    if not same:
                        for k, v in body.model_dump().items():
                            setattr(existing, k, v)
                        existing.updated_by, existing.updated_at = by, now
                    report.count("skipped" if same else "updated")
        except ValueError as e:  # pydantic's ValidationError and int() both are ValueErrors
            report.errors.append((number, _first_line(e)))
        except (NotFound, Invalid) as e:
            report.errors.append((number, e.message))
    session.flush()
    return report


def _first_line(e: Exception) -> str:
    errors = getattr(e, "errors", None)
    if callable(errors):
        first = errors()[0]
        loc = ".".join(str(x) for x in first.get("loc", ()))
        return f"{loc}: {first.get('msg')}" if loc else str(first.get("msg"))
    return str(e).splitlines()[0]


def _eq(column: Any, value: Any) -> Any:
    return column.is_(None) if value is None else column == value


# Read-only members, so that frozen dataclasses (the demo city's specs) match.
class RouteLike(Protocol):
    @property
    def category_code(self) -> str: ...
    @property
    def area_code(self) -> str | None: ...
    @property
    def lead_unit_code(self) -> str: ...
    @property
    def assist_unit_codes(self) -> tuple[str, ...]: ...


class PlaceLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def aliases(self) -> tuple[str, ...]: ...
    @property
    def lat(self) -> float: ...
    @property
    def lon(self) -> float: ...


def store_routes(session: Session, routes: Iterable[RouteLike], now: datetime, by: str = "demo") -> int:
    """Write routing rules in bulk (e.g. the demo city's :class:`~minsheng.demo.city.RouteSpec` list)."""
    n = 0
    for r in routes:
        session.add(
            RoutingRuleRow(
                category_code=r.category_code,
                area_code=r.area_code,
                lead_unit=r.lead_unit_code,
                assist_units=list(r.assist_unit_codes),
                priority=0,
                enabled=True,
                updated_by=by,
                updated_at=now,
            )
        )
        n += 1
    session.flush()
    return n


def store_places(session: Session, places: Iterable[tuple[PlaceLike, str]]) -> int:
    """Write named places in bulk: (place, area code) pairs; the demo seeder passes ``(p, p.grid_code)``."""
    area_id = {code: aid for code, aid in session.execute(select(Area.code, Area.id))}
    n = 0
    for p, code in places:
        if code not in area_id:
            raise NotFound(f"place {p.name}: unknown area '{code}'")
        session.add(
            Place(
                name=p.name, area_id=area_id[code], kind=p.kind, aliases=list(p.aliases), lat=p.lat, lon=p.lon
            )
        )
        n += 1
    session.flush()
    return n


class PlaceIn(s.Strict):
    name: str = s.Field(min_length=2, max_length=100)
    area_code: str = s.Field(pattern=s.CODE_RE)
    kind: str = s.Field(default="", max_length=16)
    aliases: list[str] = s.Field(default_factory=list, max_length=20)
    lat: float | None = s.Field(default=None, ge=-90, le=90)
    lon: float | None = s.Field(default=None, ge=-180, le=180)


def create_place(session: Session, body: PlaceIn) -> Place:
    area_id = session.scalar(select(Area.id).where(Area.code == body.area_code))
    if area_id is None:
        raise NotFound(f"unknown area '{body.area_code}'", field="area_code")
    if (body.lat is None) != (body.lon is None):
        raise Invalid("lat and lon must be given together")
    place = Place(
        name=body.name,
        area_id=area_id,
        kind=body.kind,
        aliases=[a for a in body.aliases if a.strip()],
        lat=body.lat,
        lon=body.lon,
    )
    session.add(place)
    session.flush()
    return place


# ==================================================================================================== settings
def read_settings(session: Session) -> dict[str, Any]:
    return {row.key: row.value for row in session.scalars(select(TriageSetting)) if row.key in _CONFIG_TYPES}


def write_setting(session: Session, key: str, value: Any, by: str, now: datetime) -> Any:
    value = check_setting(key, value)
    row = session.get(TriageSetting, key)
    if row is None:
        session.add(TriageSetting(key=key, value=value, updated_by=by, updated_at=now))
    else:
        row.value, row.updated_by, row.updated_at = value, by, now
    session.flush()
    return value


def delete_setting(session: Session, key: str) -> None:
    row = session.get(TriageSetting, key)
    if row is None:
        raise NotFound(f"triage setting '{key}' is not overridden")
    session.delete(row)
    session.flush()


# ============================================================================================ return history
def routing_corrections(
    session: Session, *, since: datetime | None = None, **thresholds: Any
) -> list[dict[str, Any]]:
    """Routes that units keep returning, with the unit that usually signs in the end (from the timelines)."""
    q = (
        select(TimelineEvent.ticket_id, TimelineEvent.action, TimelineEvent.payload, TimelineEvent.at)
        .where(TimelineEvent.action.in_(("dispatch", "redispatch", "return", "sign")))
        .order_by(TimelineEvent.ticket_id, TimelineEvent.seq)
    )
    if since is not None:
        q = q.where(TimelineEvent.at >= since)
    events = list(session.execute(q))
    ticket_ids = sorted({e.ticket_id for e in events})
    info: dict[int, tuple[str | None, str | None]] = {}
    for chunk in _chunks(ticket_ids, 900):
        rows = session.execute(
            select(Ticket.id, Category.code, Area.code)
            .outerjoin(Category, Category.id == Ticket.category_id)
            .outerjoin(Area, Area.id == Ticket.area_id)
            .where(Ticket.id.in_(chunk))
        )
        info.update({tid: (cat, area) for tid, cat, area in rows})
    dispatches: list[DispatchRecord] = []
    returned: list[tuple[str, str, str]] = []
    final: dict[str, str] = {}
    for e in events:
        tid = str(e.ticket_id)
        payload = e.payload or {}
        cat, area = info.get(e.ticket_id, (None, None))
        if e.action in ("dispatch", "redispatch"):
            rule = None
            expl = payload.get("explanation") if payload.get("auto") else None
            if isinstance(expl, dict):
                rule = (expl.get("route") or {}).get("rule_id")
            for unit in [payload.get("lead_unit"), *payload.get("assist_units", [])]:
                if unit:
                    dispatches.append(
                        DispatchRecord(
                            tid, unit, cat, area, rule if unit == payload.get("lead_unit") else None
                        )
                    )
        elif e.action == "return" and payload.get("unit"):
            returned.append((tid, payload["unit"], str(payload.get("reason") or "")))
        elif e.action == "sign" and payload.get("unit") and payload.get("assignment_role", "lead") == "lead":
            final[tid] = payload["unit"]
    returns = [ReturnRecord(tid, unit, final.get(tid), reason) for tid, unit, reason in returned]
    out = []
    for c in suggest_corrections(returns, dispatches, **thresholds):
        out.append(
            {
                "rule_id": c.rule_id,
                "category_code": c.category_code,
                "area_code": c.area_code,
                "unit": c.unit_id,
                "dispatches": c.dispatches,
                "returns": c.returns,
                "return_rate": round(c.return_rate, 4),
                "suggested_unit": c.suggested_unit_id,
                "suggested_share": round(c.suggested_share, 4),
                "final_units": [list(x) for x in c.final_units],
                "top_reasons": [list(x) for x in c.top_reasons],
                "explanation": c.explanation,
            }
        )
    return out


def _chunks(items: Sequence[_T], size: int = 500) -> Iterator[Sequence[_T]]:
    """``items`` in slices of ``size``: IN lists kept under SQLite's limit on bound parameters."""
    for i in range(0, len(items), size):
        yield items[i : i + size]


# ================================================================================================== training
def resolve_model_path(model_dir: Path) -> Path:
    """The model directory to load: the version named in ``CURRENT`` when there is one, else the dir itself."""
    pointer = Path(model_dir) / CURRENT_FILE
    if pointer.is_file():
        name = pointer.read_text(encoding="utf-8").strip()
        if name and "/" not in name and "\\" not in name and name not in (".", ".."):
            return Path(model_dir) / "versions" / name
    return Path(model_dir)


def read_training_info(path: Path) -> dict[str, Any]:
    try:
        data = json.loads((Path(path) / TRAINING_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def training_data(
    session: Session, level: int = 3, *, limit: int | None = None
) -> tuple[list[str], list[str]]:
    """(texts, labels) of closed tickets with a category: title + detail → category code at ``level``."""
    if level not in (1, 2, 3):
        raise Invalid("level must be 1, 2 or 3")
    closed = (TicketState.CLOSED.value, TicketState.RATED.value)
    q = (
        select(Ticket.title, Ticket.detail, Category.path)
        .join(Category, Category.id == Ticket.category_id)
        .where(Ticket.state.in_(closed))
        .order_by(Ticket.id)
    )
    if limit:
        q = q.limit(limit)
    texts: list[str] = []
    labels: list[str] = []
    for title, detail, path in session.execute(q.execution_options(yield_per=5000)):
        parts = [p for p in path.split("/") if p]
        if len(parts) < level:
            continue  # a ticket categorised only above the wanted level teaches nothing at that level
        texts.append("\n".join(x for x in (title, detail) if x))
        labels.append(parts[level - 1])
    return texts, labels


def train_from_db(
    db: Database,
    out_dir: Path,
    level: int = 3,
    *,
    now: datetime | None = None,
    min_examples: int = 20,
    limit: int | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Train the classifier on the database's closed tickets (at most ``limit``) and save it into ``out_dir``.

    Returns the training record (also written to ``out_dir/training.json``). Raises Invalid when there are
    fewer than ``min_examples`` usable tickets or fewer than two categories.
    """
    from minsheng.triage import classifier as clf

    with db.read_sessions() as session:
        texts, labels = training_data(session, level, limit=limit)
    if len(texts) < min_examples or len(set(labels)) < 2:
        raise Invalid(
            f"not enough closed, categorised tickets to train on: {len(texts)} tickets in "
            f"{len(set(labels))} categories (need {min_examples} in at least 2)"
        )
    started = time.perf_counter()
    model = clf.train_classifier(texts, labels, **options)
    seconds = time.perf_counter() - started
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    clf.save_model(model, out_dir)
    record = {
        "version": out_dir.name,
        "trained_at": now.isoformat() if now else None,
        "source": "database",
        "level": level,
        "tickets": len(texts),
        "classes": len(set(labels)),
        "train_seconds": round(seconds, 2),
        "threshold": getattr(model, "threshold", None),
        "metrics": _model_metrics(model),
    }
    (out_dir / TRAINING_FILE).write_text(json.dumps(record, ensure_ascii=False, indent=2), encoding="utf-8")
    return record


def _model_metrics(model: Any) -> dict[str, Any]:
    meta = getattr(model, "metadata", None)
    if isinstance(meta, dict) and isinstance(meta.get("metrics"), dict):
        return dict(meta["metrics"])
    for attr in ("metrics", "metadata", "meta"):
        value = getattr(model, attr, None)
        if isinstance(value, dict):
            return {k: v for k, v in value.items() if isinstance(v, int | float | str | bool) or v is None}
    return {}


def retrain(runtime: TriageRuntime, now: datetime, level: int | None = None) -> dict[str, Any]:
    """Train a new version from the database, save it under ``model_dir/versions/`` and swap it in."""
    model_dir = runtime.settings.model_dir
    if model_dir is None:
        raise Invalid("no model directory configured (set MINSHENG_MODEL_DIR)")
    version = now.strftime("v%Y%m%d%H%M%S")
    target = Path(model_dir) / "versions" / version
    record = train_from_db(runtime.db, target, level or runtime.config.model_level, now=now)
    pointer = Path(model_dir) / CURRENT_FILE
    tmp = pointer.with_suffix(".tmp")
    tmp.write_text(version, encoding="utf-8")
    tmp.replace(
        pointer
    )  # atomic: another process reading CURRENT sees the old or the new version, never half
    if not runtime.load_model(target):
        raise Conflict(f"the new model was saved but cannot be loaded: {runtime.model_error}")
    return record


def model_status(runtime: TriageRuntime) -> dict[str, Any]:
    return {
        "loaded": runtime.model is not None,
        "path": str(runtime.model_path) if runtime.model_path else None,
        "version": runtime.model_version,
        "error": runtime.model_error,
        "threshold": runtime.threshold,
        "threshold_source": "override"
        if runtime.config.auto_threshold is not None
        else (
            "model"
            if runtime.model is not None and getattr(runtime.model, "threshold", None) is not None
            else "default"
        ),
        "auto_dispatch": runtime.settings.auto_dispatch,
        "training": runtime.model_info,
        "metrics": _model_metrics(runtime.model) if runtime.model is not None else {},
        "rules_skipped": runtime.org.skipped_rules,
        "recent": runtime.recent_status(),
    }


# ==================================================================================================== wiring
def install(app: FastAPI, state: AppState) -> None:
    """Build the runtime, plug it into the engine and mount the triage API (called from services.wiring)."""
    runtime = TriageRuntime(state.db, state.settings, state.engine, state.clock).start()
    state.engine.triage = runtime.hook
    state.engine.triage_prepare = runtime.prepare
    state.engine.triage_prepare_many = runtime.prepare_many
    if state.settings.triage_mode == "deferred":
        state.engine.defer_triage = True
        if state.settings.embedded_worker:
            from minsheng.services.triage_jobs import TriageWorker

            worker = TriageWorker(
                state.db,
                state.engine,
                state.clock,
                interval=state.settings.worker_interval_seconds,
                busy=state.intake.busy,
                max_lag=state.settings.triage_max_lag_seconds,
            ).start()
            state.intake.on_commit = worker.wake
            app.state.on_shutdown.append(worker.stop)
    # AppState belongs to the API layer; the runtime rides along on it so that handlers reach it by the state.
    state.__dict__["triage"] = runtime

    from minsheng.api.routers import triage as triage_router

    app.include_router(triage_router.router)

    app.add_middleware(_OrgChangeWatch, on_change=runtime.mark_stale)


class _OrgChangeWatch:
    """ASGI middleware: a successful write to the org API (areas, categories, units), which belongs to another
    part, marks the triage snapshot stale so that the gazetteer and the routing table follow it.

    Plain ASGI rather than `@app.middleware("http")`: that wrapper streams every response of every route through
    an extra task, which costs more than most handlers.
    """

    def __init__(self, app: Any, on_change: Callable[[], None]) -> None:
        self.app = app
        self.on_change = on_change

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] == "GET" or not _ORG_PATHS.match(scope["path"]):
            await self.app(scope, receive, send)
            return

        async def watch(message: Any) -> None:
            if message["type"] == "http.response.start" and message["status"] < 300:
                self.on_change()
            await send(message)

        await self.app(scope, receive, watch)


_ORG_PATHS = re.compile(r"^/api/v1/(areas|categories|units)(/|$)")
