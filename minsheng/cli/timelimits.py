"""`minsheng timelimits preset …`: the five cities' rule sets (and the demo city's) as presets.

`preset list` shows them and the one applied; `preset apply NAME` writes the preset's policies as stored, editable
rows (replacing the active ones) and its repeated-failure ladder, as the admin page 办理时限 does. The change is
recorded in the audit log with the CLI as its actor.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from minsheng.cli.common import DatabaseUrl, audited_write, console, guarded, load_settings, open_db, utcnow

app = typer.Typer(help="Time limits: the cities' presets.", no_args_is_help=True)
preset_app = typer.Typer(
    help="Presets: 黔南, 嘉兴, 成都, 海口, 黔西 and the demo city.", no_args_is_help=True
)
app.add_typer(preset_app, name="preset")


@preset_app.command("list")
@guarded
def preset_list(database_url: DatabaseUrl = None) -> None:
    """List the presets and say which one is applied."""
    from minsheng.services.timelimits import city
    from minsheng.services.uow import reading

    settings = load_settings(database_url)
    with open_db(settings) as db, reading(db) as session:
        applied, at = city.applied_preset(session, settings.clock_preset)
    table = Table("name", "city", "applied")
    for name, label in city.PRESET_LABELS.items():
        table.add_row(name, label, ("yes" if at else "default (environment)") if name == applied else "")
    console.print(table)


@preset_app.command("apply")
@guarded
def preset_apply(
    name: Annotated[str, typer.Argument(help="qiannan, jiaxing, chengdu, haikou, qianxi or demo.")],
    database_url: DatabaseUrl = None,
) -> None:
    """Replace the active time-limit policies by the preset's and set its repeated-failure ladder."""
    from minsheng.services.timelimits import city

    settings = load_settings(database_url)
    with audited_write(settings) as session:
        written = city.apply_preset(session, name, utcnow())
    console.print(f"[green]✓[/] preset {name} applied: {written} policies (edit them on /admin/timelimits)")
