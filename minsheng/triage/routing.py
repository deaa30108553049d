"""Routing table: category × area → lead and assisting units, with an explanation for every decision.

Rules name a category and an area at any level of their trees (or None for "any"); a ticket inherits the
rules of its category's and area's ancestors. Among the rules that apply, the most specific one wins,
compared in this order:

1. depth of the rule's category (a rule for the leaf category beats one for its parent, which beats "any");
2. depth of the rule's area (community beats street beats district beats "anywhere");
3. priority (higher wins).

Category comes first because the category decides which kind of unit can do the work at all, while the
area only picks among units of that kind. Rules left tied after all three that name different leads make
the decision ambiguous: no lead is returned and the dispatcher chooses among the candidates.

``suggest_corrections`` reads dispatch and return history and reports routes that units keep returning,
with the unit that usually ends up signing for those tickets.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field

__all__ = [
    "DispatchRecord",
    "ReturnRecord",
    "RouteCandidate",
    "RouteCorrection",
    "RouteDecision",
    "RoutingRule",
    "RoutingTable",
    "suggest_corrections",
]


@dataclass(frozen=True, slots=True)
class RoutingRule:
    """One row of the routing table."""

    id: str
    category_code: str | None
    area_code: str | None
    lead_unit_id: str
    assist_unit_ids: tuple[str, ...] = ()
    priority: int = 0
    enabled: bool = True
    takes_consultations: bool = False


@dataclass(frozen=True, slots=True)
class RouteCandidate:
    """A rule that tied for best, offered to the dispatcher when the decision is ambiguous."""

    rule_id: str
    lead_unit_id: str
    assist_unit_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RouteDecision:
    """The outcome of routing one ticket."""

    lead_unit_id: str | None
    assist_unit_ids: tuple[str, ...]
    rule_id: str | None
    ambiguous: bool
    candidates: tuple[RouteCandidate, ...]
    explanation: str
    category_match: str | None = None
    area_match: str | None = None
    #: The winning rule sends consultations (咨询) to its units too; otherwise they stay at the desk.
    takes_consultations: bool = False


def _ancestors(code: str | None, parents: Mapping[str, str | None]) -> list[str]:
    """``code`` and its ancestors, nearest first; stops at a cycle."""
    out: list[str] = []
    seen: set[str] = set()
    current = code
    while current is not None and current not in seen:
        seen.add(current)
        out.append(current)
        current = parents.get(current)
    return out


class RoutingTable:
    """Resolves category × area to units; build once per table version, then call ``route`` per ticket."""

    def __init__(
        self,
        rules: Iterable[RoutingRule],
        category_parents: Mapping[str, str | None],
        area_parents: Mapping[str, str | None],
    ) -> None:
        self.category_parents = category_parents
        self.area_parents = area_parents
        self._by_key: dict[tuple[str | None, str | None], list[RoutingRule]] = defaultdict(list)
        ids: set[str] = set()
        for rule in rules:
            if rule.id in ids:
                raise ValueError(f"duplicate routing rule id {rule.id!r}")
            ids.add(rule.id)
            if rule.enabled:
                self._by_key[(rule.category_code, rule.area_code)].append(rule)

    def _depth(self, code: str | None, parents: Mapping[str, str | None]) -> int:
        return 0 if code is None else len(_ancestors(code, parents))

    def route(self, category_code: str | None, area_code: str | None) -> RouteDecision:
        """The most specific enabled rule for this category and area (order: see the module docstring)."""
        cats: list[str | None] = [*_ancestors(category_code, self.category_parents), None]
        areas: list[str | None] = [*_ancestors(area_code, self.area_parents), None]
        best_key: tuple[int, int, int] | None = None
        best: list[RoutingRule] = []
        for cat in cats:
            cat_depth = self._depth(cat, self.category_parents)
            for area in areas:
                area_depth = self._depth(area, self.area_parents)
                for rule in self._by_key.get((cat, area), ()):
                    key = (cat_depth, area_depth, rule.priority)
                    if best_key is None or key > best_key:
                        best_key, best = key, [rule]
                    elif key == best_key:
                        best.append(rule)
        if not best:
            return RouteDecision(
                lead_unit_id=None,
                assist_unit_ids=(),
                rule_id=None,
                ambiguous=False,
                candidates=(),
                explanation=f"没有适用于分类 {category_code} / 区划 {area_code} 的派单规则，需人工派单",
            )
        best.sort(key=lambda r: r.id)
        leads = sorted({r.lead_unit_id for r in best})
        rule = best[0]
        where = self._why(rule, category_code, area_code)
        if len(leads) > 1:
            candidates = tuple(RouteCandidate(r.id, r.lead_unit_id, r.assist_unit_ids) for r in best)
            return RouteDecision(
                lead_unit_id=None,
                assist_unit_ids=(),
                rule_id=None,
                ambiguous=True,
                candidates=candidates,
                explanation=(
                    f"规则 {'、'.join(r.id for r in best)} 同样具体且优先级相同（{rule.priority}），"
                    f"主办单位不一致（{'、'.join(leads)}）：{where}，需人工选择"
                ),
                category_match=rule.category_code,
                area_match=rule.area_code,
            )
        # Tied rules that agree on the lead simply add up their assists.
        assists: list[str] = []
        for r in best:
            assists.extend(u for u in r.assist_unit_ids if u != rule.lead_unit_id and u not in assists)
        also = f"（并列规则 {'、'.join(r.id for r in best[1:])} 主办相同，协办合并）" if len(best) > 1 else ""
        return RouteDecision(
            lead_unit_id=rule.lead_unit_id,
            assist_unit_ids=tuple(assists),
            rule_id=rule.id,
            ambiguous=False,
            candidates=(),
            explanation=f"规则 {rule.id}：{where}，优先级 {rule.priority} → 主办 {rule.lead_unit_id}"
            + (f"，协办 {'、'.join(assists)}" if assists else "")
            + also,
            category_match=rule.category_code,
            area_match=rule.area_code,
            takes_consultations=rule.takes_consultations,
        )

    @staticmethod
    def _why(rule: RoutingRule, category_code: str | None, area_code: str | None) -> str:
        if rule.category_code is None:
            cat = "分类不限"
        elif rule.category_code == category_code:
            cat = f"分类 {rule.category_code}"
        else:
            cat = f"分类 {rule.category_code}（{category_code} 继承自上级）"
        if rule.area_code is None:
            area = "区划不限"
        elif rule.area_code == area_code:
            area = f"区划 {rule.area_code}"
        else:
            area = f"区划 {rule.area_code}（{area_code} 继承自上级）"
        return f"{cat}，{area}"


# -- return history ------


@dataclass(frozen=True, slots=True)
class DispatchRecord:
    """One assignment made to a unit (lead or assist), with the rule that chose it when there was one."""

    ticket_id: str
    unit_id: str
    category_code: str | None
    area_code: str | None
    rule_id: str | None = None


@dataclass(frozen=True, slots=True)
class ReturnRecord:
    """A unit sent the assignment back (退回); ``final_unit_id`` is who eventually signed, when known."""

    ticket_id: str
    unit_id: str
    final_unit_id: str | None = None
    reason: str = ""


RouteKey = tuple[Hashable, ...]


@dataclass(frozen=True, slots=True)
class RouteCorrection:
    """A route that units keep returning, and where its tickets usually end up."""

    route_key: RouteKey
    rule_id: str | None
    category_code: str | None
    area_code: str | None
    unit_id: str
    dispatches: int
    returns: int
    return_rate: float
    suggested_unit_id: str | None
    suggested_share: float
    final_units: tuple[tuple[str, int], ...]
    top_reasons: tuple[tuple[str, int], ...] = field(default=())
    explanation: str = ""


def _route_key(d: DispatchRecord) -> RouteKey:
    # A rule id names the route when we have one; manual dispatches are grouped by what they were about.
    if d.rule_id is not None:
        return ("rule", d.rule_id, d.unit_id)
    return ("manual", d.category_code, d.area_code, d.unit_id)


def suggest_corrections(
    returns: Iterable[ReturnRecord],
    dispatches: Iterable[DispatchRecord],
    *,
    min_return_rate: float = 0.3,
    min_dispatches: int = 10,
    min_share: float = 0.5,
) -> list[RouteCorrection]:
    """Routes with at least ``min_dispatches`` dispatches whose return rate is at least ``min_return_rate``.

    A unit is suggested when at least ``min_share`` of the returned tickets with a known final unit ended
    there.
    A ticket returned several times by the same unit counts once. Most returned routes first.
    """
    route_of: dict[tuple[str, str], RouteKey] = {}
    info: dict[RouteKey, DispatchRecord] = {}
    sent: Counter[RouteKey] = Counter()
    for d in dispatches:
        key = _route_key(d)
        if (d.ticket_id, d.unit_id) in route_of:
            continue
        route_of[(d.ticket_id, d.unit_id)] = key
        info.setdefault(key, d)
        sent[key] += 1

    returned: dict[RouteKey, set[str]] = defaultdict(set)
    finals: dict[RouteKey, Counter[str]] = defaultdict(Counter)
    reasons: dict[RouteKey, Counter[str]] = defaultdict(Counter)
    for r in returns:
        found = route_of.get((r.ticket_id, r.unit_id))
        if found is None or r.ticket_id in returned[found]:
            continue
        key = found
        returned[key].add(r.ticket_id)
        if r.final_unit_id is not None and r.final_unit_id != r.unit_id:
            finals[key][r.final_unit_id] += 1
        if r.reason:
            reasons[key][r.reason] += 1

    out: list[RouteCorrection] = []
    for key, n_sent in sent.items():
        n_ret = len(returned.get(key, ()))
        rate = n_ret / n_sent
        if n_sent < min_dispatches or rate < min_return_rate:
            continue
        d = info[key]
        final = sorted(finals[key].items(), key=lambda kv: (-kv[1], kv[0]))
        known = sum(c for _, c in final)
        suggested, share = (final[0][0], final[0][1] / known) if final else (None, 0.0)
        if share < min_share:
            suggested = None
        route = f"规则 {d.rule_id}" if d.rule_id else f"分类 {d.category_code} × 区划 {d.area_code}"
        explanation = f"{route} 派给 {d.unit_id} 的 {n_sent} 件中退回 {n_ret} 件（{rate:.0%}）"
        if suggested:
            explanation += f"；退回件中 {final[0][1]}/{known} 最终由 {suggested} 签收，建议改派给 {suggested}"
        elif final:
            explanation += "；退回件最终去向分散，暂无改派建议"
        else:
            explanation += "；退回件最终去向未知"
        out.append(
            RouteCorrection(
                route_key=key,
                rule_id=d.rule_id,
                category_code=d.category_code,
                area_code=d.area_code,
                unit_id=d.unit_id,
                dispatches=n_sent,
                returns=n_ret,
                return_rate=rate,
                suggested_unit_id=suggested,
                suggested_share=share,
                final_units=tuple(final),
                top_reasons=tuple(sorted(reasons[key].items(), key=lambda kv: (-kv[1], kv[0]))[:3]),
                explanation=explanation,
            )
        )
    out.sort(key=lambda c: (-c.returns, -c.return_rate, repr(c.route_key)))
    return out
