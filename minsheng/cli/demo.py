"""`minsheng demo …`: the generated demo city 民声市, seeded with a year of history and a trained model; and
the table of its logins, which `minsheng serve` shows too."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from minsheng.cli.common import (
    EXIT_BAD_INPUT,
    BadInput,
    DatabaseUrl,
    console,
    fail,
    guarded,
    load_settings,
    open_db,
    progress_bar,
    shown_url,
    utcnow,
)

if TYPE_CHECKING:
    from minsheng.demo.seed import SeedReport
    from minsheng.storage.db import Database

app = typer.Typer(help="The generated demo city 民声市.", no_args_is_help=True)


@app.command("seed")
@guarded
def demo_seed(
    tickets: Annotated[
        int, typer.Option(min=0, max=2_000_000, help="Historical tickets to generate.")
    ] = 20_000,
    seed: Annotated[int, typer.Option(help="Random seed of the city and its history.")] = 2026,
    reset: Annotated[bool, typer.Option(help="Drop everything in the database first.")] = False,
    if_empty: Annotated[
        bool, typer.Option(help="Seed only an empty database; one with data is left as it is (exit 0).")
    ] = False,
    model: Annotated[
        bool, typer.Option(help="Train the triage model on the history into <data dir>/models.")
    ] = True,
    database_url: DatabaseUrl = None,
) -> None:
    """Migrate, then fill the database with the demo city, a year of ticket history and a trained model."""
    from minsheng.demo.seed import reset_database
    from minsheng.storage.migrate import upgrade

    if reset and if_empty:
        raise BadInput("--reset replaces the data that --if-empty keeps: use one of them")
    import logging

    import jieba  # the knowledge base's tokenizer: its dictionary-loading chatter is no news in the summary

    jieba.setLogLevel(logging.WARNING)
    settings = load_settings(database_url)
    if reset:
        with open_db(settings) as db:
            reset_database(db)
    upgrade(settings.database_url)
    model_dir = settings.model_dir or settings.data_dir / "models"
    with open_db(settings) as db:
        if not _may_seed(db, settings.database_url, if_empty):
            return
        report = _seed_with_progress(db, tickets, seed, model_dir if model else None)
    _print_report(report)


def _may_seed(db: Database, url: str, if_empty: bool) -> bool:
    """True on an empty database; on one with data, False with --if-empty, else exit 2."""
    from minsheng.demo.seed import database_is_empty

    if database_is_empty(db):
        return True
    if if_empty:
        # `make demo` runs this before every start: a second run must leave the city and go on serving.
        console.print(
            f"{shown_url(url)} already holds data: not seeded (--reset replaces it)",
            highlight=False,
            soft_wrap=True,
        )
        return False
    fail(f"{shown_url(url)} already holds data; use --reset to replace it with the demo", EXIT_BAD_INPUT)


def _seed_with_progress(db: Database, tickets: int, seed: int, model_dir: Path | None) -> SeedReport:
    """Seed the demo with a progress bar per stage (city, tickets, deadlines, model), each added when it starts."""
    from minsheng.demo.seed import seed_demo

    with progress_bar() as bar:
        tasks: dict[str, Any] = {}

        def on_progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        return seed_demo(
            db, n_tickets=tickets, seed=seed, now=utcnow(), progress=on_progress, model_dir=model_dir
        )


def _print_report(report: SeedReport) -> None:
    """What was seeded and how long each stage took, the model's scores, and the logins to try."""
    from minsheng.demo.seed import DEMO_PASSWORD

    stages = ", ".join(f"{name} {secs:.1f} s" for name, secs in report.stage_seconds.items())
    console.print(
        f"[green]✓[/] seeded {report.areas} areas, {report.units} units, {report.categories} categories, "
        f"{report.users} users and {report.tickets} tickets ({report.events} timeline events) "
        f"in {report.seconds:.1f} s ({stages})"
    )
    console.print(
        f"  {report.places} named places, {report.routes} routing rules, "
        f"{report.kb_entries} knowledge-base entries; "
        f"{report.deadlines} deadlines and {report.timers} timers for the open tickets"
    )
    if report.model is not None:
        console.print(_model_summary(report.model), highlight=False)
        console.print(f"  model saved in {report.model_path}", highlight=False)
    elif report.model_error:
        console.print(f"  no triage model: {report.model_error}", highlight=False)
    console.print(logins_table(report.logins, DEMO_PASSWORD))


def _model_summary(model: dict[str, Any]) -> str:
    """One line on the trained model: its size and its out-of-fold scores ("?" for a score it lacks)."""
    metrics = model.get("metrics") or {}

    def pct(key: str) -> str:
        value = metrics.get(key)
        return f"{value:.1%}" if isinstance(value, int | float) else "?"

    threshold = model.get("threshold")
    shown_threshold = f"{threshold:.2f}" if isinstance(threshold, int | float) else "?"
    return (
        f"  triage model (level {model.get('level')}, {model.get('classes')} categories, "
        f"{model.get('tickets')} tickets, {model.get('train_seconds')} s): "
        f"accuracy {pct('accuracy')}, macro-F1 {pct('macro_f1')}; auto-dispatch at confidence ≥ "
        f"{shown_threshold}: coverage {pct('auto_coverage')}, precision {pct('auto_precision')} "
        "(out-of-fold)"
    )


def logins_table(logins: list[Any], password: str) -> Table:
    """The demo accounts, one screen: every desk role, and a few handlers (each unit has one)."""
    handlers = [x for x in logins if x.role == "handler"]
    shown = [x for x in logins if x.role != "handler"] + handlers[:5]
    # One handler of each lower tier too (street, community, grid, response team), to log in as a street office.
    for prefix in ("dist", "st3", "cm", "gt", "team_"):  # st3…: street offices (sthjj is a department)
        first = next((x for x in handlers if (x.unit_code or "").startswith(prefix)), None)
        if first is not None and first not in shown:
            shown.append(first)
    more = len(handlers) - sum(1 for x in shown if x.role == "handler")
    caption = f"… and {more} more handlers: handler_<unit code> for every unit" if more else None
    table = Table(title=f"demo logins (password: {password})", caption=caption)
    for col in ("username", "role", "name", "unit"):
        table.add_column(col)
    for login in shown:
        table.add_row(login.username, login.role, login.display_name, login.unit_name or "")
    return table
