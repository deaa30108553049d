"""A year of ticket history for the demo city, as scripts of closed-loop steps.

:func:`generate_history` yields one :class:`TicketScript` per ticket, in order of creation: what the citizen
said, on which channel, and the steps (action, time, actor role, unit, params) that walk the ticket through
the loop. The seeder replays each script through the ticket engine, so the action names are the engine's
vocabulary (:data:`ACTIONS`) and every step is one the engine must accept at that point.

Semantics the seeder can rely on:

- ``created_at`` is intake; steps are strictly after it and in time order; nothing is later than ``end``, so
  the tickets of the last days stop where "now" finds them (waiting dispatch, dispatched not signed, in
  progress, close requested, closed not yet followed up), and a few of the last month stall (overdue).
- ``return`` is done by a unit that has not signed; ``redispatch`` follows it. Assisting units sign after the
  (re)dispatch and send feedback before the lead requests closing.
- After ``review_reject`` and after ``reopen`` the lead assignment is back in handling: the lead unit gives
  new feedback and requests closing again, without signing again.
- ``mark_repeat`` ends a ticket: ``of_index`` is the position of an earlier script in the same stream.
- Unit-scoped actions (sign, return, contact, arrive, feedback, request_close, request_extension) carry the
  acting unit's code; centre actions carry ``None``.

Volume follows office hours and weekdays, rises in summer, and has a few bursts: a cluster of similar
complaints in one street within days (the case the cluster warning must catch). A long history also holds the
planted hot topics of :mod:`minsheng.demo.hot_topics` (many citizens about one thing in one place over days).
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from itertools import accumulate
from typing import Any

from minsheng.demo.city import DEPARTMENTS, DemoCity, transfer_targets
from minsheng.demo.hot_topics import PlantedCall, plant_hot_topics
from minsheng.demo.texts import Citizen, RequestText, generate_citizen, generate_request

__all__ = [
    "ACTIONS",
    "CHANNELS",
    "RATINGS",
    "UNIT_ACTIONS",
    "Step",
    "TicketScript",
    "generate_history",
]

ACTIONS = (
    "answer_directly",
    "transfer",
    "dispatch",
    "sign",
    "return",
    "redispatch",
    "contact",
    "arrive",
    "feedback",
    "request_close",
    "review_accept",
    "review_reject",
    "request_extension",
    "decide_extension",
    "pause",
    "resume",
    "follow_up",
    "reopen",
    "mark_repeat",
    "confer",
)
UNIT_ACTIONS = frozenset(
    {"sign", "return", "contact", "arrive", "feedback", "request_close", "request_extension"}
)
RATINGS = ("satisfied", "basically_satisfied", "basically_dissatisfied", "dissatisfied")
# Channel mix: the phone line still carries most requests.
CHANNELS = {
    "phone": 50,
    "app": 14,
    "wechat": 12,
    "web": 8,
    "sms": 5,
    "grid": 6,
    "transfer_110": 3,
    "open311": 2,
}
_RATING_CUM = list(accumulate((76, 12, 5, 7)))  # about 88% satisfied or basically satisfied
_RATING_CUM_GOOD = list(accumulate((85, 12, 2, 1)))  # after a reopen, or for a direct answer
GPS_CHANNELS = frozenset({"app", "wechat", "grid", "open311"})
_CST = timezone(timedelta(hours=8))  # China has one fixed offset and no DST, so no tz database is needed
#: Histories of at least this many tickets (over 60 days or more) hold the planted hot topics by default.
HOT_TOPICS_FROM = 2000

# Requests per hour of the local day (relative): calls start at 7, peak mid-morning, dip at lunch, tail off
# late.
_DAILY = (
    0.15,
    0.08,
    0.05,
    0.04,
    0.05,
    0.1,
    0.3,
    0.8,
    1.6,
    2.2,
    2.3,
    2.0,
    1.3,
    1.4,
    1.9,
    2.0,
    1.8,
    1.5,
    1.1,
    1.0,
    0.9,
    0.7,
    0.45,
    0.25,
)
_WEEKDAY = (1.1, 1.0, 1.0, 1.0, 0.95, 0.7, 0.65)
# Summer brings power and water cuts, heat and noise; winter holidays are quieter.
_MONTH = (0.85, 0.8, 0.95, 1.0, 1.0, 1.1, 1.25, 1.25, 1.05, 1.0, 0.95, 0.9)
_L1_WEIGHTS = {
    "城乡建设": 16,
    "环境保护": 12,
    "交通运输": 8,
    "劳动和社会保障": 12,
    "教育文体": 7,
    "卫生健康": 6,
    "商贸旅游": 5,
    "市场监管": 9,
    "公共安全": 6,
    "民政": 5,
    "住房保障": 7,
    "农业农村": 3,
    "公用事业": 9,
}
_PATROL_L1 = {"城乡建设", "环境保护", "公共安全", "农业农村"}  # what grid workers find on patrol
_BURST_L3 = (
    "过期食品",
    "餐饮油烟",
    "停水",
    "施工噪音",
    "夜间施工",
    "垃圾清运",
    "拖欠工资",
    "道路积水",
    "停电",
    "商家跑路",
    "食物中毒",
    "工地扬尘",
)

_FINDINGS = (
    "经现场核实，情况属实",
    "经核实，情况基本属实",
    "经调查，反映情况部分属实",
    "工作人员已到现场查看",
)
_ACTIONS_BY_L1 = {
    "城乡建设": (
        "已安排施工队修复",
        "已责令施工单位整改并停止夜间施工",
        "已拆除违章搭建部分",
        "已督促物业限期整改",
    ),
    "环境保护": (
        "已责令商户安装油烟净化设施",
        "已对排污企业立案调查",
        "已约谈经营者并现场监测",
        "已安排保洁清运",
    ),
    "交通运输": ("已约谈公交公司并整改", "已调整信号灯配时", "已对违停车辆贴单处理", "已对驾驶员批评教育"),
    "劳动和社会保障": (
        "已约谈企业负责人督促支付工资",
        "已告知维权途径并受理投诉",
        "已协调补缴社保",
        "已答复政策",
    ),
    "教育文体": ("已约谈学校并责令整改", "已对无证机构取缔", "已协调机构退费", "已维修器材"),
    "卫生健康": ("已约谈医院并整改", "已开展消杀工作", "已组织调解", "已答复政策"),
    "商贸旅游": ("已组织商家与消费者调解", "已约谈旅行社", "已督促市场整改", "已协调快递公司赔偿"),
    "市场监管": ("已下架过期商品并立案调查", "已责令退款", "已对商户警告处理", "已检定计量器具"),
    "公共安全": ("已清理消防通道", "已对违规充电行为劝导整改", "已加强巡逻", "已告知办理流程"),
    "民政": ("已上门了解情况并协助申请", "已组织邻里调解", "已救助站接回安置", "已答复政策"),
    "住房保障": ("已约谈中介并督促退款", "已对群租房整治", "已督促开发商维修", "已答复政策"),
    "农业农村": ("已组织无害化处理", "已督促养殖场整改", "已召开村民代表会议公开村务", "已答复政策"),
    "公用事业": ("已安排抢修恢复供应", "已检修线路", "已更换计量表", "已疏通排水"),
}


def _words(*lines: str) -> list[str]:
    """Space-separated words written over several short lines (each Chinese character counts double)."""
    return " ".join(lines).split()


@dataclass(frozen=True)
class Step:
    action: str  # one of ACTIONS
    at: datetime
    actor_role: str  # operator, dispatcher, handler, supervisor, followup
    unit_code: str | None  # the acting unit for UNIT_ACTIONS
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TicketScript:
    channel: str
    kind: str
    urgency: str
    category_code: str  # level 3
    area_code: str  # grid
    text: RequestText
    citizen: Citizen
    confidential: bool
    public_consent: bool
    created_at: datetime
    steps: list[Step]


def _local(t: datetime) -> datetime:
    return t.astimezone(_CST) if t.tzinfo is not None else t + timedelta(hours=8)


def _minutes(rng: random.Random, median: float, sigma: float = 0.8, lo: float = 1.0) -> timedelta:
    """A log-normal delay: most steps are quick, a few take much longer, as in real queues."""
    return timedelta(minutes=max(lo, rng.lognormvariate(0, sigma) * median))


def _office_time(rng: random.Random, t: datetime, tier: int) -> datetime:
    """Tier-1 units work around the clock; others act in office hours (tier 3 not at weekends)."""
    if tier == 1:
        return t
    loc = _local(t)
    open_h, close_h = (7, 22) if tier == 2 else (8, 18)
    weekend_off = tier == 3
    moved = False
    while loc.hour < open_h or loc.hour >= close_h or (weekend_off and loc.weekday() >= 5):
        nxt = loc.replace(hour=open_h, minute=0, second=0, microsecond=0)
        if loc.hour >= open_h:
            nxt += timedelta(days=1)
        loc = nxt
        moved = True
    if not moved:
        return t
    return t + (loc - _local(t)) + timedelta(minutes=rng.uniform(10, 120))


class _Walker:
    """Builds the steps of one ticket. Holds the running clock so every step comes after the previous one."""

    def __init__(self, rng: random.Random, city: DemoCity, t: datetime) -> None:
        self.rng = rng
        self.city = city
        self.t = t
        self.steps: list[Step] = []

    def tier(self, unit: str) -> int:
        return self.city.unit_by_code[unit].duty_tier

    def add(
        self,
        action: str,
        delay: timedelta,
        role: str,
        unit: str | None = None,
        params: dict[str, Any] | None = None,
    ) -> datetime:
        at = self.t + delay
        if unit is not None:
            at = _office_time(self.rng, at, self.tier(unit))
        self.t = at
        self.steps.append(Step(action, at, role, unit, params or {}))
        return at

    def at(
        self, action: str, at: datetime, role: str, unit: str | None, params: dict[str, Any] | None = None
    ) -> None:
        """A step at a given time that does not move the running clock (assisting units work in parallel)."""
        self.steps.append(Step(action, at, role, unit, params or {}))


def generate_history(
    city: DemoCity,
    n_tickets: int = 20000,
    start: datetime | None = None,
    end: datetime | None = None,
    seed: int = 2026,
    hot_topics: bool | None = None,
) -> Iterator[TicketScript]:
    """Yield ``n_tickets`` scripts created between ``start`` and ``end`` (default: the 365 days before
    2026-06-01 UTC), in order of creation. ``end`` is "now": no step is later.

    ``hot_topics``: whether the planted hot topics (:mod:`minsheng.demo.hot_topics`) are among them; by default
    in a history of at least :data:`HOT_TOPICS_FROM` tickets over 60 days or more (the demo city, not the small
    cities of tests and simulations)."""
    if end is None:
        end = datetime(2026, 6, 1, tzinfo=UTC)
    if start is None:
        start = end - timedelta(days=365)
    rng = random.Random(seed)
    if hot_topics is None:
        hot_topics = n_tickets >= HOT_TOPICS_FROM and end - start >= timedelta(days=60)
    planted = plant_hot_topics(city, start, end, seed)[:n_tickets] if hot_topics else []
    times = _merge(_creation_times(rng, city, n_tickets - len(planted), start, end), planted)

    leaves = city.leaf_categories
    leaf_w = [
        _L1_WEIGHTS.get(city.category_by_code[c.code[:2]].name, 5) * rng.uniform(0.3, 1.7) for c in leaves
    ]
    # rng.choices re-accumulates plain weights on every call; cumulative ones are built once.
    leaf_cum = list(accumulate(leaf_w))
    patrol = [c for c in leaves if city.category_by_code[c.code[:2]].name in _PATROL_L1]
    transfers = transfer_targets()
    grids = city.grid_codes
    # People live more densely in 街道 (street code 0xx) than in towns (1xx) and townships (2xx).
    urban_cum = list(accumulate((3.0, 1.2, 0.6)[int(g[6])] for g in grids))
    rural_cum = list(accumulate((0.3, 1.5, 2.0)[int(g[6])] for g in grids))
    channels, channel_cum = list(CHANNELS), list(accumulate(CHANNELS.values()))
    recent: deque[tuple[int, datetime, str, str]] = deque()  # dispatched tickets a repeat may refer to

    for index, (created, burst, call) in enumerate(times):
        if call is not None:
            script = _planted_script(rng, city, call, end, transfers)
            if script.steps and script.steps[0].action == "dispatch":
                recent.append((index, created, call.category_code, call.area_code))
            yield script
            continue
        channel = rng.choices(channels, cum_weights=channel_cum)[0]
        repeat_of: tuple[int, datetime, str, str] | None = None
        while recent and created - recent[0][1] > timedelta(days=5):
            recent.popleft()
        if burst is not None:
            leaf_code, grid = burst[0], rng.choice(city.grids_under(burst[1]))
        elif recent and rng.random() < 0.035:
            repeat_of = rng.choice(recent)
            leaf_code, grid = repeat_of[2], repeat_of[3]
        else:
            if channel == "grid":
                leaf_code = rng.choice(patrol).code
            else:
                leaf_code = rng.choices(leaves, cum_weights=leaf_cum)[0].code
            while channel == "transfer_110" and leaf_code in transfers:
                leaf_code = rng.choices(leaves, cum_weights=leaf_cum)[
                    0
                ].code  # 110 hands us non-police matters
            rural = city.category_by_code[leaf_code[:2]].name == "农业农村"
            grid = rng.choices(grids, cum_weights=rural_cum if rural else urban_cum)[0]
        kind = None
        if channel == "grid":
            kind = "report"
        elif burst is not None or repeat_of is not None:
            kind = rng.choice(["complaint", "complaint", "help", "report"])
        text = generate_request(rng, city, leaf_code, grid, kind=kind, with_gps=channel in GPS_CHANNELS)
        confidential = rng.random() < 0.04
        script_steps = _walk(rng, city, created, end, leaf_code, grid, text, channel, repeat_of, transfers)
        if script_steps and script_steps[0].action == "dispatch":
            recent.append((index, created, leaf_code, grid))
        yield TicketScript(
            channel=channel,
            kind=text.kind,
            urgency=text.urgency,
            category_code=leaf_code,
            area_code=grid,
            text=text,
            citizen=generate_citizen(rng),
            confidential=confidential,
            public_consent=not confidential and rng.random() < 0.55,
            created_at=created,
            steps=script_steps,
        )


_Due = tuple[datetime, tuple[str, str] | None, PlantedCall | None]  # creation time, burst, planted call


def _merge(times: list[tuple[datetime, tuple[str, str] | None]], planted: list[PlantedCall]) -> list[_Due]:
    """The ordinary creation times and the planted calls, in one time order."""
    merged: list[_Due] = [(t, burst, None) for t, burst in times]
    merged += [(c.created_at, None, c) for c in planted]
    merged.sort(key=lambda x: x[0])
    return merged


def _planted_script(
    rng: random.Random, city: DemoCity, call: PlantedCall, end: datetime, transfers: dict[str, str]
) -> TicketScript:
    """A planted call walked through the loop like any other complaint."""
    steps = _walk(
        rng,
        city,
        call.created_at,
        end,
        call.category_code,
        call.area_code,
        call.text,
        call.channel,
        None,
        transfers,
    )
    return TicketScript(
        channel=call.channel,
        kind=call.text.kind,
        urgency=call.text.urgency,
        category_code=call.category_code,
        area_code=call.area_code,
        text=call.text,
        citizen=call.citizen,
        confidential=False,
        public_consent=rng.random() < 0.55,
        created_at=call.created_at,
        steps=steps,
    )


def _creation_times(
    rng: random.Random, city: DemoCity, n: int, start: datetime, end: datetime
) -> list[tuple[datetime, tuple[str, str] | None]]:
    """Creation times with daily, weekly and seasonal rhythm, plus bursts tagged (leaf code, street code)."""
    hours = max(1, int((end - start).total_seconds() // 3600))
    cum: list[float] = []
    total = 0.0
    for h in range(hours):
        loc = _local(start + timedelta(hours=h))
        total += _DAILY[loc.hour] * _WEEKDAY[loc.weekday()] * _MONTH[loc.month - 1] * (1 + 0.2 * h / hours)
        cum.append(total)
    leaves = {c.name: c.code for c in city.leaf_categories}
    streets = [a.code for a in city.areas_at("street")]
    out: list[tuple[datetime, tuple[str, str] | None]] = []
    n_bursts = max(2, n // 2500) if n >= 100 else 0
    for _ in range(n_bursts):
        size = rng.randint(6, 15)
        leaf = leaves[rng.choice(_BURST_L3)]
        street = rng.choice(streets)
        b_start = start + (end - start) * rng.uniform(0.02, 0.95)
        days = rng.uniform(2, 5)
        for _ in range(size):
            t = b_start + timedelta(days=days * rng.random())
            if t < end:
                out.append((t, (leaf, street)))
    for h in rng.choices(range(hours), cum_weights=cum, k=max(0, n - len(out))):
        out.append((start + timedelta(hours=h, seconds=rng.uniform(0, 3600)), None))
    out.sort(key=lambda x: x[0])
    return out[:n]


def _walk(
    rng: random.Random,
    city: DemoCity,
    created: datetime,
    end: datetime,
    leaf_code: str,
    grid: str,
    text: RequestText,
    channel: str,
    repeat_of: tuple[int, datetime, str, str] | None,
    transfers: dict[str, str],
) -> list[Step]:
    """The steps of one ticket, cut at ``end``: settled at intake (a repeat, a transfer, a direct answer), or
    dispatched, signed, handled, closed and followed up, each phase by its own function below. The phases draw
    from ``rng`` in a fixed order: the same seed gives the same history."""
    w = _Walker(rng, city, created)
    if _settled_at_intake(w, leaf_code, text, channel, repeat_of, transfers):
        return _until(w.steps, end)
    recent_ticket = end - created < timedelta(days=30)
    order = _dispatch(w, leaf_code, grid, text.urgency, created)
    if recent_ticket and rng.random() < 0.04:
        return _until(w.steps, end)  # stalled: nobody signed (overdue, escalation material)
    _sign(w, order, text.urgency)
    if recent_ticket and rng.random() < 0.02:
        return _until(w.steps, end)
    _handle(w, order, text)
    l1_name = city.category_by_code[leaf_code[:2]].name
    _close(w, order, text.urgency, l1_name)
    _follow_up(rng, w, order.lead, l1_name)
    return _until(w.steps, end)


@dataclass
class _Order:
    """Who handles a dispatched ticket, and when: the state the phases after dispatch share."""

    lead: str
    assists: list[str]
    dispatched_at: datetime  # of the (re)dispatch the units sign
    # Assisting units report after this: after every sign, and after a pause ends.
    reports_from: datetime
    assist_signs: dict[str, datetime] = field(default_factory=dict)


def _settled_at_intake(
    w: _Walker,
    leaf_code: str,
    text: RequestText,
    channel: str,
    repeat_of: tuple[int, datetime, str, str] | None,
    transfers: dict[str, str],
) -> bool:
    """A repeat marked, a police or other matter transferred, or a consultation answered on the line: the
    steps of such a ticket end here (True); False when it goes on to dispatch."""
    rng = w.rng
    if repeat_of is not None:
        w.add("mark_repeat", _minutes(rng, 20), "dispatcher", params={"of_index": repeat_of[0]})
        return True
    if (
        leaf_code in transfers
        and (text.urgency == "emergency" or rng.random() < 0.7)
        and channel != "transfer_110"
    ):
        w.add("transfer", _minutes(rng, 2, 0.5, 0.5), "operator", params={"target": transfers[leaf_code]})
        return True
    if text.kind == "consultation" and channel != "grid" and rng.random() < 0.88:
        topic = w.city.category_by_code[leaf_code].name
        answer = rng.choice(
            [
                f"已根据知识库向群众解答{topic}的办理流程和所需材料",
                f"已告知群众{topic}相关政策及咨询电话",
                f"已解答{topic}问题，群众表示清楚",
            ]
        )
        w.add("answer_directly", _minutes(rng, 6, 0.5), "operator", params={"text": answer})
        if rng.random() < 0.25:
            w.add(
                "follow_up",
                _minutes(rng, 60 * 24, 0.6),
                "followup",
                params={"rating": _rating(rng, good=True)},
            )
        return True
    return False


def _dispatch(w: _Walker, leaf_code: str, grid: str, urgency: str, created: datetime) -> _Order:
    """Dispatch by the routing table; now and then first to a wrong unit, which returns it for a redispatch."""
    rng, city = w.rng, w.city
    route = city.route(leaf_code, grid)
    assert route is not None, leaf_code  # every level-1 category has a city-wide rule
    lead, assists = route.lead_unit_code, list(route.assist_unit_codes)
    street_office = city.street_office_for(grid)
    if not lead.startswith("st") and street_office and rng.random() < 0.12:
        assists.append(street_office)  # the street helps the department on site
    assists = [a for a in dict.fromkeys(assists) if a != lead]
    dispatch_median = {"emergency": 4, "urgent": 15}.get(urgency, 45)
    if _local(created).hour < 7:
        dispatch_median += 120  # the night shift is thin
    wrong = rng.random() < 0.08
    first = _wrong_unit(rng, city, lead) if wrong else lead
    w.add(
        "dispatch",
        _minutes(rng, dispatch_median, 0.7),
        "dispatcher",
        params={"lead_unit": first, "assist_units": [] if wrong else assists},
    )
    if wrong:
        reason = rng.choice(
            [
                "该地址不在我单位辖区范围",
                "该事项不属于我单位职责",
                "经核实，应由其他单位负责",
                "该问题涉及产权单位，非我单位管辖",
            ]
        )
        w.add("return", _minutes(rng, 180, 1.0, 10), "handler", first, {"reason": reason})
        w.add(
            "redispatch",
            _minutes(rng, 30, 0.7),
            "dispatcher",
            params={"lead_unit": lead, "assist_units": assists, "reason": f"原承办单位退回：{reason}"},
        )
    return _Order(lead, assists, dispatched_at=w.t, reports_from=w.t)


def _sign(w: _Walker, order: _Order, urgency: str) -> None:
    """The lead signs on the running clock; assisting units sign in parallel, each in its own office hours."""
    rng = w.rng
    sign_median = {"emergency": 5, "urgent": 15}.get(urgency, 60)
    w.add("sign", _minutes(rng, sign_median, 0.9), "handler", order.lead)
    order.assist_signs = {
        a: _office_time(rng, order.dispatched_at + _minutes(rng, sign_median * 2, 0.9), w.tier(a))
        for a in order.assists
    }
    order.reports_from = max(order.assist_signs.values(), default=w.t)
    for a, at in order.assist_signs.items():
        w.at("sign", at, "handler", a)


def _handle(w: _Walker, order: _Order, text: RequestText) -> None:
    """Contact, a visit on site, and now and then a conference of the units (会商), a pause or an extension."""
    rng, lead, urgency = w.rng, order.lead, text.urgency
    w.add("contact", _minutes(rng, {"emergency": 5, "urgent": 20}.get(urgency, 120), 0.9), "handler", lead)
    if text.kind in ("complaint", "report", "help") and rng.random() < 0.7:
        w.add(
            "arrive", _minutes(rng, {"emergency": 15, "urgent": 60}.get(urgency, 480), 0.9), "handler", lead
        )
    if (order.assists and rng.random() < 0.15) or rng.random() < 0.015:
        lead_name = w.city.unit_by_code[lead].name
        decision = rng.choice(
            [
                f"由{lead_name}牵头，相关单位配合，三个工作日内完成整改",
                f"明确由{lead_name}负责处置，协办单位提供技术支持",
                "各单位按职责分工处置，五个工作日内反馈结果",
            ]
        )
        w.add(
            "confer",
            _minutes(rng, 60 * 24, 0.6),
            "supervisor",
            params={"decision": decision, "units": [lead, *order.assists]},
        )
    if rng.random() < 0.03:
        reason = rng.choice(
            ["等待群众提供补充材料", "需等待天气好转后施工", "涉及司法诉讼程序", "群众外出暂时无法联系"]
        )
        w.add("pause", _minutes(rng, 60 * 6, 0.8), "supervisor", params={"reason": reason})
        w.add("resume", _minutes(rng, 60 * 24 * 3, 0.6), "supervisor")
        # Assisting units do not report while the ticket is paused.
        order.reports_from = max(order.reports_from, w.t)
    if rng.random() < 0.05:
        reason = rng.choice(
            ["需要协调多个部门", "维修需要审批，时间较长", "需等待材料采购", "涉及历史遗留问题"]
        )
        w.add(
            "request_extension",
            _minutes(rng, 60 * 12, 0.8),
            "handler",
            lead,
            {"hours": rng.choice([24, 48, 72, 120]), "reason": reason},
        )
        w.add(
            "decide_extension", _minutes(rng, 180, 0.8), "supervisor", params={"approve": rng.random() < 0.8}
        )


def _close(w: _Walker, order: _Order, urgency: str, l1_name: str) -> None:
    """Feedback from the lead and the assisting units, the request to close, and its review (now and then
    rejected and reworked first)."""
    rng, lead = w.rng, order.lead
    handle_median = {"emergency": 90, "urgent": 60 * 8}.get(urgency, 60 * 24 * 2)
    w.add("feedback", _minutes(rng, handle_median, 0.9), "handler", lead, {"text": _feedback(rng, l1_name)})
    close_at = w.t + _minutes(rng, 20, 0.8)
    for a in order.assists:
        # Assists report before the lead asks to close (the loop requires it).
        lo = max(order.assist_signs[a], order.reports_from)
        at = lo + (close_at - lo) * rng.uniform(0.1, 0.9) if close_at > lo else lo + timedelta(minutes=1)
        w.at("feedback", at, "handler", a, {"text": _feedback(rng, l1_name)})
        close_at = max(close_at, at + timedelta(minutes=5))
    w.t = close_at - timedelta(minutes=1)
    w.add("request_close", timedelta(minutes=1), "handler", lead, {"text": "已处理完毕，申请结案"})
    if rng.random() < 0.06:
        reason = rng.choice(
            ["反馈内容过于简单，未说明处理结果", "未联系群众核实", "未附现场照片", "处理结果与诉求不符"]
        )
        w.add("review_reject", _minutes(rng, 240, 0.8), "supervisor", params={"reason": reason})
        _rework(rng, w, lead, l1_name)
    w.add("review_accept", _minutes(rng, 240, 0.8), "supervisor")


def _rework(rng: random.Random, w: _Walker, lead: str, l1_name: str) -> None:
    w.add("feedback", _minutes(rng, 60 * 24, 0.8), "handler", lead, {"text": _feedback(rng, l1_name)})
    w.add("request_close", _minutes(rng, 20, 0.8), "handler", lead, {"text": "已按要求重新处理，申请结案"})


def _follow_up(rng: random.Random, w: _Walker, lead: str, l1_name: str, second: bool = False) -> None:
    if rng.random() < 0.04:
        w.add("follow_up", _minutes(rng, 60 * 12, 0.7), "followup", params={"reached": False})
    rating = _rating(rng, good=second)
    w.add("follow_up", _minutes(rng, 60 * 16, 0.7), "followup", params={"rating": rating})
    if not second and rating in ("dissatisfied", "basically_dissatisfied") and rng.random() < 0.7:
        reason = rng.choice(
            ["群众表示问题未解决", "群众对处理结果不满意，要求重新处理", "群众反映处理不彻底，问题反复"]
        )
        w.add("reopen", _minutes(rng, 180, 0.8), "supervisor", params={"reason": reason})
        w.add("contact", _minutes(rng, 120, 0.8), "handler", lead)
        _rework(rng, w, lead, l1_name)
        w.add("review_accept", _minutes(rng, 240, 0.8), "supervisor")
        _follow_up(rng, w, lead, l1_name, second=True)


def _rating(rng: random.Random, good: bool = False) -> str:
    return rng.choices(RATINGS, cum_weights=_RATING_CUM_GOOD if good else _RATING_CUM)[0]


def _feedback(rng: random.Random, l1_name: str) -> str:
    action = rng.choice(_ACTIONS_BY_L1.get(l1_name, ("已处理",)))
    return f"{rng.choice(_FINDINGS)}。{action}，并已电话告知群众处理结果。"


def _wrong_unit(rng: random.Random, city: DemoCity, lead: str) -> str:
    """Where a dispatcher plausibly sends a ticket by mistake: a neighbouring street or another department."""
    if lead.startswith("st"):
        district = lead[2:8]
        others = [a.code for a in city.children.get(district, []) if "st" + a.code != lead]
        if others:
            return "st" + rng.choice(others)
    depts = [code for code, _name, _tier in DEPARTMENTS if code != lead]
    return rng.choice(depts)


def _until(steps: list[Step], end: datetime) -> list[Step]:
    """Steps in time order, cut at "now" (parallel assist steps are merged in by time)."""
    ordered = sorted(steps, key=lambda s: s.at)
    return [s for s in ordered if s.at <= end]
