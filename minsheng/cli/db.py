"""`minsheng db …`: the database schema, upgraded to the latest migration and checked against the models."""

from __future__ import annotations

import typer

from minsheng.cli.common import (
    EXIT_FAILED,
    DatabaseUrl,
    console,
    fail,
    guarded,
    load_settings,
    open_db,
    shown_url,
)

app = typer.Typer(help="Database schema: upgrade and check.", no_args_is_help=True)


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
