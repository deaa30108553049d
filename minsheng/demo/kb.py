"""The demo city's knowledge base: service-catalogue entries (服务事项) and ready answers (答复口径).

Written by the project for the fictional 民声市 (no copied texts) and kept in ``data/kb.toml``: what an operator
reads out to a caller and what a citizen finds on the portal's help page, for the questions a 12345 line hears
most (居住证, 社保转移, 公积金提取, 医保报销, 燃气报修 …). Each entry names its category by a category name of
the demo tree and its department by the demo unit code, so :func:`kb_entries` can fill in the real names,
codes and phone numbers of the generated city.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from minsheng.demo.city import DemoCity
from minsheng.demo.tables import load

__all__ = ["KbItem", "KbSpec", "entries", "kb_entries"]


@dataclass(frozen=True)
class KbSpec:
    """One entry as written in the data file: in the body, ``{phone}`` is the department's phone in the
    generated city and ``{where}`` the common text on where to apply."""

    kind: str  # service | answer
    title: str
    category: str  # a category name of the demo tree (level 3, or level 2)
    department: str  # demo unit code
    keywords: str
    body: str
    public: bool = True


@dataclass(frozen=True)
class KbItem:
    """One entry ready for :func:`minsheng.services.kb.create`."""

    kind: str
    title: str
    body: str
    category_code: str | None
    department: str
    keywords: str
    public: bool


@cache
def entries() -> tuple[KbSpec, ...]:
    """The entries of ``data/kb.toml``, in file order."""
    return tuple(KbSpec(**e) for e in load("kb")["entry"])


def kb_entries(city: DemoCity) -> list[KbItem]:
    """The entries with the city's category codes, department names and phone numbers filled in."""
    codes: dict[str, str] = {}
    for c in sorted(city.categories, key=lambda c: -c.level):  # a level-3 name wins over a like-named parent
        codes.setdefault(c.name, c.code)
    where = load("kb")["where"]
    out = []
    for e in entries():
        unit = city.unit_by_code.get(e.department)
        out.append(
            KbItem(
                kind=e.kind,
                title=e.title,
                body=e.body.format(phone=unit.phone if unit else "12345", where=where),
                category_code=codes.get(e.category),
                department=unit.name if unit else e.department,
                keywords=e.keywords,
                public=e.public,
            )
        )
    return out
