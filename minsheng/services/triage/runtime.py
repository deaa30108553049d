"""`TriageRuntime`: the live triage state of one process (model, org snapshot, recent tickets) and the engine's
triage hook.

It is built at start-up (`minsheng.bootstrap`), never at import. The hook runs
inside the intake transaction and returns a `TriageDecision` whose ``explanation`` lands in ``ticket.triage``
(which rule, which model score, which cues, why the ticket was or was not auto-dispatched; see `analysis`). A
missing or broken model never stops intake: everything then simply goes to the dispatchers' queue.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from minsheng.services import schemas as s
from minsheng.services.tickets import PREPARED_KEY, TicketEngine, TriageDecision
from minsheng.services.triage.adapters import (
    Classification,
    ClassifierLike,
    SignalsView,
    classify,
    detect_signals,
)
from minsheng.services.triage.analysis import (
    NO_AREA,
    Analysis,
    area_reasons,
    best_repeats,
    category_reasons,
    choose_area,
    choose_category,
    consultation_reasons,
    dispatch_if_clear,
    make_reason,
    request_text,
    resolve_area,
    route_lead,
    route_suggestions,
    signal_reasons,
    strong_repeat_reason,
)
from minsheng.services.triage.clusters import record_cluster
from minsheng.services.triage.recent import RecentTickets, recent_rows
from minsheng.services.triage.settings import TriageConfig, read_settings
from minsheng.services.triage.snapshot import OrgSnapshot, fingerprint, load_org
from minsheng.services.triage.sync import RecentSync
from minsheng.services.triage.training import read_training_info, resolve_model_path
from minsheng.storage.db import Database
from minsheng.storage.models import Ticket
from minsheng.triage.repeats import RepeatIndex, signature

if TYPE_CHECKING:
    from minsheng.config import Settings
    from minsheng.domain.clock import Clock

log = logging.getLogger("minsheng.triage")
# session.info key: a small repeat index of the tickets triaged in the session's open transaction.
BATCH_KEY = "triage_batch"


class TriageRuntime(RecentSync):
    """The live triage state of one process: model, org snapshot, recent tickets; reloadable.

    Keeping up with the tickets other processes take (`catch_up`, intake's look) comes from `RecentSync`.
    """

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
        self._init_sync(clock.now())

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
        # Imported here: scikit-learn and scipy cost a second of start-up that processes without a model skip.
        from minsheng.triage import classifier as clf

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
                recent = RecentTickets(config, org)
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
                recent = RecentTickets(config, org)
                self._fill_recent(session, recent, config, org)
                self.recent = recent
            self.org, self.config = org, config
            self._checked_at = time.monotonic()

    def _fill_recent(
        self, session: Session, recent: RecentTickets, config: TriageConfig, org: OrgSnapshot
    ) -> None:
        now = self.clock.now()
        since = now - timedelta(days=max(config.repeat_window_days, config.cluster_window_days))
        cluster_since = now - timedelta(days=config.cluster_window_days)
        q = (
            recent_rows()
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
        if fingerprint(session) != self.org.fingerprint:
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
        kind: str | None = None,
    ) -> Analysis:
        """``classification``: reuse one already made; ``batch``: the tickets of the current transaction, not yet
        in the repeat index, which are repeat candidates too; ``kind``: the request's kind (a consultation
        is answered at the desk unless its route says otherwise)."""
        org, config, model = self.org, self.config, self.model
        text = request_text(title, detail)
        if classification is None:
            classification = classify(model, text, prediction)
        signals = self.detect_signals(text)
        threshold = self.threshold
        jres, jerr = resolve_area(org, title, detail, address, lat, lon)
        area_code, area_source = choose_area(area_code, jres, config.jurisdiction_min_confidence)
        best = classification.best
        category_code, source = choose_category(category_code, best, threshold, org)
        route = org.table.route(category_code, area_code) if category_code else None
        suggestions = route_suggestions(org, classification, area_code)
        seen, sig, repeats = self._repeats(text, area_code, at, batch)

        reasons = [] if auto_dispatch else [make_reason("auto_dispatch_off", "自动派单未开启")]
        if source == "none":
            reasons += category_reasons(model is not None, self.model_error, text, best, threshold)
        reasons += area_reasons(org, category_code, area_code, area_source, jres, jerr)
        route_problems, lead = route_lead(org, route)
        reasons += route_problems + signal_reasons(signals) + consultation_reasons(kind, route)
        strong = strong_repeat_reason(repeats, config)
        if strong is not None:
            reasons.append(strong)
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
            dispatch=dispatch_if_clear(reasons, lead, route),
            model_version=self.model_version,
            org=org,
            seen=seen,
            signature=sig,
        )

    def _repeats(
        self, text: str, area_code: str | None, at: datetime, batch: RepeatIndex | None
    ) -> tuple[tuple[Any, int], Any, list[tuple[str, float, datetime]]]:
        """The recent-ticket state looked in and its generation, the text's signature, and the repeats found
        (in the index, and in ``batch``)."""
        recent = self.recent
        sig = signature(text) if text else None
        with recent.lock:
            seen = (recent, recent.repeats.generation)
            found = recent.repeats.query(text, area_code or NO_AREA, at, limit=5, sig=sig) if text else []
        if batch is not None and text:
            found = best_repeats([*found, *batch.query_since(text, area_code or NO_AREA, at, 0, sig=sig)])
        return seen, sig, [(str(c.ticket_id), c.score, c.at) for c in found]

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
            kind=getattr(req.kind, "value", req.kind),
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
            a = self._analysis_in_transaction(session, ticket, req, now)
        except Exception as e:
            # Triage is advice: if it breaks, the ticket is still taken and waits for a dispatcher.
            log.exception("triage failed for ticket %s", ticket.number)
            return TriageDecision(
                explanation={
                    "version": 1,
                    "decision": "queue",
                    "reasons": [make_reason("error", f"{type(e).__name__}: {e}")],
                }
            )
        kind = a.signals.kind if a.signals.kind in _KINDS else None
        urgency = a.signals.urgency if a.signals.urgency in _URGENCIES else None
        return TriageDecision(
            category_code=a.category_code if a.category_source == "model" else None,
            area_code=a.area_code if a.area_source == "jurisdiction" else None,
            kind=kind,
            urgency=urgency,
            dispatch=a.dispatch,
            explanation=a.explanation(),
            after=lambda: self._after_intake(session, ticket, a, now),
        )

    def _analysis_in_transaction(
        self, session: Session, ticket: Ticket, req: s.IntakeRequest, now: datetime
    ) -> Analysis:
        """The request's analysis as it stands inside its transaction: the one `prepare` made, if still valid,
        with the repeat candidates that turned up since; else a new one."""
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
        return a

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
        reason = strong_repeat_reason(repeats, self.config)
        if reason is not None:
            reasons.append(reason)
        return replace(a, repeats=repeats, reasons=reasons, dispatch=a.dispatch if not reasons else None)

    def forget(self, number: str) -> None:
        with self.recent.lock:
            self.recent.repeats.remove(number)


def _forget_pending(session: Session) -> None:
    session.info.pop("triage_pending", None)
    session.info.pop(BATCH_KEY, None)


_KINDS = {"consultation", "help", "complaint", "report", "suggestion", "praise"}
_URGENCIES = {"normal", "urgent", "emergency"}
