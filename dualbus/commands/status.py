"""``dualbus status``: a table per area and direction of what waits, what failed, and the trend."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated

import orjson
import typer
from rich.table import Table

from dualbus.commands.common import console, format_age, reported_errors, servicebus_settings
from dualbus.ops.dlq import peek_dead_letters, select_routes
from dualbus.ops.status import RouteStatus, collect_status, with_rates
from shared.bus import bus_client
from shared.bus_admin import admin_counts
from shared.topology import default_topology

__all__ = ["register"]


def status(
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
    interval: Annotated[
        float, typer.Option(help="Seconds between two samples for the backlog trend; 0 takes one sample.")
    ] = 2.0,
) -> None:
    """Active, scheduled and dead-lettered counts per area and direction, with ages and the backlog trend.

    Example: dualbus status --json
    """
    topology = default_topology()
    with reported_errors():
        settings = servicebus_settings()
        with bus_client(settings) as client:
            oldest = {}
            for route in select_routes(topology):
                letters = peek_dead_letters(client, route, limit=1)
                oldest[(route.area, route.subscription)] = letters[0].enqueued_time if letters else None
        with admin_counts(settings) as counts:
            first = collect_status(counts, topology, now=datetime.now(UTC), oldest_dead_letters=oldest)
            statuses = first
            if interval > 0:
                time.sleep(interval)
                second = collect_status(counts, topology, now=datetime.now(UTC), oldest_dead_letters=oldest)
                statuses = with_rates(first, second, interval)
    if json_output:
        typer.echo(orjson.dumps([s.as_dict() for s in statuses], option=orjson.OPT_INDENT_2).decode())
        return
    console.print(_table(statuses))


def _table(statuses: list[RouteStatus]) -> Table:
    table = Table(
        "area", "direction", "active", "scheduled", "dead-lettered", "oldest DLQ", "last read", "trend/s"
    )
    for s in statuses:
        table.add_row(
            s.area,
            s.subscription,
            str(s.active),
            str(s.scheduled),
            str(s.dead_lettered),
            format_age(s.oldest_dead_letter),
            format_age(s.last_read),
            "-" if s.backlog_change_per_second is None else f"{s.backlog_change_per_second:+.1f}",
        )
    return table


def register(app: typer.Typer) -> None:
    """Add ``status`` to the CLI."""
    app.command("status")(status)
