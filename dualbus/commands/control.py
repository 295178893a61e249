"""``dualbus pause`` / ``dualbus resume``: stop and restart applying one area's changes in one direction.

While paused, changes keep accumulating in the subscription (bounded only by the topic's size and TTL);
resuming catches up in order.
"""

from __future__ import annotations

from typing import Annotated

import typer

from dualbus.commands.common import audit_log, console, reported_errors, servicebus_settings, usage_error
from dualbus.ops.audit import operator_name
from dualbus.shared.bus import bus_client
from dualbus.shared.control import read_states, route_name, send_command
from dualbus.shared.errors import TopologyError
from dualbus.shared.topology import Direction, default_topology

__all__ = ["register"]

_DIRECTIONS = {"dataverse": Direction.TO_DATAVERSE, "fo": Direction.TO_FO}


def _route(area: str, to: str) -> str:
    if to not in _DIRECTIONS:
        raise usage_error(f"takes dataverse or fo, not {to!r}", "--to")
    try:
        topic = default_topology().topic(area)
    except TopologyError as exc:
        raise usage_error(str(exc), "AREA") from exc
    return route_name(area, topic.subscription(_DIRECTIONS[to]).name)


def _set(area: str, to: str, *, paused: bool, reason: str) -> None:
    route = _route(area, to)
    with reported_errors():
        queue = default_topology().control_queue
        audit = audit_log()
        with bus_client(servicebus_settings()) as client:
            state = send_command(client, queue, route=route, paused=paused, by=operator_name(), reason=reason)
        audit.record("pause" if paused else "resume", "sent", route=route, reason=reason)
    console.print(f"{state.route}: {'paused' if paused else 'resumed'} by {state.by}")
    console.print(f"Audit trail: {audit.path}", highlight=False, soft_wrap=True)


def pause(
    area: Annotated[str, typer.Argument(help="The area, e.g. customer.")],
    to: Annotated[str, typer.Option("--to", help="dataverse or fo.")],
    reason: Annotated[str, typer.Option("--reason", help="Why, for the audit trail.")] = "",
) -> None:
    """Stop applying AREA's changes to one side; they accumulate in the subscription meanwhile.

    Example: dualbus pause customer --to dataverse --reason "Dataverse maintenance"
    """
    _set(area, to, paused=True, reason=reason)


def resume(
    area: Annotated[str, typer.Argument(help="The area, e.g. customer.")],
    to: Annotated[str, typer.Option("--to", help="dataverse or fo.")],
    reason: Annotated[str, typer.Option("--reason", help="Why, for the audit trail.")] = "",
) -> None:
    """Resume applying AREA's changes to one side; the consumers catch up in order.

    Example: dualbus resume customer --to dataverse
    """
    _set(area, to, paused=False, reason=reason)


def paused() -> None:
    """List the routes that are paused now.

    Example: dualbus paused
    """
    with reported_errors(), bus_client(servicebus_settings()) as client:
        states = read_states(client, default_topology().control_queue)
    current = [state for state in states.values() if state.paused]
    if not current:
        console.print("No route is paused.")
    for state in current:
        console.print(f"{state.route}: paused by {state.by} at {state.at:%Y-%m-%d %H:%M:%S} {state.reason}")


def register(app: typer.Typer) -> None:
    """Add ``pause``, ``resume`` and ``paused`` to the CLI."""
    app.command("pause")(pause)
    app.command("resume")(resume)
    app.command("paused")(paused)
