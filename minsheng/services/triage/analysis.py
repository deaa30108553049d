"""`Analysis`: what triage found out about one request, the steps that find it, and the explanation stored on the
ticket.

A ticket is auto-dispatched only when every one of these holds: auto-dispatch is on, the category is certain
(given by the operator, or predicted with confidence ≥ the threshold), the area is known where the routing table
cares about it, the route names one lead unit that can take a dispatch, no transfer (110/119/120/122) or
emergency signal, and no strong repeat. Otherwise the ticket waits in the dispatchers' queue with the top
suggestions; each reason that kept it there is named in the explanation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from minsheng.domain.states import Kind, UnitKind
from minsheng.services import schemas as s
from minsheng.services.triage.adapters import Classification, Guess, SignalsView
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


# ------------------------------------------------------------------------------------------- analysis steps
def resolve_area(
    org: OrgSnapshot,
    title: str | None,
    detail: str | None,
    address: str | None,
    lat: float | None,
    lon: float | None,
) -> tuple[JurisdictionResult | None, str | None]:
    """The gazetteer's answer for a request, or the error that stopped it."""
    # Callers often say where only in their own words ("幸福路街道阳光社区门口…"): title and detail are read
    # too, one per line, but they may only fill a gap or refine the address or point, never overrule them.
    words = "\n".join(x for x in (request_text(title, None), request_text(None, detail)) if x)
    if org.jurisdiction is None or not (address or lat is not None or words):
        return None, None
    try:
        return org.jurisdiction.resolve(address, lat, lon, detail_text=words), None
    except ValueError as e:
        return None, str(e)


def choose_area(
    area_code: str | None, jres: JurisdictionResult | None, min_confidence: float
) -> tuple[str | None, str]:
    """The area and where it came from: operator | jurisdiction | none."""
    if area_code:
        return area_code, "operator"
    if jres is not None and jres.confidence >= min_confidence:
        return jres.area_code, "jurisdiction"
    return area_code, "none"


def choose_category(
    category_code: str | None, best: Guess | None, threshold: float, org: OrgSnapshot
) -> tuple[str | None, str]:
    """The category and where it came from: operator | model (confident, and a known category) | none."""
    if category_code:
        return category_code, "operator"
    if best is not None and best.confidence >= threshold and best.label in org.categories:
        return best.label, "model"
    return category_code, "none"


def route_suggestions(
    org: OrgSnapshot, classification: Classification, area_code: str | None
) -> list[dict[str, Any]]:
    """The model's top categories that exist, each with the route the table gives it in the area."""
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
    return suggestions


def category_reasons(
    has_model: bool, model_error: str | None, text: str, best: Guess | None, threshold: float
) -> list[dict[str, str]]:
    """Why the model gave no category (for a request that came without one)."""
    if not has_model:
        return [make_reason("no_model", "未加载分类模型" + (f"：{model_error}" if model_error else ""))]
    if not text:
        return [make_reason("no_text", "诉求内容为空（规范化后），无法分类")]
    if best is None:
        return [make_reason("no_prediction", "模型未给出分类")]
    return [make_reason("low_confidence", f"分类置信度 {best.confidence:.2f} 低于阈值 {threshold:.2f}")]


def area_reasons(
    org: OrgSnapshot,
    category_code: str | None,
    area_code: str | None,
    area_source: str,
    jres: JurisdictionResult | None,
    jerr: str | None,
) -> list[dict[str, str]]:
    """An area unknown where the routing table needs it, or one the gazetteer found ambiguous."""
    if category_code and area_code is None and org.area_matters(category_code):
        why = jres.explanation if jres is not None else (jerr or "地址未能识别属地")
        return [make_reason("area_unknown", f"该分类按属地派单，但属地不明确：{why}")]
    if area_code and area_source == "jurisdiction" and jres is not None and jres.ambiguous:
        return [make_reason("area_ambiguous", f"属地判定有歧义：{jres.explanation}")]
    return []


def route_lead(org: OrgSnapshot, route: RouteDecision | None) -> tuple[list[dict[str, str]], str | None]:
    """The lead unit the route names when it can take a dispatch; otherwise the reason why not."""
    if route is None:
        return [], None
    if route.ambiguous:
        return [make_reason("route_ambiguous", route.explanation)], None
    if route.lead_unit_id is None:
        return [make_reason("no_route", route.explanation)], None
    unit = org.units.get(route.lead_unit_id)
    if unit is None or not unit.active or unit.kind == UnitKind.EXTERNAL.value:
        return [make_reason("unit_unavailable", f"主办单位 {route.lead_unit_id} 不可派")], None
    return [], route.lead_unit_id


def consultation_reasons(kind: str | None, route: RouteDecision | None) -> list[dict[str, str]]:
    """A consultation (咨询) is answered at the desk from the knowledge base, not sent to a unit, unless the
    routing rule that matched it says that its units take consultations."""
    if kind != Kind.CONSULTATION.value or (route is not None and route.takes_consultations):
        return []
    return [make_reason("consultation", "咨询件：由受理员依知识库直接答复（派单规则未指定承办此类咨询）")]


def signal_reasons(signals: SignalsView) -> list[dict[str, str]]:
    """A suggested transfer (110/119/120/122) or an emergency: a person decides."""
    reasons = []
    if signals.transfer:
        cues = "、".join(signals.cues.get("transfer", []))
        reasons.append(
            make_reason("transfer", f"建议转 {signals.transfer}" + (f"（{cues}）" if cues else ""))
        )
    if signals.urgency == "emergency":
        reasons.append(make_reason("emergency", "紧急情形，需人工确认"))
    return reasons


def dispatch_if_clear(
    reasons: list[dict[str, str]], lead: str | None, route: RouteDecision | None
) -> s.Dispatch | None:
    """The automatic dispatch, when no reason stands against it."""
    if reasons or lead is None or route is None:
        return None
    assists = [u for u in route.assist_unit_ids if u != lead]
    return s.Dispatch(lead_unit=lead, assist_units=assists, note=f"自动派单：{route.explanation}"[:2000])
