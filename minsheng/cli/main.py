"""`minsheng …`: the operator's command line for the database, the server, the demo city, imports and users.

Settings are built once at start-up from the environment (``MINSHENG_*``); ``--database-url`` overrides the
database. Bad input (a missing file, a malformed URL, an unknown unit …) ends with a one-line message and exit
code 2, an unreachable database or a failed step with exit code 1; never with a traceback
(:mod:`minsheng.cli.common`).

This module is the root app with its own commands (``serve``, ``simulate``); each sub-app lives in a module of
its own (``db``, ``demo``, ``imports``, ``users``, ``model``, ``worker``) and is mounted here.
"""

from __future__ import annotations

import os
import secrets
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from minsheng.cli.analyze import app as analyze_app
from minsheng.cli.common import DatabaseUrl, console, guarded, load_settings, open_db, progress_bar, shown_url
from minsheng.cli.db import app as db_app
from minsheng.cli.demo import app as demo_app
from minsheng.cli.demo import logins_table
from minsheng.cli.imports import app as import_app
from minsheng.cli.measures import app as measures_app
from minsheng.cli.model import app as model_app
from minsheng.cli.open311 import app as open311_app
from minsheng.cli.partners import app as partners_app
from minsheng.cli.report import report as report_command
from minsheng.cli.timelimits import app as timelimits_app
from minsheng.cli.users import app as users_app
from minsheng.cli.worker import app as worker_app

if TYPE_CHECKING:
    from minsheng.config import Settings

app = typer.Typer(
    name="minsheng",
    help="民声 minsheng: citizen-request hotline platform.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(db_app, name="db")
app.add_typer(demo_app, name="demo")
app.add_typer(import_app, name="import")
app.add_typer(users_app, name="users")
app.add_typer(model_app, name="model")
app.add_typer(open311_app, name="open311")
app.add_typer(partners_app, name="partners")
app.add_typer(worker_app, name="worker")
app.add_typer(analyze_app, name="analyze")
app.add_typer(measures_app, name="measures")
app.add_typer(timelimits_app, name="timelimits")
app.command("report")(report_command)


# ---------------------------------------------------------------------------------------------------- serve
@app.command("serve")
@guarded
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes.")] = 1,
    database_url: DatabaseUrl = None,
    reload: Annotated[bool, typer.Option(help="Restart on code changes (development).")] = False,
) -> None:
    """Serve the API (and pages) with uvicorn."""
    settings = load_settings(database_url)
    import uvicorn

    # Workers are separate processes that build their own Settings from the environment: hand the override on.
    os.environ["MINSHENG_DATABASE_URL"] = settings.database_url
    console.print(
        f"serving on http://{host}:{port} with {workers} worker(s), "
        f"database {shown_url(settings.database_url)}"
    )
    print_welcome(settings, host, port)
    uvicorn.run(
        "minsheng.asgi:create_app",
        factory=True,
        host=host,
        port=port,
        workers=None if reload else workers,
        reload=reload,
        proxy_headers=True,
        log_level="info",
        # On SIGTERM, requests in flight get this long to finish; open streams (the big screen's) are then
        # closed, so the process ends well within 10 s.
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,
    )


def print_welcome(settings: Settings, host: str, port: int) -> None:
    """The addresses to open and, on the demo city, its logins: what a newcomer needs after `make demo`."""
    from sqlalchemy.exc import SQLAlchemyError

    from minsheng.demo.seed import DEMO_PASSWORD, demo_logins

    # A server listening on every interface is still reached from this machine through the loopback.
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else (f"[{host}]" if ":" in host else host)
    base = f"http://{shown}:{port}"
    table = Table(show_header=False, box=None, padding=(0, 2))
    for what, path in (
        ("console (staff login)", "/login"),
        ("citizens' portal", "/"),
        ("big screen", "/screen"),
        ("API docs", "/docs"),
    ):
        table.add_row(what, base + path)
    console.print(table)
    try:
        with open_db(settings) as db:
            logins = demo_logins(db)
    except SQLAlchemyError:
        return  # no schema yet or unreachable: the server says so itself; the banner is no reason to stop
    if logins:
        console.print(logins_table(logins, DEMO_PASSWORD))
    if settings.model_dir is None:
        console.print(
            "no triage model configured (MINSHENG_MODEL_DIR, or <data dir>/models from `minsheng demo seed`): "
            "every ticket waits for a dispatcher",
            highlight=False,
        )


# ------------------------------------------------------------------------------------------------- simulate
@app.command("simulate")
@guarded
def simulate(
    tickets: Annotated[int, typer.Option(min=1, max=1_000_000, help="New tickets to stream.")] = 100,
    speed: Annotated[
        float, typer.Option(min=0.001, help="Time compression: simulated seconds per real second.")
    ] = 600.0,
    wait: Annotated[bool, typer.Option(help="Sleep between steps (--no-wait: as fast as possible).")] = True,
    seed: Annotated[int, typer.Option(help="Seed of the demo city in the database.")] = 2026,
    stream_seed: Annotated[int | None, typer.Option(help="Seed of this stream (default: random).")] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Stream realistic new demo tickets through the closed loop with plausible (compressed) timings."""
    from minsheng.demo.simulate import run_simulation

    settings = load_settings(database_url)
    with open_db(settings) as db, progress_bar() as bar:
        task = bar.add_task("steps", total=None)

        def on_step(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        report = run_simulation(
            db,
            n_tickets=tickets,
            speed=speed,
            wait=wait,
            city_seed=seed,
            seed=stream_seed if stream_seed is not None else secrets.randbelow(2**31),
            progress=on_step,
        )
    console.print(
        f"[green]✓[/] {report.tickets} tickets, {report.steps} steps "
        f"({report.skipped} skipped as no longer allowed) in {report.seconds:.1f} s"
    )


def main() -> None:
    """Console-script entry point (pyproject: minsheng = "minsheng.cli.main:main")."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
