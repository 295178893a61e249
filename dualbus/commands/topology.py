"""``dualbus topology``: show, render and apply the one topology definition."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated

import orjson
import typer

from dualbus.commands.common import console, reported_errors, servicebus_settings
from dualbus.shared.bus_admin import admin_client
from dualbus.shared.render import render_emulator_config
from dualbus.shared.topology import default_topology
from dualbus.shared.topology_apply import apply_changes, plan_changes

__all__ = ["register"]


class RenderFormat(enum.StrEnum):
    """Formats the topology renders into."""

    EMULATOR_CONFIG = "emulator-config"


_RENDERERS = {RenderFormat.EMULATOR_CONFIG: render_emulator_config}

topology_app = typer.Typer(help="Show, render and apply the Service Bus topology.", no_args_is_help=True)


@topology_app.command("render")
def render(
    fmt: Annotated[
        RenderFormat, typer.Option("--format", help="What to render.")
    ] = RenderFormat.EMULATOR_CONFIG,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """Render the topology, e.g. as the Service Bus emulator's Config.json.

    Example: dualbus topology render --format emulator-config -o Config.json
    """
    document = _RENDERERS[fmt](default_topology())
    text = orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n"
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")


@topology_app.command("show")
def show() -> None:
    """List every area topic and its subscriptions.

    Example: dualbus topology show
    """
    for topic, subscription in default_topology().routes():
        lock = int(subscription.lock_duration.total_seconds())
        typer.echo(
            f"{topic.name}/{subscription.name}  sessions={subscription.requires_session}  lock={lock}s"
        )


@topology_app.command("apply")
def apply(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the changes and make none.")] = False,
) -> None:
    """Create or update the topics, subscriptions and rules on the namespace; idempotent.

    Reaches Azure (DUALBUS_SERVICEBUS__NAMESPACE, with an Entra ID credential) or the emulator
    (DUALBUS_SERVICEBUS__CONNECTION_STRING). Prints one line per change: + create, ~ update, - delete.

    Example: dualbus topology apply --dry-run
    """
    with reported_errors(), admin_client(servicebus_settings()) as client:
        changes = plan_changes(client, default_topology())
        for change in changes:
            console.print(change.describe(), highlight=False, markup=False, soft_wrap=True)
        if not changes:
            console.print("no changes: the namespace matches the topology")
        elif dry_run:
            refused = sum(change.action == "refuse" for change in changes)
            note = (
                f", {refused} of them refused (!): apply would change nothing until they are done"
                if refused
                else ""
            )
            console.print(f"{len(changes)} change(s) planned{note}; none made (--dry-run)")
        else:
            apply_changes(client, changes)
            console.print(f"{len(changes)} change(s) made")


def register(app: typer.Typer) -> None:
    """Add the ``topology`` group to the CLI."""
    app.add_typer(topology_app, name="topology")
