"""`minsheng measures …`: the daily measure facts (issue 15).

``rebuild`` recomputes them from the raw timeline (all of them, or the tickets taken in since a day): after an
import that wrote tickets without the engine, a change of the working calendar (working-time averages), or a
restore. ``check`` compares the facts kept with a recomputation and names the rows that differ.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer

from minsheng.cli.common import (
    BadInput,
    DatabaseUrl,
    console,
    fail,
    guarded,
    load_settings,
    open_db,
    progress_bar,
)

app = typer.Typer(
    help="Daily measure facts: rebuild them from the timeline, check them.", no_args_is_help=True
)


def _day(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadInput(f"--since takes a day as YYYY-MM-DD, not '{text}'") from None


@app.command("rebuild")
@guarded
def rebuild(
    since: Annotated[
        str | None,
        typer.Option(help="Only tickets taken in from this local day on (YYYY-MM-DD); default: all."),
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Recompute the daily facts from the timeline, in one transaction (idempotent).

    On PostgreSQL, steps taken meanwhile wait for it; on SQLite it holds the write lock: run it when writes are
    quiet, or with --since for a short range."""
    from minsheng.services.measures import rebuild_facts
    from minsheng.services.uow import writing

    day = _day(since)
    settings = load_settings(database_url)
    with open_db(settings) as db, progress_bar() as bar:
        task = bar.add_task("tickets", total=None)

        def on_progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        with writing(db) as session:
            report = rebuild_facts(session, since=day, progress=on_progress)
    what = f"tickets taken in since {day}" if day else "every ticket"
    console.print(
        f"[green]✓[/] facts rebuilt from the timeline of {report.tickets} tickets ({what}): "
        f"{report.fact_rows} fact rows"
    )


@app.command("check")
@guarded
def check(database_url: DatabaseUrl = None) -> None:
    """Compare the facts kept with a recomputation from the timeline (reads every ticket; exit 1 if they differ)."""
    from minsheng.services.measures import compare_facts
    from minsheng.services.uow import reading

    settings = load_settings(database_url)
    with open_db(settings) as db, reading(db) as session:
        diff = compare_facts(session)
    if not diff:
        console.print("[green]✓[/] the facts equal a recomputation from the timeline")
        return
    for key, kept, again in diff[:20]:
        console.print(f"{key}: kept {kept} recomputed {again}", highlight=False)
    fail(f"{len(diff)} fact rows differ from the timeline: run `minsheng measures rebuild`", 1)
