"""The real time limits of PRODUCT.md ("Time limits and escalation") as data, plus the demo city's default.

Each factory returns a `ClockPreset`: a `PolicySet` and, where the city has one, a repeated-failure ladder.
Category codes differ from city to city, so the factories take the codes they need as arguments.
Escalation ``after`` times are measured from the deadline, so "not signed after 30 min" with a 15-minute sign
limit is a step 15 minutes after the deadline.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from minsheng.timelimits.escalation import EscalationLadder, EscalationStep, RepeatedFailureLadder
from minsheng.timelimits.policy import PolicySet, TimeLimit, TimeLimitPolicy, limits_of

MIN = timedelta(minutes=1)
HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class ClockPreset:
    name: str
    policies: PolicySet
    repeated_failures: RepeatedFailureLadder | None = None
    description: str = ""


def _press_only() -> EscalationLadder:
    return EscalationLadder((EscalationStep(timedelta(0), "press", "unit", "催办承办单位"),))


def qiannan() -> ClockPreset:
    """黔南州政务110: sign within 15 min; unsigned at 30 min → department leader; at 1 h → county leader."""
    ladder = EscalationLadder(
        (
            EscalationStep(timedelta(0), "press", "unit", "超时未签收，催办承办单位"),
            EscalationStep(15 * MIN, "notify", "unit_leader", "30分钟未签收，推送部门领导"),
            EscalationStep(45 * MIN, "notify", "district_leader", "1小时未签收，推送县（市）领导"),
        )
    )
    policy = TimeLimitPolicy(
        None,
        None,
        {"sign": TimeLimit("sign", 15, "minutes")},
        escalation={"sign": ladder},
        name="黔南 签收15分钟",
    )
    return ClockPreset("qiannan", PolicySet([policy]), description="黔南州政务110")


def jiaxing(
    labour_categories: Iterable[str] = ("labour_dispute",),
    consumer_categories: Iterable[str] = ("consumer_dispute",),
    urban_zone: str = "urban",
) -> ClockPreset:
    """嘉兴民声一键办: sign 1 min, contact 2 min, instructions 3 min; on site 10 min urban / 30 min elsewhere;
    labour and consumer disputes resolved within 24 h."""
    press = _press_only()
    base = TimeLimitPolicy(
        None,
        None,
        limits_of(
            TimeLimit("sign", 1, "minutes"),
            TimeLimit("contact", 2, "minutes"),
            TimeLimit("instruct", 3, "minutes"),
            TimeLimit("arrive", 30, "minutes"),
        ),
        escalation={step: press for step in ("sign", "contact", "instruct", "arrive")},
        name="嘉兴 1/2/3分钟，30分钟到场",
    )
    urban = TimeLimitPolicy(
        None,
        None,
        limits_of(TimeLimit("arrive", 10, "minutes")),
        zone=urban_zone,
        name="嘉兴 主城区10分钟到场",
    )
    disputes = [
        TimeLimitPolicy(
            code, None, limits_of(TimeLimit("resolve", 24, "hours")), name=f"嘉兴 {label}24小时办结"
        )
        for codes, label in ((labour_categories, "劳资纠纷"), (consumer_categories, "消费纠纷"))
        for code in codes
    ]
    return ClockPreset("jiaxing", PolicySet([base, urban, *disputes]), description="嘉兴民声一键办")


def haikou() -> ClockPreset:
    """海口12345: 30-minute response (签收); late responses go to the commander of the day."""
    ladder = EscalationLadder(
        (
            EscalationStep(timedelta(0), "press", "unit", "30分钟未响应，催办"),
            EscalationStep(30 * MIN, "notify", "duty_commander", "推送当日轮值指挥长"),
        )
    )
    policy = TimeLimitPolicy(
        None,
        None,
        limits_of(TimeLimit("sign", 30, "minutes")),
        escalation={"sign": ladder},
        name="海口 30分钟响应",
    )
    return ClockPreset("haikou", PolicySet([policy]), description="海口12345智慧联动平台")


def chengdu(
    complex_categories: Iterable[str] = (), category_parents: Mapping[str, str | None] | None = None
) -> ClockPreset:
    """成都网络理政: reply (``feedback``) within 5 working days, 15 for complex requests.

    Complex requests are those whose category is, or descends from, one of ``complex_categories``.
    """
    simple = TimeLimitPolicy(
        None,
        None,
        limits_of(TimeLimit("feedback", 5, "working_days")),
        escalation={"feedback": _press_only()},
        name="成都 5个工作日答复",
    )
    complex_ = [
        TimeLimitPolicy(
            code, None, limits_of(TimeLimit("feedback", 15, "working_days")), name="成都 复杂件15个工作日"
        )
        for code in complex_categories
    ]
    return ClockPreset(
        "chengdu", PolicySet([simple, *complex_], category_parents), description="成都网络理政平台"
    )


def qianxi(period: timedelta = timedelta(days=30)) -> ClockPreset:
    """黔西市110社会联动: a unit ignoring dispatch goes to its head, then the deputy mayor, then the mayor."""
    ladder = RepeatedFailureLadder(period, ("unit_leader", "deputy_mayor", "mayor"))
    return ClockPreset("qianxi", demo_city().policies, ladder, description="黔西市110社会联动中心")


def demo_city(category_parents: Mapping[str, str | None] | None = None) -> ClockPreset:
    """The demo city's default: limits by urgency, ladders unit → unit leader → district → city."""
    sign_ladder = EscalationLadder(
        (
            EscalationStep(timedelta(0), "press", "unit", "超时未签收，催办"),
            EscalationStep(30 * MIN, "notify", "unit_leader", "推送单位领导"),
            EscalationStep(HOUR, "notify", "district_leader", "推送区领导"),
        )
    )
    resolve_ladder = EscalationLadder(
        (
            EscalationStep(timedelta(0), "press", "unit", "超期未办结，催办"),
            EscalationStep(4 * HOUR, "notify", "unit_leader", "推送单位领导"),
            EscalationStep(24 * HOUR, "notify", "district_leader", "推送区领导"),
            EscalationStep(72 * HOUR, "notify", "city_leader", "推送市领导"),
        )
    )
    ladders = {"sign": sign_ladder, "feedback": _press_only(), "resolve": resolve_ladder}
    normal = TimeLimitPolicy(
        None,
        None,
        limits_of(
            TimeLimit("sign", 30, "minutes"),
            TimeLimit("contact", 2, "working_hours"),
            TimeLimit("feedback", 5, "working_days"),
            TimeLimit("resolve", 15, "working_days"),
        ),
        warn_at=(0.8,),
        escalation=ladders,
        name="默认 一般",
    )
    urgent = TimeLimitPolicy(
        None,
        "urgent",
        limits_of(
            TimeLimit("sign", 15, "minutes"),
            TimeLimit("contact", 1, "hours"),
            TimeLimit("arrive", 4, "hours"),
            TimeLimit("feedback", 24, "hours"),
            TimeLimit("resolve", 3, "working_days"),
        ),
        warn_at=(0.5, 0.8),
        name="默认 紧急",
    )
    emergency = TimeLimitPolicy(
        None,
        "emergency",
        limits_of(
            TimeLimit("sign", 5, "minutes"),
            TimeLimit("contact", 15, "minutes"),
            TimeLimit("arrive", 30, "minutes"),
            TimeLimit("feedback", 4, "hours"),
            TimeLimit("resolve", 24, "hours"),
        ),
        warn_at=(0.5, 0.8),
        name="默认 特急",
    )
    return ClockPreset(
        "demo", PolicySet([normal, urgent, emergency], category_parents), description="示例城市"
    )


PRESETS: dict[str, Callable[[], ClockPreset]] = {
    "demo": demo_city,
    "qiannan": qiannan,
    "jiaxing": jiaxing,
    "haikou": haikou,
    "chengdu": chengdu,
    "qianxi": qianxi,
}
