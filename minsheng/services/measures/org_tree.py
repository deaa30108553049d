"""The organisation as the measures roll it up: areas by path (street → district → city), units by parent (a
department's teams into the department), categories by path. Read once per query; small tables."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from minsheng.services.errors import Invalid, NotFound
from minsheng.storage.models import Area, Category, Unit


@dataclass
class Node:
    id: int
    code: str
    name: str
    level: str  # area level, unit kind, or category level as text
    parent_id: int | None
    path: str = ""


@dataclass
class Tree:
    """One hierarchy: nodes by id and code, children by parent id."""

    nodes: dict[int, Node] = field(default_factory=dict)
    children: dict[int | None, list[int]] = field(default_factory=lambda: defaultdict(list))

    def add(self, node: Node) -> None:
        self.nodes[node.id] = node
        self.children[node.parent_id].append(node.id)

    def by_code(self, code: str, what: str) -> Node:
        for n in self.nodes.values():
            if n.code == code:
                return n
        raise NotFound(f"unknown {what} {code!r}", field=what)

    def subtree(self, root: int) -> set[int]:
        out = {root}
        stack = [root]
        while stack:
            for child in self.children.get(stack.pop(), []):
                if child not in out:
                    out.add(child)
                    stack.append(child)
        return out

    def ancestor_in(self, node_id: int, wanted: set[int]) -> int | None:
        """The first of ``node_id`` and its ancestors that is in ``wanted`` (None if none is)."""
        seen: set[int] = set()
        current: int | None = node_id
        while current is not None and current not in seen:
            if current in wanted:
                return current
            seen.add(current)
            node = self.nodes.get(current)
            current = node.parent_id if node else None
        return None

    def roots(self) -> list[int]:
        return sorted(self.children.get(None, []), key=lambda i: self.nodes[i].code)

    def kids(self, node_id: int | None) -> list[int]:
        if node_id is None:
            return self.roots()
        return sorted(self.children.get(node_id, []), key=lambda i: self.nodes[i].code)


def areas(session: Session) -> Tree:
    tree = Tree()
    for a in session.execute(select(Area.id, Area.code, Area.name, Area.level, Area.parent_id, Area.path)):
        tree.add(Node(a.id, a.code, a.name, a.level, a.parent_id, a.path))
    return tree


def units(session: Session) -> Tree:
    tree = Tree()
    for u in session.execute(select(Unit.id, Unit.code, Unit.name, Unit.kind, Unit.parent_id)):
        tree.add(Node(u.id, u.code, u.name, u.kind, u.parent_id))
    return tree


def categories(session: Session) -> Tree:
    tree = Tree()
    for c in session.execute(
        select(Category.id, Category.code, Category.name, Category.level, Category.parent_id, Category.path)
    ):
        tree.add(Node(c.id, c.code, c.name, str(c.level), c.parent_id, c.path))
    return tree


def area_children(tree: Tree, scope: Node | None) -> list[int]:
    """The areas a table "by area" lists: the children of the scope; for the whole city, the children of its
    single root (the districts), or the roots when there are several."""
    if scope is not None:
        return tree.kids(scope.id)
    roots = tree.roots()
    return tree.kids(roots[0]) if len(roots) == 1 else roots


def check_level(level: str) -> tuple[str, str]:
    """("area", level) or ("unit", kind) for a ranking level; "unit:community" / "area:street" say which."""
    from minsheng.domain.states import AreaLevel, UnitKind

    if ":" in level:
        what, _, name = level.partition(":")
    else:
        what, name = ("area" if name_is_area(level) else "unit"), level
    if what == "area" and name in AreaLevel.values():
        return "area", name
    if what == "unit" and (name in UnitKind.values() or name == "unit"):
        return "unit", name
    raise Invalid(
        f"unknown ranking level {level!r}; use an area level ({', '.join(AreaLevel.values())}), a unit kind "
        f"({', '.join(UnitKind.values())}) or 'unit'",
        field="level",
    )


def name_is_area(level: str) -> bool:
    from minsheng.domain.states import AreaLevel

    return level in AreaLevel.values()
