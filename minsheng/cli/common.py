"""What every `minsheng …` command shares: the consoles, the ``--database-url`` option, settings and the
database, and the turning of errors into exit codes.

Bad input (a missing file, a malformed URL, an unknown unit …) ends with a one-line message and exit code 2, an
unreachable database or a failed step with exit code 1; never with a traceback (:func:`guarded`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from minsheng.config import Settings
    from minsheng.storage.db import Database

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_FAILED",
    "BadInput",
    "DatabaseUrl",
    "console",
    "err_console",
    "fail",
    "guarded",
    "load_settings",
    "open_db",
    "progress_bar",
    "shown_url",
    "utcnow",
]

console = Console()
err_console = Console(stderr=True)

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


@contextmanager
def audited_write(settings: Settings) -> Iterator[Session]:
    """One write transaction whose administrative changes the audit log records as the command line's."""
    from minsheng.services import audit
    from minsheng.services.uow import writing

    with open_db(settings) as db:
        audit.record_changes(db)
        with writing(db) as session:
            session.info[audit.ACTOR_KEY] = audit.CLI
            yield session


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
