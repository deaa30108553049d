"""The units and categories a history row names, found or (where the mapping says so) created, with caches.

Choices, as docs/INTEGRATIONS.md states them: a unit the city lacks is created when the mapping's ``[unit]``
says ``create = true`` (NYC: each agency becomes a unit), else the row goes to the ``fallback`` unit, else it is
refused. A category is an existing code (``code``), or a path of names (``path``) found under the mapping's
``root`` and created there when ``create = true``; codes of created categories are the parent's code and a
two-digit number ("nyc311.03.12"). A row naming no unit and no fallback is imported without one.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from minsheng.services import org
from minsheng.services.errors import ServiceError
from minsheng.services.history.mapping import CategoryRule, UnitRule
from minsheng.services.history.rows import HistoricTicket, RowError
from minsheng.storage.models import Category, Unit


class OrgLookup:
    """Caches of one import run; `forget` after a rolled-back transaction (what it created is gone)."""

    def __init__(self, unit_rule: UnitRule | None, category_rule: CategoryRule | None) -> None:
        self.unit_rule = unit_rule
        self.category_rule = category_rule
        self.created_units: list[str] = []
        self.created_categories: list[str] = []
        self.forget()

    def forget(self) -> None:
        self._units: dict[str, tuple[int, str] | None] = {}
        self._codes: dict[str, int | None] = {}
        self._paths: dict[tuple[str, ...], tuple[int, str]] = {}

    # ------------------------------------------------------------------------------------------- units
    def unit(self, session: Session, t: HistoricTicket) -> tuple[int, str, str] | None:
        """(id, code, name) of the row's unit, None when the mapping names none."""
        rule = self.unit_rule
        if rule is None:
            return None
        if t.unit_code:
            found = self._unit(session, t.unit_code, t.unit_name if rule.create else None, rule)
            if found is not None:
                return found
            if not rule.fallback:
                raise RowError(f"unit '{t.unit_code}' does not exist")
        if rule.fallback:
            found = self._unit(session, rule.fallback, rule.fallback_name, rule)
            if found is None:
                raise RowError(f"fallback unit '{rule.fallback}' does not exist")
            return found
        return None

    def _unit(
        self, session: Session, code: str, create_name: str | None, rule: UnitRule
    ) -> tuple[int, str, str] | None:
        if code not in self._units:
            found = session.execute(select(Unit.id, Unit.name).where(Unit.code == code)).first()
            row = (found[0], found[1]) if found is not None else None
            if row is None and (create_name or rule.create):
                try:
                    org.check_code(code, "unit")
                    with session.begin_nested():
                        u = org.add_unit(session, code, (create_name or code)[:100], rule.kind, rule.parent)
                except ServiceError as e:
                    raise RowError(e.message) from None
                self.created_units.append(code)
                row = (u.id, u.name)
            self._units[code] = row
        hit = self._units[code]
        return (hit[0], code, hit[1]) if hit is not None else None

    # -------------------------------------------------------------------------------------- categories
    def category(self, session: Session, t: HistoricTicket) -> int | None:
        rule = self.category_rule
        if rule is None:
            return None
        if t.category_code:
            found = self._by_code(session, t.category_code)
            if found is not None:
                return found
            if not t.category_path and not rule.fallback:
                raise RowError(f"category '{t.category_code}' does not exist")
        if t.category_path:
            return self._by_path(session, t.category_path, rule)
        if rule.fallback:
            found = self._by_code(session, rule.fallback)
            if found is None:
                raise RowError(f"fallback category '{rule.fallback}' does not exist")
            return found
        return None

    def _by_code(self, session: Session, code: str) -> int | None:
        if code not in self._codes:
            self._codes[code] = session.scalar(select(Category.id).where(Category.code == code))
        return self._codes[code]

    def _by_path(self, session: Session, names: tuple[str, ...], rule: CategoryRule) -> int:
        full = ((rule.root_name or "",) if rule.root_code else ()) + names
        if full in self._paths:
            return self._paths[full][0]
        parent: tuple[int, str] | None = None
        for depth in range(1, len(full) + 1):
            key = full[:depth]
            if key in self._paths:
                parent = self._paths[key]
                continue
            if depth == 1 and rule.root_code:
                node = self._root(session, rule)
            else:
                node = self._child(session, parent, key[-1], rule)
            self._paths[key] = node
            parent = node
        assert parent is not None
        return parent[0]

    def _root(self, session: Session, rule: CategoryRule) -> tuple[int, str]:
        assert rule.root_code is not None
        cid = session.scalar(select(Category.id).where(Category.code == rule.root_code))
        if cid is None:
            if not rule.create:
                raise RowError(f"category root '{rule.root_code}' does not exist")
            cid = self._add(session, rule.root_code, rule.root_name or rule.root_code, None)
        return cid, rule.root_code

    def _child(
        self, session: Session, parent: tuple[int, str] | None, name: str, rule: CategoryRule
    ) -> tuple[int, str]:
        parent_cond = Category.parent_id.is_(None) if parent is None else Category.parent_id == parent[0]
        row = session.execute(
            select(Category.id, Category.code).where(parent_cond, Category.name == name)
        ).first()
        if row is not None:
            return row[0], row[1]
        if not rule.create:
            raise RowError(f"category '{name}' does not exist")
        prefix = f"{parent[1]}." if parent else ""
        taken = set(
            session.scalars(
                select(Category.code).where(Category.code.startswith(prefix, autoescape=True))
                if prefix
                else select(Category.code)
            )
        )
        n = 1
        while f"{prefix}{n:02d}" in taken:
            n += 1
        code = f"{prefix}{n:02d}"
        return self._add(session, code, name, parent[1] if parent else None), code

    def _add(self, session: Session, code: str, name: str, parent_code: str | None) -> int:
        try:
            with session.begin_nested():
                cat = org.add_category(session, code, name, parent_code)
        except ServiceError as e:
            raise RowError(e.message) from None
        self.created_categories.append(code)
        return cat.id
