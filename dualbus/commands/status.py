"""``dualbus status``: a table per area and direction of what waits, what failed, and the trend."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich import box
from rich.table import Table
from rich.text import Text

from dualbus.commands.common import console, finite, format_age, reported_errors, servicebus_settings
from dualbus.demo.display import format_seconds
from dualbus.demo.monitor import read_stats
from dualbus.demo.stats import RouteStats
from dualbus.ops.dlq import peek_dead_letters, select_routes
from dualbus.ops.status import RouteStatus, collect_status, with_rates
from dualbus.shared.bus import bus_client
from dualbus.shared.bus_admin import admin_counts
from dualbus.shared.control import read_states
from dualbus.shared.topology import default_topology

__all__ = ["register"]

_TEXT_COLUMNS = frozenset({"area", "direction", "state"})


def status(
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
    interval: Annotated[
        float,
        typer.Option(
            min=0,
            callback=finite,
            help="Seconds between two samples for the backlog trend; 0 takes one sample.",
        ),
    ] = 2.0,
    metrics: Annotated[
        Path | None,
        typer.Option(
            "--metrics",
            help="A directory of jsonfile metrics snapshots (OTEL_METRICS_EXPORTER=jsonfile), "
            "e.g. the demo's <run-dir>/metrics: adds live p50/p99 change-to-applied latency.",
            exists=True,
            file_okay=False,
        ),
    ] = None,
) -> None:
    """Active, scheduled and dead-lettered counts per area and direction, paused or running, the trend.

    Example: dualbus status --json
    """
    topology = default_topology()
    with reported_errors():
        settings = servicebus_settings()
        with bus_client(settings) as client, admin_counts(settings) as counts:
            oldest = {}
            for route in select_routes(topology):
                # Peeking opens a link (a second or so with its close); the count says where it is worth it.
                if counts.subscription(route.topic, route.subscription).dead_lettered:
                    letters = peek_dead_letters(client, route, limit=1)
                    oldest[(route.area, route.subscription)] = letters[0].enqueued_time if letters else None
            states = read_states(client, topology.control_queue)
            first = collect_status(
                counts, topology, now=datetime.now(UTC), oldest_dead_letters=oldest, states=states
            )
            statuses = first
            if interval > 0:
                time.sleep(interval)
                second = collect_status(
                    counts, topology, now=datetime.now(UTC), oldest_dead_letters=oldest, states=states
                )
                statuses = with_rates(first, second, interval)
    latency = _latency(metrics, statuses)
    if json_output:
        rows = [s.as_dict() | _latency_fields(latency.get((s.area, s.subscription))) for s in statuses]
        typer.echo(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
        return
    console.print(_table(statuses, latency))


def _latency(metrics: Path | None, statuses: list[RouteStatus]) -> dict[tuple[str, str], RouteStats]:
    if metrics is None:
        return {}
    routes = [(s.area, s.subscription) for s in statuses]
    return {(row.area, row.direction): row for row in read_stats(metrics, routes)}


def _latency_fields(row: RouteStats | None) -> dict[str, object]:
    if row is None:
        return {}
    figures = row.as_dict()
    return {name: figures[name] for name in ("p50_seconds", "p95_seconds", "p99_seconds", "live_applied")}


def _table(statuses: list[RouteStatus], latency: dict[tuple[str, str], RouteStats]) -> Table:
    # Light borders and short headers: the whole table fits an 80-column terminal.
    headers = ["area", "direction", "state", "active", "sched", "dead", "oldest", "read", "trend/s"]
    headers += ["p50", "p99"] if latency else []
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0), show_edge=False)
    for header in headers:
        table.add_column(header, no_wrap=True, justify="left" if header in _TEXT_COLUMNS else "right")
    for s in statuses:
        cells: list[str | Text] = [
            s.area,
            s.subscription,
            Text("paused", style="yellow") if s.paused else Text("running"),
            str(s.active),
            str(s.scheduled),
            str(s.dead_lettered),
            format_age(s.oldest_dead_letter),
            format_age(s.last_read),
            "-" if s.backlog_change_per_second is None else f"{s.backlog_change_per_second:+.1f}",
        ]
        if latency:
            row = latency.get((s.area, s.subscription))
            cells += [format_seconds(row.latency(q)) if row else "-" for q in (0.5, 0.99)]
        table.add_row(*cells)
    return table


def register(app: typer.Typer) -> None:
    """Add ``status`` to the CLI."""
    app.command("status")(status)
