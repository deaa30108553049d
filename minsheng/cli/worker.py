"""`minsheng worker run`: the background worker as its own process (fires timers, delivers the outbox, and
with ``MINSHENG_TRIAGE_MODE=deferred`` triages the tickets intake has stored)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

app = typer.Typer(
    help="Background worker: timers (warnings, escalations) and notification delivery.", no_args_is_help=True
)


@app.command("run")
def run(
    database_url: Annotated[str | None, typer.Option("--database-url", help="Database URL.")] = None,
    interval: Annotated[float | None, typer.Option(min=0.1, help="Seconds between passes.")] = None,
    once: Annotated[bool, typer.Option(help="Run one pass and exit.")] = False,
    batch: Annotated[int, typer.Option(min=1, max=10_000, help="Timers per transaction.")] = 500,
    triage_interval: Annotated[
        float | None, typer.Option(min=0.01, help="Seconds between looks for triage jobs (deferred triage).")
    ] = None,
) -> None:
    """Run the worker loop until interrupted (many may run against one PostgreSQL)."""
    from minsheng.config import Settings
    from minsheng.worker.main import run_forever, run_one_pass

    kw: dict[str, Any] = {"database_url": database_url} if database_url else {}
    if triage_interval is not None:
        kw["triage_interval_seconds"] = triage_interval
    settings = Settings(**kw)
    if once:
        for line in run_one_pass(settings, batch):
            typer.echo(line)
        return
    run_forever(settings, interval or settings.worker_interval_seconds, typer.echo)
