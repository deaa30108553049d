"""`minsheng partners …`: the registry of 110 and peer hotlines (docs/INTEGRATIONS.md, "Partners").

`add` registers a partner and prints its shared secret as the last line (shown this once; pages and lists show
only its last characters), so that a script can take it with `… | tail -n 1` and hand it to the partner's
administrators. `list` shows the registry, `disable` stops a partner (its calls get 404, nothing more is sent),
`rotate-secret` replaces a secret (printed once the same way).
Every change is recorded in the audit log with the CLI as its actor.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from minsheng.cli.common import DatabaseUrl, audited_write, console, guarded, load_settings, open_db, utcnow

app = typer.Typer(help="Partners: 110 and peer hotlines (12315, 12333 …).", no_args_is_help=True)


def _codes(value: str) -> list[str]:
    return [c.strip() for c in value.split(",") if c.strip()]


@app.command("add")
@guarded
def partners_add(
    code: Annotated[str, typer.Option(help="The partner's code, e.g. 110 or 12315.")],
    name: Annotated[str, typer.Option(help="Its name, e.g. 市公安局110指挥中心.")],
    endpoint: Annotated[str, typer.Option(help="The URL we POST signed messages to.")],
    takes: Annotated[str, typer.Option(help="Our category codes it takes, comma-separated.")] = "",
    sends: Annotated[str, typer.Option(help="Category codes its transfers may carry, comma-separated.")] = "",
    warn_minutes: Annotated[int | None, typer.Option(help="Minutes to acknowledge before a warning.")] = None,
    escalate_minutes: Annotated[int | None, typer.Option(help="Minutes before an escalation.")] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Register a partner; its shared secret is printed once, as the last line."""
    from minsheng.services.partners import registry

    settings = load_settings(database_url)
    with audited_write(settings) as session:
        p, secret = registry.add_partner(
            session,
            code=code,
            name=name,
            endpoint_url=endpoint,
            now=utcnow(),
            takes=_codes(takes),
            sends=_codes(sends),
            ack_warn_minutes=warn_minutes or settings.partner_ack_warn_minutes,
            ack_escalate_minutes=escalate_minutes or settings.partner_ack_escalate_minutes,
        )
        shown = f"{p.code} ({p.name})"
    console.print(f"[green]✓[/] partner {shown} added; its shared secret (shown once):")
    print(secret)


@app.command("list")
@guarded
def partners_list(database_url: DatabaseUrl = None) -> None:
    """List the partners (secrets masked)."""
    from minsheng.services.partners import registry
    from minsheng.services.uow import reading

    settings = load_settings(database_url)
    with open_db(settings) as db, reading(db) as session:
        rows = [registry.partner_json(p) for p in registry.list_partners(session)]
    table = Table("code", "name", "endpoint", "secret", "takes", "sends", "ack min", "active")
    for r in rows:
        table.add_row(
            r["code"],
            r["name"],
            r["endpoint_url"],
            r["secret"],
            ",".join(r["takes"]),
            ",".join(r["sends"]),
            f"{r['ack_warn_minutes']}/{r['ack_escalate_minutes']}",
            "yes" if r["active"] else "no",
        )
    console.print(table)


@app.command("disable")
@guarded
def partners_disable(
    code: Annotated[str, typer.Argument(help="The partner's code.")],
    database_url: DatabaseUrl = None,
) -> None:
    """Disable a partner: its calls get 404 and nothing more is sent to it (its transfers stay readable)."""
    from minsheng.services.partners import registry

    settings = load_settings(database_url)
    with audited_write(settings) as session:
        registry.update_partner(session, code, utcnow(), active=False)
    console.print(f"[green]✓[/] partner {code} disabled")


@app.command("rotate-secret")
@guarded
def partners_rotate(
    code: Annotated[str, typer.Argument(help="The partner's code.")],
    database_url: DatabaseUrl = None,
) -> None:
    """Give a partner a new shared secret, printed once as the last line; the old one stops working at once."""
    from minsheng.services.partners import registry

    settings = load_settings(database_url)
    with audited_write(settings) as session:
        secret = registry.rotate_secret(session, code, utcnow())
    console.print(f"[green]✓[/] partner {code}: new shared secret (shown once):")
    print(secret)
