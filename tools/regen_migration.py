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


def main() -> None:
    versions = MIGRATIONS_DIR / "versions"
    for old in versions.glob("*.py"):
        old.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'empty.db'}"
        command.revision(alembic_config(url), message="initial schema", autogenerate=True, rev_id="0001")
    print("regenerated", sorted(p.name for p in versions.glob("*.py")))


if __name__ == "__main__":
    main()
