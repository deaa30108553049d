"""`minsheng …`: the operator's command line for the database, the server, the demo city, imports and users.

Settings are built once at start-up from the environment (``MINSHENG_*``); ``--database-url`` overrides the
database. Bad input (a missing file, a malformed URL, an unknown unit …) ends with a one-line message and exit
code 2, an unreachable database or a failed step with exit code 1; never with a traceback.
"""

from __future__ import annotations

import functools
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from minsheng.cli.model import app as model_app
from minsheng.cli.worker import app as worker_app

if TYPE_CHECKING:
    from minsheng.config import Settings
    from minsheng.storage.db import Database

console = Console()
err_console = Console(stderr=True)

app = typer.Typer(
    name="minsheng",
    help="民声 minsheng: citizen-request hotline platform.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema: upgrade and check.", no_args_is_help=True)
demo_app = typer.Typer(help="The generated demo city 民声市.", no_args_is_help=True)
import_app = typer.Typer(
    help="Import areas, units, users or categories from CSV or XLSX.", no_args_is_help=True
)
users_app = typer.Typer(help="User accounts and integration tokens.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(demo_app, name="demo")
app.add_typer(import_app, name="import")
app.add_typer(users_app, name="users")

app.add_typer(model_app, name="model")
app.add_typer(worker_app, name="worker")

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url", help="Database URL (default: MINSHENG_DATABASE_URL or sqlite:///var/minsheng.db)."
    ),
]

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


# ------------------------------------------------------------------------------------------- error handling
class BadInput(Exception):
    """The user gave something we cannot use; exit 2 with the message."""


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


P = ParamSpec("P")
R = TypeVar("R")


def guarded(func: Callable[P, R]) -> Callable[P, R]:
    """Turn the errors a command can meet into a message and an exit code instead of a traceback."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        from alembic.util.exc import CommandError
        from pydantic import ValidationError
        from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

        from minsheng.services.errors import NotFound, ServiceError

        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except BadInput as e:
            fail(str(e))
        except ValidationError as e:
            fail(
                "invalid settings: "
                + "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors())
            )
        except NotFound as e:
            fail(e.message)
        except ServiceError as e:
            fail(e.message)
        except (ArgumentError, NoSuchModuleError) as e:
            fail(f"bad database URL: {e}")
        except DBAPIError as e:
            text = str(e.orig).strip().splitlines()[0] if e.orig else str(e)
            if "no such table" in text or ("relation" in text and "does not exist" in text):
                fail(f"the database has no schema yet ({text}): run `minsheng db upgrade` first", EXIT_FAILED)
            fail(f"database error: {text}", EXIT_FAILED)
        except CommandError as e:
            fail(f"migration failed: {e}", EXIT_FAILED)
        except KeyboardInterrupt:
            fail("interrupted", 130)

    return wrapper


# -------------------------------------------------------------------------------------------- settings / db
def load_settings(database_url: str | None = None) -> Settings:
    """Settings from the environment, with the database URL checked (and overridden when given)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from minsheng.config import Settings
    from minsheng.storage.db import normalise_url

    overrides: dict[str, Any] = {"database_url": database_url} if database_url else {}
    settings = Settings(**overrides)
    try:
        url = make_url(normalise_url(settings.database_url))
    except ArgumentError:
        raise BadInput(
            f"bad database URL '{settings.database_url}': expected sqlite:///PATH or postgresql://…"
        ) from None
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise BadInput(
            f"unsupported database '{url.get_backend_name()}': use sqlite:///PATH or postgresql://…"
        )
    return settings


def shown_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    from minsheng.storage.db import normalise_url

    return make_url(normalise_url(url)).render_as_string(hide_password=True)


@contextmanager
def open_db(settings: Settings) -> Iterator[Database]:
    from minsheng.storage.db import open_database

    db = open_database(settings.database_url, pool_size=2)
    try:
        yield db
    finally:
        db.dispose()


def utcnow() -> datetime:
    return datetime.now(UTC)


def progress_bar() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


# ------------------------------------------------------------------------------------------------------- db
@db_app.command("upgrade")
@guarded
def db_upgrade(database_url: DatabaseUrl = None) -> None:
    """Create or upgrade the schema to the latest migration (alembic upgrade head)."""
    from minsheng.storage.migrate import upgrade

    settings = load_settings(database_url)
    upgrade(settings.database_url)
    console.print(f"[green]✓[/] schema at head: {shown_url(settings.database_url)}")


@db_app.command("check")
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


# ----------------------------------------------------------------------------------------------------- demo
@demo_app.command("seed")
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
    from minsheng.demo.seed import DEMO_PASSWORD, database_is_empty, reset_database, seed_demo
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
        if not database_is_empty(db):
            if if_empty:
                # `make demo` runs this before every start: a second run must leave the city and go on serving.
                console.print(
                    f"{shown_url(settings.database_url)} already holds data: not seeded (--reset replaces it)",
                    highlight=False,
                    soft_wrap=True,
                )
                return
            fail(
                f"{shown_url(settings.database_url)} already holds data; "
                "use --reset to replace it with the demo",
                EXIT_BAD_INPUT,
            )
        with progress_bar() as bar:
            tasks: dict[str, Any] = {}

            def on_progress(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = bar.add_task(stage, total=total)
                bar.update(tasks[stage], completed=done, total=total)

            report = seed_demo(
                db,
                n_tickets=tickets,
                seed=seed,
                now=utcnow(),
                progress=on_progress,
                model_dir=model_dir if model else None,
            )
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
        metrics = report.model.get("metrics") or {}

        def pct(key: str) -> str:
            value = metrics.get(key)
            return f"{value:.1%}" if isinstance(value, int | float) else "?"

        threshold = report.model.get("threshold")
        shown_threshold = f"{threshold:.2f}" if isinstance(threshold, int | float) else "?"
        console.print(
            f"  triage model (level {report.model.get('level')}, {report.model.get('classes')} categories, "
            f"{report.model.get('tickets')} tickets, {report.model.get('train_seconds')} s): "
            f"accuracy {pct('accuracy')}, macro-F1 {pct('macro_f1')}; auto-dispatch at confidence ≥ "
            f"{shown_threshold}: coverage {pct('auto_coverage')}, precision {pct('auto_precision')} "
            "(out-of-fold)",
            highlight=False,
        )
        console.print(f"  model saved in {report.model_path}", highlight=False)
    elif report.model_error:
        console.print(f"  no triage model: {report.model_error}", highlight=False)
    console.print(logins_table(report.logins, DEMO_PASSWORD))


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


# --------------------------------------------------------------------------------------------------- import
def _run_import(kind: str, file: Path, database_url: str | None, strict: bool) -> None:
    from minsheng.services.importing import IMPORTERS, ImportReport
    from minsheng.services.uow import writing

    if not file.is_file():
        raise BadInput(f"file not found: {file}")
    settings = load_settings(database_url)

    class _RollBack(Exception):
        pass

    report: ImportReport | None = None
    with open_db(settings) as db:
        try:
            with writing(db) as session:
                report = IMPORTERS[kind](session, file, utcnow())
                if strict and report.errors:
                    raise _RollBack
        except _RollBack:
            pass
    assert report is not None
    rolled_back = strict and bool(report.errors)
    verb = "would have" if rolled_back else ""
    console.print(
        f"{kind}: {verb} created {report.created}, updated {report.updated}, unchanged {report.skipped}, "
        f"refused {len(report.errors)}".replace(":  ", ": ")
    )
    if report.errors:
        table = Table(title="refused rows")
        table.add_column("row", justify="right")
        table.add_column("reason")
        for number, message in report.errors[:100]:
            table.add_row(str(number), message)
        console.print(table)
        if len(report.errors) > 100:
            console.print(f"… and {len(report.errors) - 100} more")
        if rolled_back:
            fail("--strict: nothing was written because some rows were refused", EXIT_FAILED)
        raise typer.Exit(EXIT_FAILED)


FileArg = Annotated[Path, typer.Argument(help="A .csv (UTF-8 or GB18030) or .xlsx file with a header row.")]
Strict = Annotated[bool, typer.Option(help="Write nothing unless every row is accepted.")]


@import_app.command("areas")
@guarded
def import_areas(file: FileArg, database_url: DatabaseUrl = None, strict: Strict = False) -> None:
    """Columns: code, name, level, parent_code, aliases (a|b), polygon (GeoJSON), lat, lon."""
    _run_import("areas", file, database_url, strict)


@import_app.command("units")
@guarded
def import_units(file: FileArg, database_url: DatabaseUrl = None, strict: Strict = False) -> None:
    """Columns: code, name, kind, parent_code, area_code, duty_tier, phone, leader_name."""
    _run_import("units", file, database_url, strict)


@import_app.command("users")
@guarded
def import_users(file: FileArg, database_url: DatabaseUrl = None, strict: Strict = False) -> None:
    """Columns: username, display_name, role, unit_code, phone, password."""
    _run_import("users", file, database_url, strict)


@import_app.command("categories")
@guarded
def import_categories(file: FileArg, database_url: DatabaseUrl = None, strict: Strict = False) -> None:
    """Columns: code, name, parent_code; or 一级分类, 二级分类, 三级分类 (codes are generated)."""
    _run_import("categories", file, database_url, strict)


# ---------------------------------------------------------------------------------------------------- users
@users_app.command("add")
@guarded
def users_add(
    username: Annotated[str, typer.Argument(help="Login name.")],
    role: Annotated[
        str, typer.Option(help="operator, dispatcher, handler, supervisor, followup, leader, admin …")
    ],
    unit: Annotated[str | None, typer.Option(help="Code of the user's unit (required for handlers).")] = None,
    password: Annotated[
        str | None, typer.Option(help="At least 8 characters; generated when left out.")
    ] = None,
    display_name: Annotated[
        str | None, typer.Option("--name", help="Display name (default: username).")
    ] = None,
    phone: Annotated[str | None, typer.Option(help="Phone number.")] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create a user account."""
    from minsheng.services.org import add_user, parse_role
    from minsheng.services.uow import writing

    if not 1 <= len(username) <= 64:
        raise BadInput("username must have 1 to 64 characters")
    r = parse_role(role)
    generated = password is None
    if password is None:
        password = secrets.token_urlsafe(12)
    settings = load_settings(database_url)
    with open_db(settings) as db, writing(db) as session:
        user = add_user(session, username, display_name or username, r.value, password, utcnow(), unit, phone)
        user_id = user.id
    console.print(f"[green]✓[/] user {username} ({r.value}) created with id {user_id}")
    if generated:
        console.print(f"password: [bold]{password}[/] (shown once)")


@users_app.command("token")
@guarded
def users_token(
    username: Annotated[str, typer.Argument(help="The user the integration acts as.")],
    name: Annotated[str, typer.Option(help="What the token is for, e.g. 'sms-gateway'.")],
    database_url: DatabaseUrl = None,
) -> None:
    """Issue a bearer token for an integration; it is printed once and stored only as a hash."""
    from sqlalchemy import select

    from minsheng.services.auth import issue_token
    from minsheng.services.uow import writing
    from minsheng.storage.models import User

    if not 1 <= len(name) <= 100:
        raise BadInput("the token name must have 1 to 100 characters")
    settings = load_settings(database_url)
    with open_db(settings) as db, writing(db) as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            raise BadInput(f"user {username} not found")
        if not user.active:
            raise BadInput(f"user {username} is deactivated")
        token = issue_token(session, user, name, utcnow())
    # Only the token on stdout, so that scripts can capture it: TOKEN=$(minsheng users token …)
    print(token)


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
