"""The city's clock configuration kept in the database (issue 17 §3): presets applied into editable policy rows,
and the repeated-failure ladder (黔西) with its period, levels and counting rules.

Before anything is stored, the environment's preset (``MINSHENG_CLOCK_PRESET``, read into `TimeLimitConfig`) is
the first-start default: its policies are the fallback of `PolicyBook` and its ladder the fallback here. Once an
admin applies a preset or saves the ladder on the admin pages, the stored rows win.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from minsheng.services.errors import Invalid, NotFound
from minsheng.services.timelimits.config import TimeLimitConfig
from minsheng.services.timelimits.policies import policy_from_row, policy_to_json
from minsheng.storage.config_tables import CitySetting
from minsheng.storage.models import Category
from minsheng.storage.timelimit_tables import TimeLimitPolicy as PolicyRow
from minsheng.timelimits import presets
from minsheng.timelimits.escalation import EscalationError, RepeatedFailureLadder
from minsheng.timelimits.policy import STANDARD_STEPS, PolicySet, TimeLimitPolicy

PRESET_KEY = "clock_preset"
LADDER_KEY = "repeated_failures"
# The five cities of PRODUCT.md and the demo city's default, as the admin page names them.
PRESET_LABELS = {
    "qiannan": "黔南州政务110（签收15分钟，30分钟/1小时升级）",
    "jiaxing": "嘉兴民声一键办（1/2/3分钟，主城区10分钟到场）",
    "chengdu": "成都网络理政（5个工作日答复，复杂件15个）",
    "haikou": "海口12345（30分钟响应，轮值指挥长）",
    "qianxi": "黔西市110社会联动（屡次超时逐级上报）",
    "demo": "示例城市（按紧急程度）",
}
MAX_LEVELS = 10
MAX_PERIOD_DAYS = 366


# --------------------------------------------------------------------------------- repeated failures
@dataclass(frozen=True)
class FailureRules:
    """黔西's ladder as an admin edits it: a unit's n-th failure within ``period_days`` goes to ``levels[n-1]``.

    What counts as a failure: a missed sign deadline (``missed_signs``), a late answer, i.e. a missed
    ``feedback`` deadline (``late_answers``), and a unit returning a ticket (``returns``).
    """

    enabled: bool = False
    period_days: float = 30
    levels: tuple[str, ...] = ("unit_leader", "deputy_mayor", "mayor")
    missed_signs: bool = True
    late_answers: bool = False
    returns: bool = False

    def ladder(self) -> RepeatedFailureLadder | None:
        if not self.enabled:
            return None
        return RepeatedFailureLadder(timedelta(days=self.period_days), self.levels)

    @property
    def steps(self) -> frozenset[str]:
        """The deadline steps whose overdue mark counts as a failure."""
        return frozenset({"sign"} if self.missed_signs else set()) | (
            {"feedback"} if self.late_answers else set()
        )

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "levels": list(self.levels)}


def check_rules(
    enabled: bool,
    period_days: float,
    levels: Sequence[str],
    missed_signs: bool,
    late_answers: bool,
    returns: bool,
) -> FailureRules:
    """The rules, or Invalid naming the field at fault."""
    levels = tuple(x.strip() for x in levels if x.strip())
    if not 0 < period_days <= MAX_PERIOD_DAYS:
        raise Invalid(
            f"统计周期须在 1 至 {MAX_PERIOD_DAYS} 天之间（收到 {period_days:g}）", field="period_days"
        )
    if not levels:
        raise Invalid("至少需要一个上报层级", field="levels")
    if len(levels) > MAX_LEVELS:
        raise Invalid(f"上报层级至多 {MAX_LEVELS} 个", field="levels")
    if any(len(x) > 32 or not x.replace("_", "").isalnum() for x in levels):
        raise Invalid("层级须为角色代码（字母、数字、下划线，至多32个字符）", field="levels")
    if enabled and not (missed_signs or late_answers or returns):
        raise Invalid("启用时至少选择一种计为超时的情形", field="counting")
    rules = FailureRules(enabled, float(period_days), levels, missed_signs, late_answers, returns)
    try:
        RepeatedFailureLadder(timedelta(days=rules.period_days), rules.levels)
    except EscalationError as err:
        raise Invalid(str(err)) from None
    return rules


def _from_config(config: TimeLimitConfig) -> FailureRules:
    ladder = config.repeated_failures
    if ladder is None:
        return FailureRules()
    return FailureRules(
        True,
        ladder.period.total_seconds() / 86400,
        ladder.steps,
        "sign" in config.repeated_failure_steps,
        "feedback" in config.repeated_failure_steps,
        False,
    )


def _rules_from_json(value: Mapping[str, Any]) -> FailureRules:
    return FailureRules(
        bool(value.get("enabled")),
        float(value.get("period_days", 30)),
        tuple(value.get("levels") or ()),
        bool(value.get("missed_signs", True)),
        bool(value.get("late_answers")),
        bool(value.get("returns")),
    )


def failure_rules(session: Session, config: TimeLimitConfig) -> tuple[FailureRules, bool]:
    """The ladder the engine uses, and whether it is stored (False: the environment's first-start default)."""
    row = session.get(CitySetting, LADDER_KEY)
    if row is None:
        return _from_config(config), False
    return _rules_from_json(row.value), True


def _put(session: Session, key: str, value: dict[str, Any], now: datetime) -> None:
    row = session.get(CitySetting, key)
    if row is None:
        session.add(CitySetting(key=key, value=value, updated_at=now))
    else:
        row.value, row.updated_at = value, now
    session.flush()


def save_rules(session: Session, rules: FailureRules, now: datetime) -> None:
    _put(session, LADDER_KEY, rules.to_json(), now)


# ----------------------------------------------------------------------------------------------- presets
def applied_preset(session: Session, config_default: str) -> tuple[str, datetime | None]:
    """The preset applied last (name, when), or the environment's default with no time."""
    row = session.get(CitySetting, PRESET_KEY)
    if row is None:
        return config_default, None
    return str(row.value.get("name", "")), row.updated_at


def _preset(name: str, session: Session) -> presets.ClockPreset:
    factory = presets.PRESETS.get(name)
    if factory is None:
        raise NotFound(f"没有名为 {name} 的预设", known=sorted(presets.PRESETS))
    if name == "chengdu":
        parents = _category_parents(session)
        return presets.chengdu((), parents)
    return factory()


def apply_preset(session: Session, name: str, now: datetime) -> int:
    """Replace the active policies by the preset's (the old rows are soft-deleted, so audited) and store its
    repeated-failure ladder (off for presets without one). Returns the number of policies written."""
    preset = _preset(name, session)
    for row in session.scalars(select(PolicyRow).where(PolicyRow.deleted_at.is_(None))):
        row.deleted_at, row.active = now, False
    session.flush()
    written = 0
    for policy in preset.policies.policies.values():
        data = policy_to_json(policy)
        row = PolicyRow(
            **{k: data[k] for k in ("name", "category_code", "urgency", "zone", "limits", "warn_at")}
        )
        row.escalation, row.active, row.updated_at = data["escalation"], True, now
        session.add(row)
        written += 1
    ladder = preset.repeated_failures
    rules = (
        FailureRules(True, ladder.period.total_seconds() / 86400, ladder.steps, True, False, False)
        if ladder is not None
        else FailureRules(False)
    )
    save_rules(session, rules, now)
    _put(session, PRESET_KEY, {"name": name}, now)
    return written


# ---------------------------------------------------------------------------------- where values come from
def _category_parents(session: Session) -> dict[str, str | None]:
    cats = {c.id: c for c in session.scalars(select(Category))}
    return {c.code: (cats[c.parent_id].code if c.parent_id in cats else None) for c in cats.values()}


@dataclass(frozen=True)
class StepSource:
    """One step of one policy: its limit, and whether it is set here or inherited (and from which policy)."""

    step: str
    amount: float | None
    unit: str | None
    here: bool
    source: str
    ladder: str  # "本条设定", "沿用上级" or "" (no escalation ladder for the step)


@dataclass(frozen=True)
class PolicyView:
    row: PolicyRow
    steps: list[StepSource]
    warn_at: tuple[float, ...]
    warn_source: str


def _label(p: TimeLimitPolicy) -> str:
    return p.name or "／".join(x or "任意" for x in p.key)


def policy_views(session: Session, fallback: PolicySet) -> tuple[list[PolicyView], bool]:
    """Every stored policy with, step by step, where its value comes from (set here, or inherited from the
    next matching policy: parent category, any urgency, any zone); and whether the rows are the preset's
    fallback (no stored policy yet)."""
    rows = list(
        session.scalars(select(PolicyRow).where(PolicyRow.deleted_at.is_(None)).order_by(PolicyRow.id))
    )
    active = [r for r in rows if r.active]
    parents = _category_parents(session)
    try:
        pset = PolicySet([policy_from_row(r) for r in active], parents) if active else fallback
    except ValueError:
        pset = PolicySet([], parents)
    views = []
    for r in rows:
        own = policy_from_row(r)
        chain = [p for p in pset.candidates(r.category_code, r.urgency, r.zone) if p.key != own.key]
        steps_seen = list(
            dict.fromkeys([*STANDARD_STEPS, *own.limits, *(s for p in chain for s in p.limits)])
        )
        steps = []
        for step in steps_seen:
            inherited_ladder = any(step in p.escalation for p in chain)
            ladder = "本条设定" if step in own.escalation else ("沿用上级" if inherited_ladder else "")
            if step in own.limits:
                lim = own.limits[step]
                steps.append(StepSource(step, lim.amount, lim.unit, True, "本条设定", ladder))
                continue
            parent = next((p for p in chain if step in p.limits), None)
            if parent is None:
                steps.append(StepSource(step, None, None, False, "未设时限", ""))
            else:
                lim = parent.limits[step]
                steps.append(
                    StepSource(step, lim.amount, lim.unit, False, f"继承自「{_label(parent)}」", ladder)
                )
        if own.warn_at is not None:
            warn, wsrc = own.warn_at, "本条设定"
        else:
            parent = next((p for p in chain if p.warn_at is not None), None)
            warn = parent.warn_at if parent and parent.warn_at else (0.8,)
            wsrc = f"继承自「{_label(parent)}」" if parent else "系统默认"
        views.append(PolicyView(r, steps, tuple(warn), wsrc))
    return views, not rows
