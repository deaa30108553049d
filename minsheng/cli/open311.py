"""`minsheng open311 …`: the API keys of Open311 integrations (docs/INTEGRATIONS.md).

`key --name NAME` issues a key and prints it as its last line (shown once, stored only as a hash), so that a
script can take it with `minsheng open311 key --name fms | tail -n 1`. Keys are also listed and revoked on
the admin page (系统管理 → Open311 接口).
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from minsheng.cli.common import (
    BadInput,
    DatabaseUrl,
    audited_write,
    console,
    guarded,
    load_settings,
    open_db,
    utcnow,
)

app = typer.Typer(help="Open311 GeoReport v2: the integrations' API keys.", no_args_is_help=True)


@app.command("key")
@guarded
def open311_key(
    name: Annotated[str, typer.Option(help="The integration the key is for, e.g. 'fixmystreet'.")],
    database_url: DatabaseUrl = None,
) -> None:
    """Issue an API key for an integration; printed once, as the last line."""
    from minsheng.services import open311_keys

    if not 1 <= len(name.strip()) <= 100:
        raise BadInput("the name must have 1 to 100 characters")
    settings = load_settings(database_url)
    with audited_write(settings) as session:
        key = open311_keys.issue(session, name, utcnow())
    console.print(f"[green]✓[/] Open311 API key for {name.strip()} (shown once, stored as a hash):")
    print(key)


@app.command("keys")
@guarded
def open311_keys_list(database_url: DatabaseUrl = None) -> None:
    """List the keys (never the keys themselves: their first characters)."""
    from minsheng.services import open311_keys
    from minsheng.services.uow import reading

    settings = load_settings(database_url)
    with open_db(settings) as db, reading(db) as session:
        rows = open311_keys.listed(session)
    table = Table("id", "name", "key", "created", "revoked")
    for r in rows:
        revoked = r.revoked_at.isoformat(timespec="seconds") if r.revoked_at else ""
        table.add_row(str(r.id), r.name, r.prefix + "…", r.created_at.isoformat(timespec="seconds"), revoked)
    console.print(table)


@app.command("revoke")
@guarded
def open311_revoke(
    key_id: Annotated[
        int, typer.Argument(min=1, max=2**31 - 1, help="The key's id (see `minsheng open311 keys`).")
    ],
    database_url: DatabaseUrl = None,
) -> None:
    """Revoke a key: its integration gets 403 from then on."""
    from minsheng.services import open311_keys

    settings = load_settings(database_url)
    with audited_write(settings) as session:
        row = open311_keys.revoke(session, key_id, utcnow())
    console.print(f"[green]✓[/] key {row.id} ({row.name}) revoked")
