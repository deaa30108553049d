"""`minsheng db …`: the database schema, upgraded to the latest migration and checked against the models;
backups of the database and their restore."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from minsheng.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    DatabaseUrl,
    console,
    fail,
    guarded,
    load_settings,
    open_db,
    shown_url,
)

if TYPE_CHECKING:
    from minsheng.services.backup import BackupError

app = typer.Typer(help="Database schema: upgrade and check; backup and restore.", no_args_is_help=True)


@app.command("upgrade")
@guarded
def db_upgrade(database_url: DatabaseUrl = None) -> None:
    """Create or upgrade the schema to the latest migration (alembic upgrade head)."""
    from minsheng.storage.migrate import upgrade

    settings = load_settings(database_url)
    upgrade(settings.database_url)
    console.print(f"[green]✓[/] schema at head: {shown_url(settings.database_url)}")


@app.command("check")
@guarded
def db_check(database_url: DatabaseUrl = None) -> None:
    """Exit 0 when the database is at the latest migration and matches the models, 1 otherwise."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from minsheng.storage.migrate import alembic_config, check

    settings = load_settings(database_url)
    head = ScriptDirectory.from_config(alembic_config(settings.database_url)).get_current_head()
    with open_db(settings) as db, db.engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    if current != head:
        fail(
            f"database at revision {current or 'none'}, code at {head}: run `minsheng db upgrade`",
            EXIT_FAILED,
        )
    check(settings.database_url)
    console.print(
        f"[green]✓[/] schema at head ({head}) and matches the models: {shown_url(settings.database_url)}"
    )


BackupFile = Annotated[Path, typer.Argument(help="The backup file.", show_default=False)]


def _backup_failed(e: BackupError) -> NoReturn:
    fail(e.message, EXIT_FAILED if e.failed else EXIT_BAD_INPUT)


@app.command("backup")
@guarded
def db_backup(
    file: BackupFile,
    database_url: DatabaseUrl = None,
    force: Annotated[bool, typer.Option("--force", help="Replace FILE if it exists.")] = False,
) -> None:
    """Back up the database to FILE while the servers run (SQLite: online backup API; PostgreSQL: pg_dump -Fc).

    The database only: copy the data directory (attachments) after it."""
    from minsheng.services.backup import BackupError, backup

    settings = load_settings(database_url)
    try:
        report = backup(settings.database_url, file, overwrite=force)
    except BackupError as e:
        _backup_failed(e)
    console.print(
        f"[green]✓[/] {shown_url(settings.database_url)} backed up to {report.path} "
        f"({report.size / 1e6:.1f} MB, {report.seconds:.1f} s)"
    )


@app.command("restore")
@guarded
def db_restore(
    file: BackupFile,
    database_url: DatabaseUrl = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace the data of a database that is not empty.")
    ] = False,
) -> None:
    """Restore FILE (from `minsheng db backup`) into the database; stop the servers first.

    Refuses a database that holds data unless --force. Then run `minsheng db upgrade` (a backup from an older
    release) and `minsheng db check`."""
    from minsheng.services.backup import BackupError, restore

    settings = load_settings(database_url)
    try:
        report = restore(settings.database_url, file, force=force)
    except BackupError as e:
        _backup_failed(e)
    tickets = "" if report.tickets is None else f", {report.tickets} tickets"
    console.print(
        f"[green]✓[/] {report.path} restored into {shown_url(settings.database_url)} "
        f"({report.seconds:.1f} s{tickets}); next: `minsheng db upgrade` if it is from an older release, "
        "then `minsheng db check`"
    )
