"""Places and groups of people named in a request's words: 东城区幸福里小区, K58路, 鑫源劳务公司, 某职业学院学生.

A place name is a run of name-like words that ends in a place suffix (小区, 路, 村, 学院, 公司 …,
:data:`~minsheng.hotspots.words.PLACE_SUFFIXES`); administrative names (A5区, 桂花坪街道) before it say where it
lies and become the front of the name shown, never the place itself. A run stops at verbs, prepositions,
particles, punctuation and words such as 附近 or 公办 (:mod:`minsheng.hotspots.words`). A suffix alone (学校,
小区) or led only by common nouns (热门学校) is generic and names no place, unless an administrative name leads
it (西地省信息学院) or its words are long enough to be a name (幸福里小区).

Each place gets *keys*: its name cut at word boundaries, from three characters on (佳园星城 and 佳园星城小区 for
佳园星城小区), without leading house numbers. Two requests are about one place when they share a key, so 佳园星城小区
and 佳园星城垃圾站 meet, and 人民路 and 人民医院 do not.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field

from minsheng.hotspots.words import (
    ADMIN_SUFFIXES,
    CROWD_WORDS,
    KNOWN,
    PLACE_SUFFIXES,
    UNKNOWN,
    Word,
    tag_of,
)

__all__ = ["Crowd", "Found", "Mention", "find_places"]

_MIN_KEY = 3  # characters: two-character prefixes (人民, 阳光) are shared by unrelated places
_NAME_STEMS = frozenset({"ns", "nr", "nz", "nt", "nrt", "nrfg", UNKNOWN})
_MAX_NAME_WORDS = 6  # words before the suffix: a longer run is a sentence, not a name
_ADDRESS_NUMBER = frozenset(("号", "栋", "幢", "单元", "室", "楼", "层", "期", "号楼", "号院", "弄"))
_KNOWN_ADMIN = frozenset({"province", "city", "district", "street"})
# Administrative suffixes win a tie (街道 is an administrative name, not a road).
_SUFFIX_KIND: dict[str, str] = {**PLACE_SUFFIXES, **dict.fromkeys(ADMIN_SUFFIXES, "admin")}
_SUFFIX_LENGTHS = sorted({len(s) for s in _SUFFIX_KIND}, reverse=True)


@dataclass(frozen=True, slots=True)
class Mention:
    """A specific place named in a request."""

    name: str  # as written, without the administrative front: 魅力之城小区
    where: str  # the administrative names written just before it: A5区
    kind: str  # community, estate, road, org or line (a bus line: K58路)
    keys: frozenset[str]
    start: int
    in_title: bool = False

    @property
    def surface(self) -> str:
        return self.where + self.name


@dataclass(frozen=True, slots=True)
class Crowd:
    """A group of people the request speaks for, with the place that names them when the text says it."""

    word: str  # 学生
    of: str | None  # 某职业学院 (None: the text names no place right before the word)

    @property
    def text(self) -> str:
        return (self.of or "") + self.word


@dataclass(slots=True)
class Found:
    """What one request's words name."""

    places: list[Mention] = field(default_factory=list)
    admins: list[str] = field(default_factory=list)  # administrative names in order: A市, A5区
    crowds: list[Crowd] = field(default_factory=list)
    place_words: set[int] = field(default_factory=set)  # indices of the words inside place and admin names

    @property
    def keys(self) -> frozenset[str]:
        return frozenset(k for m in self.places for k in m.keys)


def _suffix_kind(word: Word, known: Mapping[str, str]) -> tuple[str, str] | None:
    """(kind, suffix) when ``word`` closes a name: "admin" or a place kind; None otherwise."""
    if word.tag == KNOWN:
        kind = known.get(word.text, "estate")
        return ("admin", "") if kind in _KNOWN_ADMIN else (_place_kind(word.text), "")
    return _ending(word.text)


@functools.lru_cache(maxsize=65536)
def _ending(text: str) -> tuple[str, str] | None:
    """The longest suffix ``text`` ends with, and its kind."""
    for n in _SUFFIX_LENGTHS:
        kind = _SUFFIX_KIND.get(text[-n:]) if len(text) >= n else None
        if kind is not None:
            return kind, text[-n:]
    return None


def _place_kind(name: str) -> str:
    found = _ending(name)
    return found[0] if found is not None and found[0] != "admin" else "estate"


def _strip_numbers(words: list[Word]) -> list[Word]:
    """Drop leading house numbers ("369号佳园星城" names 佳园星城)."""
    i = 0
    while i < len(words) and (
        words[i].tag == "m" or words[i].text in _ADDRESS_NUMBER or words[i].text.isdigit()
    ):
        i += 1
    return words[i:]


def _keys(words: list[Word]) -> frozenset[str]:
    """The name cut at word boundaries from its first name-like word on (佳园星城, 佳园星城小区), and from each
    later name-like word (星沙东城名苑小区 also gives 东城名苑, so that it meets 东城名苑小区); a name of common words
    only (幸福里小区, 公交车终点站) is matched whole, since its parts (公交车) would match anything."""
    starts = [i for i, w in enumerate(words) if w.is_name]
    if not starts:
        return frozenset({"".join(w.text for w in words)})
    keys: set[str] = set()
    for n, first in enumerate(starts):
        text = "".join(w.text for w in words[:first]) if n == 0 else ""
        for w in words[first:]:
            text += w.text
            if len(text) >= _MIN_KEY and (n == 0 or len(text) > len(w.text)):
                keys.add(text)
    return frozenset(keys or {"".join(w.text for w in words)})


def _trim(modifiers: list[Word]) -> list[Word]:
    """Drop common words of three characters or more before the first name-like word: "上级领导充分考虑东城名苑小区"
    names 东城名苑小区, while 佳园星城小区 keeps its 佳园."""
    first = next((k for k, w in enumerate(modifiers) if w.is_name), None)
    if first is None or all(len(w.text) < 3 for w in modifiers[:first]):
        return modifiers
    return modifiers[first:]


def _specific(modifiers: list[Word], last: Word, suffix: str, after_admin: bool) -> bool:
    """Whether a name ending in ``last`` names one place rather than a kind of place."""
    if last.tag == KNOWN:
        return True
    if len(last.text) > len(suffix) and (last.is_name or last.tag in ("ns", "nt")):
        # 金帆路, 塘田村: the name and its suffix in one word jieba did not know. But 加工厂 is a kind of place
        # (its stem is a word of the dictionary), named only by words before it.
        stem = last.text[: len(last.text) - len(suffix)]
        if (len(stem) == 1 and last.tag == UNKNOWN) or tag_of(stem) in _NAME_STEMS:
            return True
    if not modifiers:
        return False
    if any(w.is_name for w in modifiers) or after_admin:
        return True
    length = sum(len(w.text) for w in modifiers)
    if last.text == suffix and len(suffix) >= 2 and PLACE_SUFFIXES.get(suffix) in ("estate", "community"):
        return length >= 2  # 明月小区, 和平社区: estates are named in two characters
    return length >= 3  # 幸福里小区; 热门学校 and 公办幼儿园 are not names


def _line(modifiers: list[Word], word: Word, suffix: str) -> bool:
    """A bus line: 路 or 线 after a number or code only (28路, K58路)."""
    return (
        word.text == suffix in ("路", "线")
        and bool(modifiers)
        and modifiers[-1].text.isascii()
        and modifiers[-1].text.isalnum()
    )


class _Run:
    """One run of name-like words, read left to right into administrative names and places."""

    def __init__(self, found: Found, known: Mapping[str, str], title_end: int) -> None:
        self.found = found
        self.known = known
        self.title_end = title_end
        self.pending: list[tuple[int, Word]] = []
        self.where: list[str] = []  # administrative names just read, for the front of the next place
        self.last_place: Mention | None = None

    def take(self, index: int, word: Word, closing: tuple[str, str] | None) -> None:
        if closing is None:
            self.pending.append((index, word))
            if len(self.pending) > _MAX_NAME_WORDS:
                self.pending.pop(0)
            return
        kind, suffix = closing
        modifiers = [w for _, w in self.pending]
        indices = [i for i, _ in self.pending] + [index]
        if kind == "admin":
            # Only the name-like words just before it: "请求合理设置L市" names L市.
            front: list[Word] = []
            for w in reversed(modifiers):
                if not w.is_name or len(front) == 2:
                    break
                if len(word.text) > len(suffix) and not (w.is_code or w.tag in ("ns", "nz")):
                    break  # 高新区 is whole: "现于高新区" names 高新区
                front.insert(0, w)
                if w.is_code:
                    break  # anonymised data names a district by its code alone: "提振K7县" is K7县
            if word.tag != KNOWN and not front and len(word.text) == len(suffix):
                self.pending.clear()  # a bare 区 or 市 names nothing
                return
            name = "".join(w.text for w in front) + word.text
            self.found.admins.append(name)
            self.found.place_words.update(indices)
            self.where.append(name)
            self.pending.clear()
            self.last_place = None
            return
        self._place(modifiers, word, suffix, kind, indices)

    def _place(self, modifiers: list[Word], word: Word, suffix: str, kind: str, indices: list[int]) -> None:
        self.pending.clear()
        if _line(modifiers, word, suffix):
            kind = "line"
        else:
            modifiers = _trim(_strip_numbers(modifiers))
            # "经济学院体育学院": an organisation right after another is part of it, however generic its words.
            after = bool(self.where) or (
                kind == "org" and self.last_place is not None and self.last_place.kind == "org"
            )
            if not _specific(modifiers, word, suffix, after):
                self.last_place = None
                return
        words = [*modifiers, word]
        name = "".join(w.text for w in words)
        keys = _keys(words) if word.tag != KNOWN or len(word.text) >= _MIN_KEY else frozenset({word.text})
        if kind == "line":
            keys = frozenset({name})  # 28路: short, but one line
        previous = self.last_place
        if previous is not None and previous.kind == kind == "org" and self.found.places[-1] is previous:
            # 经济学院体育学院: one place, shown whole, matched by either part.
            merged = Mention(
                previous.name + name,
                previous.where,
                kind,
                previous.keys | keys,
                previous.start,
                previous.in_title,
            )
            self.found.places[-1] = merged
            self.last_place = merged
        else:
            start = words[0].start
            mention = Mention(name, "".join(self.where[-2:]), kind, keys, start, start < self.title_end)
            self.found.places.append(mention)
            self.last_place = mention
        self.found.place_words.update(indices)
        self.where = []

    def crowd(self, word: str) -> Crowd:
        of = self.last_place.name if self.last_place is not None and not self.pending else None
        return Crowd(word, of)


def find_places(words: list[Word], known: Mapping[str, str] | None = None, title_end: int = 0) -> Found:
    """The places, administrative names and groups of people that ``words`` name (a place starting before
    ``title_end`` is marked as named in the title)."""
    found = Found()
    known = known or {}
    closers = [None if w.breaks_name else _suffix_kind(w, known) for w in words]
    run = _Run(found, known, title_end)
    for i, w in enumerate(words):
        crowd = _crowd_word(w.text)
        if crowd is not None:
            found.crowds.append(run.crowd(crowd))
            run = _Run(found, known, title_end)
        elif w.text == "的" and run.last_place is not None and not run.pending:
            continue  # "幸福里小区的业主": the place still names the crowd across one 的
        elif w.breaks_name or (
            w.tag == "vn" and run.last_place is None and not any(p.is_name for _, p in run.pending)
        ):
            # A verbal noun belongs to a name only after a name (鑫源建筑劳务公司), not before one (调整线路).
            run = _Run(found, known, title_end)
        else:
            closing = closers[i]
            if closing is not None and _continues(w, closing, closers[i + 1] if i + 1 < len(words) else None):
                closing = None
            run.take(i, w, closing)
    return found


def _continues(word: Word, closing: tuple[str, str], after: tuple[str, str] | None) -> bool:
    """Whether a word that ends like a place runs on into the next one: 佳园 | 星城 | 小区, 魅力之城 | 小区, 洋湖 |
    街道, 学府 | 名邸. A bus line (28 | 路 | 公交车) and a known name end where they end."""
    if after is None or word.tag == KNOWN or (word.text in ("路", "线")):
        return False
    kind, suffix = closing
    # A5 | 区 | 佳园, 幸福里 | 小区 | 机械厂: a suffix standing alone ends the name.
    return not (word.text == suffix and (kind == "admin" or len(suffix) >= 2))


def _crowd_word(text: str) -> str | None:
    if text in CROWD_WORDS:
        return text.removesuffix("们")
    return None
