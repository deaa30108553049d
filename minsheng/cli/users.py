"""`minsheng users …`: user accounts and the bearer tokens of integrations."""

from __future__ import annotations

import secrets
from typing import Annotated

import typer

from minsheng.cli.common import BadInput, DatabaseUrl, console, guarded, load_settings, open_db, utcnow

app = typer.Typer(help="User accounts and integration tokens.", no_args_is_help=True)


@app.command("add")
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


@app.command("token")
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
