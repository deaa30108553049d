"""`TriageRuntime`: the live triage state of one process, and the engine's triage hook."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, func, or_, select
from sqlalchemy.orm import Session

from minsheng.domain.states import UnitKind
from minsheng.services import schemas as s
from minsheng.services.tickets import CLAIMED_KEY, PREPARED_KEY, TicketEngine, TriageDecision
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
    best_repeats,
    make_reason,
    request_text,
    strong_repeat_reason,
)
from minsheng.services.triage.clusters import record_cluster
from minsheng.services.triage.recent import RecentTickets, recent_rows
from minsheng.services.triage.settings import TriageConfig, read_settings
from minsheng.services.triage.snapshot import OrgSnapshot, fingerprint, load_org
from minsheng.services.triage.sql import chunks
from minsheng.services.triage.training import read_training_info, resolve_model_path
from minsheng.storage.db import Database
from minsheng.storage.models import Ticket
from minsheng.storage.triage_tables import TriageJob
from minsheng.triage.clusters import ClusterWarning
from minsheng.triage.jurisdiction import JurisdictionResult
from minsheng.triage.repeats import RepeatIndex, signature

if TYPE_CHECKING:
    from minsheng.config import Settings
    from minsheng.domain.clock import Clock

log = logging.getLogger("minsheng.triage")
# session.info key: a small repeat index of the tickets triaged in the session's open transaction.
BATCH_KEY = "triage_batch"


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
        self.recent: RecentTickets

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
            found = best_repeats([*found, *batch.query_since(text, area_code or NO_AREA, at, 0, sig=sig)])
        repeats = [(str(c.ticket_id), c.score, c.at) for c in found]

        reasons: list[dict[str, str]] = []
        if not auto_dispatch:
            reasons.append(make_reason("auto_dispatch_off", "自动派单未开启"))
        if source == "none":
            if model is None:
                reasons.append(
                    make_reason(
                        "no_model", "未加载分类模型" + (f"：{self.model_error}" if self.model_error else "")
                    )
                )
            elif not text:
                reasons.append(make_reason("no_text", "诉求内容为空（规范化后），无法分类"))
            elif best is None:
                reasons.append(make_reason("no_prediction", "模型未给出分类"))
            else:
                reasons.append(
                    make_reason(
                        "low_confidence", f"分类置信度 {best.confidence:.2f} 低于阈值 {threshold:.2f}"
                    )
                )
        if category_code and area_code is None and org.area_matters(category_code):
            why = jres.explanation if jres is not None else (jerr or "地址未能识别属地")
            reasons.append(make_reason("area_unknown", f"该分类按属地派单，但属地不明确：{why}"))
        elif area_code and area_source == "jurisdiction" and jres is not None and jres.ambiguous:
            reasons.append(make_reason("area_ambiguous", f"属地判定有歧义：{jres.explanation}"))
        lead: str | None = None
        if route is not None:
            if route.ambiguous:
                reasons.append(make_reason("route_ambiguous", route.explanation))
            elif route.lead_unit_id is None:
                reasons.append(make_reason("no_route", route.explanation))
            else:
                unit = org.units.get(route.lead_unit_id)
                if unit is None or not unit.active or unit.kind == UnitKind.EXTERNAL.value:
                    reasons.append(make_reason("unit_unavailable", f"主办单位 {route.lead_unit_id} 不可派"))
                else:
                    lead = route.lead_unit_id
        if signals.transfer:
            cues = "、".join(signals.cues.get("transfer", []))
            reasons.append(
                make_reason("transfer", f"建议转 {signals.transfer}" + (f"（{cues}）" if cues else ""))
            )
        if signals.urgency == "emergency":
            reasons.append(make_reason("emergency", "紧急情形，需人工确认"))
        strong = strong_repeat_reason(repeats, config)
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
                    "reasons": [make_reason("error", f"{type(e).__name__}: {e}")],
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
                recent_rows()
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
        reason = strong_repeat_reason(repeats, self.config)
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
            for chunk in chunks(new_ids):
                rows += session.execute(recent_rows().where(Ticket.id.in_(chunk))).all()
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


def _forget_pending(session: Session) -> None:
    session.info.pop("triage_pending", None)
    session.info.pop(BATCH_KEY, None)


_KINDS = {"consultation", "help", "complaint", "report", "suggestion", "praise"}
_URGENCIES = {"normal", "urgent", "emergency"}
