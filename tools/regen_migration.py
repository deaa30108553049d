"""Regenerate the single initial Alembic migration from the models (only until the first release).

Until minsheng has a release with data to keep, the schema lives in one revision, `0001_initial_schema.py`,
rebuilt from every table registered in `minsheng.storage.tables_extra`. After the first release, new
revisions are added with `minsheng db revision -m ...` instead.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from alembic import command

from minsheng.storage.migrate import MIGRATIONS_DIR, alembic_config


def expression_index_ops() -> tuple[list[str], list[str]]:
    """create/drop lines for expression indexes, which autogenerate skips on SQLite (it cannot reflect them)."""
    from sqlalchemy import Column

    from minsheng.storage import tables_extra  # noqa: F401
    from minsheng.storage.models import Base

    ups, downs = [], []
    for table in Base.metadata.sorted_tables:
        for index in sorted(table.indexes, key=lambda i: str(i.name)):
            if all(isinstance(e, Column) for e in index.expressions):
                continue
            cols = ", ".join(
                repr(e.name)
                if isinstance(e, Column)
                else f"sa.text({str(e.compile(compile_kwargs={'literal_binds': True}))!r})"
                for e in index.expressions
            )
            where = index.dialect_options["postgresql"].get("where")
            kw = ""
            if where is not None:
                kw = f", postgresql_where=sa.text({str(where)!r}), sqlite_where=sa.text({str(where)!r})"
            ups.append(
                f"    op.create_index({index.name!r}, {table.name!r}, [{cols}], unique={index.unique}{kw})"
            )
            downs.append(f"    op.drop_index({index.name!r}, table_name={table.name!r})")
    return ups, downs


def main() -> None:
    versions = MIGRATIONS_DIR / "versions"
    for old in versions.glob("*.py"):
        old.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'empty.db'}"
        command.revision(alembic_config(url), message="initial schema", autogenerate=True, rev_id="0001")
    ups, downs = expression_index_ops()
    if ups:
        path = next(versions.glob("0001_*.py"))
        text = path.read_text()
        head, rest = text.split("def downgrade() -> None:\n", 1)
        head = head.rstrip("\n") + "\n" + "\n".join(ups) + "\n\n\n"
        rest = "\n".join(downs) + "\n" + rest
        path.write_text(head + "def downgrade() -> None:\n" + rest)
    print("regenerated", sorted(p.name for p in versions.glob("*.py")))


if __name__ == "__main__":
    main()
