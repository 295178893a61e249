"""The consumer's command line, shared by ``python -m dualbus.consumers`` and ``dualbus consume``."""

from __future__ import annotations

import asyncio
import enum
from typing import Annotated

import typer

from dualbus.consumers._app import run_consumer
from dualbus.consumers._unroutable import drain_unroutable
from dualbus.shared import loops
from dualbus.shared.errors import DualbusError, TopologyError
from dualbus.shared.logs import redact, register_secret, setup_logging
from dualbus.shared.settings import Settings, load_settings
from dualbus.shared.telemetry import setup_telemetry
from dualbus.shared.topology import Direction, default_topology

__all__ = ["Target", "consume"]


class Target(enum.StrEnum):
    """The system a consumer writes to."""

    DATAVERSE = "dataverse"
    FO = "fo"

    @property
    def direction(self) -> Direction:
        """The subscription direction that carries changes to this target."""
        return Direction.TO_DATAVERSE if self is Target.DATAVERSE else Direction.TO_FO


def consume(
    area: Annotated[str, typer.Argument(help="The area to consume: company, customer, vendor, ...")],
    to: Annotated[Target, typer.Option("--to", help="The system to apply changes to.")],
    concurrency: Annotated[
        int | None,
        typer.Option(
            min=1, max=256, help="Sessions processed at once (default: one per ordering bucket of the topic)."
        ),
    ] = None,
) -> None:
    """Apply an area's changes to one target until SIGTERM; settings come from DUALBUS_* variables.

    It also dead-letters, as Unroutable, what the area topic's unroutable subscription receives.

    Example: dualbus consume customer --to dataverse --concurrency 8  (fewer sessions than buckets)
    """
    try:
        settings = load_settings()
        for secret in settings.secrets():
            register_secret(secret)
        setup_logging(settings.log_level, json=settings.log_format == "json")
        setup_telemetry(f"dualbus-consumer-{area}-{to.value}")
        loops.run(_consume(settings, area, to.direction, concurrency))
    except TopologyError as exc:  # an area the topology does not have: the command line is wrong
        typer.echo(f"error: {redact(str(exc))}", err=True)
        raise typer.Exit(2) from exc
    except DualbusError as exc:  # configuration, the bus, the target: a failure, as for every command
        typer.echo(f"error: {' '.join(redact(str(exc)).split())}", err=True)
        raise typer.Exit(1) from exc


async def _consume(settings: Settings, area: str, direction: Direction, concurrency: int | None) -> None:
    """The area's consumer and the drain of its topic's unroutable subscription, stopped together."""
    topic = default_topology().topic(area)
    # run_consumer sets ``stop`` on SIGTERM/SIGINT, which ends the drain as well.
    stop = asyncio.Event()
    draining = asyncio.create_task(drain_unroutable(settings, topic, stop))
    try:
        await run_consumer(settings, area, direction, concurrency=concurrency, stop=stop)
    finally:
        stop.set()
        await draining
