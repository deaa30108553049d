"""Kind, urgency and out-of-scope (transfer) detection from request text, by explainable cue rules.

These are pure functions over a request's words: no model, no I/O. Each result carries the value, a confidence
and the cues that matched, so an operator sees *why* a ticket was marked "emergency" or "transfer to 119". The cue
lists are deliberately short and readable; cities extend them by passing their own tables.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from minsheng.triage.textnorm import normalize

__all__ = [
    "KIND_CUES",
    "TRANSFER_CUES",
    "URGENCY_CUES",
    "Kind",
    "KindResult",
    "Signals",
    "Transfer",
    "TransferResult",
    "Urgency",
    "UrgencyResult",
    "cue_list",
    "detect",
    "detect_kind",
    "detect_transfer",
    "detect_urgency",
]


class Kind(StrEnum):
    consultation = "consultation"  # 咨询
    help = "help"  # 求助
    complaint = "complaint"  # 投诉
    report = "report"  # 举报
    suggestion = "suggestion"  # 建议
    praise = "praise"  # 表扬


class Urgency(StrEnum):
    normal = "normal"
    urgent = "urgent"
    emergency = "emergency"


class Transfer(StrEnum):
    police = "110"
    fire = "119"
    medical = "120"
    traffic = "122"


# Cue → weight. Weights rank competing kinds; a cue that names the kind outright ("我要投诉") outweighs a hint.
KIND_CUES: Mapping[Kind, Mapping[str, float]] = {
    Kind.consultation: {
        "咨询": 3, "请问": 2.5, "想问": 2.5, "问一下": 2.5, "了解一下": 2, "怎么办理": 2.5, "如何办理": 2.5,
        "需要什么材料": 2.5, "在哪里办": 2, "能否告知": 2, "是否可以": 1.5, "多久": 1, "吗?": 1, "什么时候": 1,
        "怎么": 1, "如何": 1,
    },
    Kind.help: {
        "求助": 3, "帮帮": 2.5, "帮忙": 2, "救救": 3, "急需": 2, "请求帮助": 3, "无法回家": 2, "被困": 2,
        "找不到": 1.5, "走失": 2.5, "没人管": 1,
    },
    Kind.complaint: {
        "投诉": 3, "不作为": 2.5, "态度恶劣": 2.5, "扰民": 2, "噪音": 1.5, "拖欠": 2, "乱收费": 2.5,
        "一直没有解决": 2, "得不到解决": 2, "严重影响": 1.5, "太差": 1.5, "不满": 1.5, "强烈要求": 1.5,
        "欺骗": 1.5, "拒不": 1.5,
    },
    Kind.report: {
        "举报": 3, "违法": 2, "违规": 1.5, "偷排": 2.5, "非法": 2, "私自": 1.5, "违建": 2, "违章搭建": 2.5,
        "无证经营": 2.5, "黑作坊": 2.5, "传销": 2.5, "涉嫌": 1.5,
    },
    Kind.suggestion: {
        "建议": 3, "希望能": 1.5, "能否增设": 2.5, "增设": 1.5, "希望政府": 1.5, "提议": 2.5, "意见": 1,
        "可否": 1, "应该": 0.5,
    },
    Kind.praise: {
        "表扬": 3, "感谢": 2, "谢谢": 1.5, "点赞": 2.5, "致谢": 2.5, "锦旗": 3, "为民办实事": 2, "辛苦了": 2,
        "非常满意": 2,
    },
}  # fmt: skip

URGENCY_CUES: Mapping[Urgency, Mapping[str, float]] = {
    Urgency.emergency: {
        "着火": 3, "起火": 3, "火灾": 3, "爆炸": 3, "有人受伤": 3, "受伤": 2, "被困": 3, "燃气泄漏": 3,
        "煤气泄漏": 3, "天然气泄漏": 3, "闻到煤气": 2.5, "坍塌": 3, "倒塌": 3, "触电": 3, "溺水": 3,
        "落水": 2.5, "昏迷": 3, "晕倒": 2.5, "生命危险": 3, "救命": 3, "出人命": 3, "跳楼": 3, "冒烟": 2,
        "漏电": 2, "危及生命": 3, "煤气中毒": 3, "车祸": 2.5,
    },
    Urgency.urgent: {
        "紧急": 2, "急": 1, "马上": 1.5, "立即": 1.5, "尽快": 1, "赶紧": 1.5, "刻不容缓": 2, "十万火急": 2.5,
        "停水": 1.5, "停电": 1.5, "爆管": 2, "水管爆裂": 2, "漏水": 1, "井盖": 1.5, "积水": 1, "危险": 1.5,
        "安全隐患": 1, "断水": 1.5, "没有暖气": 1, "老人": 0.5, "小孩": 0.5,
    },
}  # fmt: skip

TRANSFER_CUES: Mapping[Transfer, Mapping[str, float]] = {
    Transfer.police: {
        "打架": 3, "斗殴": 3, "盗窃": 3, "被偷": 3, "小偷": 2.5, "诈骗": 3, "被骗": 2.5, "抢劫": 3, "抢夺": 3,
        "杀人": 3, "持刀": 3, "砍人": 3, "家暴": 3, "殴打": 3, "打人": 2.5, "绑架": 3, "吸毒": 3, "贩毒": 3,
        "赌博": 2.5, "报警": 2, "威胁": 1.5, "敲诈": 3, "勒索": 2.5, "性侵": 3, "猥亵": 3, "失踪": 2,
    },
    Transfer.fire: {
        "着火": 3, "起火": 3, "火灾": 3, "失火": 3, "冒烟": 2, "浓烟": 2.5, "火警": 3, "烧起来": 3,
        "燃气泄漏": 2, "爆炸": 2, "被困电梯": 2,
    },
    Transfer.medical: {
        "晕倒": 3, "昏倒": 3, "昏迷": 3, "急救": 3, "救护车": 3, "心脏病": 2.5, "抽搐": 3, "大出血": 3,
        "呼吸困难": 3, "中毒": 2, "不省人事": 3, "受伤": 1.5, "有人受伤": 2, "骨折": 2, "溺水": 2,
    },
    Transfer.traffic: {
        "交通事故": 3, "车祸": 3, "追尾": 3, "撞车": 3, "被撞": 2.5, "撞人": 3, "肇事": 2.5, "逃逸": 2,
        "剐蹭": 2.5, "刮擦": 2, "翻车": 3, "酒驾": 2.5, "醉驾": 2.5,
    },
}  # fmt: skip

# A cue preceded closely by a negation ("没有着火", "不是诈骗") does not count.
_NEGATION = re.compile(r"(没有|并没|不是|并非|未|没|无)$")
_NEGATION_WINDOW = 3
_EXCLAIM = re.compile(r"!{2,}")


@dataclass(frozen=True)
class KindResult:
    value: Kind
    confidence: float
    cues: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class UrgencyResult:
    value: Urgency
    confidence: float
    cues: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TransferResult:
    """A suggested transfer out of the hotline; ``target`` is ``None`` when the request is in scope."""

    target: Transfer | None
    confidence: float
    cues: list[str] = field(default_factory=list)
    candidates: list[tuple[Transfer, float]] = field(default_factory=list)


@dataclass(frozen=True)
class Signals:
    kind: KindResult
    urgency: UrgencyResult
    transfer: TransferResult


def _matches(text: str, cues: Mapping[str, float]) -> tuple[float, list[str]]:
    """Total weight and the cues found in ``text``; longer cues hide the shorter ones they contain."""
    found: list[tuple[str, float]] = []
    covered: list[tuple[int, int]] = []
    for cue in sorted(cues, key=len, reverse=True):
        start = text.find(cue)
        hit = False
        while start != -1:
            end = start + len(cue)
            inside = any(a <= start and end <= b for a, b in covered)
            negated = _NEGATION.search(text[max(0, start - _NEGATION_WINDOW) : start]) is not None
            if not inside and not negated:
                covered.append((start, end))
                hit = True
            start = text.find(cue, start + 1)
        if hit:
            found.append((cue, cues[cue]))
    return sum(w for _, w in found), [c for c, _ in found]


def _confidence(best: float, runner_up: float) -> float:
    """Confidence grows with the winning weight and with its margin over the runner-up; never reaches 1."""
    strength = best / (best + 2.0)
    margin = (best - runner_up) / best if best > 0 else 0.0
    return round(min(0.99, strength * (0.6 + 0.4 * margin)), 3)


def _prepare(text: object) -> str:
    return normalize(text, max_chars=5000)


def detect_kind(
    text: object,
    *,
    cues: Mapping[Kind, Mapping[str, float]] = KIND_CUES,
    default: Kind = Kind.complaint,
) -> KindResult:
    """The kind of request. Without any cue, ``default`` with a low confidence (most hotline traffic is complaints
    and reports of problems; a question mark alone makes it a consultation)."""
    clean = _prepare(text)
    scores = {kind: _matches(clean, table) for kind, table in cues.items()}
    if clean.endswith("?") or clean.endswith("吗"):
        weight, found = scores.get(Kind.consultation, (0.0, []))
        scores[Kind.consultation] = (weight + 1.0, [*found, "?"])
    ranked = sorted(scores.items(), key=lambda kv: kv[1][0], reverse=True)
    if not ranked or ranked[0][1][0] <= 0:
        return KindResult(default, 0.2, [])
    best_kind, (best, found) = ranked[0]
    runner_up = ranked[1][1][0] if len(ranked) > 1 else 0.0
    return KindResult(best_kind, _confidence(best, runner_up), found)


def detect_urgency(
    text: object, *, cues: Mapping[Urgency, Mapping[str, float]] = URGENCY_CUES
) -> UrgencyResult:
    """``emergency`` on any danger-to-life cue, ``urgent`` on time-pressure cues, else ``normal``."""
    clean = _prepare(text)
    emergency, e_found = _matches(clean, cues.get(Urgency.emergency, {}))
    urgent, u_found = _matches(clean, cues.get(Urgency.urgent, {}))
    exclaim = _EXCLAIM.findall(clean)
    if exclaim:
        urgent += 0.5
        u_found = [*u_found, exclaim[0]]
    if emergency >= 2.0:
        return UrgencyResult(Urgency.emergency, _confidence(emergency, 0.0), e_found + u_found)
    if urgent + emergency >= 1.5:
        return UrgencyResult(Urgency.urgent, _confidence(urgent + emergency, 0.0), e_found + u_found)
    return UrgencyResult(Urgency.normal, round(0.9 - 0.2 * (urgent + emergency), 3), e_found + u_found)


def detect_transfer(
    text: object,
    *,
    cues: Mapping[Transfer, Mapping[str, float]] = TRANSFER_CUES,
    min_weight: float = 2.0,
) -> TransferResult:
    """Suggest a transfer to 110/119/120/122 when the text describes a police, fire, medical or traffic matter.

    Several services may apply (a traffic accident with injuries): the strongest is ``target``, all of them are
    in ``candidates``, best first.
    """
    clean = _prepare(text)
    scored = [(target, *_matches(clean, table)) for target, table in cues.items()]
    hits = sorted(((t, w, f) for t, w, f in scored if w >= min_weight), key=lambda r: r[1], reverse=True)
    if not hits:
        return TransferResult(None, 0.0, [], [])
    target, best, found = hits[0]
    runner_up = hits[1][1] if len(hits) > 1 else 0.0
    candidates = [(t, _confidence(w, 0.0)) for t, w, _ in hits]
    return TransferResult(target, _confidence(best, runner_up), found, candidates)


def detect(text: object) -> Signals:
    """Kind, urgency and transfer suggestion of one request text."""
    return Signals(detect_kind(text), detect_urgency(text), detect_transfer(text))


def cue_list(results: Sequence[KindResult | UrgencyResult | TransferResult]) -> list[str]:
    """All cues of several results, in order, without repeats (for one explanation line)."""
    seen: dict[str, None] = {}
    for result in results:
        for cue in result.cues:
            seen.setdefault(cue, None)
    return list(seen)
