"""The entry points (pages under minsheng/web, the JSON API under minsheng/api) hold no queries of their own:
they parse, check the role, call a service inside their transaction and render. What would let a query creep
back in is an import, so the imports are what is checked, in the source (ast), without importing anything.

Allowed: `sqlalchemy.orm.Session` (type hints), `sqlalchemy.exc` (errors mapped to answers), and
`minsheng.storage` only under `if TYPE_CHECKING:` (the row types in signatures).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENTRY_POINTS = [ROOT / "minsheng" / "web", ROOT / "minsheng" / "api"]


def _modules() -> list[Path]:
    return sorted(p for d in ENTRY_POINTS for p in d.rglob("*.py"))


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> list[tuple[int, str, list[str], bool]]:
    """(line, module, names, under TYPE_CHECKING) of every import, at any depth (functions included)."""
    out: list[tuple[int, str, list[str], bool]] = []

    def visit(node: ast.AST, typing_only: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                out.extend((child.lineno, a.name, [], typing_only) for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                out.append((child.lineno, child.module, [a.name for a in child.names], typing_only))
            elif isinstance(child, ast.If) and _type_checking_only(child):
                for stmt in child.body:
                    visit(ast.Module(body=[stmt], type_ignores=[]), True)
                for stmt in child.orelse:
                    visit(ast.Module(body=[stmt], type_ignores=[]), typing_only)
            else:
                visit(child, typing_only)

    visit(tree, False)
    return out


def _breaches(path: Path, root: Path = ROOT) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for line, module, names, typing_only in _imports(tree):
        where = f"{path.relative_to(root)}:{line}"
        if module == "sqlalchemy" or module.startswith("sqlalchemy."):
            if module == "sqlalchemy.exc" or module.startswith("sqlalchemy.exc."):
                continue
            if module == "sqlalchemy.orm" and names == ["Session"]:
                continue
            found.append(f"{where}: {module} {names or ''} (only sqlalchemy.orm.Session and sqlalchemy.exc)")
        elif (module == "minsheng.storage" or module.startswith("minsheng.storage.")) and not typing_only:
            found.append(f"{where}: {module} {names or ''} (minsheng.storage only under TYPE_CHECKING)")
    return found


def test_there_are_entry_points_to_check() -> None:
    assert len(_modules()) > 10


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_entry_point_imports_no_query_machinery(path: Path) -> None:
    breaches = _breaches(path)
    assert not breaches, "queries belong in minsheng/services:\n" + "\n".join(breaches)


def test_the_check_sees_what_it_must(tmp_path: Path) -> None:
    # The rule itself, on a module that breaks it in every way it knows and keeps to it in every allowed way.
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from typing import TYPE_CHECKING\n"
        "from sqlalchemy import select\n"
        "import sqlalchemy\n"
        "from sqlalchemy.orm import Session, joinedload\n"
        "from sqlalchemy.orm import Session\n"
        "from sqlalchemy.exc import IntegrityError\n"
        "from minsheng.storage.models import Ticket\n"
        "if TYPE_CHECKING:\n"
        "    from minsheng.storage.models import Area\n"
        "def f():\n"
        "    from minsheng.storage import models\n"
        "    from sqlalchemy import event\n",
        encoding="utf-8",
    )
    lines = sorted(int(b.split(":")[1]) for b in _breaches(bad, tmp_path))
    assert lines == [2, 3, 4, 7, 11, 12]
