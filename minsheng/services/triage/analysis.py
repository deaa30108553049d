"""`Analysis`: what triage found out about one request, and the explanation stored on the ticket."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from minsheng.services import schemas as s
from minsheng.services.triage.adapters import Classification, SignalsView
from minsheng.services.triage.settings import TriageConfig
from minsheng.services.triage.snapshot import OrgSnapshot
from minsheng.triage.jurisdiction import JurisdictionResult
from minsheng.triage.routing import RouteDecision

NO_AREA = "?"
# Text beyond this carries no extra signal for any of the detectors (the subject is stated early), and cutting it
# keeps a pasted 100,000-character detail from costing more than an ordinary request.
MAX_TEXT = 3000


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
            "route": route_json(self.route, org),
            "repeats": [
                {"number": n, "score": round(sc, 3), "at": at.isoformat()} for n, sc, at in self.repeats
            ],
            "suggestions": self.suggestions,
        }
        notes = [x for x in (self.classification.error, self.signals.note) if x]
        if notes:
            out["notes"] = notes
        return out


def route_json(route: RouteDecision | None, org: OrgSnapshot) -> dict[str, Any] | None:
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


def make_reason(code: str, text: str) -> dict[str, str]:
    return {"code": code, "text": text}


def strong_repeat_reason(
    repeats: list[tuple[str, float, datetime]], config: TriageConfig
) -> dict[str, str] | None:
    """A strong repeat keeps the ticket for a dispatcher to link (the best one is named)."""
    strong = [r for r in repeats if r[1] >= config.repeat_strong]
    if not strong:
        return None
    return make_reason(
        "strong_repeat", f"疑似重复件：{strong[0][0]}（相似度 {strong[0][1]:.2f}），请派单员判断"
    )


def best_repeats(found: list[Any], limit: int = 5) -> list[Any]:
    best: dict[Any, Any] = {}
    for c in found:
        if c.ticket_id not in best or c.score > best[c.ticket_id].score:
            best[c.ticket_id] = c
    return sorted(best.values(), key=lambda c: (-c.score, -c.at.timestamp()))[:limit]
