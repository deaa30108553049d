"""Backup and restore of the database as one file, taken while the servers go on taking tickets.

- **SQLite**: the online backup API (`sqlite3.Connection.backup`) copies every page in one step inside one read
  transaction, so the copy is the database as of one commit while writers go on (WAL: a reader blocks nobody).
  The copy is a SQLite database itself, switched to a rollback journal (one self-contained file) and checked
  (``PRAGMA quick_check``) before it takes FILE's name. Restore copies it back through the same API, under the
  target's write lock.
- **PostgreSQL**: ``pg_dump --format=custom`` (one snapshot transaction; the servers keep writing) and
  ``pg_restore --clean --if-exists --no-owner --single-transaction --exit-on-error``: a failed restore changes
  nothing. The tools get the URL's host, port, user, database and parameters; the password goes in
  ``PGPASSWORD`` (not on a command line other users can read).

A restore refuses a database that holds data (a row in any table but ``alembic_version``) unless forced: an
empty database, or one with the schema only (`minsheng db upgrade`), is restored into without asking. A dump
is restored into the store it came from (a SQLite copy into SQLite, a dump into PostgreSQL).

Only the database: the attachments under ``<data dir>/attachments`` are files, copied after the backup
(docs/DEPLOY.md, "Backups and the restore drill").
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import URL, inspect, make_url, text

from minsheng.services.errors import ServiceError
from minsheng.storage.db import create_db_engine, normalise_url

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_DUMP_MAGIC = b"PGDMP"
#: Tables that hold no data of the city: the migration stamp, SQLite's full-text index (rebuilt at start-up).
BOOKKEEPING = ("alembic_version",)
BOOKKEEPING_PREFIXES = ("kb_fts", "sqlite_")


class BackupError(ServiceError):
    """A backup or restore that cannot be done; `failed` when the tools or the database failed, not the input."""

    def __init__(self, message: str, *, failed: bool = False) -> None:
        super().__init__(message)
        self.failed = failed


@dataclass(frozen=True)
class BackupReport:
    backend: str
    path: Path
    size: int
    seconds: float


@dataclass(frozen=True)
class RestoreReport:
    backend: str
    path: Path
    seconds: float
    replaced: dict[str, int]  # tables that held rows before the restore (with --force), and how many
    tickets: int | None  # tickets in the restored database


# ------------------------------------------------------------------------------------------------- public
def backup(url: str, dest: Path, *, overwrite: bool = False) -> BackupReport:
    """Write the database at ``url`` to ``dest`` (written beside it and renamed: never a half file)."""
    parsed = _parse(url)
    dest = Path(dest)
    if dest.is_dir():
        raise BackupError(f"{dest} is a directory: give a file name")
    if dest.exists() and not overwrite:
        raise BackupError(f"{dest} exists: choose another file or pass --force to replace it")
    if not dest.parent.is_dir():
        raise BackupError(f"no directory {dest.parent} for the backup")
    part = dest.with_name(dest.name + ".part")
    t0 = time.monotonic()
    try:
        if parsed.get_backend_name() == "sqlite":
            _sqlite_backup(_sqlite_path(parsed), part)
        else:
            _pg_dump(parsed, part)
        _fsync(part)
        os.replace(part, dest)
        _fsync(dest.parent)
    finally:
        part.unlink(missing_ok=True)
    return BackupReport(parsed.get_backend_name(), dest, dest.stat().st_size, time.monotonic() - t0)


def restore(url: str, src: Path, *, force: bool = False) -> RestoreReport:
    """Restore ``src`` (made by `backup`) into the database at ``url``; refuses one holding data unless ``force``."""
    parsed = _parse(url)
    src = Path(src)
    backend = parsed.get_backend_name()
    kind = backup_kind(src)
    if kind != backend:
        what = {"sqlite": "a SQLite database copy", "postgresql": "a PostgreSQL dump (pg_dump -Fc)"}[kind]
        raise BackupError(f"{src} is {what}: it restores into {kind}, not into this {backend} database")
    if backend == "postgresql":
        _tool("pg_restore")  # before looking at the database: a missing tool is the first thing to fix
    held = rows_held(url)
    if held and not force:
        shown = ", ".join(f"{t} ({n})" for t, n in sorted(held.items(), key=lambda x: -x[1])[:5])
        raise BackupError(
            f"the database holds data ({shown}{', …' if len(held) > 5 else ''}): restoring would replace it; "
            "pass --force to do so"
        )
    t0 = time.monotonic()
    if backend == "sqlite":
        _sqlite_restore(src, _sqlite_path(parsed))
    else:
        _pg_restore(parsed, src)
    seconds = time.monotonic() - t0
    return RestoreReport(backend, src, seconds, held, _tickets(url))


def backup_kind(path: Path) -> str:
    """``sqlite`` or ``postgresql``, from the file's first bytes; BackupError for anything else."""
    try:
        with Path(path).open("rb") as fh:
            head = fh.read(len(SQLITE_MAGIC))
    except FileNotFoundError:
        raise BackupError(f"no file {path}") from None
    except IsADirectoryError:
        raise BackupError(f"{path} is a directory, not a backup file") from None
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if head.startswith(PG_DUMP_MAGIC):
        return "postgresql"
    raise BackupError(f"{path} is neither a SQLite database nor a pg_dump custom-format file")


def rows_held(url: str) -> dict[str, int]:
    """Tables holding rows (city data, not bookkeeping), with their row counts; {} for an empty database."""
    parsed = _parse(url)
    if parsed.get_backend_name() == "sqlite" and not _sqlite_path(parsed).exists():
        return {}
    engine = create_db_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            names = [
                n
                for n in inspect(conn).get_table_names()
                if n not in BOOKKEEPING and not n.startswith(BOOKKEEPING_PREFIXES)
            ]
            prep = engine.dialect.identifier_preparer
            held = {}
            for name in names:
                n = conn.execute(text(f"SELECT count(*) FROM {prep.quote(name)}")).scalar_one()
                if n:
                    held[name] = int(n)
            return held
    finally:
        engine.dispose()


# ------------------------------------------------------------------------------------------------- SQLite
def _sqlite_path(url: URL) -> Path:
    if not url.database or url.database == ":memory:":
        raise BackupError("an in-memory SQLite database has nothing to back up or restore into")
    return Path(url.database)


def _sqlite_backup(src_path: Path, part: Path) -> None:
    if not src_path.is_file():
        raise BackupError(f"no SQLite database at {src_path}")
    part.unlink(missing_ok=True)
    src = sqlite3.connect(src_path, timeout=60)
    try:
        dst = sqlite3.connect(part)
        try:
            # pages=-1: every page in one step, one read transaction: a snapshot at one commit. Stepping through
            # a few pages at a time would start over whenever another process commits (a live server).
            src.backup(dst, pages=-1)
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
            _quick_check(dst, part)
        finally:
            dst.close()
    except sqlite3.Error as e:
        raise BackupError(f"SQLite backup of {src_path} failed: {e}", failed=True) from None
    finally:
        src.close()


def _sqlite_restore(src: Path, target: Path) -> None:
    if not target.parent.is_dir():
        raise BackupError(f"no directory {target.parent} for the database")
    try:
        source = sqlite3.connect(f"{src.resolve().as_uri()}?mode=ro", uri=True)
        try:
            _quick_check(source, src)
            dst = sqlite3.connect(target, timeout=60)
            try:
                # Same API the other way: the target's pages are replaced under its write lock.
                source.backup(dst, pages=-1)
                dst.execute("PRAGMA journal_mode=WAL")
                _quick_check(dst, target)
            finally:
                dst.close()
        finally:
            source.close()
    except sqlite3.Error as e:
        raise BackupError(f"SQLite restore into {target} failed: {e}", failed=True) from None


def _quick_check(conn: sqlite3.Connection, where: Path) -> None:
    result = conn.execute("PRAGMA quick_check").fetchone()
    if not result or result[0] != "ok":
        raise BackupError(f"{where} fails SQLite's quick_check: {result}", failed=True)


# --------------------------------------------------------------------------------------------- PostgreSQL
def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(
            f"{name} not found on PATH: install the PostgreSQL client tools of the server's major version "
            "(Debian/Ubuntu: apt-get install postgresql-client)",
            failed=True,
        )
    return path


def libpq_target(url: URL) -> tuple[str, dict[str, str]]:
    """The URL as a libpq connection URI without its password, and the environment that carries it."""
    env = {"PGPASSWORD": url.password} if url.password else {}
    plain = URL.create("postgresql", url.username, None, url.host, url.port, url.database, url.query)
    return plain.render_as_string(hide_password=False), env


def _run(args: list[str], env: dict[str, str], what: str) -> None:
    try:
        done = subprocess.run(args, env={**os.environ, **env}, capture_output=True, text=True, check=False)
    except OSError as e:
        raise BackupError(f"{what} could not run: {e}", failed=True) from None
    if done.returncode != 0:
        lines = [x for x in (done.stderr or done.stdout).strip().splitlines() if x.strip()]
        detail = "; ".join(lines[-3:]) or "no message"
        raise BackupError(f"{what} failed (exit {done.returncode}): {detail}", failed=True)


def _pg_dump(url: URL, part: Path) -> None:
    exe = _tool("pg_dump")
    target, env = libpq_target(url)
    part.unlink(missing_ok=True)
    _run([exe, "--format=custom", f"--file={part}", f"--dbname={target}"], env, "pg_dump")


def _pg_restore(url: URL, src: Path) -> None:
    exe = _tool("pg_restore")
    target, env = libpq_target(url)
    args = [
        exe,
        "--clean",
        "--if-exists",
        "--no-owner",
        "--single-transaction",
        "--exit-on-error",
        f"--dbname={target}",
        str(src),
    ]
    _run(args, env, "pg_restore")


# ------------------------------------------------------------------------------------------------- helpers
def _parse(url: str) -> URL:
    parsed = make_url(normalise_url(url))
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise BackupError(f"cannot back up a {parsed.get_backend_name()} database: SQLite or PostgreSQL only")
    return parsed


def _tickets(url: str) -> int | None:
    engine = create_db_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("tickets"):
                return None
            return int(conn.execute(text("SELECT count(*) FROM tickets")).scalar_one())
    finally:
        engine.dispose()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
