"""``dualbus alerts``: check a rules file, or run the monitor that fires the rules."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from dualbus.commands.common import audit_log, console, finite, reported_errors, servicebus_settings
from dualbus.ops.alert_monitor import AlertMonitor
from dualbus.ops.alerts import load_rules
from dualbus.ops.dlq import select_routes
from dualbus.shared.bus import bus_client
from dualbus.shared.topology import default_topology

__all__ = ["register"]

alerts_app = typer.Typer(
    help="Alert rules over dead-letters: log, call a webhook, pause.", no_args_is_help=True
)
RulesArgument = Annotated[
    Path,
    typer.Argument(
        help='A JSON rules file: {"rules": [...]} (format: docs/operations.md).',
        exists=True,
        dir_okay=False,
        readable=True,
    ),
]


@alerts_app.command("check")
def check(rules: RulesArgument) -> None:
    """Validate a rules file and list its rules.

    Example: dualbus alerts check alerts.json
    """
    with reported_errors():
        loaded = load_rules(rules)
    for rule in loaded.rules:
        actions = ", ".join(action.value for action in rule.actions)
        console.print(f"{rule.name}: >= {rule.threshold} in {rule.window_minutes} min → {actions}")


@alerts_app.command("run")
def run(
    rules: RulesArgument,
    interval: Annotated[float, typer.Option(min=0.1, callback=finite, help="Seconds between polls.")] = 10.0,
    duration: Annotated[
        float | None,
        typer.Option(
            min=0, callback=finite, help="Stop after this many seconds (default: run until stopped)."
        ),
    ] = None,
) -> None:
    """Watch the dead-letter queues and fire the rules.

    Example: dualbus alerts run alerts.json --interval 5
    """
    with reported_errors():
        loaded = load_rules(rules)
        topology = default_topology()
        deadline = time.monotonic() + duration if duration is not None else float("inf")
        audit = audit_log()
        with bus_client(servicebus_settings()) as client:
            monitor = AlertMonitor(
                client,
                loaded,
                select_routes(topology),
                control_queue=topology.control_queue,
                audit=audit,
            )
            console.print(
                f"Watching {len(loaded.rules)} rule(s); dead-letters already there are not counted. "
                f"Audit trail: {audit.path}",
                highlight=False,
                soft_wrap=True,
            )
            try:
                fired = monitor.run(interval=interval, until=lambda: time.monotonic() >= deadline)
            finally:
                monitor.close()
    console.print(f"{fired} alert(s) fired")


def register(app: typer.Typer) -> None:
    """Add the ``alerts`` group to the CLI."""
    app.add_typer(alerts_app, name="alerts")
