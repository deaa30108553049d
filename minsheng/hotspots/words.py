"""The word lists of hot-topic analysis, and request text cut into tagged words.

Words come from jieba (through :func:`minsheng.triage.textnorm.tokenize`, the tokenizer the classifier and the
cluster warnings use). Their part of speech is looked up in jieba's own dictionary (``ns`` place, ``nt``
organisation, ``nr`` name, ``n`` noun, ``v`` verb …): running jieba's POS tagger instead costs six times as much
on the taidi2020c messages (30 s against 4.5 s on this machine) and adds nothing the look-up lacks here, since the
words a tagger would guess (new place names) are exactly the ones the dictionary does not know, tagged
:data:`UNKNOWN` below and treated as names.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from minsheng.triage.textnorm import tokenize

__all__ = [
    "ADMIN_SUFFIXES",
    "CROWD_WORDS",
    "KNOWN",
    "PLACE_SUFFIXES",
    "REQUEST_WORDS",
    "STOP_WORDS",
    "UNKNOWN",
    "KnownNames",
    "Word",
    "tag_of",
    "tag_words",
]


def _split(text: str) -> tuple[str, ...]:
    """A word list written as space-separated words over several lines."""
    return tuple(text.split())


#: Tag of a word jieba's dictionary does not hold (a new word found by its HMM, a code such as ``A5``).
UNKNOWN = "?"
#: Tag of a name the caller knows (the platform's places and areas), matched before jieba cuts the text.
KNOWN = "K"

#: Administrative suffixes, coarsest first: they say where a place lies, never which place it is.
ADMIN_SUFFIXES: Mapping[str, str] = {
    "自治州": "city",
    "自治县": "district",
    "特别行政区": "city",
    "省": "province",
    "市": "city",
    "州": "city",
    "区": "district",
    "新区": "district",
    "县": "district",
    "旗": "district",
    "街道办事处": "street",
    "街道办": "street",
    "街道": "street",
    "镇": "street",
    "乡": "street",
}

#: Suffixes of the places a hot topic is about, by kind. A word ending in one of these closes a place name.
PLACE_SUFFIXES: Mapping[str, str] = {
    **dict.fromkeys(
        _split("社区 居委会 村委会 村 组 屯 网格"),
        "community",
    ),
    **dict.fromkeys(
        _split(
            "小区 花园 花苑 家园 新村 公寓 苑 府 庭 城 湾 大厦 广场 公馆 山庄 宿舍 宿舍区 安置区 安置房 片区 期 栋 "
            "楼盘 名邸 华庭 雅苑 嘉园 佳苑 新城 御府 国际 公园 园"
        ),
        "estate",
    ),
    **dict.fromkeys(
        _split(
            "路 街 大道 大街 巷 桥 大桥 公路 高速 隧道 路段 路口 立交 线 铁路 码头 车站 汽车站 火车站 地铁站 公交站"
        ),
        "road",
    ),
    **dict.fromkeys(
        _split(
            "公司 有限公司 厂 工厂 集团 学院 大学 中学 小学 学校 幼儿园 医院 卫生院 诊所 银行 酒店 宾馆 市场 "
            "超市 商场 商城 项目 工地 搅拌站 垃圾站 中转站 加油站 站 养殖场 屠宰场 停车场 球场 场 派出所 所 "
            "馆 中心 协会 合作社 KTV 酒吧 网吧 餐馆 饭店 大排档 门面 商铺 门店 工作室 培训班 培训学校 驾校 物业 "
            "矿 砂场 石场 电站 基地 园区 景区 校区 寺 庙 水库 河 湖 港"
        ),
        "org",
    ),
}

#: The groups of people a request speaks for, longest first when matched.
CROWD_WORDS: tuple[str, ...] = tuple(
    sorted(
        set(
            _split(
                "业主 居民 住户 村民 学生 大学生 家长 教师 老师 教职工 工人 农民工 员工 职工 商户 个体户 摊贩 乘客 "
                "司机 出租车司机 老年人 患者 病人 考生 租户 租客 购房者 购房户 消费者 退休人员 退休职工 残疾人 "
                "环卫工人 快递员 外卖员 学员 会员 投资人 储户 拆迁户 被拆迁户 安置户 失地农民 农民 渔民 果农 菜农 "
                "养殖户 业主们 居民们 村民们 学生们 家长们 工人们 小区居民 小区业主 新生"
            )
        ),
        key=lambda w: (-len(w), w),
    )
)

#: Words that say what kind of request it is or address the reader, not what it is about: left out of the
#: problem's words (the kind is :mod:`minsheng.triage.signals`' business).
REQUEST_WORDS = frozenset(
    _split(
        "投诉 举报 反映 咨询 建议 请求 要求 希望 恳请 求助 呼吁 表扬 感谢 谢谢 关于 问题 情况 事情 事宜 有关 相关 "
        "部门 领导 政府 尊敬 您好 你好 书记 市长 县长 区长 局长 请问 能否 是否 如何 怎么 什么 为什么 何时 尽快 "
        "解决 处理 帮助 帮忙 落实 调查 核实 重视 严肃 督促 市民 群众 本人 我们 大家 我家 广大 百姓 老百姓 反应 "
        "一下 一直 已经 多次 目前 现在 今年 去年 近日 最近 近期 以来 至今 每天 现象 行为 严重 非常 特别 "
        "希望政府 有关部门 相关部门 政府部门 网友 留言 回复 信访 热线 12345 平台 谢谢您 此致 敬礼"
    )
)

#: Function words and fillers that never describe a problem.
STOP_WORDS = frozenset(
    _split(
        "的 了 是 在 和 与 及 或 也 都 就 还 又 而 但 对 从 向 把 被 让 给 到 于 由 为 以 之 其 该 此 这 那 个 "
        "这个 那个 这些 那些 一个 一些 有 没有 没 不 很 太 更 最 能 会 要 想 可以 可能 应该 需要 进行 造成 导致 "
        "存在 出现 发生 由于 因为 所以 如果 虽然 但是 而且 并且 然后 以及 还是 或者 其中 其他 等 等等 如下 "
        "我 你 他 她 它 他们 她们 自己 什么 哪里 那里 这里 上 下 中 内 外 前 后 里 时 年 月 日 号 天 "
        "个人 人员 工作 方面 单位 地方 时候 时间 原因 结果 情况下 今天 昨天 明天 晚上 白天 上午 下午 "
        "旁边 附近 周边 周围 对面 门口 东边 西边 南边 北边 里面 外面 一带 影响 生活 希望 能够 一定 有人 没人"
    )
)

_SUFFIX_WORDS = frozenset(PLACE_SUFFIXES)
_TIME_WORDS = frozenset(
    _split(
        "今天 昨天 明天 前天 后天 晚上 白天 上午 下午 中午 早上 早晨 傍晚 夜间 夜里 夜晚 半夜 深夜 凌晨 去年 今年 "
        "明年 前年 现在 目前 以前 以后 之前 之后 最近 近日 近期 近年 平时 每天 当时 当天 期间 周末 节假日 春节 "
        "国庆 暑假 寒假 年底 年初 月底 月初 上周 本周 下周 上月 本月 下月 同时 随后 此前 至今 如今 当年 早期"
    )
)
# A word that is only punctuation, whitespace or symbols.
_PUNCT = re.compile(r"^[\W_]+$")
# Tags that end a place name: verbs, prepositions, conjunctions, particles, pronouns, adverbs, time words.
_BREAK_TAGS = ("v", "p", "c", "u", "r", "d", "y", "e", "o", "t", "w", "x")
# Tags that name something (a place, an organisation, a person, an abbreviation, a foreign word).
_NAME_TAGS = frozenset({"ns", "nt", "nr", "nz", "nrt", "nrfg", "eng", "zg", "ng", UNKNOWN, KNOWN})
# Allowed inside a name although their tag would end it ("魅力之城", "某职业学院").
_JOINERS = frozenset({"之", "某", "第"})
# Words that end a name although their tag would not ("附近小区" is no place).
_NOT_IN_NAMES = frozenset(
    _split(
        "附近 周边 旁边 门口 对面 里面 外面 前面 后面 周围 一带 沿线 旁 内 外 前 后 本 该 各 全市 全县 全区 全省 "
        "当地 本地 城区 农村 城市 公办 民办 私立 公立 新建 大型 小型 热门 部分 所有 多个 多家 部分 几所 其他 "
        "我市 我县 我区 我省 本市 本县 本区 周边地区 老旧 普通 有些 一所 一家 这家 那家 这所 那所 整个 高档 "
        "商品房 安置 回迁 新 老 整体 多数 大部分 该小区 本小区 小区内 沿路 沿途 一路 马路 路上 路边 路面 "
        "绕路 走路 修路 道路 上路 过路 让路 开路 带路 问路 线路 出路 思路 半路 "
        "问题 情况 事情 反映 投诉 举报 咨询 建议 请求 要求 希望 关于 位于 居住 住在 家住 地处 临街 沿街 "
        "居民区 旧城区 老城区 新城区 市区 郊区 辖区 开发区 工业区 商业区 住宅区 生活区 保护区 示范区 服务区 试验区 老区 "
        "山区 湖区 学区 城区 该区 本区 全区 各区 各县 各市 "
        "政府 人民政府 市政府 县政府 区政府 省政府 镇政府 乡政府 市委 县委 区委 书记"
    )
)
# A word jieba's HMM glued to an administrative character ("市金帆路", "县泉星", "区井莲路").
_GLUED_ADMIN = re.compile(r"^([省市区县镇乡])(.{2,})$")
# Characters that start no name: prepositions, negations, pronouns (a new word starting so is a glued phrase).
_FUNCTION_CHARS = frozenset("到往从在于向对把被让给将由不没无未别我你他她这那该其就都也还很又再")
# A code that anonymised data uses for cities and districts ("A", "A5", "K11").
_CODE = re.compile(r"^[A-Za-z]{1,2}\d{0,3}$")


@dataclass(frozen=True, slots=True)
class Word:
    """One word of a request's text: its characters, its tag, and where it starts in the text."""

    text: str
    tag: str
    start: int

    @property
    def punct(self) -> bool:
        return _PUNCT.match(self.text) is not None

    @property
    def breaks_name(self) -> bool:
        """Whether this word cannot be part of a place name (it ends or precedes one)."""
        if self.punct or self.text in _NOT_IN_NAMES:
            return True
        if (
            self.text in _JOINERS
            or self.tag in _NAME_TAGS
            or self.tag in ("m", "vn")
            or self.text in _SUFFIX_WORDS
        ):
            return False  # 站 (v), 超市 (v): jieba's tags are of the word's other senses
        if self.tag == "t":
            return self.text in _TIME_WORDS  # jieba tags 明月 (明月小区) a time word too
        return self.tag.startswith(_BREAK_TAGS)

    @property
    def is_name(self) -> bool:
        """Whether this word names something rather than describing it (the test of a specific place)."""
        if self.tag == UNKNOWN:
            return len(self.text) >= 2 or (self.text.isalnum() and self.text.isascii())
        return self.tag in _NAME_TAGS or (self.tag == "m" and any(c.isdigit() for c in self.text))

    @property
    def is_code(self) -> bool:
        """A code anonymised data writes for a city or district (A, A5, K11)."""
        return _CODE.match(self.text) is not None


_tags_lock = threading.Lock()
_tags: dict[str, str] | None = None


def _tag_table() -> dict[str, str]:
    """jieba's dictionary of word → part of speech, loaded on first use (it is part of ``jieba.posseg``)."""
    global _tags
    if _tags is None:
        with _tags_lock:
            if _tags is None:
                import jieba.posseg

                table: Any = jieba.posseg.dt.word_tag_tab
                _tags = dict(table)
    return _tags


def tag_of(word: str) -> str:
    """jieba's part of speech of a word, :data:`UNKNOWN` for a word its dictionary lacks."""
    return _tag_table().get(word, UNKNOWN)


def tag_words(text: str, known: Mapping[str, str] | None = None) -> list[Word]:
    """``text`` (normalised, case kept) cut into tagged words.

    ``known`` maps names the caller knows (the platform's places and areas) to their kind; each is matched as one
    word tagged :data:`KNOWN` before jieba cuts the rest, so a demo estate such as 马鞍新村 is never split.
    """
    table = _tag_table()
    out: list[Word] = []
    for piece, start, is_known in _split_known(text, known or {}):
        if is_known:
            out.append(Word(piece, KNOWN, start))
            continue
        pos = start
        for token in tokenize(piece, drop_space=False):
            at = text.find(token, pos)
            at = pos if at < 0 else at
            pos = at + len(token)
            if not token.strip():
                continue
            tag = table.get(token, UNKNOWN)
            glued = _GLUED_ADMIN.match(token) if tag == UNKNOWN else None
            if glued and out and _CODE.match(out[-1].text):
                # "A市金帆路" is cut "A / 市金帆路": give the administrative character back to the code.
                out.append(Word(glued.group(1), "n", at))
                out.append(Word(glued.group(2), UNKNOWN, at + 1))
                continue
            if tag == UNKNOWN and len(token) > 2 and token[0] in _FUNCTION_CHARS:
                # jieba's HMM glues a preposition or a negation to the name after it: 到乐群 | 小学, 往徐特立 | 公园.
                out.append(Word(token[0], "p", at))
                out.append(Word(token[1:], UNKNOWN, at + 1))
                continue
            out.append(Word(token, tag, at))
    return out


class KnownNames(Mapping[str, str]):
    """Names the caller knows (name → kind), with what a left-to-right scan of a text needs built once: the
    lengths of the names and their first characters."""

    def __init__(self, names: Mapping[str, str]) -> None:
        self._names = dict(names)
        self.lengths = sorted({len(k) for k in self._names}, reverse=True)
        self.firsts = frozenset(k[0] for k in self._names if k)

    def __getitem__(self, key: str) -> str:
        return self._names[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def _split_known(text: str, known: Mapping[str, str]) -> list[tuple[str, int, bool]]:
    """``text`` as pieces (text, start, is a known name), longest known names first, left to right."""
    if not known:
        return [(text, 0, False)]
    names = known if isinstance(known, KnownNames) else KnownNames(known)
    pieces: list[tuple[str, int, bool]] = []
    last = i = 0
    while i < len(text):
        hit = 0
        if text[i] in names.firsts:
            hit = next((n for n in names.lengths if text[i : i + n] in names), 0)
        if hit:
            if i > last:
                pieces.append((text[last:i], last, False))
            pieces.append((text[i : i + hit], i, True))
            i = last = i + hit
        else:
            i += 1
    if last < len(text):
        pieces.append((text[last:], last, False))
    return pieces
